#!/bin/bash
# hoist: recreate strategy. Replaces the app's running container on this host with a new
# release: lock, env file on tmpfs, pull, create, stop old, start new, health gate, prune.
# On any failure after the old container stopped, the new one is removed and the old one is
# started again, and it is reported restored only once it is observed running and healthy.
#
# Parameters (HOIST_*) are assigned by the header hoist renders above this body; see
# src/plan/mod.rs. The functions are src/scripts/lib.sh's, rendered between the header and
# this body. Contract with hoist: stdout carries a few short progress lines and ends with one
# `HOIST-RESULT {json}` line; details go to stderr. Exit 0 only when deployed (or unchanged).

# shellcheck source=src/scripts/lib.sh
[[ -n ${LIB_LOADED:-} ]] || source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
begin_script

# ---------------------------------------------------------------- parameters
need HOIST_APP HOIST_RELEASE HOIST_IMAGE HOIST_PULL HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT \
    HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD \
    HOIST_ENV_SOURCE HOIST_RETAIN HOIST_RUN_DIR HOIST_STATE_DIR HOIST_RESTART
check_app
check_release_id "$HOIST_RELEASE"
need_number HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL \
    HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD HOIST_RETAIN
[[ -z ${HOIST_PUBLISH:-} || $HOIST_PUBLISH =~ ^[0-9]+$ ]] || finish invalid "parameter HOIST_PUBLISH is not a port"
case $HOIST_PULL in never | if-missing | always) ;; *) finish invalid "parameter HOIST_PULL is '$HOIST_PULL'" ;; esac
case $HOIST_ENV_SOURCE in none | stdin | ssm-parameter) ;; *) finish invalid "parameter HOIST_ENV_SOURCE is '$HOIST_ENV_SOURCE'" ;; esac
[[ $HOIST_RESTART =~ ^(no|always|unless-stopped|on-failure(:[0-9]+)?)$ ]] || finish invalid "parameter HOIST_RESTART is '$HOIST_RESTART'"
deploy_param_defaults

require_tools docker flock timeout
require_engine
if [[ -n $HOIST_HEALTH_PATH ]]; then
    command -v curl >/dev/null || fail "curl is not installed on this host (needed by healthcheck.path)"
fi

# ---------------------------------------------------------------- lock, state, secrets, image
take_lock "release $HOIST_RELEASE"
begin_state
log "deploying $HOIST_APP release $HOIST_RELEASE"
prepare_inputs

# ---------------------------------------------------------------- create
find_running
SPEC=$(release_spec recreate)
unchanged_if_same "$SPEC"
publish=()
if [[ -n $HOIST_PUBLISH ]]; then publish=(--publish "$HOIST_PUBLISH:$HOIST_CONTAINER_PORT"); fi
create_release "$HOIST_PUBLISH" ${publish[@]+"${publish[@]}"}

# ---------------------------------------------------------------- switch, gate, prune
switch_to "$HOIST_RESTART" "$HOIST_HEALTH_PATH" "$HOIST_HEALTH_STATUS"
prune_releases
finish deployed ""
