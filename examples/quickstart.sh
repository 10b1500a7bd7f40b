#!/usr/bin/env bash
# The quick start: builds hoist as you, deploys examples/hello on this machine with the local
# transport (the same script an EC2 instance runs over SSM), and asks the app its version.
# Run it as yourself, not under sudo:
#
#   ./examples/quickstart.sh            # build, deploy, curl http://127.0.0.1:8080/version
#   ./examples/quickstart.sh --remove   # remove the app: its containers, images, state
#
# Needs Linux, a Docker engine, curl, the Rust toolchain on your PATH, port 8080 free (the
# example publishes the app there), and sudo: only the deploy runs as root (its script takes a
# lock under /run/hoist, mounts a tmpfs for the env file and talks to Docker, as an SSM
# agent's root does), and so do the Docker commands that check and remove. Run as root (a CI
# container), it needs no sudo. The build (target/, or $CARGO_TARGET_DIR) stays yours.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
app=hello
port=8080
config=examples/hello/hoist.yaml

die() {
  printf 'quickstart: %s\n' "$*" >&2
  exit 2
}
step() { printf '\n==> %s\n' "$*"; }

# Root's commands: through sudo, unless this is root already.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# What the quick start made: the app's containers (live and retained), its images and the
# deploy script's state on this host. Not the base image (other builds on this machine may
# start FROM it): it is named, with the command that removes it.
remove() {
  local ids images
  ids=$(as_root docker ps -aq --filter "label=hoist.app=$app")
  if [ -n "$ids" ]; then
    step "removing the $app containers"
    # shellcheck disable=SC2086 # one id a word
    as_root docker rm -f $ids >/dev/null
  fi
  images=$(as_root docker images --format '{{.Repository}}:{{.Tag}}' "$app")
  if [ -n "$images" ]; then
    step "removing the $app images"
    # shellcheck disable=SC2086 # one image a word
    as_root docker rmi $images >/dev/null
  fi
  if as_root test -e "/var/lib/hoist/$app" -o -e "/run/hoist/$app" -o -e "/run/hoist/$app.lock"; then
    step "removing the deploy's state (/var/lib/hoist/$app, /run/hoist/$app)"
    as_root umount "/run/hoist/$app" 2>/dev/null || true
    as_root rm -rf "/var/lib/hoist/$app" "/run/hoist/$app" "/run/hoist/$app.lock"
  fi
  echo
  echo "Removed the app's containers, images and state. Left: the base image busybox:1.35"
  echo "(sudo docker rmi busybox:1.35 removes it), and your build in ${CARGO_TARGET_DIR:-target}/"
  echo "(cargo clean removes it)."
}

case ${1:-} in
  "") ;;
  --remove) ;;
  *) die "usage: $0 [--remove]" ;;
esac

# As yourself: under sudo, cargo would build as root (sudo drops ~/.cargo/bin from PATH on
# a rustup machine, and a root-owned target/ is left behind).
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  die "run it as yourself, without sudo: $0 ${1:-}
(it builds hoist as you and runs only the deploy through sudo)"
fi
[ "$(uname -s)" = Linux ] || die "Linux only: the deploy script runs as an EC2 host's does"
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 ||
    die "sudo is not installed: the deploy runs as root (or run this as root)"
fi
command -v docker >/dev/null 2>&1 || die "docker is not installed: install Docker (or docker.io)"
as_root docker info >/dev/null 2>&1 ||
  die "no Docker engine answers (docker info, as root): start it, e.g. sudo systemctl start docker"

if [ "${1:-}" = --remove ]; then
  remove
  exit 0
fi

command -v curl >/dev/null 2>&1 || die "curl is not installed"
command -v git >/dev/null 2>&1 || die "git is not installed"
# The same check as tests/run's: cargo on this user's PATH.
command -v cargo >/dev/null 2>&1 ||
  die "cargo is not on your PATH: install Rust with rustup, or add ~/.cargo/bin to PATH"

# Port 8080: free, or the app's own from an earlier run (the deploy replaces it).
ours=$(as_root docker ps -q --filter "label=hoist.app=$app" --filter "publish=$port")
if [ -z "$ours" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  die "port $port is in use (sudo ss -ltnp 'sport = :$port' says by what): the example publishes the app there; free it first"
fi

# No registry may be reachable: make the example's base image from Debian's busybox-static.
step "the base image busybox:1.35"
as_root bash tests/support/base-image.sh

step "cargo build (as $(id -un))"
cargo build --quiet --bin hoist
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in
  /*) ;;
  *) target_dir=$repo/$target_dir ;;
esac
hoist=$target_dir/debug/hoist

# The example declares one secret; hoist reads its value from its own environment.
export HELLO_API_TOKEN="${HELLO_API_TOKEN:-demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')}"
# hoist names the release after the git commit; git run as root refuses a checkout another
# user owns ("dubious ownership"): for the deploy, a git config that trusts this checkout
# (and nothing else) stands in for root's own.
GIT_CONFIG_GLOBAL=$(mktemp "${TMPDIR:-/tmp}/hoist-quickstart-gitconfig.XXXXXX")
trap 'rm -f "$GIT_CONFIG_GLOBAL"' EXIT
git config --file "$GIT_CONFIG_GLOBAL" safe.directory "$repo"
export GIT_CONFIG_GLOBAL

step "hoist deploy --local -f $config (as root)"
if [ "$(id -u)" -eq 0 ]; then
  "$hoist" deploy --local -f "$config"
else
  sudo --preserve-env=HELLO_API_TOKEN,GIT_CONFIG_GLOBAL "$hoist" deploy --local -f "$config"
fi

echo
echo "http://127.0.0.1:$port/version answers: $(curl -fsS "http://127.0.0.1:$port/version")"
echo "Run this again: the demo secret is new each time, so a new container replaces this one"
echo "(which stays stopped for rollback); with the same HELLO_API_TOKEN and no new commit the"
echo "deploy reports the host unchanged (--force replaces it anyway);"
echo "see what would run with: $hoist plan -f $config"
echo
echo "Remove what it made (containers, images, state): ./examples/quickstart.sh --remove"
