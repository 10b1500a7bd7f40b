#!/bin/bash
# hoist: recreate strategy. Replaces the app's running container on this host with a new
# release: lock, env file on tmpfs, pull, create, stop old, start new, health gate, prune.
# On any failure after the old container stopped, the new one is removed and the old one is
# started again.
#
# Parameters (HOIST_*) are assigned by the header hoist renders above this body; see
# src/plan/mod.rs. Contract with hoist: stdout carries a few short progress lines and ends
# with one `HOIST-RESULT {json}` line; details go to stderr. Exit 0 only when deployed.
# Never `set -x`: the env file's contents must not reach any log.
set -eEuo pipefail
umask 077
export LC_ALL=C

# ---------------------------------------------------------------- result and cleanup state
STATUS=failed
REASON=""
HEALTH=""
NEW_ID=""
NEW_NAME=""
PREV_IDS=()
PREV_NAME=""
OLD_STOPPED=0
ROLLED_BACK=false
ENV_FILE=""
ENV_MOUNT=""
DOCKER_CONFIG_DIR=""
LOCK_FILE=""
LOCK_HELD=0
STATE_FILE=""
GUARD_PID=""
APP_VALID=0
STARTED_AT=$SECONDS
ERR_LINE=""
ERR_CMD=""

log() { printf 'hoist: %s\n' "$*"; }
warn() { printf 'hoist: %s\n' "$*" >&2; }

# Prints a JSON string literal: escapes backslash, quote and control characters.
# shellcheck disable=SC2317 # reached through the EXIT trap
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

# shellcheck disable=SC2317 # reached through the EXIT trap
result_json() {
    printf '{"app":%s,"release":%s,"status":%s,"container":%s,"previous":%s,"image":%s,"reason":%s,"rolled_back":%s,"health":%s,"seconds":%d,"time":%s}' \
        "$(json_str "${HOIST_APP:-}")" "$(json_str "${HOIST_RELEASE:-}")" "$(json_str "$STATUS")" \
        "$(json_str "$NEW_NAME")" "$(json_str "$PREV_NAME")" "$(json_str "${HOIST_IMAGE:-}")" \
        "$(json_str "$REASON")" "$ROLLED_BACK" "$(json_str "$HEALTH")" \
        "$((SECONDS - STARTED_AT))" "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
}

# Ends the deploy with a status and a reason; the EXIT trap does the rest.
finish() {
    STATUS=$1
    REASON=$2
    case $STATUS in
        deployed) exit 0 ;;
        invalid) exit 2 ;;
        locked) exit 75 ;;
        *) exit 1 ;;
    esac
}
fail() { finish failed "$1"; }

remove_env_file() {
    if [[ -n $ENV_FILE && -e $ENV_FILE ]]; then
        shred -u "$ENV_FILE" 2>/dev/null || rm -f "$ENV_FILE"
    fi
    ENV_FILE=""
}

remove_docker_config() {
    if [[ -n $DOCKER_CONFIG_DIR && -d $DOCKER_CONFIG_DIR ]]; then
        find "$DOCKER_CONFIG_DIR" -type f -exec sh -c 'shred -u "$1" 2>/dev/null || rm -f "$1"' _ {} \;
        rm -rf "$DOCKER_CONFIG_DIR"
    fi
    DOCKER_CONFIG_DIR=""
}

# Restores the previous release after a failure: the new container goes, the old one starts.
# shellcheck disable=SC2317 # reached through the EXIT trap
roll_back() {
    if [[ -n $NEW_ID ]]; then
        warn "last log lines of $NEW_NAME:"
        docker logs --tail 20 "$NEW_ID" 2>&1 | sed 's/^/  | /' >&2 || true
        docker rm -f "$NEW_ID" >/dev/null 2>&1 || warn "could not remove $NEW_NAME"
    fi
    if ((OLD_STOPPED)); then
        local id
        for id in "${PREV_IDS[@]}"; do
            if docker start "$id" >/dev/null; then
                ROLLED_BACK=true
            else
                warn "could not start the previous container $id again"
            fi
        done
        if [[ $ROLLED_BACK == true ]]; then
            REASON="$REASON; rolled back to $PREV_NAME"
            log "rolled back to $PREV_NAME"
        else
            REASON="$REASON; rolling back to $PREV_NAME FAILED"
        fi
    fi
}

