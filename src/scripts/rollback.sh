#!/bin/bash
# requires: core look state release nginx bluegreen
# hoist: rollback. Makes a retained release of the app the live one again on this host: lock,
# stop the running release, start the target release's existing container (no pull, no env
# file, no secret: it keeps the configuration it was created with), health-gate it by its own
# check, and give it its restart policy back (its `hoist.restart` label). On any failure the
# target is stopped again and the release that was running is restored, reported restored
# only once it is observed running and healthy — the same state file, watchdog and restore as
# a deploy's.
#
# Parameters (HOIST_*, rendered by src/plan/maintenance.rs): HOIST_APP; HOIST_TO, the release
# to go back to, or empty for the newest retained release older than the running one;
# HOIST_STOP_TIMEOUT and HOIST_HEALTH_{INTERVAL,TIMEOUT,START_PERIOD} (seconds, as a deploy's);
# HOIST_RUN_DIR, HOIST_STATE_DIR. The functions are those of the modules the `# requires:`
# line names (src/scripts/lib/), rendered between the header and this body. Contract with hoist: a deploy's, with "action":"rollback" in the
# `HOIST-RESULT {json}` line; status `deployed` when the target serves (history records it
# as `rolled-back`). Exit 0 only then.
#
# With HOIST_STRATEGY=blue-green (and blue-green's parameters: HOIST_PUBLISH, HOIST_BG_PORTS,
# HOIST_BG_DRAIN, HOIST_BG_POST_SWITCH_CHECK, HOIST_NGINX_CONF, optional HOIST_NGINX_BIN and
# HOIST_NGINX_ARGS, HOIST_HEALTH_CONSECUTIVE) the target goes live as a deploy's new color
# does, with no downtime: it starts on its own color's loopback port beside the live color,
# is gated there, nginx is pointed at it and it is verified through nginx, then after the
# drain the release that was running is stopped; any failure before that points nginx back
# and stops the target again. When the target's color port is the live color's (a release two
# deploys back, both in one color), both cannot run at once: the rollback says so and falls
# back to stop-then-start on that port (recreate's switch: a short gap while the target
# starts; nginx is unchanged), then checks it through nginx. A target deployed by recreate
# (no color: it publishes the nginx port itself) is refused.

# shellcheck disable=SC2034 # alone, globals look unused here: the library's modules read them
begin_script on_exit
ACTION=rollback

# ---------------------------------------------------------------- parameters
need HOIST_APP HOIST_STOP_TIMEOUT HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT \
    HOIST_HEALTH_START_PERIOD HOIST_RUN_DIR HOIST_STATE_DIR
check_app
HOIST_TO=${HOIST_TO:-}
if [[ -n $HOIST_TO ]]; then check_release_id "$HOIST_TO"; fi
need_number HOIST_STOP_TIMEOUT HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD
HOIST_STRATEGY=${HOIST_STRATEGY:-recreate}
case $HOIST_STRATEGY in recreate | blue-green) ;; *) finish invalid "parameter HOIST_STRATEGY is '$HOIST_STRATEGY'" ;; esac
HOIST_HEALTH_CONSECUTIVE=${HOIST_HEALTH_CONSECUTIVE:-1}
[[ $HOIST_HEALTH_CONSECUTIVE =~ ^[1-9][0-9]*$ ]] || finish invalid "parameter HOIST_HEALTH_CONSECUTIVE is '$HOIST_HEALTH_CONSECUTIVE'"
if [[ $HOIST_STRATEGY == blue-green ]]; then bg_params; fi
# What the result names until the target is known: the release asked for.
HOIST_RELEASE=$HOIST_TO
HOIST_IMAGE=""

require_tools docker flock timeout
require_engine
if [[ $HOIST_STRATEGY == blue-green ]]; then
    command -v curl >/dev/null || fail "curl is not installed on this host (needed to probe the app through nginx)"
    command -v "$BG_NGINX_BIN" >/dev/null || fail "nginx is not installed on this host"
fi
take_lock "rollback to ${HOIST_TO:-the previous release}"

