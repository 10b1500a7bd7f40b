#!/bin/bash
# requires: core engine look
# hoist: status. Prints one line `HOIST-STATUS {json}` about $HOIST_APP on this host: the
# running release (its health probed now, on a short budget), the retained releases (newest
# first), the last history records (newest last), and whether a deploy is in flight.
# Read-only: takes no lock and changes nothing. Exit 0 when it could look (also when the app
# has no release: "running" is null), 1 when it could not (the Docker engine does not answer:
# "error" says so), 2 on bad parameters.
#
# Parameters (HOIST_*, rendered by src/plan/maintenance.rs): HOIST_APP, HOIST_STATE_DIR,
# HOIST_RUN_DIR, HOIST_HISTORY_LIMIT (how many history records), HOIST_HEALTH_INTERVAL
# (seconds between probes), HOIST_PROBE_TIMEOUT (the probe's budget in seconds);
# HOIST_STRATEGY (default recreate) and, for blue-green, HOIST_NGINX_CONF (the app's nginx
# file, which names the live color). The functions are those of the modules the `# requires:`
# line names (src/scripts/lib/), rendered between the header and this body.
#
# Fields: app, strategy, running (the live release: for blue-green the one the nginx file
# routes to), retained (stopped releases, newest first), history, deploying, error; each
# release entry has its color (null for recreate's). For blue-green also live_color (the
# color nginx routes to, else the running release's), idle_color (the other one: where the
# next deploy goes; blue when none is live) and idle_release (the newest release retained in
# the idle color: what stands there, null when none); null for recreate. `staged`: releases a
# two-phase rollout staged (label hoist.staged-by) that run unserved: waiting for their run's
# switch, or left by a run that died between its phases (the next deploy's stage removes
# those); each with release, container, name, color and run. The running release also has
# revision (its image's org.opencontainers.image.revision), settings and env (the labels
# hoist.settings and hoist.env, JSON text; "" on a release an older hoist made).

RUNNING_JSON=null
RETAINED_JSON=""
STRATEGY_JSON='"recreate"'
LIVE_COLOR_JSON=null
IDLE_COLOR_JSON=null
IDLE_RELEASE_JSON=null
STAGED_JSON=""
HISTORY_JSON=""
# At most this many bytes of history records in the HOIST-STATUS line.
HISTORY_BYTES=12000
DEPLOYING=false

# The run that staged container $1 and that never switched it, else nothing.
staged_run() {
    local run name
    IFS='|' read -r run name <<<"$(docker inspect --format "{{index .Config.Labels \"$STAGED_LABEL\"}}|{{.Name}}" "$1" 2>/dev/null || true)"
    if [[ -n $run ]] && ! bg_was_live "${name#/}"; then printf '%s' "$run"; fi
}

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
    printf 'HOIST-STATUS {"app":%s,"strategy":%s,"running":%s,"retained":[%s],"staged":[%s],"history":[%s],"deploying":%s,"live_color":%s,"idle_color":%s,"idle_release":%s,"error":%s}\n' \
        "$(json_str "${HOIST_APP:-}")" "$STRATEGY_JSON" "$RUNNING_JSON" "$RETAINED_JSON" "$STAGED_JSON" "$HISTORY_JSON" "$DEPLOYING" \
        "$LIVE_COLOR_JSON" "$IDLE_COLOR_JSON" "$IDLE_RELEASE_JSON" "$error"
    exit "$(exit_code)"
}

# JSON null for an empty value, else the string.
json_or_null() {
    if [[ -z $1 ]]; then printf 'null'; else json_str "$1"; fi
}

# The health of running container $1 now: healthy, unhealthy: why, or running (no health check).
health_now() {
    local id=$1 checks
    checks=$(docker inspect --format '{{index .Config.Labels "hoist.health-path"}}|{{if .State.Health}}docker{{end}}|{{index .Config.Labels "hoist.health-check"}}' "$id" 2>/dev/null || true)
    # Path|image HEALTHCHECK|hoist.health-check: nothing but "keep running" is no check.
    if [[ $checks == '||' || $checks == '||running:'* ]]; then
        printf 'running (no health check)'
    elif [[ $checks != '|'* ]] && ! command -v curl >/dev/null; then
        printf 'unknown: curl is not installed on this host'
    elif probe_health "$id" "$HOIST_PROBE_TIMEOUT"; then
        printf 'healthy'
    else
        printf 'unhealthy: %s' "$PROBE_WHY"
    fi
}

# The EXIT handler is defined above: the run starts here.
begin_script status_exit
need HOIST_APP HOIST_STATE_DIR HOIST_RUN_DIR HOIST_HISTORY_LIMIT HOIST_HEALTH_INTERVAL HOIST_PROBE_TIMEOUT
check_app
need_number HOIST_HISTORY_LIMIT HOIST_HEALTH_INTERVAL HOIST_PROBE_TIMEOUT
HOIST_STRATEGY=${HOIST_STRATEGY:-recreate}
case $HOIST_STRATEGY in recreate | blue-green) ;; *) finish invalid "parameter HOIST_STRATEGY is '$HOIST_STRATEGY'" ;; esac
STRATEGY_JSON=$(json_str "$HOIST_STRATEGY")
HOIST_NGINX_CONF=${HOIST_NGINX_CONF:-}
# A status is a quick look: no pause between probes longer than its whole budget.
if ((HOIST_HEALTH_INTERVAL > HOIST_PROBE_TIMEOUT)); then HOIST_HEALTH_INTERVAL=$HOIST_PROBE_TIMEOUT; fi