# The dead man's switch. SSM cancels a command, and ends one that runs past its timeout, by
# SIGKILLing its process group: no trap runs then. This watchdog lives in its own session,
# holds the deploy's lock (it inherits fd 9), and when the deploy dies without clearing its
# state file it finishes the job the EXIT trap could not: shreds the deploy's private files,
# removes an unverified new container and starts the previous release again.
# shellcheck disable=SC2317 # runs in the watchdog process
guard() {
    local pid=$1 state=$2 history=$3
    exec </dev/null >/dev/null 2>&1
    while kill -0 "$pid" 2>/dev/null; do sleep 0.5 9>&-; done
    [[ -e $state ]] || exit 0
    local key val new="" stopped=0 healthy=0 private="" mounted="" prev=()
    while read -r key val; do
        case $key in
            new) new=$val ;;
            prev) prev+=("$val") ;;
            stopped) stopped=1 ;;
            healthy) healthy=1 ;;
            private) private=$val ;;
            mounted) mounted=$val ;;
        esac
    done <"$state"
    if [[ -n $private && -d $private ]]; then
        find "$private" -type f -exec sh -c 'for f; do shred -u "$f" 2>/dev/null || rm -f "$f"; done' _ {} +
        rm -rf "${private:?}"/docker.*
    fi
    if [[ -n $mounted ]]; then umount "$mounted" && rmdir "$mounted"; fi
    local rolled=false
    if ((!healthy)); then
        if [[ -n $new ]]; then docker rm -f "$new"; fi
        if ((stopped)); then
            for val in ${prev[@]+"${prev[@]}"}; do docker start "$val" && rolled=true; done
        fi
    fi
    printf '{"status":"killed","reason":"the deploy was killed (SSM cancel or timeout); the watchdog cleaned up","rolled_back":%s,"container":"%s","time":"%s"}\n' \
        "$rolled" "$new" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$history"
    rm -f "$state"
}

# Records deploy progress for the watchdog, one `key value` line at a time.
note_state() { printf '%s %s\n' "$1" "${2:-1}" >>"$STATE_FILE"; }

# shellcheck disable=SC2317 # reached through the EXIT trap
on_exit() {
    local code=$?
    trap - EXIT INT TERM
    set +e
    if [[ $STATUS != deployed && -z $REASON ]]; then
        if [[ -n $ERR_CMD ]]; then
            REASON="command failed at line $ERR_LINE (exit $code): $ERR_CMD"
        else
            REASON="the script stopped with exit status $code"
        fi
    fi
    remove_env_file
    remove_docker_config
    if [[ $STATUS == failed ]]; then
        roll_back
    fi
    if [[ -n $ENV_MOUNT ]]; then
        umount "$ENV_MOUNT" 2>/dev/null && rmdir "$ENV_MOUNT" 2>/dev/null
    fi
    local line
    line=$(result_json)
    if ((APP_VALID)) && [[ $STATUS != invalid ]]; then
        local history_dir="$HOIST_STATE_DIR/$HOIST_APP"
        if mkdir -p "$history_dir" 2>/dev/null; then
            printf '%s\n' "$line" >>"$history_dir/history.jsonl" || warn "could not append to $history_dir/history.jsonl"
        fi
    fi
    # Clean exit: the watchdog has nothing to do.
    if [[ -n $STATE_FILE ]]; then rm -f "$STATE_FILE"; fi
    if [[ -n $GUARD_PID ]]; then
        kill "$GUARD_PID" 2>/dev/null
        wait "$GUARD_PID" 2>/dev/null
    fi
    if ((LOCK_HELD)); then
        : >"$LOCK_FILE"
    fi
    if [[ $STATUS != deployed ]]; then
        warn "$STATUS: $REASON"
    fi
    printf 'HOIST-RESULT %s\n' "$line"
    if [[ $STATUS == deployed ]]; then
        exit 0
    elif ((code == 0)); then
        exit 1
    fi
    exit "$code"
}
trap on_exit EXIT
trap 'ERR_LINE=$LINENO; ERR_CMD=$BASH_COMMAND' ERR
trap 'REASON="interrupted by SIGTERM"; exit 143' TERM
trap 'REASON="interrupted by SIGINT"; exit 130' INT

