#!/bin/bash
# requires: core look
# hoist: exec. Runs the command HOIST_EXEC (an array: its words, quoted by hoist) in
# $HOIST_APP's live container on this host, non-interactively (`docker exec`, no TTY, no
# stdin), and prints its output, stdout and stderr merged, with every value of the secrets
# the container holds (the env names in HOIST_SECRET_NAMES) masked as `***`. Then one line
# `HOIST-EXEC {json}`: the release and container, the command's exit status, whether the
# output was cut. Exit 0 when the command exited 0, 1 when it did not or could not run, 2 on
# bad parameters. The command may change what the container holds: hoist does not judge it.
#
# Parameters (HOIST_*, rendered by src/plan/maintenance.rs): HOIST_APP, HOIST_EXEC,
# HOIST_SECRET_NAMES, HOIST_EXEC_TIMEOUT (seconds), HOIST_MAX_BYTES.

CONTAINER=""
RELEASE=""
CODE=null
CUT=false

# shellcheck disable=SC2317 # reached through the EXIT trap
exec_exit() {
    local code=$? error=null
    trap '' INT TERM
    trap - EXIT
    set +e
    forget_secrets
    if [[ $STATUS != ok ]]; then
        # PROBE_WHY: core's reason for a failed probe, when one (nginx's) said why.
        [[ -n $REASON ]] || REASON="${PROBE_WHY:-the script stopped with exit status $code${ERR_CMD:+ at line $ERR_LINE: $ERR_CMD}}"
        error=$(json_str "$REASON")
        warn "$STATUS: $REASON"
    fi
    printf 'HOIST-EXEC {"app":%s,"release":%s,"container":%s,"code":%s,"cut":%s,"error":%s}\n' \
        "$(json_str "${HOIST_APP:-}")" "$(json_str "$RELEASE")" \
        "$(if [[ -n $CONTAINER ]]; then json_str "$CONTAINER"; else printf null; fi)" \
        "$CODE" "$CUT" "$error"
    exit "$(exit_code)"
}

begin_script exec_exit
need HOIST_APP HOIST_EXEC_TIMEOUT HOIST_MAX_BYTES
check_app
need_number HOIST_EXEC_TIMEOUT HOIST_MAX_BYTES
((${#HOIST_EXEC[@]})) || finish invalid "parameter HOIST_EXEC is empty"
require_tools docker timeout
require_engine
find_running
((${#PREV_IDS[@]})) || fail "no release of $HOIST_APP runs on this host"
CONTAINER=${PREV_IDS[0]}
RELEASE=$(docker inspect --format '{{index .Config.Labels "hoist.release"}}' "$CONTAINER")

load_container_secrets "$CONTAINER" || fail "a secret of $HOIST_APP is shorter than $MASK_MIN bytes: its value cannot be masked, so the command is not run"

# The command's code is the pipeline's first; lastpipe keeps print_masked (and CUT) in this
# shell.
shopt -s lastpipe
set +e +o pipefail
timeout "$HOIST_EXEC_TIMEOUT" docker exec "$CONTAINER" "${HOIST_EXEC[@]}" 2>&1 </dev/null | print_masked "$HOIST_MAX_BYTES"
CODE=${PIPESTATUS[0]}
set -e -o pipefail
shopt -u lastpipe
case $CODE in
    0) finish ok "" ;;
    124) fail "the command did not end within ${HOIST_EXEC_TIMEOUT}s (stopped)" ;;
    *) fail "the command exited with status $CODE" ;;
esac
