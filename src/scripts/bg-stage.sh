#!/bin/bash
# requires: core state release bluegreen
# hoist: blue-green, two-phase rollout, phase 1 of 2 (stage). Runs on every target at once.
# Pulls the image, creates the new release in the idle color (its own loopback port) and
# health-gates it there, beside the live color, which serves on: nginx is not touched, nothing
# that serves is stopped. The staged container keeps running, unserved, labelled
# `hoist.staged-by=<run>`, until the switch phase (bg-switch.sh) of the same run makes it
# live, or the discard phase (bg-discard.sh) removes it when staging failed on too many
# targets. A run killed between the phases leaves it unserved: the next stage on this host
# removes it (bg_discard_staged), as it removes any staged container that never switched.
#
# The env file (secrets) is needed only here, by `docker create`; the later phases of the run
# read none. Parameters: those of blue-green.sh, plus HOIST_RUN (the deploy run, which the
# staged container's label names). Contract with hoist: recreate's, with the final status
# `staged` (exit 0) when the release is staged and healthy, `unchanged` when the app already
# runs it with this specification (nothing is staged), anything else a failure after which
# the new container is gone and nginx was never touched.

# shellcheck disable=SC2034 # alone, globals look unused here: the library's modules read them
begin_script on_exit
STRATEGY=blue-green

# ---------------------------------------------------------------- parameters
check_deploy_params
need HOIST_RUN
check_run_id "$HOIST_RUN"
bg_params

# ---------------------------------------------------------------- checks, before any change
bg_require_host

# ---------------------------------------------------------------- lock, state, secrets, image
take_lock "release $HOIST_RELEASE (stage, run $HOIST_RUN)"
begin_state
note_state strategy blue-green
log "staging $HOIST_APP release $HOIST_RELEASE (blue-green, run $HOIST_RUN)"

# ---------------------------------------------------------------- stage: the idle color
# (Containers earlier runs staged and never switched go first.)
bg_create_idle "staging in" --label "$STAGED_LABEL=$HOIST_RUN"
bg_stage_target "$HOIST_HEALTH_PATH" "$HOIST_HEALTH_STATUS"
# Staged: it keeps running, unserved, for the switch phase. Nothing is left to restore here.
set_phase staged
finish staged ""