# ---------------------------------------------------------------- parameters
need() {
    local name=$1
    if [[ -z ${!name:-} ]]; then
        finish invalid "parameter $name is not set"
    fi
}
for p in HOIST_APP HOIST_RELEASE HOIST_IMAGE HOIST_PULL HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT \
    HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD \
    HOIST_ENV_SOURCE HOIST_RETAIN HOIST_RUN_DIR HOIST_STATE_DIR; do
    need "$p"
done
[[ $HOIST_APP =~ ^[a-z][a-z0-9-]{0,31}$ ]] || finish invalid "app name '$HOIST_APP' is not valid"
APP_VALID=1
[[ $HOIST_RELEASE =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || finish invalid "release '$HOIST_RELEASE' is not valid"
for p in HOIST_CONTAINER_PORT HOIST_STOP_TIMEOUT HOIST_HEALTH_STATUS HOIST_HEALTH_INTERVAL \
    HOIST_HEALTH_TIMEOUT HOIST_HEALTH_START_PERIOD HOIST_RETAIN; do
    [[ ${!p} =~ ^[0-9]+$ ]] || finish invalid "parameter $p is not a number: '${!p}'"
done
[[ -z ${HOIST_PUBLISH:-} || $HOIST_PUBLISH =~ ^[0-9]+$ ]] || finish invalid "parameter HOIST_PUBLISH is not a port"
case $HOIST_PULL in never | if-missing | always) ;; *) finish invalid "parameter HOIST_PULL is '$HOIST_PULL'" ;; esac
case $HOIST_ENV_SOURCE in none | stdin | ssm-parameter) ;; *) finish invalid "parameter HOIST_ENV_SOURCE is '$HOIST_ENV_SOURCE'" ;; esac
HOIST_PUBLISH=${HOIST_PUBLISH:-}
HOIST_HEALTH_PATH=${HOIST_HEALTH_PATH:-}
HOIST_IMAGE_LABEL=${HOIST_IMAGE_LABEL:-$HOIST_IMAGE}
HOIST_REGISTRY=${HOIST_REGISTRY:-}
HOIST_REGION=${HOIST_REGION:-}
HOIST_SECRET_PARAMETER=${HOIST_SECRET_PARAMETER:-}
# Arrays may be absent from an older header; bash 4.2 (Amazon Linux 2) treats an empty
# array as unset under `set -u`, hence the ${a[@]+"${a[@]}"} expansions below.
if ! declare -p HOIST_RUN_OPTS >/dev/null 2>&1; then HOIST_RUN_OPTS=(); fi
if ! declare -p HOIST_COMMAND >/dev/null 2>&1; then HOIST_COMMAND=(); fi
if ! declare -p HOIST_ENV_CLEAR >/dev/null 2>&1; then HOIST_ENV_CLEAR=(); fi
if ! declare -p HOIST_ENV_SECRETS >/dev/null 2>&1; then HOIST_ENV_SECRETS=(); fi

for tool in docker flock; do
    command -v "$tool" >/dev/null || fail "$tool is not installed on this host"
done
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || fail "cannot reach the Docker engine on this host"
if [[ -n $HOIST_HEALTH_PATH ]]; then
    command -v curl >/dev/null || fail "curl is not installed on this host (needed by healthcheck.path)"
fi

# ---------------------------------------------------------------- lock
mkdir -p "$HOIST_RUN_DIR"
chmod 0755 "$HOIST_RUN_DIR"
LOCK_FILE="$HOIST_RUN_DIR/$HOIST_APP.lock"
exec 9<>"$LOCK_FILE"
if ! flock -n 9; then
    holder=$(head -c 200 "$LOCK_FILE" 2>/dev/null || true)
    finish locked "another deploy holds the lock on $HOIST_APP (${holder:-release unknown})"
fi
LOCK_HELD=1
STATE_FILE="$HOIST_RUN_DIR/$HOIST_APP.state"
: >"$STATE_FILE"
mkdir -p "$HOIST_STATE_DIR/$HOIST_APP"
if command -v setsid >/dev/null; then
    setsid bash -c "$(declare -f guard); guard \"\$@\"" hoist-guard "$$" "$STATE_FILE" \
        "$HOIST_STATE_DIR/$HOIST_APP/history.jsonl" </dev/null >/dev/null 2>&1 &
    GUARD_PID=$!
