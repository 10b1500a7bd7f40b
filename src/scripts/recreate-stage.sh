#!/bin/bash
# requires: core state image
# hoist: recreate, two-phase rollout, phase 1 of 2 (stage: pull only). Runs on every target at
# once, before any of them switches: makes sure the release's image is on this host (a
# registry login with this host's own role, then the pull, as HOIST_PULL says). Nothing that
# runs is touched, no container is created, no secret is read: the header carries no env
# parameter. The switch phase (recreate.sh) then finds the image here, so the time a host
# spends between stopping the old release and starting the new one no longer includes a pull,
# and a registry or disk that fails one host fails the rollout before any host changed.
#
# Parameters: recreate.sh's but for the env. Contract with hoist: recreate's, with the final
# status `staged` (exit 0) once the image is on this host. Nothing to undo on a failure; no
# history record (the app did not change).

# shellcheck disable=SC2034 # alone, globals look unused here: the library's modules read them
begin_script on_exit

need HOIST_APP HOIST_RELEASE HOIST_IMAGE HOIST_PULL HOIST_RUN_DIR HOIST_STATE_DIR
check_app
check_release_id "$HOIST_RELEASE"
case $HOIST_PULL in never | if-missing | always) ;; *) finish invalid "parameter HOIST_PULL is '$HOIST_PULL'" ;; esac
NO_HISTORY=1

require_tools docker flock timeout
require_engine

# The host lock: a deploy or rollback running here now is not raced (and one that died here
# is reconciled first).
take_lock "release $HOIST_RELEASE (stage)"
log "staging $HOIST_APP release $HOIST_RELEASE (recreate: the image)"
start_login
ensure_image
finish staged "image $HOIST_IMAGE is on this host"
