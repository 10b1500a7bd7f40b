#!/bin/bash
# requires: core state release bluegreen
# hoist: blue-green strategy. Starts the new release beside the live one, in the idle color
# (its own loopback port), health-gates it there, points the app's nginx file at it with a
# graceful reload, probes it through nginx, and only then — after a drain — stops the old
# color, which is kept for rollback. Until the new release is verified through nginx, the old
# color never stops serving: a failure points nginx back and removes the new container, and
# is reported rolled back only once a probe through nginx sees the old color answer.
#
# Parameters (HOIST_*) are assigned by the header hoist renders above this body: those of
# recreate.sh (src/plan/mod.rs), HOIST_HEALTH_CONSECUTIVE, and blue-green's own, described
# at bg_params in src/scripts/lib/bluegreen.sh (HOIST_PUBLISH is the port nginx listens on).
# The functions are those of the modules the `# requires:` line names (src/scripts/lib/),
# rendered between the header and this body. Contract with hoist: recreate's — a few progress
# lines on stdout ending with one `HOIST-RESULT {json}` line, details on stderr, exit 0 only
# when deployed.
#
# Colors and retained releases: a color is a loopback port (HOIST_BG_PORTS), and every
# release container keeps the color it was created in (labels `hoist.color`,
# `hoist.strategy=blue-green`, and `hoist.publish`: its loopback port). Docker binds a port
# only while a container runs, so the stopped releases of the idle color never block the new
# one: they all stay retained (pruned beyond HOIST_RETAIN as usual). Only a *running* release
# nginx does not route to (left by a run that died in its retire, or started by hand) can hold
# the idle port: it serves nothing, so the stage stops it, and it stays retained.
#
# First blue-green deploy on a host where recreate's release publishes HOIST_PUBLISH itself:
# it is stopped right before nginx takes the port — a gap of the reload's moment, while
# nothing listens on the port — and kept as a retained release; a failure before the new
# release is verified starts it again.

# shellcheck disable=SC2034 # alone, globals look unused here: the library's modules read them
begin_script on_exit
STRATEGY=blue-green

# ---------------------------------------------------------------- parameters
check_deploy_params
bg_params

# ---------------------------------------------------------------- checks, before any change
bg_require_host

# ---------------------------------------------------------------- lock, state, secrets, image
take_lock "release $HOIST_RELEASE"
begin_state
note_state strategy blue-green
log "deploying $HOIST_APP release $HOIST_RELEASE (blue-green)"

# ---------------------------------------------------------------- stage: the idle color
# (What a two-phase rollout staged and never switched, a run killed between its phases, goes
# first.)
bg_create_idle "deploying to"

# ---------------------------------------------------------------- switch, verify, retire
bg_go "$HOIST_HEALTH_PATH" "$HOIST_HEALTH_STATUS" "$HOIST_RELEASE"
prune_releases
finish deployed ""
