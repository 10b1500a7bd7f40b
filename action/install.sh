#!/usr/bin/env bash
# Installs hoist for the GitHub Action (action.yml), in two steps:
#
#   install.sh resolve   decides what to install; writes kind, version, target and dir to
#                        $GITHUB_OUTPUT (the cache step between the two is keyed on them)
#   install.sh install   installs it, puts `hoist` on $GITHUB_PATH, prints `hoist --version`
#
# What is installed, in order: the `path` input (a local binary: tests, self-hosted runners);
# else the prebuilt release binary for the runner's OS and architecture, downloaded from the
# action's own repository with SHA256SUMS and verified against it (a mismatch fails the step:
# never a fallback); else, when there is no prebuilt binary for the platform or the version
# is not a release, the action's own checkout built with `cargo install --locked`.
#
# Every input arrives in the environment (action.yml passes them through `env:`, never into
# this script's text):
#   HOIST_INPUT_PATH, HOIST_INPUT_VERSION   the action's `path` and `version` inputs
#   HOIST_ACTION_REPOSITORY, HOIST_ACTION_REF, HOIST_SERVER_URL
#                                           github.action_repository, .action_ref, .server_url
#   HOIST_KIND, HOIST_VERSION, HOIST_TARGET, HOIST_DIR, HOIST_REPOSITORY
#                                           (install) what resolve decided
# and the runner's own: RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, RUNNER_TOOL_CACHE, GITHUB_PATH,
# GITHUB_OUTPUT, GITHUB_ACTION_PATH.
set -euo pipefail

die() {
  printf '::error title=hoist install::%s\n' "$*"
  exit 1
}
note() { printf '%s\n' "$*"; }

# The Rust target of the prebuilt binary for this runner, or nothing.
prebuilt_target() {
  case ${RUNNER_OS:-}/${RUNNER_ARCH:-} in
    Linux/X64) echo x86_64-unknown-linux-gnu ;;
    Linux/ARM64) echo aarch64-unknown-linux-gnu ;;
    *) echo "" ;;
  esac
}

# The action's repository and ref. In a composite action github.action_repository and
# github.action_ref may be empty; the runner checks remote actions out at
# .../_actions/OWNER/REPO/REF, which says the same.
action_origin() {
  repository=${HOIST_ACTION_REPOSITORY:-}
  ref=${HOIST_ACTION_REF:-}
  if [[ -z $repository && ${GITHUB_ACTION_PATH:-} =~ /_actions/([^/]+)/([^/]+)/([^/]+)$ ]]; then
    repository=${BASH_REMATCH[1]}/${BASH_REMATCH[2]}
    ref=${BASH_REMATCH[3]}
  fi
}

release_pattern='^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$'

