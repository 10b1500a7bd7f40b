#!/bin/bash
# requires: core engine look state release nginx twophase
# hoist's host library, blue-green.
#
# Two colors, blue and green, each a loopback port (HOIST_BG_PORTS); the live one is what the
# app's nginx file (HOIST_NGINX_CONF) proxies HOIST_PUBLISH to. A deploy starts the new
# release in the idle color beside the live one (stage), health-gates it on its loopback port,
# points nginx at it with a graceful reload (switch), probes it through nginx for
# HOIST_BG_POST_SWITCH_CHECK seconds (verify), and only then, after HOIST_BG_DRAIN seconds for
# the requests nginx's old workers still serve, stops the old color (retire). The old color
# serves until the new one is verified, so a failure up to then only has to point nginx back
# (the previous file is kept) and remove the new container; until then the old color is also
# nginx's backup, which answers what the new one cannot. The nginx file answers hoist's probes
# (those sending `X-Hoist-Probe`) with an `X-Hoist-Upstream: <address nginx reached last>`
# header, which is how a probe knows which color answered; no other client gets it.

# shellcheck disable=SC2034 # alone, globals look unused here: other modules and the bodies read them
# Blue-green's own state (STRATEGY=blue-green): the running releases of the app with no color
# (deployed by recreate: they publish the nginx port themselves, and are stopped right before
# nginx takes the port), whether this run made nginx load its new file, the drain, and the
# restart policy the target gets once it is verified. A function, called where this module
# loads, so that the watchdog sets the same defaults (see watchdog_program).
# (Runs in the watchdog too.)
bluegreen_globals() {
    BG_LEGACY_IDS=()
    BG_STRAY_IDS=()
    BG_RELOADED=0
    BG_DRAIN=0
    BG_POLICY=""
    # The container (short id) bg_find_live leaves out: the one a switch is about to make live.
    BG_IGNORE=""
}
bluegreen_globals

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# Checks the blue-green parameters and sets the run's nginx settings from them: HOIST_PUBLISH
# (the port nginx listens on), HOIST_BG_PORTS=(blue green), HOIST_BG_DRAIN and
# HOIST_BG_POST_SWITCH_CHECK (seconds), HOIST_BG_INSTALL_PROXY (true/false), HOIST_NGINX_CONF
# (an absolute path ending in .conf); the proxy's HOIST_BG_MAX_BODY (bytes, default 0: no
# limit), HOIST_BG_READ_TIMEOUT (seconds, default 3600) and HOIST_BG_DUAL_STACK (true/false,
# default true: see bg_conf_text); optional HOIST_NGINX_BIN (default `nginx`) and
# HOIST_NGINX_ARGS (default none; e.g. `-c FILE` for an nginx of its own, as the tests run
# one): with either set, nginx is started by running that binary, never through systemd.
bg_params() {
    need HOIST_PUBLISH HOIST_NGINX_CONF HOIST_BG_DRAIN HOIST_BG_POST_SWITCH_CHECK
    need_number HOIST_BG_DRAIN HOIST_BG_POST_SWITCH_CHECK
    if ! declare -p HOIST_BG_PORTS >/dev/null 2>&1 || ((${#HOIST_BG_PORTS[@]} != 2)); then
        finish invalid "parameter HOIST_BG_PORTS must hold two ports (blue, green)"
    fi
    local p
    for p in "$HOIST_PUBLISH" "${HOIST_BG_PORTS[@]}"; do
        if ! [[ $p =~ ^[1-9][0-9]{0,4}$ ]] || ((p > 65535)); then
            finish invalid "blue-green: '$p' is not a port"
        fi
    done
    if [[ ${HOIST_BG_PORTS[0]} == "${HOIST_BG_PORTS[1]}" || $HOIST_PUBLISH == "${HOIST_BG_PORTS[0]}" ||
        $HOIST_PUBLISH == "${HOIST_BG_PORTS[1]}" ]]; then
        finish invalid "blue-green: the blue port (${HOIST_BG_PORTS[0]}), the green port (${HOIST_BG_PORTS[1]}) and the published port ($HOIST_PUBLISH) must differ"
    fi
    [[ $HOIST_NGINX_CONF =~ ^/[A-Za-z0-9_./-]+\.conf$ && $HOIST_NGINX_CONF != *..* ]] ||
        finish invalid "parameter HOIST_NGINX_CONF must be an absolute path ending in .conf: '$HOIST_NGINX_CONF'"
    HOIST_BG_INSTALL_PROXY=${HOIST_BG_INSTALL_PROXY:-false}
    case $HOIST_BG_INSTALL_PROXY in
        true | false) ;;
        *) finish invalid "parameter HOIST_BG_INSTALL_PROXY is '$HOIST_BG_INSTALL_PROXY'" ;;
    esac
    HOIST_BG_MAX_BODY=${HOIST_BG_MAX_BODY:-0} HOIST_BG_READ_TIMEOUT=${HOIST_BG_READ_TIMEOUT:-3600}
    [[ $HOIST_BG_MAX_BODY =~ ^[0-9]{1,15}$ && $HOIST_BG_READ_TIMEOUT =~ ^[1-9][0-9]{0,6}$ ]] ||
        finish invalid "parameters HOIST_BG_MAX_BODY and HOIST_BG_READ_TIMEOUT are '$HOIST_BG_MAX_BODY' and '$HOIST_BG_READ_TIMEOUT'"
    HOIST_BG_DUAL_STACK=${HOIST_BG_DUAL_STACK:-true}
    [[ $HOIST_BG_DUAL_STACK == true || $HOIST_BG_DUAL_STACK == false ]] ||
        finish invalid "parameter HOIST_BG_DUAL_STACK is '$HOIST_BG_DUAL_STACK'"
    if ! declare -p HOIST_NGINX_ARGS >/dev/null 2>&1; then HOIST_NGINX_ARGS=(); fi
    BG_NGINX_BIN=${HOIST_NGINX_BIN:-nginx}
    BG_NGINX_ARGS=(${HOIST_NGINX_ARGS[@]+"${HOIST_NGINX_ARGS[@]}"})
    BG_CONF=$HOIST_NGINX_CONF
    BG_NGINX_PORT=$HOIST_PUBLISH
    BG_DRAIN=$HOIST_BG_DRAIN
    BG_NGINX_LOCK="$HOIST_RUN_DIR/nginx.lock"
}

# What a blue-green run that creates a release needs on this host, checked before any change:
# the tools, curl (every probe through nginx is an HTTP request, with or without a health
# path), the engine, nginx (bg_require_proxy) and the directory of the app's nginx file.
bg_require_host() {
    require_tools docker flock timeout
    command -v curl >/dev/null || fail "curl is not installed on this host (needed to probe the app through nginx)"
    require_engine
    bg_require_proxy
    [[ -d ${BG_CONF%/*} ]] || finish invalid "the directory of $BG_CONF does not exist: is it nginx's conf.d?"
}

# Finds what runs: the live color (PREV_IDS, PREV_NAME, BG_OLD_UPSTREAM: the running colored
# release nginx routes to, else the newest running colored one), the running releases with
# no color (BG_LEGACY_IDS: recreate's, which publish the nginx port themselves), and colored
# ones nginx does not route to (BG_STRAY_IDS: left running by a run that died in its retire,
# or started by hand; they may hold the idle color's port). Sets BG_NEW_COLOR and BG_NEW_PORT:
# the idle color (blue when no color is live).
bg_find_live() {
    local live id color publish entry ids=() colored=()
    live=$(bg_conf_live "$BG_CONF")
    PREV_IDS=()
    PREV_NAME=""
    BG_OLD_UPSTREAM=""
    BG_LEGACY_IDS=()
    BG_STRAY_IDS=()
    mapfile -t ids < <(docker ps --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL" \
        --filter status=running --format '{{.ID}}')
    for id in ${ids[@]+"${ids[@]}"}; do
        # A two-phase switch's own staged container is neither live nor a stray.
        [[ $id != "$BG_IGNORE" ]] || continue
        IFS='|' read -r color publish _ <<<"$(bg_labels "$id")"
        if [[ -z $color ]]; then
            BG_LEGACY_IDS+=("$id")
        elif [[ -z $BG_OLD_UPSTREAM && -n $live && "$color $publish" == "$live" ]]; then
            BG_OLD_UPSTREAM="$color $publish"
            PREV_IDS=("$id")
        else
            colored+=("$id|$color $publish")
        fi
    done
    for entry in ${colored[@]+"${colored[@]}"}; do
        if [[ -z $BG_OLD_UPSTREAM ]]; then
            BG_OLD_UPSTREAM=${entry#*|}
            PREV_IDS=("${entry%%|*}")
        else
            BG_STRAY_IDS+=("${entry%%|*}")
        fi
    done
    if ((${#PREV_IDS[@]})); then
        PREV_NAME=$(docker inspect --format '{{.Name}}' "${PREV_IDS[0]}")
    elif ((${#BG_LEGACY_IDS[@]})); then
        PREV_NAME=$(docker inspect --format '{{.Name}}' "${BG_LEGACY_IDS[0]}")
    fi
    PREV_NAME=${PREV_NAME#/}
    if [[ ${BG_OLD_UPSTREAM%% *} == blue ]]; then
        BG_NEW_COLOR=green
        BG_NEW_PORT=${HOIST_BG_PORTS[1]}
    else
        BG_NEW_COLOR=blue
        BG_NEW_PORT=${HOIST_BG_PORTS[0]}
    fi
}

# Stops the colored releases that run but that nginx does not route to (BG_STRAY_IDS): they
# serve nothing, and one may hold the port the target needs. They stay retained.
bg_stop_strays() {
    local id
    for id in ${BG_STRAY_IDS[@]+"${BG_STRAY_IDS[@]}"}; do
        docker update --restart no "$id" >/dev/null 2>&1 || true
        docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null || fail "could not stop $id, which runs but serves nothing"
        log "stopped $id: it ran beside the live color, which nginx does not route to it"
    done
}

# Blue-green's new release in the idle color: removes what earlier runs staged and never
# switched (it serves nothing), prepares the inputs, finds the live color, ends the run
# `unchanged` when the live release is this one, then creates the release in the idle color
# with the extra `docker create` arguments "$@". $1 says what the run does there, for the log
# ("deploying to", "staging in").
bg_create_idle() {
    local doing=$1
    shift
    bg_discard_staged ""
    prepare_inputs
    bg_find_live
    if [[ -n $BG_OLD_UPSTREAM ]]; then
        log "live: ${BG_OLD_UPSTREAM% *} ($PREV_NAME); $doing $BG_NEW_COLOR (127.0.0.1:$BG_NEW_PORT)"
    else
        log "no color is live yet; $doing $BG_NEW_COLOR (127.0.0.1:$BG_NEW_PORT)"
    fi
    SPEC=$(release_spec blue-green)
    if [[ -n $BG_OLD_UPSTREAM ]]; then unchanged_if_same "$SPEC"; fi
    bg_begin "$HOIST_RESTART"
    set_phase stage
    create_release "$BG_NEW_PORT" \
        --label "hoist.color=$BG_NEW_COLOR" \
        --label hoist.strategy=blue-green \
        "$@" \
        --publish "127.0.0.1:$BG_NEW_PORT:$HOIST_CONTAINER_PORT"
}

# Records in the state file all that a restore of a blue-green run needs (from the watchdog
# or the next deploy too, whatever their header says), before the stage changes anything;
# $1 is the restart policy the target gets once verified.
bg_begin() {
    local id
    BG_NEW_UPSTREAM="$BG_NEW_COLOR $BG_NEW_PORT"
    BG_POLICY=$1
    note_state strategy blue-green
    note_state nginx_conf "$BG_CONF"
    note_state nginx_port "$BG_NGINX_PORT"
    note_state nginx_bin "$BG_NGINX_BIN"
    note_state nginx_lock "$BG_NGINX_LOCK"
    for id in ${BG_NGINX_ARGS[@]+"${BG_NGINX_ARGS[@]}"}; do note_state nginx_arg "$id"; done
    note_state drain "$BG_DRAIN"
    note_state policy "$BG_POLICY"
    note_state new_upstream "$BG_NEW_UPSTREAM"
    if [[ -n $BG_OLD_UPSTREAM ]]; then note_state old_upstream "$BG_OLD_UPSTREAM"; fi
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do note_state prev "$id"; done
    if [[ -n $PREV_NAME ]]; then note_state prev_name "$PREV_NAME"; fi
    for id in ${BG_LEGACY_IDS[@]+"${BG_LEGACY_IDS[@]}"}; do note_state legacy "$id"; done
}

# Makes the target (TARGET_ID: created by this run in color BG_NEW_COLOR on loopback port
# BG_NEW_PORT, or a retained release a rollback starts) the live color: stage (start it,
# health-gate it on its port: HOIST_HEALTH_CONSECUTIVE healthy answers in a row), switch (the
# app's nginx file points at it; `nginx -t`; recreate releases that publish the nginx port are
# stopped right before nginx takes it; graceful reload), verify (through nginx, for
# HOIST_BG_POST_SWITCH_CHECK seconds), retire (policies; after HOIST_BG_DRAIN seconds the old
# color is stopped, and kept). Any failure before the retire ends the run, and the restore
# (restore_blue_green) puts the previous state back. bg_begin comes first; $1 and $2 are the target's
# health path and expected status, $3 the release the nginx file names.
bg_go() {
    bg_stage_target "$1" "$2"
    bg_switch_target "$1" "$2" "$3"
}

# Stage: starts the target beside the live color, which serves on, and health-gates it on its
# loopback port ($1 the health path, $2 the expected status, shown only). nginx is untouched:
# a failure removes the target and nothing that serves has changed.
bg_stage_target() {
    local path=$1 want=$2 out
    set_phase stage
    bg_stop_strays
    out=$(docker start "$TARGET_ID" 2>&1) || fail "docker start failed: $(tail -n 3 <<<"$out")"
    if ((HOIST_HEALTH_START_PERIOD > 0)); then
        snooze "$HOIST_HEALTH_START_PERIOD"
    fi
    if [[ -n $path ]]; then
        log "health check: GET $path on 127.0.0.1:$BG_NEW_PORT expecting $want, $HOIST_HEALTH_CONSECUTIVE in a row (budget ${HOIST_HEALTH_TIMEOUT}s)"
    fi
    probe_health "$TARGET_ID" "$HOIST_HEALTH_TIMEOUT" "$HOIST_HEALTH_CONSECUTIVE" || fail "health check failed: $PROBE_WHY"
    log "healthy on 127.0.0.1:$BG_NEW_PORT ($BG_NEW_COLOR): $HEALTH"
}

# Switch, verify, retire: the target (staged, healthy on its loopback port) becomes the live
# color. $1 and $2 are its health path and expected status, $3 the release the nginx file
# names. With BG_WATCH (a canary window, seconds from the switch) longer than the post-switch
# check, the verify goes on for the rest of it (bg_watch_canary); the old color keeps running
# until it ends, so a failure switches back as a failed post-switch check does.
bg_switch_target() {
    local path=$1 want=$2 release=$3 id backup

    # ---- switch: the previous file is kept for the restore.
    backup=none
    if [[ -e $BG_CONF ]]; then
        backup="$HOIST_STATE_DIR/$HOIST_APP/nginx.previous.conf"
        cp -p "$BG_CONF" "$backup" || fail "could not keep a copy of $BG_CONF"
    fi
    BG_BACKUP=$backup
    note_state nginx_backup "$backup"
    set_phase switch
    nginx_hold
    bg_conf_text "$BG_NEW_COLOR" "$BG_NEW_PORT" "$release" "$TARGET_NAME" "$(bg_backup_port)" >"$BG_CONF.hoist-tmp" ||
        fail "could not write $BG_CONF.hoist-tmp"
    chmod 0644 "$BG_CONF.hoist-tmp"
    mv -f "$BG_CONF.hoist-tmp" "$BG_CONF"
    if ! nginx_test; then
        if [[ $NGINX_OUT == *"duplicate default server"* ]]; then
            NGINX_OUT="$NGINX_OUT (another server block is the default for port $BG_NGINX_PORT, such as a distribution's default site: disable it)"
        fi
        fail "nginx rejected the configuration with the new $BG_CONF: $NGINX_OUT"
    fi
    for id in ${BG_LEGACY_IDS[@]+"${BG_LEGACY_IDS[@]}"}; do
        # Recreate's release publishes the nginx port itself: stopped right before nginx takes
        # the port (a short gap), and kept for rollback.
        docker update --restart no "$id" >/dev/null 2>&1 || true
        docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null || fail "could not stop the recreate release $id"
        log "stopped $PREV_NAME (deployed by recreate) for nginx to take port $BG_NGINX_PORT"
    done
    BG_RELOADED=1
    note_state reloaded
    nginx_apply || fail "could not make nginx load the new $BG_CONF: $NGINX_OUT"
    SWITCHED_AT=$(date +%s%3N)
    [[ $SWITCHED_AT =~ ^[0-9]+$ ]] || SWITCHED_AT=$(($(date +%s) * 1000))
    nginx_let_go
    log "nginx routes port $BG_NGINX_PORT to $BG_NEW_COLOR (127.0.0.1:$BG_NEW_PORT)"

    # ---- verify, through nginx.
    set_phase verify
    bg_check_through_nginx "$BG_NEW_UPSTREAM" "$path" "$want" 15 "$HOIST_BG_POST_SWITCH_CHECK" ||
        fail "post-switch check failed: $PROBE_WHY"
    log "verified through nginx for ${HOIST_BG_POST_SWITCH_CHECK}s: $HEALTH"
    if ((${BG_WATCH:-0} > HOIST_BG_POST_SWITCH_CHECK)); then
        bg_watch_canary "$path" "$want" "$((BG_WATCH - HOIST_BG_POST_SWITCH_CHECK))" ||
            fail "canary failed: $PROBE_WHY"
        log "canary held for ${BG_WATCH}s after its switch: $HEALTH"
    fi
    bg_drop_backup "$release"

    # ---- retire: the target is live and verified.
    set_phase retire
    bg_retire_old
    set_phase verified
    rm -f "$HOIST_STATE_DIR/$HOIST_APP/nginx.previous.conf"
}

# The old color's port, for the new nginx file's backup: when a colored release is live (a
# recreate release publishes nginx's port itself, and has none).
bg_backup_port() {
    if [[ -n $BG_OLD_UPSTREAM ]] && ((${#PREV_IDS[@]})); then printf '%s' "${BG_OLD_UPSTREAM#* }"; fi
}

# The verified target: the app's nginx file again, without the old color as backup, reloaded
# ($1: the release it names). A failure is a warning: the old color still runs, so the backup
# still answers, and the next deploy writes the file anew.
bg_drop_backup() {
    [[ -n $(bg_backup_port) ]] || return 0
    nginx_hold
    if bg_conf_text "$BG_NEW_COLOR" "$BG_NEW_PORT" "$1" "$TARGET_NAME" >"$BG_CONF.hoist-tmp" &&
        chmod 0644 "$BG_CONF.hoist-tmp" && mv -f "$BG_CONF.hoist-tmp" "$BG_CONF" && nginx_test && nginx_apply; then
        log "nginx reloaded: the old color is no longer its backup"
    else
        warn "could not drop the old color as nginx's backup: ${NGINX_OUT:-writing $BG_CONF failed}"
    fi
    nginx_let_go
}

# A canary's watch, after its post-switch check: for $3 more seconds, every health interval,
# the target (live) must still answer through nginx (GET path $1 expecting status $2, as the
# post-switch check) and its container must stay up: running, never restarted (its start time
# and restart count unchanged). Sets HEALTH, and PROBE_WHY when it fails.
bg_watch_canary() {
    local path=$1 want=$2 window=$3 deadline first now status code
    log "canary: watching $TARGET_NAME for ${window}s more (health through nginx, the container staying up)"
    first=$(docker inspect --format '{{.State.StartedAt}} {{.RestartCount}}' "$TARGET_ID" 2>/dev/null) ||
        {
            PROBE_WHY="docker inspect $TARGET_NAME failed"
            return 1
        }
    deadline=$((SECONDS + window))
    while :; do
        now=$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}} {{.State.StartedAt}} {{.RestartCount}}' "$TARGET_ID" 2>/dev/null || true)
        read -r status code _ <<<"$now"
        if [[ $status != running ]]; then
            PROBE_WHY="$TARGET_NAME is ${status:-gone}${code:+ (exit code $code)}, not running"
            return 1
        fi
        if [[ ${now#* * } != "$first" ]]; then
            PROBE_WHY="$TARGET_NAME restarted (start time and restart count were '$first', now '${now#* * }')"
            return 1
        fi
        bg_check_through_nginx "$BG_NEW_UPSTREAM" "$path" "$want" 0 0 || return 1
        if ((SECONDS >= deadline)); then return 0; fi
        snooze "$HOIST_HEALTH_INTERVAL"
    done
}

# The retire of a verified target: the target gets its restart policy and the old color none
# (so that a reboot brings back only the live color), then, after BG_DRAIN seconds for the
# requests nginx's old workers still serve, the old color is stopped (and kept, for rollback).
# (Reached through the EXIT trap and the watchdog.)
bg_retire_old() {
    local id
    if [[ -n $TARGET_ID && -n $BG_POLICY ]]; then
        docker update --restart "$BG_POLICY" "$TARGET_ID" >/dev/null 2>&1 || warn "could not set the restart policy of $TARGET_NAME"
    fi
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        docker update --restart no "$id" >/dev/null 2>&1 || warn "could not clear the restart policy of $id"
    done
    if ((${#PREV_IDS[@]} && BG_DRAIN > 0)); then
        log "draining $PREV_NAME for ${BG_DRAIN}s"
        snooze "$BG_DRAIN"
    fi
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        if ! docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null 2>&1 && [[ $(container_status "$id") == running ]]; then
            warn "could not stop the old color's container $id"
        fi
    done
    if ((${#PREV_IDS[@]})); then log "stopped $PREV_NAME"; fi
}

# Blue-green's restore, by phase: `stage` (nginx untouched) removes the new container (or
# stops the retained release a rollback started); `switch` and `verify` put the previous nginx
# file back, reload, start again the recreate release stopped for nginx's port, and remove
# the new container only once nginx no longer routes to it (and BG_DRAIN seconds later, for
# the requests nginx's old workers still serve); `retire` finishes the retire (the target is
# live and verified). The previous release is called serving only once a probe through nginx
# (or, for a recreate release, its own check) says so. Sets ROLLED_BACK, RESTORE_NOTE and
# SWITCHED_BACK; returns non-zero when the previous release is not serving.
# (Reached through the EXIT trap and the watchdog.)
restore_blue_green() {
    ROLLED_BACK=false
    RESTORE_NOTE=""
    SWITCHED_BACK=0
    case $PHASE in
        verified) return 0 ;;
        retire)
            bg_retire_old
            return 0
            ;;
    esac
    local switching=0 reloaded_back=0 id policy deadline color path want
    case $PHASE in switch | verify) switching=1 ;; esac
    if [[ -z $TARGET_ID ]] && ((!switching)); then return 0; fi
    if ! wait_engine "$ENGINE_WAIT"; then
        RESTORE_NOTE="the Docker engine did not answer for ${ENGINE_WAIT}s"
        return 1
    fi
    if ((switching)); then
        nginx_hold
        bg_restore_conf || warn "could not put back the previous $BG_CONF"
        if ((BG_RELOADED)); then
            if ! nginx_test; then warn "nginx -t fails with the previous $BG_CONF back: $NGINX_OUT"; fi
            if ! nginx_apply; then
                nginx_let_go
                RESTORE_NOTE="could not make nginx load the previous $BG_CONF: $NGINX_OUT"
                return 1
            fi
            SWITCHED_BACK=1
        elif [[ -n $BG_BACKUP ]] && nginx_test; then
            # This run never reloaded, but the new file was in place, unlocked once the run
            # died: another app's reload may have loaded it. A running nginx reloads the
            # previous one (one that does not run loaded neither).
            if nginx_run -s reload </dev/null >/dev/null 2>&1; then reloaded_back=1; fi
        fi
        nginx_let_go
        # Recreate releases stopped for nginx's port: started again once nginx lets go of it.
        for id in ${BG_LEGACY_IDS[@]+"${BG_LEGACY_IDS[@]}"}; do
            policy=$(docker inspect --format '{{index .Config.Labels "hoist.restart"}}' "$id" 2>/dev/null || true)
            if [[ -n $policy ]]; then docker update --restart "$policy" "$id" >/dev/null 2>&1 || true; fi
            deadline=$((SECONDS + 15))
            until [[ $(container_status "$id") == running ]] || docker start "$id" >/dev/null 2>&1; do
                if ((SECONDS >= deadline)); then
                    RESTORE_NOTE="could not start $PREV_NAME ($id) again"
                    return 1
                fi
                sleep 0.5
            done
        done
    fi
    if ((SWITCHED_BACK || reloaded_back)) && [[ -n $TARGET_ID ]]; then
        # nginx must no longer route to the target before it goes.
        if [[ -n $BG_OLD_UPSTREAM ]] && ((${#PREV_IDS[@]})); then
            IFS='|' read -r _ _ path want <<<"$(bg_labels "${PREV_IDS[0]}")"
            if ! bg_check_through_nginx "$BG_OLD_UPSTREAM" "$path" "$want" 15 0; then
                RESTORE_NOTE="nginx does not route to $PREV_NAME again: $PROBE_WHY"
                return 1
            fi
        else
            deadline=$((SECONDS + 15))
            bg_look /
            while [[ $NGINX_SEEN == "$BG_NEW_UPSTREAM" ]] && ((SECONDS < deadline)); do
                sleep 0.2
                bg_look /
            done
        fi
        if ((BG_DRAIN > 0)); then snooze "$BG_DRAIN"; fi
    fi
    undo_target
    # What serves now: the old color through nginx, or a recreate release on its own.
    if [[ -n $BG_OLD_UPSTREAM ]] && ((${#PREV_IDS[@]})); then
        IFS='|' read -r color _ path want <<<"$(bg_labels "${PREV_IDS[0]}")"
        if bg_check_through_nginx "$BG_OLD_UPSTREAM" "$path" "$want" 15 0; then
            ROLLED_BACK=true
            if ((SWITCHED_BACK)); then
                RESTORE_NOTE="nginx routes to $PREV_NAME ($color) again ($HEALTH)"
            elif ((reloaded_back)); then
                RESTORE_NOTE="nginx routes to $PREV_NAME ($color), its file put back and reloaded ($HEALTH)"
            else
                RESTORE_NOTE="nginx never left $PREV_NAME ($color), which serves ($HEALTH)"
            fi
            return 0
        fi
        RESTORE_NOTE="$PREV_NAME ($color) does not serve through nginx: $PROBE_WHY"
        return 1
    elif ((${#BG_LEGACY_IDS[@]})); then
        if probe_health "${BG_LEGACY_IDS[0]}" "$((HOIST_HEALTH_START_PERIOD + HOIST_HEALTH_TIMEOUT))"; then
            ROLLED_BACK=true
            RESTORE_NOTE="$PREV_NAME runs again ($HEALTH)"
            return 0
        fi
        RESTORE_NOTE="$PREV_NAME was started again but is not healthy: $PROBE_WHY"
        return 1
    fi
    return 0
}

}
