#!/bin/bash
# hoist's host library: what every script body needs (recreate.sh, rollback.sh, status.sh).
# A host never sources this file: hoist renders one self-contained script per run, the header
# of HOIST_* parameters, then this library, then one body, all verbatim (src/script.rs).
# Loading it only sets variable defaults and defines functions; a body starts with
# `begin_script`, which sets the shell options and the result traps.
#
# Contract with hoist for the bodies that change a host (recreate, rollback): stdout carries a
# few short progress lines and ends with one `HOIST-RESULT {json}` line; details go to stderr.
# Exit 0 only when deployed. Never `set -x`: the env file's contents must not reach any log.

# Set here so that a body run from a checkout loads this file once, and a rendered script
# (where this library is already above the body) not at all.
# shellcheck disable=SC2034 # read by the bodies
LIB_LOADED=1

# ---------------------------------------------------------------- result and cleanup state
# Empty for a deploy; `rollback` is added to its result and history records as "action".
ACTION=""
STATUS=failed
REASON=""
HEALTH=""
PROBE_WHY=""
# The release this run makes live: one it created (TARGET_NEW=1: removed again when the run
# fails) or a retained one it starts again (TARGET_NEW=0: stopped again when the run fails).
TARGET_ID=""
TARGET_NAME=""
TARGET_NEW=1
PREV_IDS=()
PREV_NAME=""
# Where the run is, kept in the state file so that a restore knows what to undo: "" until the
# state file exists, then prepare (nothing stopped yet; a created container may exist), stop
# (the running release is being stopped), start, gate (the target runs, unverified), verified
# (the target passed its health gate and stays). From `stop` to `gate` a failure restores
# the previous release.
PHASE=""
ROLLED_BACK=false
RESTORE_NOTE=""
# 1: the run changed nothing worth a history record (a rollback to what already runs).
NO_HISTORY=0
ENV_FILE=""
ENV_MOUNT=""
DOCKER_CONFIG_DIR=""
# The registry token fetched in the background (start_login) while the secrets are read: the
# fetch's pid and the tmpfs file it writes.
LOGIN_PID=""
LOGIN_FILE=""
# The new release's specification (release_spec), its `hoist.spec` label.
SPEC=""
PRIVATE_DIR=""
LOCK_FILE=""
LOCK_HELD=0
STATE_FILE=""
STATE_PRIVATE=""
STATE_MOUNTED=""
GUARD_PID=""
APP_VALID=0
STARTED_EPOCH=$(date +%s)
# When the run started (milliseconds since the epoch), and the phases it went through since:
# the HOIST-RESULT line's marks, `["name",ms],…` (what `deploy --timings` shows).
STARTED_MS=0
NOW_MS=0
MARKS=""
ERR_LINE=""
ERR_CMD=""
# How long a restore waits for an engine that does not answer (a daemon restart).
ENGINE_WAIT=120
# How many records history.jsonl keeps.
HISTORY_KEEP=1000
# How many names create_release tries for the new container before it gives up.
NAME_TRIES=100
# Blue-green (STRATEGY=blue-green; empty for recreate's stop-then-start): the restore undoes
# its phases instead of recreate's. All of it is also kept in the state file, so that the
# watchdog and the next deploy restore from what the run recorded, whatever their header says.
STRATEGY=""
# The live color's upstream ("blue 18080": color and loopback port) and the new one's.
BG_OLD_UPSTREAM=""
BG_NEW_UPSTREAM=""
# Running releases of the app with no color (deployed by recreate: they publish the nginx
# port themselves), stopped right before nginx takes the port.
BG_LEGACY_IDS=()
# The app's nginx file, the copy of the previous one (`none`: there was none), the port nginx
# listens on, how to run nginx, and whether this run made nginx load its new file.
BG_CONF=""
BG_BACKUP=""
BG_NGINX_PORT=""
BG_NGINX_BIN=nginx
BG_NGINX_ARGS=()
BG_RELOADED=0
BG_DRAIN=0
# The host's lock on nginx's configuration (all apps': see nginx_lock), on fd 8 once taken.
BG_NGINX_LOCK=""
BG_NGINX_LOCKED=0
# The restart policy the target gets once it is verified.
BG_POLICY=""
# 1: a restore moved traffic back to the previous release (history says `rolled-back`).
SWITCHED_BACK=0
NGINX_OUT=""
NGINX_CODE=""
NGINX_SEEN=""
# When nginx started routing to the new color (epoch milliseconds; empty when it did not):
# the HOIST-RESULT line's `switched_at`, from which hoist measures how long the fleet served
# two versions.
SWITCHED_AT=""
# Two-phase rollouts: the label a staged container carries (its value is the run that staged
# it), and the containers bg_discard_staged removed.
STAGED_LABEL=hoist.staged-by
DISCARDED=()
# The container (short id) bg_find_live leaves out: the one a switch is about to make live.
BG_IGNORE=""
# Only containers hoist's own `docker create` labelled are releases: images carry no
# `hoist.deployed-at`, so a container run by hand from the app's image is never one.
RELEASE_LABEL=hoist.deployed-at
# What a release id may be (the same rule as hoist's `is_release_id`).
RELEASE_ID_RE='^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'
RUN_ID_RE='^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}|<run>)$'

# ---------------------------------------------------------------- the functions
# One group, so that one directive covers them: each body calls the functions it needs, and
# in a rendered script the others are never called (shellcheck's SC2317, "unreachable").
# shellcheck disable=SC2317 # a library: no body calls every function
{

log() { printf 'hoist: %s\n' "$*"; }

# Sets NOW_MS to the milliseconds since the epoch: bash 5's EPOCHREALTIME (no process
# started), else date's nanoseconds (GNU), else whole seconds.
now_ms() {
    local t=${EPOCHREALTIME:-}
    if [[ $t =~ ^([0-9]+)[.,]([0-9]{3}) ]]; then
        NOW_MS=$((10#${BASH_REMATCH[1]}${BASH_REMATCH[2]}))
        return
    fi
    t=$(date +%s%N)
    if [[ $t =~ ^[0-9]+$ ]]; then
        NOW_MS=$((t / 1000000))
    else
        NOW_MS=$(($(date +%s) * 1000))
    fi
}

# Notes that the run reached $1 (a word) now, for the result's marks.
mark() {
    now_ms
    MARKS+="${MARKS:+,}[\"$1\",$((NOW_MS - STARTED_MS))]"
}
warn() { printf 'hoist: %s\n' "$*" >&2; }

# Strict mode and the result traps; the first thing a body does. $1 is the EXIT handler
# (default on_exit, which prints HOIST-RESULT); a body with its own passes its name.
begin_script() {
    set +x
    set -eEuo pipefail
    umask 077
    export LC_ALL=C
    now_ms
    STARTED_MS=$NOW_MS
    case ${1:-on_exit} in
        on_exit) trap on_exit EXIT ;;
        status_exit) trap status_exit EXIT ;;
        *) return 1 ;;
    esac
    trap 'ERR_LINE=$LINENO; ERR_CMD=$BASH_COMMAND' ERR
    trap 'REASON="interrupted by SIGTERM"; exit 143' TERM
    trap 'REASON="interrupted by SIGINT"; exit 130' INT
}

# Prints a JSON string literal: escapes backslash, quote and control characters.
# (Reached through the EXIT trap.)
json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    s=$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')
    printf '"%s"' "$s"
}

# The one record shape of history.jsonl and of the HOIST-RESULT line (a rollback's records
# end with "action":"rollback"). $1 overrides STATUS (a rollback's history says
# `rolled-back` where its result says `deployed`).
# (Reached through the EXIT trap.)
result_json() {
    printf '{"app":%s,"release":%s,"status":%s,"container":%s,"previous":%s,"image":%s,"reason":%s,"rolled_back":%s,"health":%s,"seconds":%d,"time":%s%s}' \
        "$(json_str "${HOIST_APP:-}")" "$(json_str "${HOIST_RELEASE:-}")" "$(json_str "${1:-$STATUS}")" \
        "$(json_str "$TARGET_NAME")" "$(json_str "$PREV_NAME")" "$(json_str "${HOIST_IMAGE:-}")" \
        "$(json_str "$REASON")" "$ROLLED_BACK" "$(json_str "$HEALTH")" \
        "$(($(date +%s) - STARTED_EPOCH))" "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" \
        "${ACTION:+,\"action\":$(json_str "$ACTION")}${MARKS:+,\"marks\":[$MARKS]}${SWITCHED_AT:+,\"switched_at\":$SWITCHED_AT}"
}

# (Reached through the EXIT trap and the watchdog.)
# Appends one record; the file keeps the last HISTORY_KEEP records (older ones are dropped,
# oldest first, so it cannot grow without bound on a host deployed to for years).
append_history() {
    local dir="$HOIST_STATE_DIR/$HOIST_APP" file
    file="$dir/history.jsonl"
    mkdir -p "$dir" 2>/dev/null || return 0
    printf '%s\n' "$1" >>"$file" || {
        warn "could not append to $file"
        return 0
    }
    if (($(wc -l <"$file") > HISTORY_KEEP)); then
        if ! { tail -n "$HISTORY_KEEP" "$file" >"$file.tmp" && mv -f "$file.tmp" "$file"; }; then
            warn "could not trim $file"
        fi
    fi
}

# Ends the run with a status and a reason; the EXIT trap does the rest.
finish() {
    STATUS=$1
    REASON=$2
    case $STATUS in
        deployed | ok | unchanged | staged | discarded) exit 0 ;;
        invalid) exit 2 ;;
        locked) exit 75 ;;
        *) exit 1 ;;
    esac
}
fail() { finish failed "$1"; }

# Sleeps in the background and waits for it, so that a signal's trap runs at once instead of
# after the sleep (bash runs traps only between foreground commands).
snooze() {
    sleep "$1" 8>&- 9>&- &
    wait $! || true
}

shred_file() { shred -u "$1" 2>/dev/null || rm -f "$1"; }

remove_env_file() {
    if [[ -n $ENV_FILE && -e $ENV_FILE ]]; then
        shred_file "$ENV_FILE"
    fi
    ENV_FILE=""
}

remove_docker_config() {
    if [[ -n $LOGIN_PID ]]; then
        kill "$LOGIN_PID" 2>/dev/null
        wait "$LOGIN_PID" 2>/dev/null
        LOGIN_PID=""
    fi
    if [[ -n $LOGIN_FILE ]]; then
        [[ -e $LOGIN_FILE ]] && shred_file "$LOGIN_FILE"
        rm -f "$LOGIN_FILE.err"
        LOGIN_FILE=""
    fi
    if [[ -n $DOCKER_CONFIG_DIR && -d $DOCKER_CONFIG_DIR ]]; then
        local f
        while IFS= read -r -d '' f; do shred_file "$f"; done < <(find "$DOCKER_CONFIG_DIR" -type f -print0)
        rm -rf "$DOCKER_CONFIG_DIR"
    fi
    DOCKER_CONFIG_DIR=""
}

# ---------------------------------------------------------------- parameters
# Each named parameter is set (not empty).
need() {
    local name
    for name; do
        if [[ -z ${!name:-} ]]; then
            finish invalid "parameter $name is not set"
        fi
    done
}

# Each named parameter is a whole number.
need_number() {
    local p
    for p; do
        [[ ${!p} =~ ^[0-9]+$ ]] || finish invalid "parameter $p is not a number: '${!p}'"
    done
}

# HOIST_APP names paths and labels: checked before anything uses it.
check_app() {
    [[ $HOIST_APP =~ ^[a-z][a-z0-9-]{0,31}$ ]] || finish invalid "app name '$HOIST_APP' is not valid"
    APP_VALID=1
}

