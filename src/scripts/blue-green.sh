#!/bin/bash
# hoist: blue-green strategy. PLACEHOLDER: the real body (stage the new release on the idle
# color's loopback port, health-gate it, switch nginx to it, verify through nginx for
# HOIST_BG_POST_SWITCH_CHECK seconds, drain the old color for HOIST_BG_DRAIN seconds and
# stop it, recording each step for the watchdog) replaces this file. Until then a
# blue-green deploy ends at once as `invalid` (exit 2), before it looks at anything.
#
# Parameters (HOIST_*) are assigned by the header hoist renders above this body; see
# src/plan/mod.rs: a recreate deploy's, plus HOIST_BG_PORTS=(blue green) (loopback ports),
# HOIST_BG_DRAIN and HOIST_BG_POST_SWITCH_CHECK (seconds), HOIST_BG_INSTALL_PROXY
# (true/false) and HOIST_NGINX_CONF (the nginx file hoist owns); nginx listens on
# HOIST_PUBLISH. The functions are src/scripts/lib.sh's, rendered between the header and
# this body.

# shellcheck source=src/scripts/lib.sh
[[ -n ${LIB_LOADED:-} ]] || source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
begin_script

finish invalid "blue-green.sh is not written yet"
