#!/bin/bash
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
# HOIST_STOP_TIMEOUT and HOIST_HEALTH_{INTERVAL,TIMEOUT,START_PERIOD} (seconds, as a deploy's),
# HOIST_HEALTH_CONSECUTIVE (healthy probes in a row the gate needs); HOIST_RUN_DIR,
# HOIST_STATE_DIR; HOIST_STRATEGY (`recreate`; `blue-green`, refused for now, also brings
# HOIST_PUBLISH, HOIST_BG_* and HOIST_NGINX_CONF as a deploy's header has them). The functions are src/scripts/lib.sh's, rendered between the
# header and this body. Contract with hoist: a deploy's, with "action":"rollback" in the
# `HOIST-RESULT {json}` line; status `deployed` when the target serves (history records it
# as `rolled-back`). Exit 0 only then.

# shellcheck source=src/scripts/lib.sh
[[ -n ${LIB_LOADED:-} ]] || source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
begin_script
ACTION=rollback

# ---------------------------------------------------------------- parameters
need HOIST_APP HOIST_STOP_TIMEOUT HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT \
    HOIST_HEALTH_START_PERIOD HOIST_RUN_DIR HOIST_STATE_DIR
check_app
HOIST_TO=${HOIST_TO:-}
if [[ -n $HOIST_TO ]]; then check_release_id "$HOIST_TO"; fi
need_number HOIST_STOP_TIMEOUT HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD
HOIST_HEALTH_CONSECUTIVE=${HOIST_HEALTH_CONSECUTIVE:-1}
[[ $HOIST_HEALTH_CONSECUTIVE =~ ^[1-9][0-9]*$ ]] || finish invalid "parameter HOIST_HEALTH_CONSECUTIVE is '$HOIST_HEALTH_CONSECUTIVE'"
# This rollback starts a retained container in place of the running one; a blue-green app's
# traffic goes through nginx to a color, which it does not switch. Refused before anything is
# looked at or changed, until it does.
case ${HOIST_STRATEGY:-recreate} in
    recreate) ;;
    blue-green) finish invalid "hoist rollback does not support strategy blue-green yet: deploy the release to go back to instead" ;;
    *) finish invalid "parameter HOIST_STRATEGY is '$HOIST_STRATEGY'" ;;
esac
# What the result names until the target is known: the release asked for.
HOIST_RELEASE=$HOIST_TO
HOIST_IMAGE=""

require_tools docker flock timeout
require_engine
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
IFS='|' read -r TARGET_ID _ HOIST_RELEASE TARGET_NAME HOIST_IMAGE _ _ _ _ policy health_path health_status <<<"$target"
TARGET_NAME=${TARGET_NAME#/}
TARGET_NEW=0
if [[ -n $health_path ]]; then
    command -v curl >/dev/null || fail "curl is not installed on this host (needed by the health check of $TARGET_NAME)"
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