check_release_id() {
    [[ $1 =~ $RELEASE_ID_RE ]] || finish invalid "release '$1' is not valid"
}

# A deploy run's id (20261126T001500Z-1a2b3c4d), or `<run>` in a plan made with none (a local
# deploy of a reviewed plan): what a staged container's hoist.staged-by label holds.
check_run_id() {
    [[ $1 =~ $RUN_ID_RE ]] || finish invalid "parameter HOIST_RUN is '$1'"
}

require_tools() {
    local tool
    for tool; do
        command -v "$tool" >/dev/null || fail "$tool is not installed on this host"
    done
}

require_engine() {
    timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || fail "cannot reach the Docker engine on this host"
}

# ---------------------------------------------------------------- engine and health
# Waits up to $1 seconds for the Docker engine to answer (a daemon restart, a hung engine).
# (Reached through the EXIT trap and the watchdog.)
wait_engine() {
    local deadline=$((SECONDS + $1))
    until timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}

# `running`, `exited`, … of a container, or nothing when the engine cannot say (unknown).
# (Reached through the EXIT trap and the watchdog.)
container_status() {
    timeout 10 docker inspect --format '{{.State.Status}}' "$1" 2>/dev/null || true
}
# The parameters of every body that creates a release (recreate.sh, blue-green.sh,
# bg-stage.sh), checked, then the optional ones checked or defaulted (deploy_param_defaults).
check_deploy_params() {
    need HOIST_APP HOIST_RELEASE HOIST_IMAGE HOIST_PULL HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT \
        HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD \
        HOIST_ENV_SOURCE HOIST_RETAIN HOIST_RUN_DIR HOIST_STATE_DIR HOIST_RESTART
    check_app
    check_release_id "$HOIST_RELEASE"
    need_number HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL \
        HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD HOIST_RETAIN
    case $HOIST_PULL in never | if-missing | always) ;; *) finish invalid "parameter HOIST_PULL is '$HOIST_PULL'" ;; esac
    case $HOIST_ENV_SOURCE in none | stdin | ssm-parameter) ;; *) finish invalid "parameter HOIST_ENV_SOURCE is '$HOIST_ENV_SOURCE'" ;; esac
    [[ $HOIST_RESTART =~ ^(no|always|unless-stopped|on-failure(:[0-9]+)?)$ ]] || finish invalid "parameter HOIST_RESTART is '$HOIST_RESTART'"
    deploy_param_defaults
}

# The optional parameters of a deploy body, checked or defaulted (a header of an older hoist
# may lack them): healthy answers in a row the gate needs (default one), the scalars, and the
# arrays — bash 4.2 (Amazon Linux 2) treats an empty array as unset under `set -u`, hence the
# ${a[@]+"${a[@]}"} expansions where they are used.
deploy_param_defaults() {
    HOIST_HEALTH_CONSECUTIVE=${HOIST_HEALTH_CONSECUTIVE:-1}
    [[ $HOIST_HEALTH_CONSECUTIVE =~ ^[1-9][0-9]*$ ]] || finish invalid "parameter HOIST_HEALTH_CONSECUTIVE is '$HOIST_HEALTH_CONSECUTIVE'"
    HOIST_PUBLISH=${HOIST_PUBLISH:-}
    HOIST_HEALTH_PATH=${HOIST_HEALTH_PATH:-}
    HOIST_IMAGE_LABEL=${HOIST_IMAGE_LABEL:-$HOIST_IMAGE}
    HOIST_REGISTRY=${HOIST_REGISTRY:-}
    HOIST_REGION=${HOIST_REGION:-}
    HOIST_SECRET_PARAMETER=${HOIST_SECRET_PARAMETER:-}
    HOIST_FORCE=${HOIST_FORCE:-false}
    [[ $HOIST_FORCE == true || $HOIST_FORCE == false ]] || finish invalid "parameter HOIST_FORCE is '$HOIST_FORCE'"
    if ! declare -p HOIST_RUN_OPTS >/dev/null 2>&1; then HOIST_RUN_OPTS=(); fi
    if ! declare -p HOIST_COMMAND >/dev/null 2>&1; then HOIST_COMMAND=(); fi
    if ! declare -p HOIST_ENV_CLEAR >/dev/null 2>&1; then HOIST_ENV_CLEAR=(); fi
    if ! declare -p HOIST_ENV_SECRETS >/dev/null 2>&1; then HOIST_ENV_SECRETS=(); fi
    if ! declare -p HOIST_HOST_SECRETS >/dev/null 2>&1; then HOIST_HOST_SECRETS=(); fi
}


# Probes container $1 until it is healthy ($3 observations in a row, default 1; a failed one
# starts the count again) or $2 seconds pass, with the check the container
# was created with (its `hoist.health-*`, `hoist.publish` and `hoist.port` labels, so a
# rolled-back release is judged by its own check, not the failed release's): HTTP on the
# health path when it has one (to its published port, else its own address), else the
# image's own HEALTHCHECK, else "still running at the next look". A container that stops
# fails at once; one the engine cannot inspect (a daemon restarting) is unknown and probing
# goes on until the deadline — healthy is only ever what was observed. Sets HEALTH (the last
# observation) and PROBE_WHY (why it is not healthy).
# (Reached through the EXIT trap and the watchdog.)
probe_health() {
    local id=$1 budget=$2 need=${3:-1} deadline state seen_running=0 ok=0 healthy
    local status exit_code docker_health want publish port addresses path url code
    deadline=$((SECONDS + budget))
    HEALTH=""
    PROBE_WHY=""
    while :; do
        healthy=0
        state=$(timeout 10 docker inspect --format '{{.State.Status}}|{{.State.ExitCode}}|{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{index .Config.Labels "hoist.health-status"}}|{{index .Config.Labels "hoist.publish"}}|{{index .Config.Labels "hoist.port"}}|{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}|{{index .Config.Labels "hoist.health-path"}}' "$id" 2>/dev/null || true)
        IFS='|' read -r status exit_code docker_health want publish port addresses path <<<"$state" || true
        if [[ -z $status ]]; then
            HEALTH="unknown: the Docker engine does not answer"
        elif [[ $status != running ]]; then
            HEALTH="container $status"
            PROBE_WHY="container stopped ($status, exit code $exit_code)"
            return 1
        elif [[ -n $path ]]; then
            url=""
            if [[ -n $publish ]]; then
                url="http://127.0.0.1:$publish$path"
            elif [[ -n ${addresses%% *} ]]; then
                url="http://${addresses%% *}:$port$path"
            fi
            if [[ -z $url ]]; then
                HEALTH="no address to probe yet"
            else
                code=$(curl --globoff -s -o /dev/null -w '%{http_code}' \
                    --max-time "$((HOIST_HEALTH_INTERVAL + 2))" "$url" || true)
                HEALTH="http ${code:-000} from $path"
                if [[ $code == "${want:-200}" ]]; then healthy=1; else
                    PROBE_WHY="$url answered ${code:-000} (expected ${want:-200}) for ${budget}s"
                fi
            fi
        elif [[ -n $docker_health ]]; then
            HEALTH="docker $docker_health"
            case $docker_health in
                healthy) healthy=1 ;;
                unhealthy)
                    PROBE_WHY="Docker reports the container unhealthy"
                    return 1
                    ;;
                *) PROBE_WHY="not healthy after ${budget}s (Docker status: $docker_health)" ;;
            esac
        else
            # No check at all: running now and still running at the next look.
            if ((seen_running)); then
                HEALTH="running (no health check configured)"
                healthy=1
            fi
            seen_running=1
            [[ -n $HEALTH ]] || HEALTH="running"
        fi
        if ((healthy)); then
            ok=$((ok + 1))
            if ((ok >= need)); then
                if ((need > 1)); then HEALTH="$HEALTH ($ok in a row)"; fi
                return 0
            fi
        else
            ok=0
        fi
        if ((SECONDS >= deadline)); then
            if ((ok)); then PROBE_WHY="only $ok healthy answer(s) in a row of the $need needed in ${budget}s ($HEALTH)"; fi
            [[ -n $PROBE_WHY ]] || PROBE_WHY="no healthy answer for ${budget}s ($HEALTH)"
            return 1
        fi
        snooze "$HOIST_HEALTH_INTERVAL"
    done
}

# ---------------------------------------------------------------- releases
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

# ---------------------------------------------------------------- restore
# Puts the previous release back after an unfinished run, for every path that can end one
# (the EXIT trap, the watchdog after a SIGKILL, the next deploy after a crash), doing what
# PHASE says is left to undo: removes the unverified container the run created (or stops a
# retained one it started), waits for a stop of the previous one that may still be in flight
# (the engine finishes a `docker stop` whose client was killed), starts it, restores its
# restart policy, and calls it restored only once it is observed running and healthy. Sets
# ROLLED_BACK and RESTORE_NOTE; returns non-zero when the previous release is not serving.
# (Reached through the EXIT trap and the watchdog.)
restore() {
    if [[ $STRATEGY == blue-green ]]; then
        # `return $?`: a bare `return` in a function run by a trap returns the status of the
        # command before the trap.
        bg_restore
        return $?
    fi
    ROLLED_BACK=false
    RESTORE_NOTE=""
    local stopping=0
    case $PHASE in
        # A release that passed its gate is the live one: there is nothing to put back.
        verified) return 0 ;;
        stop | start | gate) stopping=1 ;;
    esac
    # Nothing created, nothing stopped: nothing to undo (and no engine to wait for).
    if [[ -z $TARGET_ID ]] && ((!stopping)); then return 0; fi
    if ! wait_engine "$ENGINE_WAIT"; then
        RESTORE_NOTE="the Docker engine did not answer for ${ENGINE_WAIT}s"
        return 1
    fi
    if [[ -n $TARGET_ID ]] && ((TARGET_NEW)); then
        if ! docker rm -f "$TARGET_ID" >/dev/null 2>&1 && [[ -n $(container_status "$TARGET_ID") ]]; then
            warn "could not remove the new container $TARGET_NAME"
        fi
    elif [[ -n $TARGET_ID ]]; then
        # A retained release this run started: stopped again and kept, with no restart policy.
        docker update --restart no "$TARGET_ID" >/dev/null 2>&1 || true
        if ! docker stop --time "$HOIST_STOP_TIMEOUT" "$TARGET_ID" >/dev/null 2>&1 &&
            [[ $(container_status "$TARGET_ID") == running ]]; then
            warn "could not stop $TARGET_NAME again"
        fi
    fi
    if ((!stopping || ${#PREV_IDS[@]} == 0)); then
        return 0
    fi
    local id deadline policy
    for id in "${PREV_IDS[@]}"; do
        deadline=$((SECONDS + HOIST_STOP_TIMEOUT + 5))
        while [[ $(container_status "$id") == running ]] && ((SECONDS < deadline)); do
            sleep 0.5
        done
        policy=$(docker inspect --format '{{index .Config.Labels "hoist.restart"}}' "$id" 2>/dev/null || true)
        if [[ -n $policy ]]; then
            docker update --restart "$policy" "$id" >/dev/null 2>&1 || warn "could not restore the restart policy of $id"
        fi
        if [[ $(container_status "$id") != running ]] && ! docker start "$id" >/dev/null 2>&1; then
            RESTORE_NOTE="could not start the previous container $PREV_NAME ($id) again"
            return 1
        fi
    done
    if probe_health "${PREV_IDS[0]}" "$((HOIST_HEALTH_START_PERIOD + HOIST_HEALTH_TIMEOUT))"; then
        ROLLED_BACK=true
        RESTORE_NOTE="$PREV_NAME runs again ($HEALTH)"
        return 0
    fi
    RESTORE_NOTE="$PREV_NAME was started again but is not healthy: $PROBE_WHY"
    return 1
}

# ---------------------------------------------------------------- lock and state
# The run's progress, kept on persistent disk (not tmpfs) so that a watchdog — or after a
# crash, the next deploy — knows what to put back. One `key value` line at a time.
note_state() { printf '%s %s\n' "$1" "${2:-1}" >>"$STATE_FILE"; }

set_phase() {
    PHASE=$1
    note_state phase "$1"
    mark "$1"
}

# Reads a state file written by note_state into the restore variables.
# (Runs in the watchdog and at the next deploy.)
load_state() {
    local key val
    ACTION=""
    TARGET_ID=""
    TARGET_NAME=""
    TARGET_NEW=1
    PREV_IDS=()
    PREV_NAME=""
    PHASE=prepare
    STRATEGY=""
    BG_LEGACY_IDS=()
    BG_NGINX_ARGS=()
    while read -r key val; do
        case $key in
            started) STARTED_EPOCH=$val ;;
            action) ACTION=$val ;;
            release) HOIST_RELEASE=$val ;;
            image) HOIST_IMAGE=$val ;;
            new)
                TARGET_ID=$val
                TARGET_NEW=1
                ;;
            target)
                TARGET_ID=$val
                TARGET_NEW=0
                ;;
            new_name | target_name) TARGET_NAME=$val ;;
            prev) PREV_IDS+=("$val") ;;
            prev_name) PREV_NAME=$val ;;
            phase) PHASE=$val ;;
            # Written by earlier versions of this script, which had no phases.
            stopping) PHASE=stop ;;
            healthy) PHASE=verified ;;
            private) STATE_PRIVATE=$val ;;
            mounted) STATE_MOUNTED=$val ;;
            strategy) STRATEGY=$val ;;
            old_upstream) BG_OLD_UPSTREAM=$val ;;
            new_upstream) BG_NEW_UPSTREAM=$val ;;
            legacy) BG_LEGACY_IDS+=("$val") ;;
            nginx_conf) BG_CONF=$val ;;
            nginx_backup) BG_BACKUP=$val ;;
            nginx_port) BG_NGINX_PORT=$val ;;
            nginx_bin) BG_NGINX_BIN=$val ;;
            nginx_arg) BG_NGINX_ARGS+=("$val") ;;
            nginx_lock) BG_NGINX_LOCK=$val ;;
            reloaded) BG_RELOADED=1 ;;
            drain) BG_DRAIN=$val ;;
            policy) BG_POLICY=$val ;;
        esac
    done <"$1"
}