# ---------------------------------------------------------------- the target
find_running
rows=$(list_releases) || fail "cannot list the releases of $HOIST_APP"
running="" running_row="" passed_running=0 target="" retained=()
while IFS= read -r row; do
    [[ -n $row ]] || continue
    IFS='|' read -r _ state release _ <<<"$row"
    if [[ $state == running ]]; then
        if ((!passed_running)); then
            running=$release
            running_row=$row
        fi
        passed_running=1
        continue
    fi
    [[ " ${retained[*]+${retained[*]}} " == *" $release "* ]] || retained+=("$release")
    if [[ -n $target ]]; then continue; fi
    if [[ -n $HOIST_TO ]]; then
        if [[ $release == "$HOIST_TO" ]]; then target=$row; fi
    # The newest retained release older than the running one (any, when none runs).
    elif [[ $release != "$running" ]] && ((passed_running || ${#PREV_IDS[@]} == 0)); then
        target=$row
    fi
done <<<"$rows"

if [[ -n $HOIST_TO && $HOIST_TO == "$running" ]]; then
    NO_HISTORY=1
    IFS='|' read -r _ _ _ TARGET_NAME HOIST_IMAGE _ <<<"$running_row"
    TARGET_NAME=${TARGET_NAME#/}
    log "release $HOIST_TO already runs on this host ($TARGET_NAME); nothing changed"
    finish deployed "release $HOIST_TO already runs on this host ($TARGET_NAME); nothing changed"
fi
if [[ -z $target ]]; then
    list="${retained[*]+${retained[*]}}"
    list=${list// /, }
    if [[ -n $HOIST_TO ]]; then
        fail "release $HOIST_TO is not retained on this host (retained: ${list:-none})"
    elif [[ -n $running ]]; then
        fail "no retained release older than the running release $running on this host (retained: ${list:-none})"
    fi
    fail "$HOIST_APP has no retained release on this host"
fi
IFS='|' read -r TARGET_ID _ HOIST_RELEASE TARGET_NAME HOIST_IMAGE _ _ _ _ policy health_path health_status color publish <<<"$target"
TARGET_NAME=${TARGET_NAME#/}
TARGET_NEW=0
if [[ -n $health_path ]]; then
    command -v curl >/dev/null || fail "curl is not installed on this host (needed by the health check of $TARGET_NAME)"
fi

# ---------------------------------------------------------------- blue-green
if [[ $HOIST_STRATEGY == blue-green ]]; then
    [[ -n $color ]] || fail "release $HOIST_RELEASE ($TARGET_NAME) was deployed by the recreate strategy: it publishes port ${publish:-?} itself, where nginx listens; a blue-green rollback starts blue-green releases only"
    bg_find_live
    if [[ -n $BG_OLD_UPSTREAM && $publish == "${BG_OLD_UPSTREAM#* }" ]]; then
        # Two releases of one color: the target needs the port the live color holds.
        log "release $HOIST_RELEASE ($color) needs port $publish, which the live release $PREV_NAME holds: stop-then-start on that port (a short gap; nginx is unchanged)"
        begin_state
        note_state target_name "$TARGET_NAME"
        note_state target "$TARGET_ID"
        docker update --restart no "$TARGET_ID" >/dev/null || fail "could not clear the restart policy of $TARGET_NAME"
        switch_to "$policy" "$health_path" "${health_status:-200}"
        if bg_check_through_nginx "$BG_OLD_UPSTREAM" "$health_path" "${health_status:-200}" 15 "$HOIST_BG_POST_SWITCH_CHECK"; then
            log "verified through nginx: $HEALTH"
        else
            warn "release $HOIST_RELEASE passed its health gate, but through nginx: $PROBE_WHY"
        fi
        finish deployed "manual rollback to release $HOIST_RELEASE (stop-then-start: it shares port $publish with $PREV_NAME)"
    fi
    BG_NEW_COLOR=$color
    BG_NEW_PORT=$publish
    [[ $BG_NEW_PORT =~ ^[0-9]+$ ]] || fail "release $HOIST_RELEASE ($TARGET_NAME) has no loopback port (label hoist.publish)"
    STRATEGY=blue-green
    begin_state
    note_state target_name "$TARGET_NAME"
    note_state target "$TARGET_ID"
    bg_begin "$policy"
    log "rolling back $HOIST_APP to release $HOIST_RELEASE ($TARGET_NAME, $color on 127.0.0.1:$publish)"
    docker update --restart no "$TARGET_ID" >/dev/null || fail "could not clear the restart policy of $TARGET_NAME"
    bg_go "$health_path" "${health_status:-200}" "$HOIST_RELEASE"
    finish deployed "manual rollback to release $HOIST_RELEASE"
fi

# ---------------------------------------------------------------- switch
begin_state
note_state target_name "$TARGET_NAME"
note_state target "$TARGET_ID"
log "rolling back $HOIST_APP to release $HOIST_RELEASE ($TARGET_NAME)"
# Unverified until it passes the gate: no restart policy (a retained release has none).
docker update --restart no "$TARGET_ID" >/dev/null || fail "could not clear the restart policy of $TARGET_NAME"
switch_to "$policy" "$health_path" "${health_status:-200}"
finish deployed "manual rollback to release $HOIST_RELEASE"
