#!/bin/bash
# requires: core look state release
# hoist: recreate strategy. Replaces the app's running container on this host with a new
# release: lock, env file on tmpfs, pull, create, stop old, start new, health gate, prune.
# On any failure after the old container stopped, the new one is removed and the old one is
# started again, and it is reported restored only once it is observed running and healthy.
#
# Parameters (HOIST_*) are assigned by the header hoist renders above this body; see
# src/plan/mod.rs. The functions are those of the modules the `# requires:` line names
# (src/scripts/lib/), rendered between the header and this body. Contract with hoist: stdout carries a few short progress lines and ends with one
# `HOIST-RESULT {json}` line; details go to stderr. Exit 0 only when deployed (or unchanged).

begin_script on_exit

# ---------------------------------------------------------------- parameters
check_deploy_params
[[ -z ${HOIST_PUBLISH:-} || $HOIST_PUBLISH =~ ^[0-9]+$ ]] || finish invalid "parameter HOIST_PUBLISH is not a port"

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
