#!/bin/bash
# requires: core aws
# hoist: doctor. Checks that this host has what hoist's scripts need, each check named in
# HOIST_CHECKS (`hoist doctor` asks for all of them, a deploy's check-hosts step for the cheap
# ones its strategy needs), and prints one line `HOIST-DOCTOR {json}`: per check its name,
# status (ok, warn or fail) and what it found, and this host's clock (`time_ms`, which hoist
# compares with its own). Read-only: mounts a tmpfs for a moment (the `tmpfs` check) and
# reads parameters it may not print (`parameters`), nothing else. Exit 0 when no check
# failed, 1 when one did, 2 on bad parameters.
#
# Checks: bash (4 or later), docker (the CLI, the engine and its version, Docker's root),
# flock, setsid, curl, timeout (installed), aws (the CLI, its version and the region the host's
# calls use; aws-cli: only that it is installed, as a deploy checks it, the CLI being slow to
# start), tmpfs (one can be mounted under HOIST_RUN_DIR, or it is one), nginx (installed
# and `nginx -t` passes; HOIST_NGINX_INSTALL=true makes a missing one a warning: the deploy
# installs it), disk (free space under HOIST_STATE_DIR and Docker's root: below
# HOIST_MIN_FREE_MB fails, below four times that warns), clock (whether the host says its
# clock is synchronized), parameters (the instance role may read HOIST_PARAMETER_PROBE, a
# name under the app's parameter path that need not exist, and each parameter named in
# HOIST_PARAMETERS; values are never printed).
#
# Parameters (HOIST_*, rendered by src/plan/doctor.rs): HOIST_APP, HOIST_CHECKS, HOIST_RUN_DIR,
# HOIST_STATE_DIR, HOIST_MIN_FREE_MB; optional HOIST_REGION, HOIST_NGINX_INSTALL,
# HOIST_NGINX_BIN, HOIST_NGINX_ARGS, HOIST_PARAMETER_PROBE, HOIST_PARAMETERS.

CHECKS_JSON=""
FAILED=()

# Records check $1 with status $2 (ok, warn or fail) and what was found ($3).
report() {
    CHECKS_JSON+="${CHECKS_JSON:+,}{\"name\":$(json_str "$1"),\"status\":\"$2\",\"detail\":$(json_str "$3")}"
    if [[ $2 == fail ]]; then FAILED+=("$1"); fi
}

# shellcheck disable=SC2317 # reached through the EXIT trap
doctor_exit() {
    local code=$? error=null
    trap '' INT TERM
    trap - EXIT
    set +e
    if [[ -n ${PROBE_DIR:-} ]]; then
        umount "$PROBE_DIR" 2>/dev/null
        rmdir "$PROBE_DIR" 2>/dev/null
    fi
    if [[ $STATUS != ok ]]; then
        [[ -n $REASON ]] || REASON="the script stopped with exit status $code${ERR_CMD:+ at line $ERR_LINE: $ERR_CMD}"
        error=$(json_str "$REASON")
        warn "$STATUS: $REASON"
    fi
    now_ms
    printf 'HOIST-DOCTOR {"app":%s,"checks":[%s],"time_ms":%s,"error":%s}\n' \
        "$(json_str "${HOIST_APP:-}")" "$CHECKS_JSON" "$NOW_MS" "$error"
    exit "$(exit_code)"
}

# The first line of $1, at most 200 bytes.
first_line() {
    local line=${1%%$'\n'*}
    printf '%s' "${line:0:200}"
}

# The first line of $2 that matches the extended regex $1, else its first line.
pick_line() {
    local line
    line=$(printf '%s\n' "$2" | grep -m1 -E "$1" || true)
    first_line "${line:-$2}"
}

check_bash() {
    if ((BASH_VERSINFO[0] >= 4)); then
        report bash ok "bash $BASH_VERSION"
    else
        report bash fail "bash $BASH_VERSION: hoist's scripts need bash 4 or later"
    fi
}

check_tool() {
    local tool=$1 why=$2 path
    # bash's `command -v` names a file it found but may not run: that one is missing too.
    if path=$(command -v "$tool") && [[ -x $path ]]; then
        report "$tool" ok "$path"
    else
        report "$tool" fail "$tool is not installed on this host ($why)"
    fi
}

