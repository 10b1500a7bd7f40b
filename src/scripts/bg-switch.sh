#!/bin/bash
# requires: core engine state release bluegreen
# hoist: blue-green, two-phase rollout, phase 2 of 2 (switch). Runs only on the targets where
# this run's stage (bg-stage.sh) staged the release, and only when staging passed on enough
# targets (max_errors), max_concurrency targets at a time. Finds the container this run
# staged (labels hoist.staged-by=HOIST_RUN and hoist.release=HOIST_RELEASE, in the idle
# color) — and refuses when it is gone, stopped or not in the idle color — probes it once
# more on its loopback port, then switches nginx to it, verifies it through nginx, and
# retires the old color: blue-green.sh's switch, verify and retire, with its restore (a
# failure points nginx back and removes the staged container; the watchdog covers a kill).
#
# It reads no secret: the header carries no env parameter, and nothing is created here.
# Parameters: those of blue-green.sh that do not concern the image's pull or the env, plus
# HOIST_RUN; and, in a canary phase, HOIST_CANARY_WINDOW: seconds from the switch during which
# the new color is watched (health through nginx, the container staying up) before the old one
# is retired — a failure then switches back. Contract with hoist: blue-green.sh's; the
# HOIST-RESULT line's `switched_at` is when nginx started routing to the new color (epoch
# milliseconds).

# shellcheck disable=SC2034 # alone, globals look unused here: the library's modules read them
begin_script on_exit
STRATEGY=blue-green

# ---------------------------------------------------------------- parameters
need HOIST_APP HOIST_RELEASE HOIST_RUN HOIST_IMAGE HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT \
    HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD \
    HOIST_RETAIN HOIST_RUN_DIR HOIST_STATE_DIR HOIST_RESTART
check_app
check_release_id "$HOIST_RELEASE"
check_run_id "$HOIST_RUN"
need_number HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL \
    HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD HOIST_RETAIN
[[ $HOIST_RESTART =~ ^(no|always|unless-stopped|on-failure(:[0-9]+)?)$ ]] || finish invalid "parameter HOIST_RESTART is '$HOIST_RESTART'"
HOIST_CANARY_WINDOW=${HOIST_CANARY_WINDOW:-0}
need_number HOIST_CANARY_WINDOW
BG_WATCH=$HOIST_CANARY_WINDOW
bg_params

# ---------------------------------------------------------------- checks, before any change
require_tools docker flock timeout
command -v curl >/dev/null || fail "curl is not installed on this host (needed to probe the app through nginx)"
require_engine
command -v "$BG_NGINX_BIN" >/dev/null || fail "nginx is not installed on this host (the stage found it: was it removed?)"

# ---------------------------------------------------------------- lock, state
take_lock "release $HOIST_RELEASE (switch, run $HOIST_RUN)"
begin_state
note_state strategy blue-green
log "switching $HOIST_APP to release $HOIST_RELEASE (blue-green, run $HOIST_RUN)"

# ---------------------------------------------------------------- the staged container
mapfile -t staged < <(docker ps -aq --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL" \
    --filter "label=$STAGED_LABEL=$HOIST_RUN" --filter "label=hoist.release=$HOIST_RELEASE")
((${#staged[@]})) || fail "no container staged for release $HOIST_RELEASE by run $HOIST_RUN is left on this host (removed by another deploy's stage, or by hand): nothing switched"
((${#staged[@]} == 1)) || fail "${#staged[@]} containers are labelled staged for release $HOIST_RELEASE by run $HOIST_RUN: nothing switched"
# What is live, the staged container aside (running on the idle color, it is neither the live
# color nor a stray to stop).
BG_IGNORE=${staged[0]}
bg_find_live
IFS='|' read -r TARGET_NAME state color <<<"$(docker inspect --format '{{.Name}}|{{.State.Status}}|{{index .Config.Labels "hoist.color"}}' "${staged[0]}")"
TARGET_NAME=${TARGET_NAME#/}
if [[ ${PREV_IDS[0]:-} == "${staged[0]}" ]]; then
    fail "$TARGET_NAME, staged by run $HOIST_RUN, is already the live color"
fi
bg_begin "$HOIST_RESTART"
set_phase stage
# From here a failure removes the staged container (it never served) and keeps the live color.
TARGET_ID=${staged[0]}
TARGET_NEW=1
note_state new_name "$TARGET_NAME"
note_state new "$TARGET_ID"
[[ $state == running ]] || fail "$TARGET_NAME, staged by run $HOIST_RUN, is $state, not running: nothing switched"
[[ $color == "$BG_NEW_COLOR" ]] || fail "$TARGET_NAME was staged in $color, and the idle color is now $BG_NEW_COLOR: nothing switched"
bg_stop_strays
# Observed, not assumed: the staged release answers its check once more before it is switched to.
probe_health "$TARGET_ID" "$HOIST_HEALTH_TIMEOUT" 1 || fail "$TARGET_NAME, staged by run $HOIST_RUN, is no longer healthy: $PROBE_WHY"
log "staged $TARGET_NAME healthy on 127.0.0.1:$BG_NEW_PORT ($BG_NEW_COLOR): $HEALTH"

# ---------------------------------------------------------------- switch, verify, retire
bg_switch_target "$HOIST_HEALTH_PATH" "$HOIST_HEALTH_STATUS" "$HOIST_RELEASE"
prune_releases
if ((BG_WATCH)); then finish deployed "canary: held for ${BG_WATCH}s after its switch"; fi
finish deployed ""
