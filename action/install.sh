#!/usr/bin/env bash
# Installs hoist for the GitHub Action (action.yml), in two steps:
#
#   install.sh resolve   decides what to install; writes kind, version, target and dir to
#                        $GITHUB_OUTPUT (the cache step between the two is keyed on them)
#   install.sh install   installs it, puts `hoist` on $GITHUB_PATH, prints `hoist --version`
#
# What is installed is what the action is pinned to, never more:
#   - the `path` input: that local binary (tests, self-hosted runners);
#   - the `version` input, or else the action's ref when it is a vX.Y.Z tag: that release's
#     prebuilt binary for the runner's OS and architecture;
#   - else (the action used at a commit sha or a branch), the release the action's own tree
#     records in action/release.txt, checked against the checksums the tree holds in
#     action/SHA256SUMS; a tree that records none for this platform, and a local action
#     (uses: ./), has its own checkout built (`cargo install --locked --path
#     $GITHUB_ACTION_PATH`);
#   - `version: latest` only when asked for by name, with a warning: it follows whatever was
#     released last, not the action's pin.
# A release's tarball is checked against action/SHA256SUMS whenever the action's tree
# records that version (the release's own SHA256SUMS is then not even fetched), else against
# the release's SHA256SUMS. A mismatch fails the step: never a fallback to anything.
# action/release.txt and action/SHA256SUMS are written by action/record-release.sh, which
# release.yml runs after publishing a release (see there).
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

# The release the action's tree records (action/release.txt, written with action/SHA256SUMS
# by action/record-release.sh when a release is published): sets `tree_version`, empty when
# the tree records none. A record that is malformed or half there fails: it is never ignored.
tree_release() {
  tree_version=
  local dir=${GITHUB_ACTION_PATH:?}/action
  [[ -f $dir/release.txt || -f $dir/SHA256SUMS ]] || return 0
  [[ -f $dir/release.txt && -f $dir/SHA256SUMS ]] ||
    die "the action's tree has only one of action/release.txt and action/SHA256SUMS: a release is recorded with both"
  tree_version=$(grep -v -e '^#' -e '^[[:space:]]*$' "$dir/release.txt" | head -n 1 | tr -d '[:space:]')
  [[ $tree_version =~ $release_pattern ]] ||
    die "action/release.txt does not hold a release version (1.2.3): \`$tree_version\`"
  tree_version=${tree_version#v}
}

# The checksum action/SHA256SUMS holds for the tarball $1, or nothing.
tree_checksum() {
  local sums=${GITHUB_ACTION_PATH:?}/action/SHA256SUMS
  [[ -f $sums ]] || return 0
  awk -v f="$1" '$2 == f || $2 == "*" f { print $1; exit }' "$sums"
}

resolve() {
  local kind version="" target dir=""
  target=$(prebuilt_target)
  action_origin
  if [[ -n ${HOIST_INPUT_PATH:-} ]]; then
    kind=path
  else
    local wanted=${HOIST_INPUT_VERSION:-} tree_version
    tree_release
    if [[ -z $wanted ]]; then
      if [[ $ref =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
        wanted=$ref
      elif [[ -n $repository && -n $tree_version && -n $target &&
        -n $(tree_checksum "hoist-$tree_version-$target.tar.gz") ]]; then
        wanted=$tree_version
        note "the action at ${ref:-its checkout} records hoist $tree_version (action/release.txt), checked against action/SHA256SUMS"
      else
        # A sha or a branch with no release recorded for this platform, or a local action
        # (uses: ./, nothing to download from): the checkout itself, never whatever was
        # released last.
        wanted=source
        if [[ -z $repository ]]; then
          note "a local action: building its checkout"
        elif [[ -n $tree_version ]]; then
          note "action/SHA256SUMS records no hoist $tree_version for ${target:-${RUNNER_OS:-?}/${RUNNER_ARCH:-?}}: building the action's checkout"
        else
          note "the action at ${ref:-its checkout} records no release (action/release.txt): building the action's checkout"
        fi
      fi
    fi
    if [[ $wanted == source || ($wanted == "$ref" && ! $wanted =~ $release_pattern) ]]; then
      kind=source
    elif [[ $wanted == latest ]]; then
      kind=release
      latest_release
      printf '::warning title=hoist install::version: latest installs the last hoist released (v%s), not what the action is pinned to (%s); pin a version, or drop the input to install what the action records\n' \
        "$version" "${ref:-its checkout}"
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
# the cache step may have restored). The tarball is verified every time, also when it came
# from the cache: against action/SHA256SUMS when the action's tree records this version
# (the release's own SHA256SUMS is not fetched: whoever can replace a release's assets can
# replace that file too), else against the release's SHA256SUMS. Sets `binary`, left empty
# when the release has no binary for this platform.
install_release() {
  local version=$HOIST_VERSION target=$HOIST_TARGET dir=$HOIST_DIR
  local asset="hoist-$version-$target.tar.gz"
  local base="$HOIST_SERVER_URL/$HOIST_REPOSITORY/releases/download/v$version"
  local work tree_version expected="" against
  work=$(mktemp -d "$RUNNER_TEMP/hoist-install.XXXXXX")
  tree_release
  if [[ $tree_version == "$version" ]]; then
    expected=$(tree_checksum "$asset")
    [[ -n $expected ]] ||
      die "action/SHA256SUMS records hoist $version but not $asset: refusing to install it unchecked"
    against="action/SHA256SUMS (the action's tree)"
  else
    local code
    code=$(fetch "$base/SHA256SUMS" "$work/SHA256SUMS")
    [[ $code == 200 ]] || die "cannot download $base/SHA256SUMS (HTTP $code): is v$version a hoist release?"
    expected=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1 }' "$work/SHA256SUMS")
    if [[ -z $expected ]]; then
      note "release v$version has no $asset"
      return 0
    fi
    against="SHA256SUMS of v$version"
  fi
  [[ $expected =~ ^[0-9a-f]{64}$ ]] || die "$against lists $asset with a malformed checksum"
  mkdir -p "$dir"
  if [[ -f $dir/$asset ]]; then
    note "using $asset from the tool cache"
  else
    local code
    code=$(fetch "$base/$asset" "$work/$asset")
    [[ $code == 200 ]] || die "cannot download $base/$asset (HTTP $code)"
    mv "$work/$asset" "$dir/$asset"
  fi
  local actual
  actual=$(sha256sum "$dir/$asset" | awk '{ print $1 }')
  if [[ $actual != "$expected" ]]; then
    rm -f "$dir/$asset"
    rm -rf "$work"
    die "checksum mismatch for $asset: $against says $expected, the file is $actual; refusing to install it"
  fi
  note "verified $asset against $against: sha256 $actual"
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
