#!/bin/bash
# requires: core state aws
# hoist's host library, image: the release's image on this host, pulled as HOIST_PULL says
# after a registry login with the host's own role (its token on the private tmpfs).

# The throwaway docker config of the registry login, and the token fetched in the background
# (start_login) while the secrets are read: the fetch's pid and the tmpfs file it writes.
DOCKER_CONFIG_DIR=""
LOGIN_PID=""
LOGIN_FILE=""
EXIT_CLEANUPS+=(remove_docker_config)

# shellcheck disable=SC2317 # a library: a script calls only some of its functions
{

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
    aws_retry ecr get-login-password ${HOIST_REGION:+--region "$HOIST_REGION"} >"$LOGIN_FILE" 2>"$LOGIN_FILE.err" &
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
            login=$(aws_retry ecr get-login-password ${HOIST_REGION:+--region "$HOIST_REGION"} |
                "${docker[@]}" login --username AWS --password-stdin "$HOIST_REGISTRY" 2>&1) ||
                fail "registry login to $HOIST_REGISTRY failed: $(tail -n 2 <<<"$login")"
        fi
    fi
    log "pulling $HOIST_IMAGE"
    local out
    out=$("${docker[@]}" pull --quiet "$HOIST_IMAGE" 2>&1) || fail "pulling $HOIST_IMAGE failed: $(tail -n 3 <<<"$out")"
    remove_docker_config
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

remove_docker_config() {
    if [[ -n $LOGIN_PID ]]; then
        # The fetch is a subshell (aws_retry) running the CLI: both go.
        local children
        children=$(pgrep -P "$LOGIN_PID" 2>/dev/null || true)
        kill "$LOGIN_PID" 2>/dev/null
        # shellcheck disable=SC2086 # one pid per word
        if [[ -n $children ]]; then kill $children 2>/dev/null; fi
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

}
