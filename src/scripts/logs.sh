#!/bin/bash
# requires: core look
# hoist: logs. Prints the log lines of $HOIST_APP's live release on this host (or of the
# retained release HOIST_RELEASE), stdout and stderr as Docker keeps them, each line with
# every value of the secrets the container holds (the env names in HOIST_SECRET_NAMES: from
# hoist's environment or read by the host itself) masked as `***`, in each form an app may
# print it. Then one line `HOIST-LOGS {json}`: the release and container read, how many lines,
# whether the output was cut, and `until` (where the next read of `hoist logs --follow`
# starts). Read-only: takes no lock and changes nothing. Exit 0 when it could read (also
# when the app has no release: "container" is null), 1 when it could not, 2 on bad
# parameters.
#


# HOIST_SECRET_NAMES (array), HOIST_MAX_BYTES (the most log bytes on stdout: the SSM agent
# keeps 23,980 bytes of it).

CONTAINER=""
LINES=0
CUT=false
UNTIL=""

# Prints the one HOIST-LOGS line, and an error when the read failed.
# shellcheck disable=SC2317 # reached through the EXIT trap
logs_exit() {
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
    printf 'HOIST-LOGS {"app":%s,"release":%s,"container":%s,"lines":%d,"cut":%s,"until":%s,"error":%s}\n' \
        "$(json_str "${HOIST_APP:-}")" "$(json_str "${HOIST_RELEASE:-}")" \
        "$(if [[ -n $CONTAINER ]]; then json_str "$CONTAINER"; else printf null; fi)" \
        "$LINES" "$CUT" "$(json_str "$UNTIL")" "$error"
    exit "$(exit_code)"
}

begin_script logs_exit
need HOIST_APP HOIST_MAX_BYTES
check_app
need_number HOIST_TAIL HOIST_MAX_BYTES
if [[ -n $HOIST_RELEASE ]]; then check_release_id "$HOIST_RELEASE"; fi
[[ -z $HOIST_SINCE || $HOIST_SINCE =~ ^[0-9A-Za-z:.+-]+$ ]] || finish invalid "parameter HOIST_SINCE is '$HOIST_SINCE'"
require_tools docker timeout
require_engine

# The release: the one asked for (newest container of it), else the running one.
rows=$(list_releases) || fail "cannot list the releases of $HOIST_APP"
while IFS='|' read -r id state release _; do
    [[ -n $id ]] || continue
    if [[ -n $HOIST_RELEASE ]]; then
        if [[ $release == "$HOIST_RELEASE" ]]; then CONTAINER=$id && break; fi
    elif [[ $state == running ]]; then
        CONTAINER=$id
        HOIST_RELEASE=$release
        break
    fi
done <<<"$rows"
if [[ -z $CONTAINER ]]; then
    if [[ -n $HOIST_RELEASE ]]; then fail "release $HOIST_RELEASE is not on this host"; fi
    finish ok "no release of $HOIST_APP runs on this host"
fi

load_container_secrets "$CONTAINER" || fail "a secret of $HOIST_APP is shorter than $MASK_MIN bytes: its value cannot be masked, so its logs are not shown"

# Where --follow left this target, if it did.
self=${AWS_SSM_INSTANCE_ID:-local}
for entry in ${HOIST_SINCE_BY_TARGET[@]+"${HOIST_SINCE_BY_TARGET[@]}"}; do
    if [[ ${entry%%=*} == "$self" ]]; then
        HOIST_SINCE=${entry#*=}
        HOIST_TAIL=0
    fi
done
[[ -z $HOIST_SINCE || $HOIST_SINCE =~ ^[0-9A-Za-z:.+-]+$ ]] || finish invalid "parameter HOIST_SINCE_BY_TARGET holds '$HOIST_SINCE'"

# Docker's window: up to now, so that --follow's next read starts where this one ended.
UNTIL=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
args=(--until "$UNTIL")
if ((HOIST_TAIL > 0)); then args+=(--tail "$HOIST_TAIL"); fi
if [[ -n $HOIST_SINCE ]]; then args+=(--since "$HOIST_SINCE"); fi
print_masked "$HOIST_MAX_BYTES" < <(timeout 60 docker logs "${args[@]}" "$CONTAINER" 2>&1)
LINES=$PRINTED
finish ok ""