# Shreds what a dead run left in its private tmpfs directory and unmounts it.
# (Runs in the watchdog and at the next deploy.)
sweep_private() {
    if [[ -n ${STATE_PRIVATE:-} && -d $STATE_PRIVATE ]]; then
        local f
        while IFS= read -r -d '' f; do shred_file "$f"; done < <(find "$STATE_PRIVATE" -type f -print0)
        rm -rf "${STATE_PRIVATE:?}"/docker.*
    fi
    if [[ -n ${STATE_MOUNTED:-} ]]; then umount "$STATE_MOUNTED" && rmdir "$STATE_MOUNTED"; fi
    STATE_PRIVATE=""
    STATE_MOUNTED=""
}

# Finishes a run that died without its EXIT trap, from its state file: private files
# shredded, the previous release restored unless the target had passed its gate, and one
# history record. $1 is the status to record (`killed`, `interrupted`), $2 what happened.
# (Runs in the watchdog and at the next deploy.)
recover() {
    local state=$1 status=$2 what=$3
    load_state "$state"
    sweep_private
    STATUS=$status
    if [[ $PHASE == verified || $PHASE == retire ]]; then
        # Blue-green's retire: the new release is live and verified; the old one is stopped.
        if [[ $PHASE == retire ]]; then bg_retire_old; fi
        ROLLED_BACK=false
        if ((TARGET_NEW)); then
            REASON="$what after the new release passed its health gate; it stays"
        else
            REASON="$what after release $HOIST_RELEASE passed its health gate; it stays"
        fi
    elif restore; then
        REASON="$what; ${RESTORE_NOTE:-nothing had changed}"
    else
        REASON="$what; restoring the previous release FAILED: $RESTORE_NOTE"
    fi
    append_history "$(result_json)"
    rm -f "$state"
}

# The dead man's switch. A transport cancels a command, and ends one that runs past its
# timeout, by SIGKILLing its process group (SSM always does): no trap runs then. This watchdog
# lives in its own session, holds the run's lock (it inherits fd 9), and when the run dies
# without clearing its state file it finishes the job the EXIT trap could not.
# (Runs in the watchdog process.)
guard() {
    local pid=$1 state=$2
    exec </dev/null >/dev/null 2>&1
    trap '' INT TERM HUP
    while kill -0 "$pid" 2>/dev/null && [[ -e $state ]]; do sleep 0.5 9>&-; done
    [[ -s $state ]] || exit 0
    recover "$state" killed "the deploy was killed (cancelled or timed out) and its watchdog cleaned up"
}

# Everything the watchdog needs, as a self-contained program: this script's own parameters
# and functions, nothing else (no secret is ever in a variable here).
watchdog_program() {
    declare -p HOIST_APP HOIST_RELEASE HOIST_IMAGE HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT \
        HOIST_HEALTH_START_PERIOD HOIST_STOP_TIMEOUT HOIST_STATE_DIR ENGINE_WAIT HISTORY_KEEP ACTION
    printf 'STATUS=killed REASON="" HEALTH="" PROBE_WHY="" ROLLED_BACK=false RESTORE_NOTE=""\n'
    printf 'STATE_PRIVATE="" STATE_MOUNTED="" STARTED_EPOCH=%s\n' "$STARTED_EPOCH"
    # Blue-green's restore reads everything else it needs from the state file.
    printf 'STRATEGY="" BG_OLD_UPSTREAM="" BG_NEW_UPSTREAM="" BG_CONF="" BG_BACKUP="" BG_NGINX_PORT=""\n'
    printf 'BG_NGINX_BIN=nginx BG_RELOADED=0 BG_DRAIN=0 BG_POLICY="" SWITCHED_BACK=0 NGINX_OUT="" NGINX_CODE="" NGINX_SEEN=""\n'
    printf 'BG_NGINX_LOCK="" BG_NGINX_LOCKED=0\n'
    printf 'BG_LEGACY_IDS=() BG_NGINX_ARGS=()\n'
    declare -f log warn json_str result_json append_history snooze shred_file wait_engine \
        container_status probe_health restore load_state sweep_private recover guard \
        nginx_run nginx_lock nginx_unlock nginx_test nginx_apply bg_look bg_check_through_nginx bg_labels bg_retire_old \
        bg_restore_conf bg_restore
    # shellcheck disable=SC2016 # the watchdog's own "$@", not this shell's
    printf 'guard "$@"\n'
}

# Takes the app's host lock (shared by deploys and rollbacks; $1 says who holds it, in the
# lock file), and reconciles a run that died here before (its state file is still there).
take_lock() {
    mkdir -p "$HOIST_RUN_DIR"
    chmod 0755 "$HOIST_RUN_DIR"
    LOCK_FILE="$HOIST_RUN_DIR/$HOIST_APP.lock"
    exec 9<>"$LOCK_FILE"
    if ! flock -n 9; then
        local holder
        holder=$(head -c 200 "$LOCK_FILE" 2>/dev/null || true)
        finish locked "another deploy holds the lock on $HOIST_APP (${holder:-release unknown})"
    fi
    LOCK_HELD=1
    printf '%s, pid %s, since %s\n' "$1" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LOCK_FILE"
    # The run's state file and history go here: a read-only or full disk fails the run now,
    # before anything changed.
    local dir="$HOIST_STATE_DIR/$HOIST_APP"
    if ! { mkdir -p "$dir" && chmod 0700 "$dir" && printf 'x\n' >"$dir/.write-check" && rm -f "$dir/.write-check"; } 2>/dev/null; then
        rm -f "$dir/.write-check" 2>/dev/null || true
        fail "cannot write to $dir (a read-only or full disk?): nothing changed"
    fi
    STATE_FILE="$dir/deploy.state"

    # A state file left behind means a run here died with neither its EXIT trap nor its
    # watchdog finishing (the host crashed, or the engine stayed down): put things right first.
    if [[ -s $STATE_FILE ]]; then
        log "a previous deploy on this host was interrupted; reconciling it first"
        (recover "$STATE_FILE" interrupted "the deploy was interrupted (host crash or reboot) and the next deploy reconciled it") ||
            fail "could not reconcile the interrupted deploy recorded in $STATE_FILE"
        warn "reconciled: $(tail -n 1 "$HOIST_STATE_DIR/$HOIST_APP/history.jsonl" 2>/dev/null || true)"
    fi
}

# Starts the run's state file (HOIST_RELEASE and HOIST_IMAGE name what it deploys) and its
# watchdog. From here on, every way the run can end restores what PHASE says.
begin_state() {
    {
        printf 'started %s\nrelease %s\nimage %s\n' "$STARTED_EPOCH" "$HOIST_RELEASE" "$HOIST_IMAGE"
        if [[ -n $ACTION ]]; then printf 'action %s\n' "$ACTION"; fi
        printf 'phase prepare\n'
    } >"$STATE_FILE"
    PHASE=prepare
    if command -v setsid >/dev/null; then
        local watchdog="$HOIST_STATE_DIR/$HOIST_APP/watchdog.sh"
        watchdog_program >"$watchdog"
        setsid bash "$watchdog" "$$" "$STATE_FILE" </dev/null >/dev/null 2>&1 &
        GUARD_PID=$!
    else
        warn "setsid is missing: a deploy killed by its transport (cancel, timeout) cannot restore the previous release"
    fi
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

# ---------------------------------------------------------------- the exit of a run
# Whether the run did what its body is for: deployed, found the release already running
# (unchanged), staged it (a two-phase rollout's first phase) or discarded what a run staged.
# (Reached through the EXIT trap.)
succeeded() {
    case $STATUS in deployed | unchanged | staged | discarded) return 0 ;; esac
    return 1
}