else
    warn "setsid is missing: a deploy killed by SSM (cancel, timeout) cannot restore the previous release"
fi
printf 'release %s, pid %s, since %s\n' "$HOIST_RELEASE" "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$LOCK_FILE"
log "deploying $HOIST_APP release $HOIST_RELEASE"

# ---------------------------------------------------------------- env file on tmpfs
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

# The deploy's private directory for secrets (env file, registry login): always tmpfs,
# mounted here when /run is not one. Emptied on every exit path.
PRIVATE_DIR=""
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
}

if ((${#HOIST_ENV_CLEAR[@]} + ${#HOIST_ENV_SECRETS[@]})); then
    write_env_file
fi

# ---------------------------------------------------------------- image
have_image() { docker image inspect "$HOIST_IMAGE" >/dev/null 2>&1; }

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
        login=$(aws ecr get-login-password ${HOIST_REGION:+--region "$HOIST_REGION"} |
            "${docker[@]}" login --username AWS --password-stdin "$HOIST_REGISTRY" 2>&1) ||
            fail "registry login to $HOIST_REGISTRY failed: $(tail -n 2 <<<"$login")"
    fi
    log "pulling $HOIST_IMAGE"
    local out
    out=$("${docker[@]}" pull --quiet "$HOIST_IMAGE" 2>&1) || fail "pulling $HOIST_IMAGE failed: $(tail -n 3 <<<"$out")"
    remove_docker_config
}

case $HOIST_PULL in
    never) have_image || fail "image $HOIST_IMAGE is not on this host" ;;
    if-missing) have_image || pull_image ;;
    always) pull_image ;;
esac

