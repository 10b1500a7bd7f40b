#!/bin/bash
# requires: core look state nginx bluegreen twophase
# hoist: blue-green, two-phase rollout, cleanup. Runs only when staging failed on more targets
# than max_errors allows, on the targets where this run staged the release: removes the
# container(s) this run staged (label hoist.staged-by=HOIST_RUN) — never one nginx routes to,
# never one that ever served — and observes that the live color still serves through nginx.
# Nothing switched anywhere.
#
# Parameters: bg-switch.sh's (a reconcile of an interrupted run, which take_lock may do,
# needs them). Contract with
# hoist: recreate's, with the final status `discarded` (exit 0) once this run's staged
# containers are gone and what served before serves on.

# shellcheck disable=SC2034 # alone, globals look unused here: the library's modules read them
begin_script on_exit
STRATEGY=blue-green

need HOIST_APP HOIST_RELEASE HOIST_RUN HOIST_IMAGE HOIST_STOP_TIMEOUT HOIST_HEALTH_INTERVAL \
    HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD HOIST_RUN_DIR HOIST_STATE_DIR
check_app
check_release_id "$HOIST_RELEASE"
check_run_id "$HOIST_RUN"
need_number HOIST_STOP_TIMEOUT HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD
bg_params
require_tools docker flock timeout
require_engine

take_lock "release $HOIST_RELEASE (discard, run $HOIST_RUN)"
bg_discard_staged "$HOIST_RUN"
gone="removed ${#DISCARDED[@]} container(s) staged by run $HOIST_RUN${DISCARDED[0]:+ (${DISCARDED[*]})}"
bg_find_live
if [[ -n $BG_OLD_UPSTREAM ]] && ((${#PREV_IDS[@]})); then
    IFS='|' read -r _ _ path want <<<"$(bg_labels "${PREV_IDS[0]}")"
    bg_check_through_nginx "$BG_OLD_UPSTREAM" "$path" "$want" 15 0 ||
        fail "$gone; but $PREV_NAME does not serve through nginx: $PROBE_WHY"
    TARGET_NAME=$PREV_NAME
    finish discarded "$gone; nginx still routes to $PREV_NAME (${BG_OLD_UPSTREAM% *}), which serves ($HEALTH)"
fi
finish discarded "$gone; no color of $HOIST_APP is live on this host"