# (Reached through the EXIT trap.)
on_exit() {
    local code=$?
    # A second Ctrl-C or SIGTERM must not cut the rollback short.
    trap '' INT TERM
    trap - EXIT
    set +e
    if ! succeeded && [[ -z $REASON ]]; then
        if [[ -n $ERR_CMD ]]; then
            REASON="command failed at line $ERR_LINE (exit $code): $ERR_CMD"
        else
            REASON="the script stopped with exit status $code"
        fi
    fi
    remove_env_file
    remove_docker_config
    if [[ $STATUS == failed && ($PHASE == verified || $PHASE == retire) ]]; then
        # Blue-green's retire: the new release is live and verified; the old one is stopped.
        if [[ $PHASE == retire ]]; then bg_retire_old; fi
        if ((TARGET_NEW)); then
            REASON="$REASON; the new release had passed its health gate and stays"
        else
            REASON="$REASON; release ${HOIST_RELEASE:-} had passed its health gate and stays"
        fi
    elif [[ $STATUS == failed ]]; then
        if [[ -n $TARGET_ID ]]; then
            warn "last log lines of $TARGET_NAME:"
            timeout 10 docker logs --tail 20 "$TARGET_ID" 2>&1 | sed 's/^/  | /' >&2
        fi
        if restore; then
            if [[ $ROLLED_BACK == true ]]; then
                REASON="$REASON; rolled back: $RESTORE_NOTE"
                log "rolled back: $RESTORE_NOTE"
            fi
        else
            REASON="$REASON; rolling back to ${PREV_NAME:-the previous release} FAILED: $RESTORE_NOTE"
        fi
    fi
    if [[ -n $ENV_MOUNT ]]; then
        umount "$ENV_MOUNT" 2>/dev/null && rmdir "$ENV_MOUNT" 2>/dev/null
    fi
    local line
    line=$(result_json)
    if ((APP_VALID && !NO_HISTORY)) && [[ $STATUS != invalid ]]; then
        if [[ $ACTION == rollback && $STATUS == deployed ]]; then
            # History says what happened; the result says `deployed`, like any deploy's.
            append_history "$(result_json rolled-back)"
        elif [[ -z $ACTION && $STATUS == failed && $ROLLED_BACK == true ]] && ((SWITCHED_BACK)); then
            # A blue-green deploy whose traffic had moved to it, and was moved back.
            append_history "$(result_json rolled-back)"
        else
            append_history "$line"
        fi
    fi
    # Settled (deployed, or restored, or reported as not restored): the watchdog stands down.
    if [[ -n $STATE_FILE ]]; then rm -f "$STATE_FILE"; fi
    if [[ -n $GUARD_PID ]]; then
        # It ignores TERM (so that it outlives whatever kills the run); with the state file
        # gone it has nothing left to do.
        kill -KILL "$GUARD_PID" 2>/dev/null
        wait "$GUARD_PID" 2>/dev/null
    fi
    if ((LOCK_HELD)); then
        : >"$LOCK_FILE"
    fi
    if [[ $STATUS == unchanged || $STATUS == staged || $STATUS == discarded ]]; then
        log "$STATUS: $REASON"
    elif [[ $STATUS != deployed ]]; then
        warn "$STATUS: $REASON"
    fi
    printf 'HOIST-RESULT %s\n' "$line"
    if succeeded; then
        exit 0
    elif ((code == 0)); then
        exit 1
    fi
    exit "$code"
}

# ---------------------------------------------------------------- private files and secrets
# The secret NAME=value lines: on stdin (local transport) or in an SSM SecureString
# parameter the host fetches with its own role. Never in this script's text.
read_secrets() {
    case $HOIST_ENV_SOURCE in
        stdin) cat ;;
        ssm-parameter)
            # Runs in a subshell: report and let the missing names fail the deploy.
            if [[ -z $HOIST_SECRET_PARAMETER ]]; then
                warn "HOIST_SECRET_PARAMETER is not set"
            elif ! command -v aws >/dev/null; then
                warn "the AWS CLI is not installed on this host (needed to fetch secrets)"
            else
                aws ssm get-parameter ${HOIST_REGION:+--region "$HOIST_REGION"} --with-decryption \
                    --name "$HOIST_SECRET_PARAMETER" --query Parameter.Value --output text ||
                    warn "could not read the secret parameter $HOIST_SECRET_PARAMETER"
            fi
            ;;
    esac
}

# The run's private directory for secrets (env file, registry login): always tmpfs,
# mounted here when /run is not one. Emptied on every exit path.
private_dir() {
    if [[ -n $PRIVATE_DIR ]]; then return 0; fi
    local dir="$HOIST_RUN_DIR/$HOIST_APP"
    mkdir -p "$dir"
    chmod 0700 "$dir"
    if [[ $(stat -f -c %T "$dir") != tmpfs ]]; then
        if mount -t tmpfs -o size=4m,mode=0700,nosuid,nodev,noexec "hoist-$HOIST_APP" "$dir" 2>/dev/null; then
            ENV_MOUNT=$dir
            note_state mounted "$dir"
        fi
        [[ $(stat -f -c %T "$dir") == tmpfs ]] || fail "refusing to write secrets outside tmpfs: $dir is not tmpfs and mounting one failed"
    fi
    PRIVATE_DIR=$dir
    note_state private "$dir"
}

# Writes the release's env file (clear values, secrets from the channel, secrets the host
# reads itself) on the private tmpfs; sets ENV_FILE.
write_env_file() {
    private_dir
    ENV_FILE="$PRIVATE_DIR/$HOIST_RELEASE.env"
    : >"$ENV_FILE"
    local kv
    for kv in ${HOIST_ENV_CLEAR[@]+"${HOIST_ENV_CLEAR[@]}"}; do
        printf '%s\n' "$kv" >>"$ENV_FILE"
    done
    if ((${#HOIST_ENV_SECRETS[@]})); then
        local line name seen=" " missing=()
        while IFS= read -r line || [[ -n $line ]]; do
            [[ -z $line ]] && continue
            name=${line%%=*}
            if [[ $line != *=* || ! " ${HOIST_ENV_SECRETS[*]} " == *" $name "* ]]; then
                fail "the secret channel carried an unexpected entry (${name:0:40})"
            fi
            printf '%s\n' "$line" >>"$ENV_FILE"
            seen+="$name "
        done < <(read_secrets)
        for name in "${HOIST_ENV_SECRETS[@]}"; do
            [[ $seen == *" $name "* ]] || missing+=("$name")
        done
        ((${#missing[@]} == 0)) || fail "secrets missing from the secret channel: ${missing[*]}"
    fi
    local entry kind id key value name
    for entry in ${HOIST_HOST_SECRETS[@]+"${HOIST_HOST_SECRETS[@]}"}; do
        IFS='|' read -r name kind id key <<<"$entry"
        value=$(host_secret "$kind" "$id" "$key" 2>"$PRIVATE_DIR/fetch.err") ||
            fail "secret $name: cannot read it from $(describe_source "$kind" "$id" "$key"): $(tail -n 1 "$PRIVATE_DIR/fetch.err" | tr -d '\r')"
        [[ $value != *$'\n'* && $value != *$'\r'* ]] ||
            fail "secret $name from $(describe_source "$kind" "$id" "$key") holds a line break; an env file holds one NAME=value per line"
        printf '%s=%s\n' "$name" "$value" >>"$ENV_FILE"
    done
    value=""
    rm -f "$PRIVATE_DIR/fetch.err"
}

describe_source() {
    case $1 in
        ssm) printf 'ssm:%s' "$2" ;;
        *) printf 'secretsmanager:%s%s' "$2" "${3:+#$3}" ;;
    esac
}

# Prints one secret this host reads itself, with its own role (never through hoist):
# an SSM parameter, or a Secrets Manager secret (one field of its JSON with a key).
host_secret() {
    local kind=$1 id=$2 key=$3
    command -v aws >/dev/null || {
        echo "the AWS CLI is not installed on this host" >&2
        return 1
    }
    case $kind in
        ssm)
            aws ssm get-parameter ${HOIST_REGION:+--region "$HOIST_REGION"} --with-decryption \
                --name "$id" --query Parameter.Value --output text
            ;;
        secretsmanager)
            if [[ -z $key ]]; then
                aws secretsmanager get-secret-value ${HOIST_REGION:+--region "$HOIST_REGION"} \
                    --secret-id "$id" --query SecretString --output text
                return
            fi
            local json
            json=$(aws secretsmanager get-secret-value ${HOIST_REGION:+--region "$HOIST_REGION"} \
                --secret-id "$id" --query SecretString --output text) || return 1
            json_field "$key" <<<"$json"
            ;;
    esac
}

# Prints field $1 of the JSON object on stdin (python3, else jq).
json_field() {
    if command -v python3 >/dev/null; then
        python3 -c 'import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit("the secret is not a JSON object")
if not isinstance(doc, dict) or sys.argv[1] not in doc:
    sys.exit("the secret has no field %s" % sys.argv[1])
v = doc[sys.argv[1]]
sys.stdout.write(v if isinstance(v, str) else json.dumps(v))' "$1"
    elif command -v jq >/dev/null; then
        jq -er --arg k "$1" 'if type == "object" and has($k) then .[$k] | if type == "string" then . else tojson end else error("the secret has no field \($k)") end'
    else
        echo "reading a field of a JSON secret needs python3 or jq on this host" >&2
        return 1
    fi
}

# ---------------------------------------------------------------- image
have_image() { docker image inspect "$HOIST_IMAGE" >/dev/null 2>&1; }

# Starts fetching the registry token (this host's role) in the background when the image
# will be pulled from the account's registry, so that it overlaps reading the secrets;
# pull_image waits for it. The token goes to a file on the private tmpfs, shredded after use.
start_login() {
    [[ -n $HOIST_REGISTRY ]] || return 0
    case $HOIST_PULL in
        never) return 0 ;;
        if-missing) ! have_image || return 0 ;;
    esac
    command -v aws >/dev/null || return 0 # pull_image says so
    private_dir
    LOGIN_FILE="$PRIVATE_DIR/registry-token.$$"
    (
        umask 077
        exec aws ecr get-login-password ${HOIST_REGION:+--region "$HOIST_REGION"} >"$LOGIN_FILE" 2>"$LOGIN_FILE.err"
    ) &
    LOGIN_PID=$!
}

pull_image() {
    local docker=(docker)
    if [[ -n $HOIST_REGISTRY ]]; then
        # Log in with this host's own role into a throwaway config on tmpfs; no registry
        # credential is written to disk or carried in the command.
        command -v aws >/dev/null || fail "the AWS CLI is not installed on this host (needed for the registry login)"
        private_dir
        DOCKER_CONFIG_DIR=$(mktemp -d "$PRIVATE_DIR/docker.XXXXXX")
        docker=(docker --config "$DOCKER_CONFIG_DIR")
        local login
        if [[ -n $LOGIN_PID ]]; then
            wait "$LOGIN_PID" ||
                fail "registry login to $HOIST_REGISTRY failed: $(tail -n 2 "$LOGIN_FILE.err" 2>/dev/null)"
            LOGIN_PID=""
            login=$("${docker[@]}" login --username AWS --password-stdin "$HOIST_REGISTRY" <"$LOGIN_FILE" 2>&1) ||
                fail "registry login to $HOIST_REGISTRY failed: $(tail -n 2 <<<"$login")"
        else
            login=$(aws ecr get-login-password ${HOIST_REGION:+--region "$HOIST_REGION"} |
                "${docker[@]}" login --username AWS --password-stdin "$HOIST_REGISTRY" 2>&1) ||
                fail "registry login to $HOIST_REGISTRY failed: $(tail -n 2 <<<"$login")"
        fi
    fi
    log "pulling $HOIST_IMAGE"
    local out
    out=$("${docker[@]}" pull --quiet "$HOIST_IMAGE" 2>&1) || fail "pulling $HOIST_IMAGE failed: $(tail -n 3 <<<"$out")"
    remove_docker_config
}

# The release's inputs on this host: the registry token fetched in the background while the
# env file is written (when there is anything in it), then the image.
prepare_inputs() {
    start_login
    if ((${#HOIST_ENV_CLEAR[@]} + ${#HOIST_ENV_SECRETS[@]} + ${#HOIST_HOST_SECRETS[@]})); then
        write_env_file
    fi
    ensure_image
}

# Makes sure HOIST_IMAGE is on this host, as HOIST_PULL says.
ensure_image() {
    case $HOIST_PULL in
        never) have_image || fail "image $HOIST_IMAGE is not on this host" ;;
        if-missing) have_image || pull_image ;;
        always) pull_image ;;
    esac
    mark image
}

