#!/usr/bin/env bash
# Records a published release in the action's tree, so that the action used at a commit sha
# or a branch installs exactly that release, checked against checksums the tree holds
# (action/install.sh), instead of building its checkout:
#
#   action/record-release.sh VERSION DIST
#
# DIST holds the release's tarballs, hoist-VERSION-<target>.tar.gz, as release.yml packs
# and publishes them. Writes, next to this script:
#   action/release.txt   VERSION
#   action/SHA256SUMS    the sha256 of each of those tarballs (sha256sum's format)
# release.yml runs it after publishing vVERSION and proposes the two files to main in a
# pull request: merged, every later commit of main installs vVERSION verified against them.
# The tag vVERSION itself cannot hold them (the tarballs are built from it), so a vX.Y.Z ref
# installs its release checked against that release's SHA256SUMS unless its tree records it.
set -euo pipefail

die() {
  printf 'record-release.sh: %s\n' "$*" >&2
  exit 2
}

[[ $# -eq 2 ]] || die "usage: record-release.sh VERSION DIST"
version=${1#v}
dist=$2
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] ||
  die "\`$1\` is not a release version (1.2.3)"
[[ -d $dist ]] || die "$dist is not a directory"
here=$(cd "$(dirname "$0")" && pwd)

shopt -s nullglob
tarballs=("$dist/hoist-$version-"*.tar.gz)
[[ ${#tarballs[@]} -gt 0 ]] || die "$dist holds no hoist-$version-*.tar.gz"

sums=$(
  cd "$dist"
  for t in "${tarballs[@]}"; do
    sha256sum "$(basename "$t")"
  done
)
printf '%s\n' "$sums" >"$here/SHA256SUMS.new"
{
  echo "# The hoist release the action installs when used at a commit sha or a branch, checked"
  echo "# against action/SHA256SUMS (action/install.sh). Written by action/record-release.sh."
  echo "$version"
} >"$here/release.txt.new"
mv "$here/SHA256SUMS.new" "$here/SHA256SUMS"
mv "$here/release.txt.new" "$here/release.txt"
printf 'recorded hoist %s:\n%s\n' "$version" "$sums"