# ---------------------------------------------------------------- what the host's files say
history_file="$HOIST_STATE_DIR/$HOIST_APP/history.jsonl"
if [[ -r $history_file ]]; then
    # One JSON object a line (a line cut short by a crash is left out), newest first while
    # they fit in HISTORY_BYTES: the HOIST-STATUS line must stay within what SSM keeps of
    # stdout (its first 23,980 bytes), whatever reasons older scripts wrote.
    records=()
    while IFS= read -r line; do
        if [[ $line == '{'*'}' ]]; then records+=("$line"); fi
    done < <(tail -n "$HOIST_HISTORY_LIMIT" "$history_file")
    kept=0
    for ((i = ${#records[@]} - 1; i >= 0; i--)); do
        kept=$((kept + ${#records[i]} + 1))
        ((kept <= HISTORY_BYTES)) || break
        HISTORY_JSON="${records[i]}${HISTORY_JSON:+,}$HISTORY_JSON"
    done
fi
if lock_held "$HOIST_RUN_DIR/$HOIST_APP.lock" || [[ -s $HOIST_STATE_DIR/$HOIST_APP/deploy.state ]]; then
    DEPLOYING=true
fi

# ---------------------------------------------------------------- what the engine says
require_tools docker timeout
require_engine
rows=$(list_releases) || fail "cannot list the releases of $HOIST_APP"
# The live release: for blue-green the running one the nginx file routes to, else (and for
# recreate) the first running one.
live="" live_id="" idle_color=""
if [[ $HOIST_STRATEGY == blue-green && -n $HOIST_NGINX_CONF ]]; then live=$(bg_conf_live "$HOIST_NGINX_CONF"); fi
while IFS='|' read -r id state _ _ _ _ _ _ _ _ _ _ color publish; do
    [[ -n $id && $state == running ]] || continue
    if [[ -n $live && "$color $publish" == "$live" ]]; then
        live_id=$id
        break
    fi
    if [[ -z $live_id && -z $(staged_run "$id") ]]; then live_id=$id; fi
done <<<"$rows"
if [[ $HOIST_STRATEGY == blue-green ]]; then
    live_color=${live%% *}
    if [[ -z $live_color && -n $live_id ]]; then
        live_color=$(docker inspect --format '{{with index .Config.Labels "hoist.color"}}{{.}}{{end}}' "$live_id" 2>/dev/null || true)
    fi
    case $live_color in
        blue) idle_color=green ;;
        green) idle_color=blue ;;
        *) live_color="" idle_color=blue ;;
    esac
    LIVE_COLOR_JSON=$(json_or_null "$live_color")
    IDLE_COLOR_JSON=$(json_str "$idle_color")
fi
while IFS='|' read -r id state release name image image_id deployed_at started restart _ _ _ color _; do
    [[ -n $id ]] || continue
    name=${name#/}
    if [[ $state == running && $id == "$live_id" ]]; then
        restart=${restart%:0}
        health=$(health_now "$id")
        digest=$(docker image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' "$image_id" 2>/dev/null || true)
        # How the release was made: its image's commit and the settings and env hoist
        # labelled it with, each a JSON string as Docker encodes it (one a line).
        made=()
        mapfile -t made < <(docker inspect --format "{{json (index .Config.Labels \"org.opencontainers.image.revision\")}}{{\"\\n\"}}{{json (index .Config.Labels \"hoist.settings\")}}{{\"\\n\"}}{{json (index .Config.Labels \"hoist.env\")}}" "$id" 2>/dev/null || true)
        RUNNING_JSON=$(printf '{"release":%s,"container":%s,"name":%s,"image":%s,"image_id":%s,"digest":%s,"health":%s,"since":%s,"restart":%s,"color":%s,"revision":%s,"settings":%s,"env":%s}' \
            "$(json_str "$release")" "$(json_str "$id")" "$(json_str "$name")" "$(json_str "$image")" \
            "$(json_str "$image_id")" "$(json_or_null "${digest%% *}")" "$(json_str "$health")" \
            "$(json_str "$started")" "$(json_str "$restart")" "$(json_or_null "$color")" \
            "${made[0]:-\"\"}" "${made[1]:-\"\"}" "${made[2]:-\"\"}")
    elif [[ $state == running && -n $(staged_run "$id") ]]; then
        STAGED_JSON+="${STAGED_JSON:+,}$(printf '{"release":%s,"container":%s,"name":%s,"color":%s,"run":%s}' \
            "$(json_str "$release")" "$(json_str "$id")" "$(json_str "$name")" "$(json_or_null "$color")" \
            "$(json_str "$(staged_run "$id")")")"
    elif [[ $state != running ]]; then
        RETAINED_JSON+="${RETAINED_JSON:+,}$(printf '{"release":%s,"container":%s,"name":%s,"image":%s,"deployed_at":%s,"color":%s}' \
            "$(json_str "$release")" "$(json_str "$id")" "$(json_str "$name")" "$(json_str "$image")" \
            "$(json_str "$deployed_at")" "$(json_or_null "$color")")"
        if [[ $HOIST_STRATEGY == blue-green && $IDLE_RELEASE_JSON == null && $color == "$idle_color" ]]; then
            IDLE_RELEASE_JSON=$(json_str "$release")
        fi
    fi
done <<<"$rows"
finish ok ""