# ---------------------------------------------------------------- switch, gate, prune
# Makes the target release (TARGET_ID: created by this run, or a retained one) the live one:
# stops the running release (PREV_IDS), starts the target, and gates it on its health check.
# Any failure ends the run, and the EXIT trap's verified restore (or the watchdog's) puts the
# previous release back. Once the target is verified it gets restart policy $1 and the
# previous release none. $2 and $3 (the health path and expected status) are only shown.
switch_to() {
    local policy=$1 path=$2 want=$3 id out
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        note_state prev "$id"
    done
    if ((${#PREV_IDS[@]})); then
        note_state prev_name "$PREV_NAME"
    fi
    set_phase stop
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null || fail "could not stop the previous container $id"
    done
    if ((${#PREV_IDS[@]})); then log "stopped $PREV_NAME"; fi

    set_phase start
    out=$(docker start "$TARGET_ID" 2>&1) || fail "docker start failed: $(tail -n 3 <<<"$out")"

    set_phase gate
    if ((HOIST_HEALTH_START_PERIOD > 0)); then
        snooze "$HOIST_HEALTH_START_PERIOD"
    fi
    if [[ -n $path ]]; then
        log "health check: GET $path expecting $want (budget ${HOIST_HEALTH_TIMEOUT}s)"
    fi
    probe_health "$TARGET_ID" "$HOIST_HEALTH_TIMEOUT" "${HOIST_HEALTH_CONSECUTIVE:-1}" || fail "health check failed: $PROBE_WHY"
    # Verified: the target gets its restart policy, the previous ones none, so that a daemon
    # restart or a reboot never brings a retained release back beside the live one.
    if [[ -n $policy ]]; then
        docker update --restart "$policy" "$TARGET_ID" >/dev/null || fail "could not set the restart policy of $TARGET_NAME"
    else
        warn "$TARGET_NAME has no hoist.restart label: it keeps no restart policy"
    fi
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        docker update --restart no "$id" >/dev/null || warn "could not clear the restart policy of $id"
    done
    set_phase verified
    log "healthy: $HEALTH"
}

# Removes the stopped releases beyond the newest HOIST_RETAIN (and their images; never an image's
# untagged parents, which may be another build's cache).
prune_releases() {
    local stopped_ids id image
    mapfile -t stopped_ids < <(docker ps -a --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL" \
        --format '{{.ID}} {{.State}}' |
        awk -v new="${TARGET_ID:0:12}" 'substr($1, 1, 12) != new && $2 != "running" { print $1 }')
    if ((${#stopped_ids[@]} > HOIST_RETAIN)); then
        for id in "${stopped_ids[@]:HOIST_RETAIN}"; do
            image=$(docker inspect --format '{{.Image}}' "$id" 2>/dev/null || true)
            docker rm "$id" >/dev/null || warn "could not remove old container $id"
            if [[ -n $image ]]; then
                docker image rm --no-prune "$image" >/dev/null 2>&1 || true
            fi
        done
        log "pruned $((${#stopped_ids[@]} - HOIST_RETAIN)) old release(s)"
    fi
}


# ---------------------------------------------------------------- create
# The release's specification as a sha256: the image it runs (its id) and what its
# `docker create` is given — the parameters that shape the container, strategy $1, and the
# env file's contents — kept in its `hoist.spec` label. (Docker keeps the container's env in
# its state in the clear anyway; the label is a hash of it.)
release_spec() {
    local image_id
    image_id=$(docker image inspect --format '{{.Id}}' "$HOIST_IMAGE") || fail "cannot inspect image $HOIST_IMAGE"
    {
        printf '%s\0' "$image_id" "$HOIST_RELEASE" "$1" "$HOIST_IMAGE_LABEL" "$HOIST_CONTAINER_PORT" \
            "$HOIST_PUBLISH" "$HOIST_RESTART" "$HOIST_STOP_TIMEOUT" "$HOIST_HEALTH_PATH" "$HOIST_HEALTH_STATUS"
        printf 'opts\0'
        printf '%s\0' ${HOIST_RUN_OPTS[@]+"${HOIST_RUN_OPTS[@]}"}
        printf 'command\0'
        printf '%s\0' ${HOIST_COMMAND[@]+"${HOIST_COMMAND[@]}"}
        printf 'env\0'
        if [[ -n $ENV_FILE ]]; then cat "$ENV_FILE"; fi
    } | sha256sum | cut -d' ' -f1
}

# Ends the run `unchanged` (nothing created, stopped or started) when the app's one running
# release (PREV_IDS) has spec $1 and is observed healthy now by its own check, unless
# HOIST_FORCE is true. An unhealthy one is replaced as any other.
unchanged_if_same() {
    local spec=$1 live
    [[ $HOIST_FORCE != true ]] || return 0
    ((${#PREV_IDS[@]} == 1)) || return 0
    live=$(docker inspect --format '{{index .Config.Labels "hoist.spec"}}' "${PREV_IDS[0]}" 2>/dev/null) || return 0
    [[ -n $spec && $live == "$spec" ]] || return 0
    if ! probe_health "${PREV_IDS[0]}" "$HOIST_HEALTH_TIMEOUT"; then
        log "$PREV_NAME runs this release but is not healthy ($PROBE_WHY): replacing it"
        return 0
    fi
    remove_env_file
    TARGET_NAME=$PREV_NAME
    finish unchanged "$PREV_NAME already runs release $HOIST_RELEASE with this image and configuration (deploy with --force to replace it)"
}

# Creates the release's container from HOIST_IMAGE with its labels (what it is, its restart
# policy and health check, and `hoist.publish` = $1, the host port its check probes) and the
# further `docker create` arguments $2…; sets TARGET_ID and TARGET_NAME. It starts with no
# restart policy: until it passes the health gate, a daemon restart must not bring an
# unverified release back. Its configured policy (kept in a label) is applied once it is
# healthy.
create_release() {
    local publish=$1 stamp n=1 out
    shift
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    TARGET_NAME="$HOIST_APP-$HOIST_RELEASE-$stamp"
    # A name is taken only by a run of this release in this very second: a few tries at most.
    # An engine that says every name is taken (a misbehaving one) must not keep the run here.
    while docker container inspect "$TARGET_NAME" >/dev/null 2>&1; do
        if ((n >= NAME_TRIES)); then
            TARGET_NAME=""
            fail "no free container name: $HOIST_APP-$HOIST_RELEASE-$stamp and its -2 to -$NAME_TRIES variants all exist, says docker container inspect (is the Docker engine answering correctly?)"
        fi
        n=$((n + 1))
        TARGET_NAME="$HOIST_APP-$HOIST_RELEASE-$stamp-$n"
    done
    local create=(
        --name "$TARGET_NAME"
        --restart no
        --label "hoist.app=$HOIST_APP"
        --label "hoist.release=$HOIST_RELEASE"
        --label "hoist.image=$HOIST_IMAGE_LABEL"
        --label "hoist.image-ref=$HOIST_IMAGE"
        --label "hoist.restart=$HOIST_RESTART"
        --label "hoist.port=$HOIST_CONTAINER_PORT"
        --label "hoist.publish=$publish"
        --label "hoist.health-path=$HOIST_HEALTH_PATH"
        --label "hoist.health-status=$HOIST_HEALTH_STATUS"
        --label "hoist.spec=${SPEC:-}"
        --label "$RELEASE_LABEL=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        "$@"
    )
    if [[ -n $ENV_FILE ]]; then create+=(--env-file "$ENV_FILE"); fi
    create+=(${HOIST_RUN_OPTS[@]+"${HOIST_RUN_OPTS[@]}"})

    note_state new_name "$TARGET_NAME"
    out=$(docker create "${create[@]}" "$HOIST_IMAGE" ${HOIST_COMMAND[@]+"${HOIST_COMMAND[@]}"} 2>&1) || {
        remove_env_file
        # A create that failed half-way may have left the name taken: remove it.
        docker rm -f "$TARGET_NAME" >/dev/null 2>&1 || true
        TARGET_NAME=""
        fail "docker create failed: $(tail -n 3 <<<"$out")"
    }
    TARGET_ID=$(tail -n 1 <<<"$out")
    note_state new "$TARGET_ID"
    remove_env_file
    log "created $TARGET_NAME"
}

# ---------------------------------------------------------------- blue-green
# Two colors, blue and green, each a loopback port (HOIST_BG_PORTS); the live one is what the
# app's nginx file (HOIST_NGINX_CONF) proxies HOIST_PUBLISH to. A deploy starts the new
# release in the idle color beside the live one (stage), health-gates it on its loopback port,
# points nginx at it with a graceful reload (switch), probes it through nginx for
# HOIST_BG_POST_SWITCH_CHECK seconds (verify), and only then, after HOIST_BG_DRAIN seconds for
# the requests nginx's old workers still serve, stops the old color (retire). The old color
# serves until the new one is verified, so a failure up to then only has to point nginx back
# (the previous file is kept) and remove the new container; until then the old color is also
# nginx's backup, which answers what the new one cannot. The nginx file answers hoist's probes
# (those sending `X-Hoist-Probe`) with an `X-Hoist-Upstream: <address nginx reached last>`
# header, which is how a probe knows which color answered; no other client gets it.

# Checks the blue-green parameters and sets the run's nginx settings from them: HOIST_PUBLISH
# (the port nginx listens on), HOIST_BG_PORTS=(blue green), HOIST_BG_DRAIN and
# HOIST_BG_POST_SWITCH_CHECK (seconds), HOIST_BG_INSTALL_PROXY (true/false), HOIST_NGINX_CONF
# (an absolute path ending in .conf); optional HOIST_NGINX_BIN (default `nginx`) and
# HOIST_NGINX_ARGS (default none; e.g. `-c FILE` for an nginx of its own, as the tests run
# one): with either set, nginx is started by running that binary, never through systemd.
bg_params() {
    need HOIST_PUBLISH HOIST_NGINX_CONF HOIST_BG_DRAIN HOIST_BG_POST_SWITCH_CHECK
    need_number HOIST_BG_DRAIN HOIST_BG_POST_SWITCH_CHECK
    if ! declare -p HOIST_BG_PORTS >/dev/null 2>&1 || ((${#HOIST_BG_PORTS[@]} != 2)); then
        finish invalid "parameter HOIST_BG_PORTS must hold two ports (blue, green)"
    fi
    local p
    for p in "$HOIST_PUBLISH" "${HOIST_BG_PORTS[@]}"; do
        if ! [[ $p =~ ^[1-9][0-9]{0,4}$ ]] || ((p > 65535)); then
            finish invalid "blue-green: '$p' is not a port"
        fi
    done
    if [[ ${HOIST_BG_PORTS[0]} == "${HOIST_BG_PORTS[1]}" || $HOIST_PUBLISH == "${HOIST_BG_PORTS[0]}" ||
        $HOIST_PUBLISH == "${HOIST_BG_PORTS[1]}" ]]; then
        finish invalid "blue-green: the blue port (${HOIST_BG_PORTS[0]}), the green port (${HOIST_BG_PORTS[1]}) and the published port ($HOIST_PUBLISH) must differ"
    fi
    [[ $HOIST_NGINX_CONF =~ ^/[A-Za-z0-9_./-]+\.conf$ && $HOIST_NGINX_CONF != *..* ]] ||
        finish invalid "parameter HOIST_NGINX_CONF must be an absolute path ending in .conf: '$HOIST_NGINX_CONF'"
    HOIST_BG_INSTALL_PROXY=${HOIST_BG_INSTALL_PROXY:-false}
    case $HOIST_BG_INSTALL_PROXY in
        true | false) ;;
        *) finish invalid "parameter HOIST_BG_INSTALL_PROXY is '$HOIST_BG_INSTALL_PROXY'" ;;
    esac
    if ! declare -p HOIST_NGINX_ARGS >/dev/null 2>&1; then HOIST_NGINX_ARGS=(); fi
    BG_NGINX_BIN=${HOIST_NGINX_BIN:-nginx}
    BG_NGINX_ARGS=(${HOIST_NGINX_ARGS[@]+"${HOIST_NGINX_ARGS[@]}"})
    BG_CONF=$HOIST_NGINX_CONF
    BG_NGINX_PORT=$HOIST_PUBLISH
    BG_DRAIN=$HOIST_BG_DRAIN
    BG_NGINX_LOCK="$HOIST_RUN_DIR/nginx.lock"
}

# What a blue-green run that creates a release needs on this host, checked before any change:
# the tools, curl (every probe through nginx is an HTTP request, with or without a health
# path), the engine, nginx (bg_require_proxy) and the directory of the app's nginx file.
bg_require_host() {
    require_tools docker flock timeout
    command -v curl >/dev/null || fail "curl is not installed on this host (needed to probe the app through nginx)"
    require_engine
    bg_require_proxy
    [[ -d ${BG_CONF%/*} ]] || finish invalid "the directory of $BG_CONF does not exist: is it nginx's conf.d?"
}

# nginx is on this host; else, with HOIST_BG_INSTALL_PROXY=true, installs it (dnf, yum or
# apt-get), else the run is refused before anything changes.
bg_require_proxy() {
    if command -v "$BG_NGINX_BIN" >/dev/null; then return 0; fi
    if [[ $HOIST_BG_INSTALL_PROXY != true ]]; then
        finish invalid "nginx is not installed on this host; install it (dnf/yum/apt-get install nginx) or set blue_green.install_proxy: true"
    fi
    log "installing nginx (blue_green.install_proxy: true)"
    local out
    if command -v dnf >/dev/null; then
        out=$(dnf install -y nginx 2>&1 9>&-) || fail "dnf install nginx failed: $(tail -n 3 <<<"$out")"
    elif command -v yum >/dev/null; then
        out=$(yum install -y nginx 2>&1 9>&-) || fail "yum install nginx failed: $(tail -n 3 <<<"$out")"
    elif command -v apt-get >/dev/null; then
        out=$({ DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 nginx ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 nginx; }; } 2>&1 9>&-) ||
            fail "apt-get install nginx failed: $(tail -n 3 <<<"$out")"
    else
        fail "nginx is not installed on this host, and there is no dnf, yum or apt-get to install it with"
    fi
    command -v "$BG_NGINX_BIN" >/dev/null || fail "nginx was installed, but $BG_NGINX_BIN is not on PATH"
}

# Runs nginx (this run's binary and arguments) with $@. Never with the lock's fd 9: an nginx
# it starts lives on, and must not hold the app's lock.
# (Reached through the EXIT trap and the watchdog.)
nginx_run() {
    "$BG_NGINX_BIN" ${BG_NGINX_ARGS[@]+"${BG_NGINX_ARGS[@]}"} "$@" 8>&- 9>&-
}

# Takes the host's lock on nginx's configuration (BG_NGINX_LOCK, shared by every app's deploys,
# rollbacks and restores), held from writing an app's file to the reload that loads it (or to
# putting the previous file back): another app's `nginx -t` or reload never sees a file that
# is being tested and may be taken back. Waits up to 120 s, then goes on with a warning.
# (Reached through the EXIT trap and the watchdog.)
nginx_lock() {
    if ((BG_NGINX_LOCKED)) || [[ -z $BG_NGINX_LOCK ]]; then return 0; fi
    mkdir -p "${BG_NGINX_LOCK%/*}" 2>/dev/null || true
    if ! exec 8>>"$BG_NGINX_LOCK"; then
        warn "cannot open $BG_NGINX_LOCK; changing nginx's configuration without it"
        return 0
    fi
    BG_NGINX_LOCKED=1
    flock -w 120 8 || warn "another run held $BG_NGINX_LOCK for 120s; going on without it"
}

# (Reached through the EXIT trap and the watchdog.)
nginx_unlock() {
    if ((BG_NGINX_LOCKED)); then
        exec 8>&-
        BG_NGINX_LOCKED=0
    fi
}

# `nginx -t` on the whole configuration; NGINX_OUT holds its complaint when it fails.
# (Reached through the EXIT trap and the watchdog.)
nginx_test() {
    local out
    if out=$(nginx_run -t 2>&1); then
        NGINX_OUT=""
        return 0
    fi
    NGINX_OUT=$(grep -E '\[(emerg|alert|crit|error)\]' <<<"$out" | sed 's/^nginx: //' | head -n 3 | tr '\n' ' ' || true)
    NGINX_OUT=${NGINX_OUT% }
    [[ -n $NGINX_OUT ]] || NGINX_OUT=$(tail -n 2 <<<"$out" | tr '\n' ' ')
    return 1
}

# Makes nginx load its files: a graceful reload when it runs (its old workers finish the
# requests they serve, new connections get the new file), else starts it — `systemctl start
# nginx` (and enables it at boot, so that the live color stays reachable after a reboot) where
# systemd runs and the default nginx is used, else the nginx binary itself (it daemonizes; its
# output goes nowhere near this script's). NGINX_OUT says why when it fails.
# (Reached through the EXIT trap and the watchdog.)
nginx_apply() {
    local out tmp
    if nginx_run -s reload </dev/null >/dev/null 2>&1; then return 0; fi
    if [[ $BG_NGINX_BIN == nginx && ${#BG_NGINX_ARGS[@]} -eq 0 && -d /run/systemd/system ]] &&
        command -v systemctl >/dev/null; then
        if ! out=$(systemctl start nginx 2>&1 9>&-); then
            NGINX_OUT="nginx does not run and systemctl start nginx failed: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
            return 1
        fi
        systemctl is-enabled --quiet nginx 2>/dev/null || systemctl enable --quiet nginx 2>/dev/null ||
            warn "could not enable nginx at boot (systemctl enable nginx)"
    else
        tmp=$(mktemp)
        if ! nginx_run </dev/null >/dev/null 2>"$tmp"; then
            NGINX_OUT="nginx does not run and starting it failed: $(grep -E '\[(emerg|alert|crit)\]' "$tmp" | head -n 2 | tr '\n' ' ' || true)"
            rm -f "$tmp"
            return 1
        fi
        rm -f "$tmp"
    fi
    log "nginx was not running: started it"
}

# The app's nginx file, proxying HOIST_PUBLISH to the color $1 on loopback port $2 (release
# $3, container $4). Names that nginx shares across files (upstream, map variables) carry the
# app's name, so two apps never collide; `-` becomes `_` in variable names (nginx allows no
# `-` there, and an app name has no `_`, so that is one-to-one).
#
# With $5 (the old color's port, while it still runs: from the switch until the new color is
# verified), the old color is the upstream's backup: a request the new color fails to answer
# (connection error, timeout, 502, 504) is passed to the old one instead — idempotent ones
# only, as nginx does — so a release that crashes after the switch costs no request before it
# is switched back. Probes see which one answered ($upstream_addr, the last one tried). Once
# the new color is verified the file is written again without the backup (a backup that no
# longer runs would turn one failed request into ten seconds of 502s).
bg_conf_text() {
    local color=$1 port=$2 release=$3 name=$4 backup=${5:-} v=${HOIST_APP//-/_}
    local backup_server="" next_upstream=""
    if [[ -n $backup ]]; then
        backup_server="
    server 127.0.0.1:$backup backup;"
        next_upstream="
        proxy_next_upstream error timeout http_502 http_504;
        proxy_next_upstream_tries 2;"
    fi
    cat <<NGINX
# Written by hoist for app $HOIST_APP (strategy blue-green). Every deploy and rollback of the
# app rewrites this file: do not edit it.
# hoist-live: color=$color port=$port release=$release container=$name

# WebSocket upgrades pass through; other requests send no Connection header, so that the
# connections to the app are kept alive.
map \$http_upgrade \$hoist_${v}_connection {
    default upgrade;
    ''      '';
}

# Which color answered (the address nginx reached last), for hoist's own probes only (they
# send X-Hoist-Probe).
map \$http_x_hoist_probe \$hoist_${v}_upstream {
    default '';
    '~.'    \$upstream_addr;
}

upstream hoist_$HOIST_APP {
    server 127.0.0.1:$port;$backup_server
    keepalive 16;
}

server {
    listen $BG_NGINX_PORT default_server;
    server_name _;

    location / {
        proxy_pass http://hoist_$HOIST_APP;
        proxy_http_version 1.1;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_set_header X-Forwarded-Host \$host;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$hoist_${v}_connection;
        proxy_connect_timeout 5s;
        proxy_send_timeout 60s;
        proxy_read_timeout 60s;$next_upstream
        add_header X-Hoist-Upstream \$hoist_${v}_upstream always;
    }
}
NGINX
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

# Finds what runs: the live color (PREV_IDS, PREV_NAME, BG_OLD_UPSTREAM: the running colored
# release nginx routes to, else the newest running colored one), the running releases with
# no color (BG_LEGACY_IDS: recreate's, which publish the nginx port themselves), and colored
# ones nginx does not route to (BG_STRAY_IDS: left running by a run that died in its retire,
# or started by hand; they may hold the idle color's port). Sets BG_NEW_COLOR and BG_NEW_PORT:
# the idle color (blue when no color is live).
bg_find_live() {
    local live id color publish entry ids=() colored=()
    live=$(bg_conf_live "$BG_CONF")
    PREV_IDS=()
    PREV_NAME=""
    BG_OLD_UPSTREAM=""
    BG_LEGACY_IDS=()
    BG_STRAY_IDS=()
    mapfile -t ids < <(docker ps --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL" \
        --filter status=running --format '{{.ID}}')
    for id in ${ids[@]+"${ids[@]}"}; do
        # A two-phase switch's own staged container is neither live nor a stray.
        [[ $id != "$BG_IGNORE" ]] || continue
        IFS='|' read -r color publish _ <<<"$(bg_labels "$id")"
        if [[ -z $color ]]; then
            BG_LEGACY_IDS+=("$id")
        elif [[ -z $BG_OLD_UPSTREAM && -n $live && "$color $publish" == "$live" ]]; then
            BG_OLD_UPSTREAM="$color $publish"
            PREV_IDS=("$id")
        else
            colored+=("$id|$color $publish")
        fi
    done
    for entry in ${colored[@]+"${colored[@]}"}; do
        if [[ -z $BG_OLD_UPSTREAM ]]; then
            BG_OLD_UPSTREAM=${entry#*|}
            PREV_IDS=("${entry%%|*}")
        else
            BG_STRAY_IDS+=("${entry%%|*}")
        fi
    done
    if ((${#PREV_IDS[@]})); then
        PREV_NAME=$(docker inspect --format '{{.Name}}' "${PREV_IDS[0]}")
    elif ((${#BG_LEGACY_IDS[@]})); then
        PREV_NAME=$(docker inspect --format '{{.Name}}' "${BG_LEGACY_IDS[0]}")
    fi
    PREV_NAME=${PREV_NAME#/}
    if [[ ${BG_OLD_UPSTREAM%% *} == blue ]]; then
        BG_NEW_COLOR=green
        BG_NEW_PORT=${HOIST_BG_PORTS[1]}
    else
        BG_NEW_COLOR=blue
        BG_NEW_PORT=${HOIST_BG_PORTS[0]}
    fi
}

# Stops the colored releases that run but that nginx does not route to (BG_STRAY_IDS): they
# serve nothing, and one may hold the port the target needs. They stay retained.
bg_stop_strays() {
    local id
    for id in ${BG_STRAY_IDS[@]+"${BG_STRAY_IDS[@]}"}; do
        docker update --restart no "$id" >/dev/null 2>&1 || true
        docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null || fail "could not stop $id, which runs but serves nothing"
        log "stopped $id: it ran beside the live color, which nginx does not route to it"
    done
}

# One request through nginx to path $1, as hoist's probe: sets NGINX_CODE (000: no answer)
# and NGINX_SEEN (the "color port" that answered; empty when not one of this app's colors).
# (Reached through the EXIT trap and the watchdog.)
bg_look() {
    local out
    out=$(curl --globoff -s -o /dev/null -D - -H 'X-Hoist-Probe: 1' \
        --max-time "$((HOIST_HEALTH_INTERVAL + 2))" "http://127.0.0.1:$BG_NGINX_PORT$1" 2>/dev/null || true)
    out=${out//$'\r'/}
    NGINX_CODE=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' <<<"$out")
    NGINX_CODE=${NGINX_CODE:-000}
    NGINX_SEEN=$(awk 'tolower($1) == "x-hoist-upstream:" { $1 = ""; print; exit }' <<<"$out")
    NGINX_SEEN=${NGINX_SEEN# }
    # The address nginx reached last ("127.0.0.1:20080", or "127.0.0.1:20080, 127.0.0.1:10080"
    # when it passed the request on to the backup), as the color it is; a file written before
    # hoist sent addresses says "<color> <port>" itself.
    if [[ $NGINX_SEEN =~ :([0-9]+)$ ]]; then
        local p=${BASH_REMATCH[1]} u
        NGINX_SEEN="port $p"
        for u in "$BG_NEW_UPSTREAM" "$BG_OLD_UPSTREAM"; do
            if [[ -n $u && ${u#* } == "$p" ]]; then NGINX_SEEN=$u; fi
        done
    fi
}

# Probes the app through nginx (GET path $2 expecting status $3; with no path, GET / and any
# answer but nginx's own 502/504): first until nginx routes to upstream $1 ("color port") —
# a reload takes a moment — for at most $4 seconds; then every probe, for $5 more seconds
# (at least one), must reach $1 and pass. Sets HEALTH, and PROBE_WHY when it fails.
# (Reached through the EXIT trap and the watchdog.)
bg_check_through_nginx() {
    local expect=$1 path=$2 want=${3:-200} confirm=$4 window=$5 deadline
    deadline=$((SECONDS + confirm))
    PROBE_WHY=""
    while :; do
        bg_look "${path:-/}"
        if [[ $NGINX_SEEN == "$expect" ]]; then break; fi
        if ((SECONDS >= deadline)); then
            PROBE_WHY="nginx on port $BG_NGINX_PORT does not route to $expect after ${confirm}s (it answered $NGINX_CODE${NGINX_SEEN:+ from $NGINX_SEEN})"
            return 1
        fi
        sleep 0.2
    done
    deadline=$((SECONDS + window))
    while :; do
        HEALTH="http $NGINX_CODE from ${path:-/} through nginx"
        if [[ $NGINX_SEEN != "$expect" ]]; then
            PROBE_WHY="nginx on port $BG_NGINX_PORT stopped routing to $expect (it answered $NGINX_CODE${NGINX_SEEN:+ from $NGINX_SEEN})"
            return 1
        elif [[ -n $path && $NGINX_CODE != "$want" ]]; then
            PROBE_WHY="GET $path through nginx (port $BG_NGINX_PORT) answered $NGINX_CODE (expected $want)"
            return 1
        elif [[ -z $path && ($NGINX_CODE == 502 || $NGINX_CODE == 504 || $NGINX_CODE == 000) ]]; then
            PROBE_WHY="GET / through nginx (port $BG_NGINX_PORT) answered $NGINX_CODE: nginx cannot reach $expect"
            return 1
        fi
        if ((SECONDS >= deadline)); then return 0; fi
        snooze "$HOIST_HEALTH_INTERVAL"
        bg_look "${path:-/}"
    done
}

# Puts the app's previous nginx file back (or removes the file when there was none).
# (Reached through the EXIT trap and the watchdog.)
bg_restore_conf() {
    case $BG_BACKUP in
        "") return 0 ;;
        none) rm -f "$BG_CONF" ;;
        *) cp -p "$BG_BACKUP" "$BG_CONF.hoist-tmp" && mv -f "$BG_CONF.hoist-tmp" "$BG_CONF" ;;
    esac
}

# The retire of a verified target: the target gets its restart policy and the old color none
# (so that a reboot brings back only the live color), then, after BG_DRAIN seconds for the
# requests nginx's old workers still serve, the old color is stopped (and kept, for rollback).
# (Reached through the EXIT trap and the watchdog.)
bg_retire_old() {
    local id
    if [[ -n $TARGET_ID && -n $BG_POLICY ]]; then
        docker update --restart "$BG_POLICY" "$TARGET_ID" >/dev/null 2>&1 || warn "could not set the restart policy of $TARGET_NAME"
    fi
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        docker update --restart no "$id" >/dev/null 2>&1 || warn "could not clear the restart policy of $id"
    done
    if ((${#PREV_IDS[@]} && BG_DRAIN > 0)); then
        log "draining $PREV_NAME for ${BG_DRAIN}s"
        snooze "$BG_DRAIN"
    fi
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
        if ! docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null 2>&1 && [[ $(container_status "$id") == running ]]; then
            warn "could not stop the old color's container $id"
        fi
    done
    if ((${#PREV_IDS[@]})); then log "stopped $PREV_NAME"; fi
}

# Blue-green's restore, by phase: `stage` (nginx untouched) removes the new container (or
# stops the retained release a rollback started); `switch` and `verify` put the previous nginx
# file back, reload, start again the recreate release stopped for nginx's port, and remove
# the new container only once nginx no longer routes to it (and BG_DRAIN seconds later, for
# the requests nginx's old workers still serve); `retire` finishes the retire (the target is
# live and verified). The previous release is called serving only once a probe through nginx
# (or, for a recreate release, its own check) says so. Sets ROLLED_BACK, RESTORE_NOTE and
# SWITCHED_BACK; returns non-zero when the previous release is not serving.
# (Reached through the EXIT trap and the watchdog.)
bg_restore() {
    ROLLED_BACK=false
    RESTORE_NOTE=""
    SWITCHED_BACK=0
    case $PHASE in
        verified) return 0 ;;
        retire)
            bg_retire_old
            return 0
            ;;
    esac
    local switching=0 id policy deadline color path want
    case $PHASE in switch | verify) switching=1 ;; esac
    if [[ -z $TARGET_ID ]] && ((!switching)); then return 0; fi
    if ! wait_engine "$ENGINE_WAIT"; then
        RESTORE_NOTE="the Docker engine did not answer for ${ENGINE_WAIT}s"
        return 1
    fi
    if ((switching)); then
        nginx_lock
        bg_restore_conf || warn "could not put back the previous $BG_CONF"
        if ((BG_RELOADED)); then
            if ! nginx_test; then warn "nginx -t fails with the previous $BG_CONF back: $NGINX_OUT"; fi
            if ! nginx_apply; then
                nginx_unlock
                RESTORE_NOTE="could not make nginx load the previous $BG_CONF: $NGINX_OUT"
                return 1
            fi
            SWITCHED_BACK=1
        fi
        nginx_unlock
        # Recreate releases stopped for nginx's port: started again once nginx lets go of it.
        for id in ${BG_LEGACY_IDS[@]+"${BG_LEGACY_IDS[@]}"}; do
            policy=$(docker inspect --format '{{index .Config.Labels "hoist.restart"}}' "$id" 2>/dev/null || true)
            if [[ -n $policy ]]; then docker update --restart "$policy" "$id" >/dev/null 2>&1 || true; fi
            deadline=$((SECONDS + 15))
            until [[ $(container_status "$id") == running ]] || docker start "$id" >/dev/null 2>&1; do
                if ((SECONDS >= deadline)); then
                    RESTORE_NOTE="could not start $PREV_NAME ($id) again"
                    return 1
                fi
                sleep 0.5
            done
        done
    fi
    if ((SWITCHED_BACK)) && [[ -n $TARGET_ID ]]; then
        # nginx must no longer route to the target before it goes.
        if [[ -n $BG_OLD_UPSTREAM ]] && ((${#PREV_IDS[@]})); then
            IFS='|' read -r _ _ path want <<<"$(bg_labels "${PREV_IDS[0]}")"
            if ! bg_check_through_nginx "$BG_OLD_UPSTREAM" "$path" "$want" 15 0; then
                RESTORE_NOTE="nginx does not route to $PREV_NAME again: $PROBE_WHY"
                return 1
            fi
        else
            deadline=$((SECONDS + 15))
            bg_look /
            while [[ $NGINX_SEEN == "$BG_NEW_UPSTREAM" ]] && ((SECONDS < deadline)); do
                sleep 0.2
                bg_look /
            done
        fi
        if ((BG_DRAIN > 0)); then snooze "$BG_DRAIN"; fi
    fi
    if [[ -n $TARGET_ID ]] && ((TARGET_NEW)); then
        if ! docker rm -f "$TARGET_ID" >/dev/null 2>&1 && [[ -n $(container_status "$TARGET_ID") ]]; then
            warn "could not remove the new container $TARGET_NAME"
        fi
    elif [[ -n $TARGET_ID ]]; then
        docker update --restart no "$TARGET_ID" >/dev/null 2>&1 || true
        if ! docker stop --time "$HOIST_STOP_TIMEOUT" "$TARGET_ID" >/dev/null 2>&1 &&
            [[ $(container_status "$TARGET_ID") == running ]]; then
            warn "could not stop $TARGET_NAME again"
        fi
    fi
    # What serves now: the old color through nginx, or a recreate release on its own.
    if [[ -n $BG_OLD_UPSTREAM ]] && ((${#PREV_IDS[@]})); then
        IFS='|' read -r color _ path want <<<"$(bg_labels "${PREV_IDS[0]}")"
        if bg_check_through_nginx "$BG_OLD_UPSTREAM" "$path" "$want" 15 0; then
            ROLLED_BACK=true
            if ((SWITCHED_BACK)); then
                RESTORE_NOTE="nginx routes to $PREV_NAME ($color) again ($HEALTH)"
            else
                RESTORE_NOTE="nginx never left $PREV_NAME ($color), which serves ($HEALTH)"
            fi
            return 0
        fi
        RESTORE_NOTE="$PREV_NAME ($color) does not serve through nginx: $PROBE_WHY"
        return 1
    elif ((${#BG_LEGACY_IDS[@]})); then
        if probe_health "${BG_LEGACY_IDS[0]}" "$((HOIST_HEALTH_START_PERIOD + HOIST_HEALTH_TIMEOUT))"; then
            ROLLED_BACK=true
            RESTORE_NOTE="$PREV_NAME runs again ($HEALTH)"
            return 0
        fi
        RESTORE_NOTE="$PREV_NAME was started again but is not healthy: $PROBE_WHY"
        return 1
    fi
    return 0
}

# Blue-green's new release in the idle color: removes what earlier runs staged and never
# switched (it serves nothing), prepares the inputs, finds the live color, ends the run
# `unchanged` when the live release is this one, then creates the release in the idle color
# with the extra `docker create` arguments "$@". $1 says what the run does there, for the log
# ("deploying to", "staging in").
bg_create_idle() {
    local doing=$1
    shift
    bg_discard_staged ""
    prepare_inputs
    bg_find_live
    if [[ -n $BG_OLD_UPSTREAM ]]; then
        log "live: ${BG_OLD_UPSTREAM% *} ($PREV_NAME); $doing $BG_NEW_COLOR (127.0.0.1:$BG_NEW_PORT)"
    else
        log "no color is live yet; $doing $BG_NEW_COLOR (127.0.0.1:$BG_NEW_PORT)"
    fi
    SPEC=$(release_spec blue-green)
    if [[ -n $BG_OLD_UPSTREAM ]]; then unchanged_if_same "$SPEC"; fi
    bg_begin "$HOIST_RESTART"
    set_phase stage
    create_release "$BG_NEW_PORT" \
        --label "hoist.color=$BG_NEW_COLOR" \
        --label hoist.strategy=blue-green \
        "$@" \
        --publish "127.0.0.1:$BG_NEW_PORT:$HOIST_CONTAINER_PORT"
}

# Records in the state file all that a restore of a blue-green run needs (from the watchdog
# or the next deploy too, whatever their header says), before the stage changes anything;
# $1 is the restart policy the target gets once verified.
bg_begin() {
    local id
    BG_NEW_UPSTREAM="$BG_NEW_COLOR $BG_NEW_PORT"
    BG_POLICY=$1
    note_state strategy blue-green
    note_state nginx_conf "$BG_CONF"
    note_state nginx_port "$BG_NGINX_PORT"
    note_state nginx_bin "$BG_NGINX_BIN"
    note_state nginx_lock "$BG_NGINX_LOCK"
    for id in ${BG_NGINX_ARGS[@]+"${BG_NGINX_ARGS[@]}"}; do note_state nginx_arg "$id"; done
    note_state drain "$BG_DRAIN"
    note_state policy "$BG_POLICY"
    note_state new_upstream "$BG_NEW_UPSTREAM"
    if [[ -n $BG_OLD_UPSTREAM ]]; then note_state old_upstream "$BG_OLD_UPSTREAM"; fi
    for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do note_state prev "$id"; done
    if [[ -n $PREV_NAME ]]; then note_state prev_name "$PREV_NAME"; fi
    for id in ${BG_LEGACY_IDS[@]+"${BG_LEGACY_IDS[@]}"}; do note_state legacy "$id"; done
}

# Makes the target (TARGET_ID: created by this run in color BG_NEW_COLOR on loopback port
# BG_NEW_PORT, or a retained release a rollback starts) the live color: stage (start it,
# health-gate it on its port: HOIST_HEALTH_CONSECUTIVE healthy answers in a row), switch (the
# app's nginx file points at it; `nginx -t`; recreate releases that publish the nginx port are
# stopped right before nginx takes it; graceful reload), verify (through nginx, for
# HOIST_BG_POST_SWITCH_CHECK seconds), retire (policies; after HOIST_BG_DRAIN seconds the old
# color is stopped, and kept). Any failure before the retire ends the run, and the restore
# (bg_restore) puts the previous state back. bg_begin comes first; $1 and $2 are the target's
# health path and expected status, $3 the release the nginx file names.
bg_go() {
    bg_stage_target "$1" "$2"
    bg_switch_target "$1" "$2" "$3"
}

# Stage: starts the target beside the live color, which serves on, and health-gates it on its
# loopback port ($1 the health path, $2 the expected status, shown only). nginx is untouched:
# a failure removes the target and nothing that serves has changed.
bg_stage_target() {
    local path=$1 want=$2 out
    set_phase stage
    bg_stop_strays
    out=$(docker start "$TARGET_ID" 2>&1) || fail "docker start failed: $(tail -n 3 <<<"$out")"
    if ((HOIST_HEALTH_START_PERIOD > 0)); then
        snooze "$HOIST_HEALTH_START_PERIOD"
    fi
    if [[ -n $path ]]; then
        log "health check: GET $path on 127.0.0.1:$BG_NEW_PORT expecting $want, $HOIST_HEALTH_CONSECUTIVE in a row (budget ${HOIST_HEALTH_TIMEOUT}s)"
    fi
    probe_health "$TARGET_ID" "$HOIST_HEALTH_TIMEOUT" "$HOIST_HEALTH_CONSECUTIVE" || fail "health check failed: $PROBE_WHY"
    log "healthy on 127.0.0.1:$BG_NEW_PORT ($BG_NEW_COLOR): $HEALTH"
}

# Switch, verify, retire: the target (staged, healthy on its loopback port) becomes the live
# color. $1 and $2 are its health path and expected status, $3 the release the nginx file
# names. With BG_WATCH (a canary window, seconds from the switch) longer than the post-switch
# check, the verify goes on for the rest of it (bg_watch_canary); the old color keeps running
# until it ends, so a failure switches back as a failed post-switch check does.
bg_switch_target() {
    local path=$1 want=$2 release=$3 id backup

    # ---- switch: the previous file is kept for the restore.
    backup=none
    if [[ -e $BG_CONF ]]; then
        backup="$HOIST_STATE_DIR/$HOIST_APP/nginx.previous.conf"
        cp -p "$BG_CONF" "$backup" || fail "could not keep a copy of $BG_CONF"
    fi
    BG_BACKUP=$backup
    note_state nginx_backup "$backup"
    set_phase switch
    nginx_lock
    bg_conf_text "$BG_NEW_COLOR" "$BG_NEW_PORT" "$release" "$TARGET_NAME" "$(bg_backup_port)" >"$BG_CONF.hoist-tmp" ||
        fail "could not write $BG_CONF.hoist-tmp"
    chmod 0644 "$BG_CONF.hoist-tmp"
    mv -f "$BG_CONF.hoist-tmp" "$BG_CONF"
    if ! nginx_test; then
        if [[ $NGINX_OUT == *"duplicate default server"* ]]; then
            NGINX_OUT="$NGINX_OUT (another server block is the default for port $BG_NGINX_PORT, such as a distribution's default site: disable it)"
        fi
        fail "nginx rejected the configuration with the new $BG_CONF: $NGINX_OUT"
    fi
    for id in ${BG_LEGACY_IDS[@]+"${BG_LEGACY_IDS[@]}"}; do
        # Recreate's release publishes the nginx port itself: stopped right before nginx takes
        # the port (a short gap), and kept for rollback.
        docker update --restart no "$id" >/dev/null 2>&1 || true
        docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null || fail "could not stop the recreate release $id"
        log "stopped $PREV_NAME (deployed by recreate) for nginx to take port $BG_NGINX_PORT"
    done
    BG_RELOADED=1
    note_state reloaded
    nginx_apply || fail "could not make nginx load the new $BG_CONF: $NGINX_OUT"
    SWITCHED_AT=$(date +%s%3N)
    [[ $SWITCHED_AT =~ ^[0-9]+$ ]] || SWITCHED_AT=$(($(date +%s) * 1000))
    nginx_unlock
    log "nginx routes port $BG_NGINX_PORT to $BG_NEW_COLOR (127.0.0.1:$BG_NEW_PORT)"

    # ---- verify, through nginx.
    set_phase verify
    bg_check_through_nginx "$BG_NEW_UPSTREAM" "$path" "$want" 15 "$HOIST_BG_POST_SWITCH_CHECK" ||
        fail "post-switch check failed: $PROBE_WHY"
    log "verified through nginx for ${HOIST_BG_POST_SWITCH_CHECK}s: $HEALTH"
    if ((${BG_WATCH:-0} > HOIST_BG_POST_SWITCH_CHECK)); then
        bg_watch_canary "$path" "$want" "$((BG_WATCH - HOIST_BG_POST_SWITCH_CHECK))" ||
            fail "canary failed: $PROBE_WHY"
        log "canary held for ${BG_WATCH}s after its switch: $HEALTH"
    fi
    bg_drop_backup "$release"

    # ---- retire: the target is live and verified.
    set_phase retire
    bg_retire_old
    set_phase verified
    rm -f "$HOIST_STATE_DIR/$HOIST_APP/nginx.previous.conf"
}

# The old color's port, for the new nginx file's backup: when a colored release is live (a
# recreate release publishes nginx's port itself, and has none).
bg_backup_port() {
    if [[ -n $BG_OLD_UPSTREAM ]] && ((${#PREV_IDS[@]})); then printf '%s' "${BG_OLD_UPSTREAM#* }"; fi
}

# The verified target: the app's nginx file again, without the old color as backup, reloaded
# ($1: the release it names). A failure is a warning: the old color still runs, so the backup
# still answers, and the next deploy writes the file anew.
bg_drop_backup() {
    [[ -n $(bg_backup_port) ]] || return 0
    nginx_lock
    if bg_conf_text "$BG_NEW_COLOR" "$BG_NEW_PORT" "$1" "$TARGET_NAME" >"$BG_CONF.hoist-tmp" &&
        chmod 0644 "$BG_CONF.hoist-tmp" && mv -f "$BG_CONF.hoist-tmp" "$BG_CONF" && nginx_test && nginx_apply; then
        log "nginx reloaded: the old color is no longer its backup"
    else
        warn "could not drop the old color as nginx's backup: ${NGINX_OUT:-writing $BG_CONF failed}"
    fi
    nginx_unlock
}

# A canary's watch, after its post-switch check: for $3 more seconds, every health interval,
# the target (live) must still answer through nginx (GET path $1 expecting status $2, as the
# post-switch check) and its container must stay up: running, never restarted (its start time
# and restart count unchanged). Sets HEALTH, and PROBE_WHY when it fails.
bg_watch_canary() {
    local path=$1 want=$2 window=$3 deadline first now status code
    log "canary: watching $TARGET_NAME for ${window}s more (health through nginx, the container staying up)"
    first=$(docker inspect --format '{{.State.StartedAt}} {{.RestartCount}}' "$TARGET_ID" 2>/dev/null) ||
        {
            PROBE_WHY="docker inspect $TARGET_NAME failed"
            return 1
        }
    deadline=$((SECONDS + window))
    while :; do
        now=$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}} {{.State.StartedAt}} {{.RestartCount}}' "$TARGET_ID" 2>/dev/null || true)
        read -r status code _ <<<"$now"
        if [[ $status != running ]]; then
            PROBE_WHY="$TARGET_NAME is ${status:-gone}${code:+ (exit code $code)}, not running"
            return 1
        fi
        if [[ ${now#* * } != "$first" ]]; then
            PROBE_WHY="$TARGET_NAME restarted (start time and restart count were '$first', now '${now#* * }')"
            return 1
        fi
        bg_check_through_nginx "$BG_NEW_UPSTREAM" "$path" "$want" 0 0 || return 1
        if ((SECONDS >= deadline)); then return 0; fi
        snooze "$HOIST_HEALTH_INTERVAL"
    done
}

# ---------------------------------------------------------------- two-phase rollouts
# Whether container name $1 ever served: a deploy or rollback that made it live recorded it
# `deployed` (or `rolled-back`, a rollback's) in history.jsonl. A staged container that never
# switched has no such record.
bg_was_live() {
    local file="$HOIST_STATE_DIR/$HOIST_APP/history.jsonl" key
    [[ -r $file ]] || return 1
    key="\"container\":$(json_str "$1")"
    grep -F -- "$key" "$file" | grep -q -E '"status":"(deployed|rolled-back)"'
}

# Removes the containers of the app that a two-phase rollout staged and that never switched
# (label hoist.staged-by; $1: only those of run $1, else any run's): left by a run whose
# staging failed elsewhere, or that was killed between its phases. Never one nginx routes to,
# never one that served once (a retained release). Sets DISCARDED (their names).
bg_discard_staged() {
    local run=${1:-} live id name state color publish by ids=()
    DISCARDED=()
    live=$(bg_conf_live "$BG_CONF")
    mapfile -t ids < <(docker ps -aq --filter "label=hoist.app=$HOIST_APP" --filter "label=$RELEASE_LABEL" \
        --filter "label=$STAGED_LABEL${run:+=$run}")
    for id in ${ids[@]+"${ids[@]}"}; do
        IFS='|' read -r name state color publish by <<<"$(docker inspect --format "{{.Name}}|{{.State.Status}}|{{index .Config.Labels \"hoist.color\"}}|{{index .Config.Labels \"hoist.publish\"}}|{{index .Config.Labels \"$STAGED_LABEL\"}}" "$id" 2>/dev/null)"
        name=${name#/}
        [[ -n $name ]] || continue
        if [[ $state == running && -n $live && "$color $publish" == "$live" ]]; then continue; fi
        if bg_was_live "$name"; then continue; fi
        docker rm -f "$id" >/dev/null || fail "could not remove $name, staged by run $by"
        DISCARDED+=("$name")
        log "removed $name: staged by run $by, never switched"
    done
}

}
