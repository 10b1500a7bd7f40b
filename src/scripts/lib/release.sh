#!/bin/bash
# requires: core engine state secrets image
# hoist's host library, release: a new release's container (its parameters, inputs,
# specification and `docker create`), recreate's switch to a release (stop the running one,
# start the target, gate it) with its restore, and the pruning of old releases.

# shellcheck disable=SC2034 # alone, globals look unused here: other modules and the bodies read them
# The new release's specification (release_spec), its `hoist.spec` label.
SPEC=""
# How many names create_release tries for the new container before it gives up.
NAME_TRIES=100

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# The parameters of every body that creates a release (recreate.sh, blue-green.sh,
# bg-stage.sh), checked. hoist's typed header sets every one of them (src/plan/mod.rs's
# header_params), optional ones included, so there is nothing to default.
check_deploy_params() {
    need HOIST_APP HOIST_RELEASE HOIST_IMAGE HOIST_PULL HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT \
        HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD \
        HOIST_ENV_SOURCE HOIST_RETAIN HOIST_RUN_DIR HOIST_STATE_DIR HOIST_RESTART
    check_app
    check_release_id "$HOIST_RELEASE"
    need_number HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL \
        HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD HOIST_RETAIN
    case $HOIST_PULL in never | if-missing | always) ;; *) finish invalid "parameter HOIST_PULL is '$HOIST_PULL'" ;; esac
    case $HOIST_ENV_SOURCE in none | stdin | ssm-parameter) ;; *) finish invalid "parameter HOIST_ENV_SOURCE is '$HOIST_ENV_SOURCE'" ;; esac
    [[ $HOIST_RESTART =~ ^(no|always|unless-stopped|on-failure(:[0-9]+)?)$ ]] || finish invalid "parameter HOIST_RESTART is '$HOIST_RESTART'"
    [[ $HOIST_HEALTH_CONSECUTIVE =~ ^[1-9][0-9]*$ ]] || finish invalid "parameter HOIST_HEALTH_CONSECUTIVE is '$HOIST_HEALTH_CONSECUTIVE'"
    [[ $HOIST_FORCE == true || $HOIST_FORCE == false ]] || finish invalid "parameter HOIST_FORCE is '$HOIST_FORCE'"
}