# Sets `version` to the tag GitHub's /releases/latest redirects to, without its leading v.
latest_release() {
  local url
  url=$(curl -fsSL --retry 3 -o /dev/null -w '%{url_effective}' \
    "$HOIST_SERVER_URL/$repository/releases/latest") ||
    die "cannot ask $HOIST_SERVER_URL/$repository for its latest release"
  local tag=${url##*/releases/tag/}
  [[ $url == */releases/tag/* && $tag =~ $release_pattern ]] ||
    die "$repository has no release to install (latest led to $url); set the version input, or version: source to build the action's checkout"
  version=${tag#v}
}

resolve() {
  local kind version="" target dir=""
  target=$(prebuilt_target)
  action_origin
  if [[ -n ${HOIST_INPUT_PATH:-} ]]; then
    kind=path
  else
    local wanted=${HOIST_INPUT_VERSION:-}
    if [[ -z $wanted ]]; then
      if [[ $ref =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        wanted=$ref
      elif [[ -z $repository ]]; then
        wanted=source # a local action (uses: ./): nothing to download
      else
        wanted=latest
      fi
    fi
    if [[ $wanted == source || ($wanted == "$ref" && ! $wanted =~ $release_pattern) ]]; then
      kind=source
    elif [[ $wanted == latest ]]; then
      kind=release
      latest_release
    elif [[ $wanted =~ $release_pattern ]]; then
      kind=release
      version=${wanted#v}
    else
      die "version \`$wanted\` is neither a release (1.2.3 or v1.2.3), latest, source, nor the action's own ref"
    fi
    if [[ $kind == release && -z $target ]]; then
      note "no prebuilt hoist for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: building the action's checkout"
      kind=source
    fi
    if [[ $kind == release ]]; then
      [[ -n $repository ]] || die "cannot tell which repository to download hoist $version from (github.action_repository is empty)"
      dir=$RUNNER_TOOL_CACHE/hoist/$version/$target
    fi
  fi
  {
    echo "kind=$kind"
    echo "version=$version"
    echo "target=$target"
    echo "dir=$dir"
    echo "repository=$repository"
  } >>"$GITHUB_OUTPUT"
  note "hoist: $kind${version:+ $version}${target:+ for $target}"
}

# Downloads $1 to $2; prints the HTTP status (000 when there was no answer).
fetch() {
  curl -sSL --retry 3 -o "$2" -w '%{http_code}' "$1" || true
}

# Installs the release HOIST_VERSION for HOIST_TARGET into HOIST_DIR (the tool cache, which
# the cache step may have restored): the tarball is verified against the release's
# SHA256SUMS every time, also when it came from the cache. Sets `binary`, left empty when
# the release has no binary for this platform.
install_release() {
  local version=$HOIST_VERSION target=$HOIST_TARGET dir=$HOIST_DIR
  local asset="hoist-$version-$target.tar.gz"
  local base="$HOIST_SERVER_URL/$HOIST_REPOSITORY/releases/download/v$version"
  local work
  work=$(mktemp -d "$RUNNER_TEMP/hoist-install.XXXXXX")
  local code
  code=$(fetch "$base/SHA256SUMS" "$work/SHA256SUMS")
  [[ $code == 200 ]] || die "cannot download $base/SHA256SUMS (HTTP $code): is v$version a hoist release?"
  local expected
  expected=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1 }' "$work/SHA256SUMS")
  if [[ -z $expected ]]; then
    note "release v$version has no $asset"
    return 0
  fi
  [[ $expected =~ ^[0-9a-f]{64}$ ]] || die "SHA256SUMS of v$version lists $asset with a malformed checksum"
  mkdir -p "$dir"
  if [[ -f $dir/$asset ]]; then
    note "using $asset from the tool cache"
  else
    code=$(fetch "$base/$asset" "$work/$asset")
    [[ $code == 200 ]] || die "cannot download $base/$asset (HTTP $code)"
    mv "$work/$asset" "$dir/$asset"
  fi
  local actual
  actual=$(sha256sum "$dir/$asset" | awk '{ print $1 }')
  if [[ $actual != "$expected" ]]; then
    rm -f "$dir/$asset"
    die "checksum mismatch for $asset: SHA256SUMS of v$version says $expected, the file is $actual; refusing to install it"
  fi
  note "verified $asset: sha256 $actual"
  tar -xzf "$dir/$asset" -C "$work" --no-same-owner
  local extracted="$work/hoist-$version-$target/hoist"
  [[ -f $extracted ]] || die "$asset does not hold hoist-$version-$target/hoist"
  mkdir -p "$dir/bin"
  install -m 0755 "$extracted" "$dir/bin/hoist"
  rm -rf "$work"
  binary=$dir/bin/hoist
}

# Builds the action's own checkout; sets `binary`.
install_source() {
  command -v cargo >/dev/null ||
    die "building hoist from source needs cargo on the runner (or use a release, or the path input)"
  local root="$RUNNER_TEMP/hoist-source"
  note "building hoist from $GITHUB_ACTION_PATH (cargo install --locked)"
  cargo install --locked --path "$GITHUB_ACTION_PATH" --root "$root" ||
    die "cargo install of $GITHUB_ACTION_PATH failed"
  binary=$root/bin/hoist
}

install_hoist() {
  local kind=${HOIST_KIND:?resolve runs first}
  binary=
  case $kind in
    path)
      binary=$HOIST_INPUT_PATH
      [[ $binary == /* ]] || binary=$PWD/$binary
      [[ -f $binary && -x $binary ]] || die "path: $HOIST_INPUT_PATH is not an executable file"
      ;;
    release)
      install_release
      if [[ -z $binary ]]; then
        note "no prebuilt hoist $HOIST_VERSION for $HOIST_TARGET: building the action's checkout"
        install_source
      fi
      ;;
    source) install_source ;;
    *) die "unknown kind $kind" ;;
  esac
  # `hoist` on PATH whatever the binary's own name: a directory of our own holding a link.
  local bin="$RUNNER_TEMP/hoist-bin"
  mkdir -p "$bin"
  ln -sfn "$binary" "$bin/hoist"
  local said
  said=$("$bin/hoist" --version) || die "$binary does not run"
  if [[ -n ${HOIST_VERSION:-} && $said != "hoist $HOIST_VERSION" ]]; then
    die "wanted hoist $HOIST_VERSION, $binary says \`$said\`"
  fi
  echo "$bin" >>"$GITHUB_PATH"
  note "$said ($binary)"
}

case ${1:-} in
  resolve) resolve ;;
  install) install_hoist ;;
  *) die "usage: install.sh resolve|install" ;;
esac