check_docker() {
    local version root
    if ! command -v docker >/dev/null; then
        report docker fail "the docker CLI is not installed on this host"
    elif ! version=$(timeout 20 docker version --format '{{.Server.Version}}' 2>&1); then
        report docker fail "the Docker engine does not answer: $(first_line "$version")"
    elif [[ " ${HOIST_CHECKS[*]} " == *" disk "* ]]; then
        # Docker's root, for the disk check (`docker info` is slow: only when it is asked).
        root=$(timeout 20 docker info --format '{{.DockerRootDir}}' 2>/dev/null || true)
        DOCKER_ROOT=$root
        report docker ok "Docker $version${root:+, root $root}"
    else
        report docker ok "Docker $version"
    fi
}

check_aws() {
    local version region from
    if ! command -v aws >/dev/null; then
        report aws fail "the AWS CLI is not installed on this host (the host reads the run's secrets and logs in to ECR with it)"
        return 0
    fi
    version=$(timeout 20 aws --version 2>&1 || true)
    region=$(timeout 20 aws configure get region 2>/dev/null || true)
    if [[ -n ${HOIST_REGION:-} ]]; then
        from="region $HOIST_REGION (hoist passes it)"
    elif [[ -n $region ]]; then
        from="region $region (the CLI's configuration)"
    elif [[ -n ${AWS_REGION:-${AWS_DEFAULT_REGION:-}} ]]; then
        from="region ${AWS_REGION:-$AWS_DEFAULT_REGION} (the environment)"
    else
        report aws warn "$(first_line "$version"); no region: set \`region:\` in hoist.yaml (or AWS_REGION where hoist runs)"
        return 0
    fi
    report aws ok "$(first_line "$version"); $from"
}

check_tmpfs() {
    mkdir -p "$HOIST_RUN_DIR"
    if [[ $(stat -f -c %T "$HOIST_RUN_DIR") == tmpfs ]]; then
        report tmpfs ok "$HOIST_RUN_DIR is on tmpfs"
        return 0
    fi
    local out
    PROBE_DIR=$(mktemp -d "$HOIST_RUN_DIR/.doctor.XXXXXX")
    if out=$(mount -t tmpfs -o size=64k,mode=0700,nosuid,nodev,noexec hoist-doctor "$PROBE_DIR" 2>&1); then
        umount "$PROBE_DIR"
        report tmpfs ok "a tmpfs mounts under $HOIST_RUN_DIR"
    else
        report tmpfs fail "cannot mount a tmpfs under $HOIST_RUN_DIR, where secrets are written: $(first_line "$out")"
    fi
    rmdir "$PROBE_DIR"
    PROBE_DIR=""
}

check_nginx() {
    local bin=${HOIST_NGINX_BIN:-nginx} out version
    if ! command -v "$bin" >/dev/null; then
        if [[ ${HOIST_NGINX_INSTALL:-false} == true ]]; then
            report nginx warn "nginx is not installed: the deploy installs it (blue_green.install_proxy)"
        else
            report nginx fail "nginx is not installed on this host (blue-green routes through it; or set blue_green.install_proxy: true)"
        fi
        return 0
    fi
    version=$("$bin" -v 2>&1 || true)
    if out=$(timeout 20 "$bin" ${HOIST_NGINX_ARGS[@]+"${HOIST_NGINX_ARGS[@]}"} -t 2>&1); then
        report nginx ok "$(first_line "$version"); nginx -t passes"
    else
        report nginx fail "nginx -t fails: $(pick_line 'emerg|error|failed' "$out")"
    fi
}

