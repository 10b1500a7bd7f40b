#!/bin/bash
# hoist: status. Prints one line `HOIST-STATUS {json}` about $HOIST_APP on this host: the
# running release (its health probed now, on a short budget), the retained releases (newest
# first), the last history records (newest last), and whether a deploy is in flight.
# Read-only: takes no lock and changes nothing. Exit 0 when it could look (also when the app
# has no release: "running" is null), 1 when it could not (the Docker engine does not answer:
# "error" says so), 2 on bad parameters.
#
# Parameters (HOIST_*, rendered by src/plan/maintenance.rs): HOIST_APP, HOIST_STATE_DIR,
# HOIST_RUN_DIR, HOIST_HISTORY_LIMIT (how many history records), HOIST_HEALTH_INTERVAL
# (seconds between probes), HOIST_PROBE_TIMEOUT (the probe's budget in seconds),
# HOIST_STRATEGY (`recreate` or `blue-green`; a blue-green app's header also has
# HOIST_PUBLISH, HOIST_BG_* and HOIST_NGINX_CONF, as a deploy's). The functions are src/scripts/lib.sh's, rendered between the header and this body.

# shellcheck source=src/scripts/lib.sh
[[ -n ${LIB_LOADED:-} ]] || source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
begin_script status_exit

RUNNING_JSON=null
RETAINED_JSON=""
HISTORY_JSON=""
DEPLOYING=false

# Prints the one HOIST-STATUS line with what was found, and an error when the look failed.
# shellcheck disable=SC2317 # reached through the EXIT trap
status_exit() {
    local code=$? error=null
    trap '' INT TERM
    trap - EXIT
    set +e
    if [[ $STATUS != ok ]]; then
        if [[ -z $REASON ]]; then
            if [[ -n $ERR_CMD ]]; then
                REASON="command failed at line $ERR_LINE (exit $code): $ERR_CMD"
            else
                REASON="the script stopped with exit status $code"
            fi
        fi
        error=$(json_str "$REASON")
        warn "$STATUS: $REASON"
    fi
    printf 'HOIST-STATUS {"app":%s,"running":%s,"retained":[%s],"history":[%s],"deploying":%s,"error":%s}\n' \
        "$(json_str "${HOIST_APP:-}")" "$RUNNING_JSON" "$RETAINED_JSON" "$HISTORY_JSON" "$DEPLOYING" "$error"
    if [[ $STATUS == ok ]]; then
        exit 0
    elif ((code == 0)); then
        exit 1
    fi
    exit "$code"
}

# JSON null for an empty value, else the string.
json_or_null() {
    if [[ -z $1 ]]; then printf 'null'; else json_str "$1"; fi
}

# The health of running container $1 now: healthy, unhealthy: why, or running (no health check).
health_now() {
    local id=$1 checks
    checks=$(docker inspect --format '{{index .Config.Labels "hoist.health-path"}}|{{if .State.Health}}docker{{end}}' "$id" 2>/dev/null || true)
    if [[ $checks == '|' ]]; then
        printf 'running (no health check)'
    elif [[ $checks != '|'* ]] && ! command -v curl >/dev/null; then
        printf 'unknown: curl is not installed on this host'
    elif probe_health "$id" "$HOIST_PROBE_TIMEOUT"; then
        printf 'healthy'
    else
        printf 'unhealthy: %s' "$PROBE_WHY"
    fi
}

need HOIST_APP HOIST_STATE_DIR HOIST_RUN_DIR HOIST_HISTORY_LIMIT HOIST_HEALTH_INTERVAL HOIST_PROBE_TIMEOUT
check_app
need_number HOIST_HISTORY_LIMIT HOIST_HEALTH_INTERVAL HOIST_PROBE_TIMEOUT
case ${HOIST_STRATEGY:-recreate} in
    recreate | blue-green) ;;
    *) finish invalid "parameter HOIST_STRATEGY is '$HOIST_STRATEGY'" ;;
esac
# A status is a quick look: no pause between probes longer than its whole budget.
if ((HOIST_HEALTH_INTERVAL > HOIST_PROBE_TIMEOUT)); then HOIST_HEALTH_INTERVAL=$HOIST_PROBE_TIMEOUT; fi

# ---------------------------------------------------------------- what the host's files say
history_file="$HOIST_STATE_DIR/$HOIST_APP/history.jsonl"
if [[ -r $history_file ]]; then
    # One JSON object a line (a line cut short by a crash is left out).
    while IFS= read -r line; do
        if [[ $line == '{'*'}' ]]; then HISTORY_JSON+="${HISTORY_JSON:+,}$line"; fi
    done < <(tail -n "$HOIST_HISTORY_LIMIT" "$history_file")
fi
if lock_held "$HOIST_RUN_DIR/$HOIST_APP.lock" || [[ -s $HOIST_STATE_DIR/$HOIST_APP/deploy.state ]]; then
    DEPLOYING=true
fi

# ---------------------------------------------------------------- what the engine says
require_tools docker timeout
require_engine
rows=$(list_releases) || fail "cannot list the releases of $HOIST_APP"
while IFS='|' read -r id state release name image image_id deployed_at started restart _; do
    [[ -n $id ]] || continue
    name=${name#/}
    if [[ $state == running && $RUNNING_JSON == null ]]; then
        restart=${restart%:0}
        health=$(health_now "$id")
        digest=$(docker image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' "$image_id" 2>/dev/null || true)
        RUNNING_JSON=$(printf '{"release":%s,"container":%s,"name":%s,"image":%s,"image_id":%s,"digest":%s,"health":%s,"since":%s,"restart":%s}' \
            "$(json_str "$release")" "$(json_str "$id")" "$(json_str "$name")" "$(json_str "$image")" \
            "$(json_str "$image_id")" "$(json_or_null "${digest%% *}")" "$(json_str "$health")" \
            "$(json_str "$started")" "$(json_str "$restart")")
    elif [[ $state != running ]]; then
        RETAINED_JSON+="${RETAINED_JSON:+,}$(printf '{"release":%s,"container":%s,"name":%s,"image":%s,"deployed_at":%s}' \
            "$(json_str "$release")" "$(json_str "$id")" "$(json_str "$name")" "$(json_str "$image")" \
            "$(json_str "$deployed_at")")"
    fi
done <<<"$rows"
finish ok ""
