#!/bin/bash
# requires: core
# hoist's host library, aws: the host's own AWS CLI calls (secret parameters, Secrets Manager,
# the registry login), retried while AWS throttles them.

# How aws_retry backs off: this many tries at most, the first wait (milliseconds) doubling
# up to the last; each wait is a random one between half of it and all of it.
RETRY_TRIES=8
RETRY_FIRST_MS=200
RETRY_MAX_MS=5000

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# Runs `aws "$@"`, retrying while AWS throttles it (ThrottlingException,
# TooManyRequestsException, "Rate exceeded"): Parameter Store answers about 40 reads a second
# per account and Region, shared by every host of a fleet that deploys at once. Any other
# error ends it at once. The CLI's stdout goes straight through: it may be a secret, which is
# never held in a variable, a here-string or a process substitution here; its stderr (an
# error message) is kept to be read, and goes to stderr.
aws_retry() {
    local try=1 wait=$RETRY_FIRST_MS err code ms secs
    while :; do
        if { err=$(aws "$@" 2>&1 >&3); } 3>&1; then
            if [[ -n $err ]]; then printf '%s\n' "$err" >&2; fi
            return 0
        else
            code=$?
        fi
        printf '%s\n' "$err" >&2
        if [[ $err != *ThrottlingException* && $err != *TooManyRequestsException* &&
            $err != *"Rate exceeded"* ]] || ((try >= RETRY_TRIES)); then
            return "$code"
        fi
        ms=$((wait / 2 + RANDOM % (wait / 2 + 1)))
        printf -v secs '%d.%03d' $((ms / 1000)) $((ms % 1000))
        printf 'hoist: throttled (try %d of %d); trying again in %ss\n' "$try" "$RETRY_TRIES" "$secs" >&2
        snooze "$secs"
        try=$((try + 1))
        wait=$((wait * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait * 2))
    done
}

}
