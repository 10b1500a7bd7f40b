#!/bin/sh
# hoist's SSM bootstrap (src/scripts/bootstrap.sh). SSM's quota on a command's document plus
# parameters is 64 KB, so SSM carries the plan's script gzipped and base64-encoded; above
# this file's code hoist renders HOIST_SHA256 (the plan's sha256 of the script) and
# HOIST_PAYLOAD. It decodes the script beside itself, runs it only if its sha256 is the
# plan's, and then replaces itself with it (same process: the agent's cancel and timeout
# reach it). No secret is ever in the script, so none is in the file it writes.
# shellcheck disable=SC2154 # HOIST_SHA256 and HOIST_PAYLOAD come from the rendered header
set -eu
case $0 in
    */*) dir=${0%/*} ;;
    *) dir=. ;;
esac
script="$dir/hoist-$HOIST_SHA256.sh"
umask 077
if ! printf '%s' "$HOIST_PAYLOAD" | base64 -d | gzip -dc >"$script"; then
    echo "hoist: could not decode the script (base64 and gzip are needed on the host): not run" >&2
    exit 1
fi
sum=$(sha256sum "$script")
sum=${sum%% *}
if [ "$sum" != "$HOIST_SHA256" ]; then
    echo "hoist: the script decoded here has sha256 $sum, not the plan's $HOIST_SHA256: not run" >&2
    exit 1
fi
exec bash "$script"