# ---------------------------------------------------------------- create
mapfile -t PREV_IDS < <(docker ps --filter "label=hoist.app=$HOIST_APP" --filter status=running --format '{{.ID}}')
if ((${#PREV_IDS[@]})); then
    PREV_NAME=$(docker inspect --format '{{.Name}}' "${PREV_IDS[0]}")
    PREV_NAME=${PREV_NAME#/}
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
NEW_NAME="$HOIST_APP-$HOIST_RELEASE-$stamp"
n=1
while docker container inspect "$NEW_NAME" >/dev/null 2>&1; do
    n=$((n + 1))
    NEW_NAME="$HOIST_APP-$HOIST_RELEASE-$stamp-$n"
done

create=(
    --name "$NEW_NAME"
    --label "hoist.app=$HOIST_APP"
    --label "hoist.release=$HOIST_RELEASE"
    --label "hoist.image=$HOIST_IMAGE_LABEL"
    --label "hoist.image-ref=$HOIST_IMAGE"
    --label "hoist.deployed-at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
)
if [[ -n $ENV_FILE ]]; then create+=(--env-file "$ENV_FILE"); fi
if [[ -n $HOIST_PUBLISH ]]; then create+=(--publish "$HOIST_PUBLISH:$HOIST_CONTAINER_PORT"); fi
create+=(${HOIST_RUN_OPTS[@]+"${HOIST_RUN_OPTS[@]}"})

out=$(docker create "${create[@]}" "$HOIST_IMAGE" ${HOIST_COMMAND[@]+"${HOIST_COMMAND[@]}"} 2>&1) || {
    remove_env_file
    NEW_NAME=""
    fail "docker create failed: $(tail -n 3 <<<"$out")"
}
NEW_ID=$(tail -n 1 <<<"$out")
note_state new "$NEW_ID"
remove_env_file
log "created $NEW_NAME"

# ---------------------------------------------------------------- switch
for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
    note_state prev "$id"
done
for id in ${PREV_IDS[@]+"${PREV_IDS[@]}"}; do
    if ((!OLD_STOPPED)); then note_state stopped; fi
    OLD_STOPPED=1
    docker stop --time "$HOIST_STOP_TIMEOUT" "$id" >/dev/null || fail "could not stop the previous container $id"
done
if ((OLD_STOPPED)); then log "stopped $PREV_NAME"; fi

out=$(docker start "$NEW_ID" 2>&1) || fail "docker start failed: $(tail -n 3 <<<"$out")"

# ---------------------------------------------------------------- health gate
container_state() { docker inspect --format "$1" "$NEW_ID" 2>/dev/null || true; }

exited_reason() {
    local state
    state=$(container_state '{{.State.Status}} {{.State.ExitCode}}')
    if [[ $state != running* ]]; then
        printf 'container stopped (%s)' "$state"
    fi
}

health_http() {
    local host port url code deadline
    if [[ -n $HOIST_PUBLISH ]]; then
        host=127.0.0.1
        port=$HOIST_PUBLISH
    else
        host=$(container_state '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}')
        host=${host%% *}
        port=$HOIST_CONTAINER_PORT
        [[ -n $host ]] || fail "health check failed: the container has no IP address to probe"
    fi
    url="http://$host:$port$HOIST_HEALTH_PATH"
    deadline=$((SECONDS + HOIST_HEALTH_TIMEOUT))
    log "health check: GET $url expecting $HOIST_HEALTH_STATUS (budget ${HOIST_HEALTH_TIMEOUT}s)"
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$((HOIST_HEALTH_INTERVAL + 2))" "$url" || true)
        if [[ $code == "$HOIST_HEALTH_STATUS" ]]; then
            HEALTH="http $code from $HOIST_HEALTH_PATH"
            return 0
        fi
        HEALTH="http ${code:-000} from $HOIST_HEALTH_PATH"
        local stopped
        stopped=$(exited_reason)
        [[ -z $stopped ]] || fail "health check failed: $stopped"
        ((SECONDS < deadline)) || fail "health check failed: $url answered ${code:-000} (expected $HOIST_HEALTH_STATUS) for ${HOIST_HEALTH_TIMEOUT}s"
        sleep "$HOIST_HEALTH_INTERVAL"
    done
}

health_docker() {
    local status deadline=$((SECONDS + HOIST_HEALTH_TIMEOUT))
    log "health check: the image's HEALTHCHECK (budget ${HOIST_HEALTH_TIMEOUT}s)"
    while :; do
        status=$(container_state '{{.State.Health.Status}}')
        HEALTH="docker $status"
        case $status in
            healthy) return 0 ;;
            unhealthy) fail "health check failed: Docker reports the container unhealthy" ;;
        esac
        local stopped
        stopped=$(exited_reason)
        [[ -z $stopped ]] || fail "health check failed: $stopped"
        ((SECONDS < deadline)) || fail "health check failed: not healthy after ${HOIST_HEALTH_TIMEOUT}s (Docker status: $status)"
        sleep "$HOIST_HEALTH_INTERVAL"
    done
}

if ((HOIST_HEALTH_START_PERIOD > 0)); then
    sleep "$HOIST_HEALTH_START_PERIOD"
fi
if [[ -n $HOIST_HEALTH_PATH ]]; then
    health_http
elif [[ -n $(container_state '{{if .State.Health}}yes{{end}}') ]]; then
    health_docker
else
    sleep 1
    stopped=$(exited_reason)
    [[ -z $stopped ]] || fail "the new container did not stay up: $stopped"
    HEALTH="running (no health check configured)"
fi
note_state healthy
log "healthy: $HEALTH"

# ---------------------------------------------------------------- prune
mapfile -t stopped_ids < <(docker ps -a --filter "label=hoist.app=$HOIST_APP" --format '{{.ID}} {{.State}}' |
    awk -v new="${NEW_ID:0:12}" 'substr($1, 1, 12) != new && $2 != "running" { print $1 }')
if ((${#stopped_ids[@]} > HOIST_RETAIN)); then
    for id in "${stopped_ids[@]:HOIST_RETAIN}"; do
        image=$(docker inspect --format '{{.Image}}' "$id" 2>/dev/null || true)
        docker rm "$id" >/dev/null || warn "could not remove old container $id"
        if [[ -n $image ]]; then
            docker image rm "$image" >/dev/null 2>&1 || true
        fi
    done
    log "pruned $((${#stopped_ids[@]} - HOIST_RETAIN)) old release(s)"
fi

finish deployed ""
