#!/usr/bin/env bash
# Prints the release notes of one version: its section of CHANGELOG.md (Keep a Changelog:
# `## [1.2.3] - 2026-12-07` up to the next `## ` heading), without the heading and without
# the blank lines around it (nor link definitions, `[1.2.3]: URL`). release.yml publishes them as the release's notes:
#
#   .github/release-notes.sh VERSION [CHANGELOG]     # VERSION: 1.2.3 or v1.2.3
#
# Exits 2, naming the file and the version, when the changelog has no section for it (or
# only an empty one): a release is not published without its notes.
set -euo pipefail

die() {
  printf 'release-notes.sh: %s\n' "$*" >&2
  exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || die "usage: release-notes.sh VERSION [CHANGELOG]"
version=${1#v}
changelog=${2:-$(dirname "$0")/../CHANGELOG.md}
[[ -f $changelog ]] || die "$changelog: no such file"

notes=$(awk -v v="$version" '
  /^## / {
    if (inside) exit
    heading = $0
    sub(/^## +/, "", heading)
    sub(/[[:space:]].*$/, "", heading)
    gsub(/[][]/, "", heading)
    if (heading == v) { inside = 1; next }
  }
  inside && !/^\[[^]]+\]: / { print }
' "$changelog" | sed -e '/./,$!d')
[[ -n $notes ]] ||
  die "$changelog has no section for $version (a heading \`## [$version] - YYYY-MM-DD\` with the changes under it)"
printf '%s\n' "$notes"