# The release's inputs on this host: the registry token fetched in the background while the
# env file is written (when there is anything in it), then the image.
prepare_inputs() {
    start_login
    if ((${#HOIST_ENV_CLEAR[@]} + ${#HOIST_ENV_SECRETS[@]} + ${#HOIST_HOST_SECRETS[@]})); then
        write_env_file
    fi
    ensure_image
}

# The release's specification as a sha256: the image it runs (its id) and what its
# `docker create` is given — the parameters that shape the container, strategy $1, and the
# env file's contents — kept in its `hoist.spec` label. (Docker keeps the container's env in
# its state in the clear anyway; the label is a hash of it.)
release_spec() {
    local image_id
    image_id=$(docker image inspect --format '{{.Id}}' "$HOIST_IMAGE") || fail "cannot inspect image $HOIST_IMAGE"
    {
        printf '%s\0' "$image_id" "$HOIST_RELEASE" "$1" "$HOIST_IMAGE_LABEL" "$HOIST_CONTAINER_PORT" \
            "$HOIST_PUBLISH" "$HOIST_RESTART" "$HOIST_STOP_TIMEOUT" "$HOIST_HEALTH_PATH" "$HOIST_HEALTH_STATUS" \
            ${HOIST_HEALTH_CHECK:+"$HOIST_HEALTH_CHECK"}
        printf 'opts\0'
        printf '%s\0' ${HOIST_RUN_OPTS[@]+"${HOIST_RUN_OPTS[@]}"}
        printf 'command\0'
        printf '%s\0' ${HOIST_COMMAND[@]+"${HOIST_COMMAND[@]}"}
        printf 'env\0'
        if [[ -n $ENV_FILE ]]; then cat "$ENV_FILE"; fi
    } | sha256sum | cut -d' ' -f1
}

# Ends the run `unchanged` (nothing created, stopped or started) when the app's one running
# release (PREV_IDS) has spec $1 and is observed healthy now by its own check, unless
# HOIST_FORCE is true. An unhealthy one is replaced as any other.
unchanged_if_same() {
    local spec=$1 live
    [[ $HOIST_FORCE != true ]] || return 0
    ((${#PREV_IDS[@]} == 1)) || return 0
    live=$(docker inspect --format '{{index .Config.Labels "hoist.spec"}}' "${PREV_IDS[0]}" 2>/dev/null) || return 0
    [[ -n $spec && $live == "$spec" ]] || return 0
    if ! probe_health "${PREV_IDS[0]}" "$HOIST_HEALTH_TIMEOUT"; then
        log "$PREV_NAME runs this release but is not healthy ($PROBE_WHY): replacing it"
        return 0
    fi
    remove_env_file
    TARGET_NAME=$PREV_NAME
    finish unchanged "$PREV_NAME already runs release $HOIST_RELEASE with this image and configuration (deploy with --force to replace it)"
}

# Creates the release's container from HOIST_IMAGE with its labels (what it is, its restart
# policy and health check, and `hoist.publish` = $1, the host port its check probes) and the
# further `docker create` arguments $2…; sets TARGET_ID and TARGET_NAME. It starts with no
# restart policy: until it passes the health gate, a daemon restart must not bring an
# unverified release back. Its configured policy (kept in a label) is applied once it is
# healthy.
create_release() {
    local publish=$1 stamp n=1 out
    shift
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    TARGET_NAME="$HOIST_APP-$HOIST_RELEASE-$stamp"
    # A name is taken only by a run of this release in this very second: a few tries at most.
    # An engine that says every name is taken (a misbehaving one) must not keep the run here.
    while docker container inspect "$TARGET_NAME" >/dev/null 2>&1; do
        if ((n >= NAME_TRIES)); then
            TARGET_NAME=""
            fail "no free container name: $HOIST_APP-$HOIST_RELEASE-$stamp and its -2 to -$NAME_TRIES variants all exist, says docker container inspect (is the Docker engine answering correctly?)"
        fi
        n=$((n + 1))
        TARGET_NAME="$HOIST_APP-$HOIST_RELEASE-$stamp-$n"
    done
    local create=(
        --name "$TARGET_NAME"
        --restart no
        --label "hoist.app=$HOIST_APP"
        --label "hoist.release=$HOIST_RELEASE"
        --label "hoist.image=$HOIST_IMAGE_LABEL"
        --label "hoist.image-ref=$HOIST_IMAGE"
        --label "hoist.restart=$HOIST_RESTART"
        --label "hoist.port=$HOIST_CONTAINER_PORT"
        --label "hoist.publish=$publish"
        --label "hoist.health-path=$HOIST_HEALTH_PATH"
        --label "hoist.health-status=$HOIST_HEALTH_STATUS"
        --label "hoist.health-check=${HOIST_HEALTH_CHECK:-}"
        --label "hoist.spec=${SPEC:-}"
        --label "hoist.settings=${HOIST_SETTINGS:-}"
        --label "hoist.env=${HOIST_ENV_LABEL:-}"
        --label "$RELEASE_LABEL=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        "$@"
    )
    if [[ -n $ENV_FILE ]]; then create+=(--env-file "$ENV_FILE"); fi
    create+=(${HOIST_RUN_OPTS[@]+"${HOIST_RUN_OPTS[@]}"})

    note_state new_name "$TARGET_NAME"
    out=$(docker create "${create[@]}" "$HOIST_IMAGE" ${HOIST_COMMAND[@]+"${HOIST_COMMAND[@]}"} 2>&1) || {
        remove_env_file
        # A create that failed half-way may have left the name taken: remove it.
        docker rm -f "$TARGET_NAME" >/dev/null 2>&1 || true
        TARGET_NAME=""
        fail "docker create failed: $(tail -n 3 <<<"$out")"
    }
    TARGET_ID=$(tail -n 1 <<<"$out")
    note_state new "$TARGET_ID"
    remove_env_file
    log "created $TARGET_NAME"
}

# Makes the target release (TARGET_ID: created by this run, or a retained one) the live one:
# stops the running release (PREV_IDS), starts the target, and gates it on its health check.
# Any failure ends the run, and the EXIT trap's verified restore (or the watchdog's) puts the
# previous release back. Once the target is verified it gets restart policy $1 and the
# previous release none. $2 and $3 (the health path and expected status) are only shown.
switch_to() {
    local policy=$1 path=$2 want=$3 id out
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        note_state prev "$id"
    done
    if ((${#PREV_IDS[@]})); then
        note_state prev_name "$PREV_NAME"
    fi
    set_phase stop
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null || fail "could not stop the previous container $id"
    done
    if ((${#PREV_IDS[@]})); then log "stopped $PREV_NAME"; fi

    set_phase start
    out=$(docker start "$TARGET_ID" 2>&1) || fail "docker start failed: $(tail -n 3 <<<"$out")"

    set_phase gate
    if ((HOIST_HEALTH_START_PERIOD > 0)); then
        snooze "$HOIST_HEALTH_START_PERIOD"
    fi
    if [[ -n $path ]]; then
        log "health check: GET $path expecting $want (budget ${HOIST_HEALTH_TIMEOUT}s)"
    fi
    probe_health "$TARGET_ID" "$HOIST_HEALTH_TIMEOUT" "${HOIST_HEALTH_CONSECUTIVE:-1}" || fail "health check failed: $PROBE_WHY"
    # Verified: the target gets its restart policy, the previous ones none, so that a daemon
    # restart or a reboot never brings a retained release back beside the live one.
    if [[ -n $policy ]]; then
        docker update --restart "$policy" "$TARGET_ID" >/dev/null || fail "could not set the restart policy of $TARGET_NAME"
    else
        warn "$TARGET_NAME has no hoist.restart label: it keeps no restart policy"
    fi
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        docker update --restart no "$id" >/dev/null || warn "could not clear the restart policy of $id"
    done
    set_phase verified
    log "healthy: $HEALTH"
}

# Undoes what this run did to its target: a container it created is removed; a retained
# release it started is stopped again and kept, with no restart policy. (Restores of both
# strategies; reached through the EXIT trap and the watchdog.)
undo_target() {
    if [[ -n $TARGET_ID ]] && ((TARGET_NEW)); then
        if ! docker rm -f "$TARGET_ID" >/dev/null 2>&1 && [[ -n $(container_status "$TARGET_ID") ]]; then
            warn "could not remove the new container $TARGET_NAME"
        fi
    elif [[ -n $TARGET_ID ]]; then
        docker update --restart no "$TARGET_ID" >/dev/null 2>&1 || true
        if ! docker stop --time "$HOIST_STOP_TIMEOUT" "$TARGET_ID" >/dev/null 2>&1 &&
            [[ $(container_status "$TARGET_ID") == running ]]; then
            warn "could not stop $TARGET_NAME again"
        fi
    fi
}

# Recreate's restore (see restore): puts the previous release back after an unfinished run, for every path that can end one
# (the EXIT trap, the watchdog after a SIGKILL, the next deploy after a crash), doing what
# PHASE says is left to undo: removes the unverified container the run created (or stops a
# retained one it started), waits for a stop of the previous one that may still be in flight
# (the engine finishes a `docker stop` whose client was killed), starts it, restores its
# restart policy, and calls it restored only once it is observed running and healthy. Sets
# ROLLED_BACK and RESTORE_NOTE; returns non-zero when the previous release is not serving.
# (Reached through the EXIT trap and the watchdog.)
restore_recreate() {
    ROLLED_BACK=false
    RESTORE_NOTE=""
    local stopping=0
    case $PHASE in
        # A release that passed its gate is the live one: there is nothing to put back.
        verified) return 0 ;;
        stop | start | gate) stopping=1 ;;
    esac
    # Nothing created, nothing stopped: nothing to undo (and no engine to wait for).
    if [[ -z $TARGET_ID ]] && ((!stopping)); then return 0; fi
    if ! wait_engine "$ENGINE_WAIT"; then
        RESTORE_NOTE="the Docker engine did not answer for ${ENGINE_WAIT}s"
        return 1
    fi
    undo_target
    if ((!stopping || ${#PREV_IDS[@]} == 0)); then
        return 0
    fi
    local id deadline policy
    for id in "${PREV_IDS[@]}"; do
        deadline=$((SECONDS + HOIST_STOP_TIMEOUT + 5))
        while [[ $(container_status "$id") == running ]] && ((SECONDS < deadline)); do
            sleep 0.5
        done
        policy=$(docker inspect --format '{{index .Config.Labels "hoist.restart"}}' "$id" 2>/dev/null || true)
        if [[ -n $policy ]]; then
            docker update --restart "$policy" "$id" >/dev/null 2>&1 || warn "could not restore the restart policy of $id"
        fi
        if [[ $(container_status "$id") != running ]] && ! docker start "$id" >/dev/null 2>&1; then
            RESTORE_NOTE="could not start the previous container $PREV_NAME ($id) again"
            return 1
        fi
    done
    if probe_health "${PREV_IDS[0]}" "$((HOIST_HEALTH_START_PERIOD + HOIST_HEALTH_TIMEOUT))"; then
        ROLLED_BACK=true
        RESTORE_NOTE="$PREV_NAME runs again ($HEALTH)"
        return 0
    fi
    RESTORE_NOTE="$PREV_NAME was started again but is not healthy: $PROBE_WHY"
    return 1
}

# Removes the stopped releases beyond the newest HOIST_RETAIN (and their images; never an image's
# untagged parents, which may be another build's cache).
prune_releases() {
    local stopped_ids id image
    mapfile -t stopped_ids < <(docker ps -a --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL" \
        --format '{{.ID}} {{.State}}' |
        awk -v new="${TARGET_ID:0:12}" 'substr($1, 1, 12) != new && $2 != "running" { print $1 }')
    if ((${#stopped_ids[@]} > HOIST_RETAIN)); then
        for id in "${stopped_ids[@]:HOIST_RETAIN}"; do
            image=$(docker inspect --format '{{.Image}}' "$id" 2>/dev/null || true)
            docker rm "$id" >/dev/null || warn "could not remove old container $id"
            if [[ -n $image ]]; then
                docker image rm --no-prune "$image" >/dev/null 2>&1 || true
            fi
        done
        log "pruned $((${#stopped_ids[@]} - HOIST_RETAIN)) old release(s)"
    fi
}

}
