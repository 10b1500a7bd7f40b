#!/bin/bash
# requires: core
# hoist's host library, look: read-only looks at what runs on the host (the app's releases,
# the lock, the live color the nginx file names, whether a container ever served), shared by
# status.sh and the bodies that change a host.

# Two-phase rollouts: the label a staged container carries (its value is the run that staged
# it).
# shellcheck disable=SC2034 # read by status.sh, twophase.sh and the blue-green bodies
STAGED_LABEL=hoist.staged-by

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

# The app's running releases, oldest-started last as `docker ps` lists them: sets PREV_IDS
# and PREV_NAME (the first one's name).
find_running() {
    mapfile -t PREV_IDS < <(docker ps --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL" \
        --filter status=running --format '{{.ID}}')
    PREV_NAME=""
    if ((${#PREV_IDS[@]})); then
        PREV_NAME=$(docker inspect --format '{{.Name}}' "${PREV_IDS[0]}")
        PREV_NAME=${PREV_NAME#/}
    fi
}

# One line per release container of the app, newest first (as `docker ps` orders them):
# id|state|release|name|image reference|image id|deployed-at|started-at|restart policy
# (name:maximum retries)|hoist.restart label|health path label|health status label|hoist.color
# label (blue-green)|hoist.publish label. Prints nothing when there is none.
list_releases() {
    local ids
    ids=$(docker ps -aq --no-trunc --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL") || return 1
    [[ -n $ids ]] || return 0
    # shellcheck disable=SC2086 # one container id per word
    docker inspect --format '{{.Id}}|{{.State.Status}}|{{index .Config.Labels "hoist.release"}}|{{.Name}}|{{.Config.Image}}|{{.Image}}|{{index .Config.Labels "hoist.deployed-at"}}|{{.State.StartedAt}}|{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}|{{index .Config.Labels "hoist.restart"}}|{{index .Config.Labels "hoist.health-path"}}|{{index .Config.Labels "hoist.health-status"}}|{{with index .Config.Labels "hoist.color"}}{{.}}{{end}}|{{with index .Config.Labels "hoist.publish"}}{{.}}{{end}}' $ids
}

# Whether some process holds the flock on file $1 now, from /proc/locks (read-only: taking
# the lock to find out could make a deploy starting at that moment fail as locked).
lock_held() {
    local dev ino key
    [[ -e $1 && -r /proc/locks ]] || return 1
    read -r dev ino < <(stat -c '%d %i' "$1") || return 1
    printf -v key '%02x:%02x:%s' "$(((dev >> 8) & 0xfff))" "$(((dev & 0xff) | ((dev >> 12) & 0xfff00)))" "$ino"
    grep -q " $key " /proc/locks
}

# "color port" of the live color the app's nginx file $1 names, or nothing.
bg_conf_live() {
    [[ -r $1 ]] || return 0
    sed -n 's/^# hoist-live: color=\([a-z]*\) port=\([0-9]*\) .*/\1 \2/p' "$1" | head -n 1
}

# Labels of container $1: "color|publish|health path|health status".
# (Reached through the EXIT trap and the watchdog.)
bg_labels() {
    timeout 10 docker inspect --format '{{with index .Config.Labels "hoist.color"}}{{.}}{{end}}|{{with index .Config.Labels "hoist.publish"}}{{.}}{{end}}|{{with index .Config.Labels "hoist.health-path"}}{{.}}{{end}}|{{with index .Config.Labels "hoist.health-status"}}{{.}}{{end}}' "$1" 2>/dev/null || true
}

# Whether container name $1 ever served: a deploy or rollback that made it live recorded it
# `deployed` (or `rolled-back`, a rollback's) in history.jsonl. A staged container that never
# switched has no such record.
bg_was_live() {
    local file="$HOIST_STATE_DIR/$HOIST_APP/history.jsonl" key
    [[ -r $file ]] || return 1
    key="\"container\":$(json_str "$1")"
    grep -F -- "$key" "$file" | grep -q -E '"status":"(deployed|rolled-back)"'
}


# Loads, in memory only, the values container $1 holds for the env names in
# HOIST_SECRET_NAMES (a pipe into read: never a file, a here-string or a command line) and
# sets MASK_FORMS from them; returns 1 when a value is too short to mask (mask_forms).
load_container_secrets() {
    local entry name
    SECRET_VALUES=()
    while IFS= read -r entry; do
        for name in ${HOIST_SECRET_NAMES[@]+"${HOIST_SECRET_NAMES[@]}"}; do
            if [[ ${entry%%=*} == "$name" ]]; then SECRET_VALUES+=("${entry#*=}"); fi
        done
    done < <(docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1")
    entry=""
    mask_forms
}

# Copies stdin to stdout with every form in MASK_FORMS replaced by `***`, up to $1 bytes;
# counts the lines printed in PRINTED and sets CUT=true when it left some out. Run in the
# current shell (a redirection, or the last command of a pipeline under lastpipe).
# shellcheck disable=SC2034 # PRINTED and CUT are read by logs.sh and exec.sh
print_masked() {
    local line form bytes=0
    PRINTED=0
    while IFS= read -r line || [[ -n $line ]]; do
        for form in ${MASK_FORMS[@]+"${MASK_FORMS[@]}"}; do
            line=${line//"$form"/***}
        done
        bytes=$((bytes + ${#line} + 1))
        if ((bytes > $1)); then
            CUT=true
            continue
        fi
        printf '%s\n' "$line"
        PRINTED=$((PRINTED + 1))
    done
}
}
