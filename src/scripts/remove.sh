#!/bin/bash
# requires: core look nginx
# hoist: remove. Takes $HOIST_APP off this host: under the app's lock, removes its nginx file
# (blue-green: HOIST_NGINX_CONF) and reloads nginx, so that nothing routes to it any more,
# then stops and removes every container of the app (live, retained and staged releases),
# the images they ran (where no other container uses them), its state and history
# (HOIST_STATE_DIR/app), its private tmpfs and, last, its lock file. Prints one line
# `HOIST-REMOVE {json}`: what it removed. Exit 0 when the app is gone from the host (also when
# it was never there), 1 when something could not be removed, 75 when a deploy or rollback
# holds the app's lock, 2 on bad parameters. An nginx configuration that no longer tests
# clean without the file gets the file back, and nothing else is removed.
#
# Parameters (HOIST_*, rendered by src/plan/maintenance.rs): HOIST_APP, HOIST_RUN_DIR,
# HOIST_STATE_DIR; HOIST_NGINX_CONF (empty: the app has no nginx file), optional
# HOIST_NGINX_BIN and HOIST_NGINX_ARGS.

REMOVED_JSON=""
IMAGES_JSON=""
NGINX_JSON=false
STATE_JSON=false

# shellcheck disable=SC2317 # reached through the EXIT trap
remove_exit() {
    local code=$? error=null
    trap '' INT TERM
    trap - EXIT
    set +e
    nginx_let_go
    if [[ $STATUS != ok ]]; then
        # PROBE_WHY: core's reason for a failed probe, when one (nginx's) said why.
        [[ -n $REASON ]] || REASON="${PROBE_WHY:-the script stopped with exit status $code${ERR_CMD:+ at line $ERR_LINE: $ERR_CMD}}"
        error=$(json_str "$REASON")
        warn "$STATUS: $REASON"
    fi
    printf 'HOIST-REMOVE {"app":%s,"containers":[%s],"images":[%s],"nginx":%s,"state":%s,"error":%s}\n' \
        "$(json_str "${HOIST_APP:-}")" "$REMOVED_JSON" "$IMAGES_JSON" "$NGINX_JSON" "$STATE_JSON" "$error"
    exit "$(exit_code)"
}

begin_script remove_exit
need HOIST_APP HOIST_RUN_DIR HOIST_STATE_DIR
check_app
HOIST_NGINX_CONF=${HOIST_NGINX_CONF:-}
if [[ -n $HOIST_NGINX_CONF ]]; then
    [[ $HOIST_NGINX_CONF =~ ^/[A-Za-z0-9_./-]+\.conf$ && $HOIST_NGINX_CONF != *..* ]] ||
        finish invalid "parameter HOIST_NGINX_CONF must be an absolute path ending in .conf: '$HOIST_NGINX_CONF'"
fi
if ! declare -p HOIST_NGINX_ARGS >/dev/null 2>&1; then HOIST_NGINX_ARGS=(); fi
# shellcheck disable=SC2034 # read by the nginx module's functions
BG_NGINX_BIN=${HOIST_NGINX_BIN:-nginx}
# shellcheck disable=SC2034
BG_NGINX_ARGS=(${HOIST_NGINX_ARGS[@]+"${HOIST_NGINX_ARGS[@]}"})
# shellcheck disable=SC2034
BG_NGINX_LOCK="$HOIST_RUN_DIR/nginx.lock"
require_tools docker flock timeout
require_engine

# The app's lock: no deploy or rollback of the app runs while it goes.
mkdir -p "$HOIST_RUN_DIR"
lock_file="$HOIST_RUN_DIR/$HOIST_APP.lock"
exec 9<>"$lock_file"
if ! flock -n 9; then
    holder=$(head -c 200 "$lock_file" 2>/dev/null || true)
    finish locked "a deploy or rollback holds the lock on $HOIST_APP (${holder:-release unknown}): nothing removed"
fi
printf 'remove, pid %s, since %s\n' "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$lock_file"

# Nothing routes to the app any more: its nginx file goes first (put back when nginx would
# not take the configuration without it).
if [[ -n $HOIST_NGINX_CONF && -e $HOIST_NGINX_CONF ]]; then
    nginx_hold
    backup=$(mktemp)
    cp -p "$HOIST_NGINX_CONF" "$backup"
    rm -f "$HOIST_NGINX_CONF"
    if command -v "$BG_NGINX_BIN" >/dev/null; then
        if ! nginx_test; then
            mv -f "$backup" "$HOIST_NGINX_CONF"
            fail "nginx -t fails without $HOIST_NGINX_CONF ($NGINX_OUT): put it back, nothing removed"
        fi
        nginx_apply || warn "nginx did not reload: $NGINX_OUT"
    fi
    rm -f "$backup"
    nginx_let_go
    NGINX_JSON=true
    log "removed $HOIST_NGINX_CONF"
fi

# Every container of the app, and then the images they ran where nothing else uses them.
images=()
while IFS='|' read -r id _ release name _ image_id _; do
    [[ -n $id ]] || continue
    timeout 60 docker rm -f "$id" >/dev/null || fail "cannot remove container ${name#/} (release $release)"
    REMOVED_JSON+="${REMOVED_JSON:+,}$(json_str "${name#/}")"
    images+=("$image_id")
    log "removed container ${name#/} (release $release)"
done < <(list_releases)
# Containers of the app that are not releases (staged by a run that died before labelling).
while IFS= read -r id; do
    [[ -n $id ]] || continue
    timeout 60 docker rm -f "$id" >/dev/null || fail "cannot remove container $id"
    REMOVED_JSON+="${REMOVED_JSON:+,}$(json_str "$id")"
done < <(docker ps -aq --filter "label=hoist.app=$HOIST_APP")
for image in ${images[@]+"${images[@]}"}; do
    if [[ -z $(docker ps -aq --filter "ancestor=$image") ]] && timeout 60 docker rmi "$image" >/dev/null 2>&1; then
        IMAGES_JSON+="${IMAGES_JSON:+,}$(json_str "$image")"
    fi
done

# Its state and history, its private tmpfs, then its lock.
private="$HOIST_RUN_DIR/$HOIST_APP"
if mountpoint -q "$private" 2>/dev/null; then umount "$private" || fail "cannot unmount $private"; fi
rm -rf "$private"
if [[ -e $HOIST_STATE_DIR/$HOIST_APP ]]; then
    rm -rf "${HOIST_STATE_DIR:?}/$HOIST_APP" || fail "cannot remove $HOIST_STATE_DIR/$HOIST_APP"
    STATE_JSON=true
fi
rm -f "$lock_file"
finish ok ""
