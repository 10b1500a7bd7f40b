#!/usr/bin/env bash
# The quick start: builds hoist, deploys examples/hello on this machine with the local
# transport (the same script an EC2 instance runs over SSM), and asks the app its version.
# Needs root (the deploy script locks, mounts a tmpfs and talks to Docker as an SSM agent
# would), a Docker engine, curl, and the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "quickstart: run as root (sudo $0): the deploy script runs as root, as under SSM" >&2
  exit 2
fi

# No registry may be reachable: make the example's base image from Debian's busybox-static.
bash tests/support/base-image.sh

# The example declares one secret; hoist reads its value from its own environment.
export HELLO_API_TOKEN="${HELLO_API_TOKEN:-demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')}"

cargo build --quiet
"${CARGO_TARGET_DIR:-target}/debug/hoist" deploy --local -f examples/hello/hoist.yaml

port=8080
echo
echo "http://127.0.0.1:$port/version answers: $(curl -fsS "http://127.0.0.1:$port/version")"
echo "Run this again: the demo secret is new each time, so a new container replaces this one"
echo "(which stays stopped for rollback); with the same HELLO_API_TOKEN and no new commit the"
echo "deploy reports the host unchanged (--force replaces it anyway);"
echo "see what would run with: ${CARGO_TARGET_DIR:-./target}/debug/hoist plan -f examples/hello/hoist.yaml"