# Free space under $2 (its nearest directory that exists), checked as $1.
check_free() {
    local name=$1 dir=$2 free_kb min_kb=$((HOIST_MIN_FREE_MB * 1024))
    while [[ ! -d $dir && $dir == /* && $dir != / ]]; do dir=$(dirname "$dir"); done
    if ! free_kb=$(df -Pk "$dir" 2>/dev/null | awk 'NR == 2 { print $4 }') || [[ ! $free_kb =~ ^[0-9]+$ ]]; then
        report "$name" warn "cannot read the free space under $dir"
    elif ((free_kb < min_kb)); then
        report "$name" fail "$((free_kb / 1024)) MB free under $dir (less than $HOIST_MIN_FREE_MB MB)"
    elif ((free_kb < 4 * min_kb)); then
        report "$name" warn "$((free_kb / 1024)) MB free under $dir"
    else
        report "$name" ok "$((free_kb / 1024)) MB free under $dir"
    fi
}

check_disk() {
    check_free disk "$HOIST_STATE_DIR"
    if [[ -n ${DOCKER_ROOT:-} ]]; then check_free disk-docker "$DOCKER_ROOT"; fi
}

check_clock() {
    local synced=""
    if command -v timedatectl >/dev/null; then
        synced=$(timeout 5 timedatectl show -p NTPSynchronized --value 2>/dev/null || true)
    fi
    case $synced in
        yes) report clock ok "synchronized (timedatectl)" ;;
        no) report clock warn "not synchronized (timedatectl): AWS refuses requests signed more than 5 minutes off" ;;
        *) report clock ok "no synchronization status here; hoist compares the clock with its own" ;;
    esac
}

# Whether the instance role may read parameter $1: an error other than ParameterNotFound
# (or, with $2 = must-exist, any error) says it may not. The value is read and dropped.
read_parameter() {
    local out
    if out=$(aws_retry ssm get-parameter ${HOIST_REGION:+--region "$HOIST_REGION"} --with-decryption \
        --name "$1" --query Parameter.Name --output text 2>&1 >/dev/null); then
        return 0
    fi
    if [[ $out == *ParameterNotFound* && ${2:-} != must-exist ]]; then return 0; fi
    PARAMETER_WHY=$(pick_line 'error|Error|denied' "$out")
    return 1
}

check_parameters() {
    local name denied=() read=0
    if ! command -v aws >/dev/null; then
        report parameters fail "the AWS CLI is not installed: the instance role's access cannot be checked"
        return 0
    fi
    PARAMETER_WHY=""
    if [[ -n ${HOIST_PARAMETER_PROBE:-} ]]; then
        if read_parameter "$HOIST_PARAMETER_PROBE"; then
            read=$((read + 1))
        else
            denied+=("${HOIST_PARAMETER_PROBE%/*}/: $PARAMETER_WHY")
        fi
    fi
    for name in ${HOIST_PARAMETERS[@]+"${HOIST_PARAMETERS[@]}"}; do
        if read_parameter "$name" must-exist; then
            read=$((read + 1))
        else
            denied+=("$name: $PARAMETER_WHY")
        fi
    done
    if ((${#denied[@]})); then
        report parameters fail "the instance role cannot read ${denied[*]}"
    else
        report parameters ok "the instance role reads the app's parameters ($read checked)"
    fi
}

begin_script doctor_exit
need HOIST_APP HOIST_RUN_DIR HOIST_STATE_DIR HOIST_MIN_FREE_MB
check_app
need_number HOIST_MIN_FREE_MB
if ! declare -p HOIST_CHECKS >/dev/null 2>&1 || ((${#HOIST_CHECKS[@]} == 0)); then
    finish invalid "parameter HOIST_CHECKS is empty"
fi
if ! declare -p HOIST_NGINX_ARGS >/dev/null 2>&1; then HOIST_NGINX_ARGS=(); fi
DOCKER_ROOT=""
PROBE_DIR=""
PARAMETER_WHY=""
# Every check runs, whatever the others found: the report names every problem at once.
set +e
for check in "${HOIST_CHECKS[@]}"; do
    case $check in
        bash) check_bash ;;
        docker) check_docker ;;
        flock) check_tool flock "every deploy holds the app's lock with it" ;;
        setsid) check_tool setsid "a deploy's watchdog restores the previous release with it when the deploy is killed" ;;
        curl) check_tool curl "health checks probe the app with it" ;;
        timeout) check_tool timeout "every engine call is bounded with it" ;;
        aws) check_aws ;;
        aws-cli) check_tool aws "the host reads the run's secrets and logs in to ECR with it" ;;
        tmpfs) check_tmpfs ;;
        nginx) check_nginx ;;
        disk) check_disk ;;
        clock) check_clock ;;
        parameters) check_parameters ;;
        *) finish invalid "parameter HOIST_CHECKS names an unknown check: '$check'" ;;
    esac
done
set -e
if ((${#FAILED[@]})); then
    fail "failed: ${FAILED[*]}"
fi
finish ok ""
