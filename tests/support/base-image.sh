#!/usr/bin/env bash
# Makes the base image the example and the tests build FROM, without any registry: a
# `docker import` of a tiny root filesystem holding Debian's statically linked busybox.
# Idempotent: does nothing when the image exists. Usage: base-image.sh [image-tag]
set -euo pipefail

tag=${1:-busybox:1.35}
if docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi

busybox=/bin/busybox
is_static() { [[ -x $busybox ]] && ! ldd "$busybox" >/dev/null 2>&1; }
if ! is_static; then
  echo "base-image: installing Debian's busybox-static" >&2
  apt-get install -y -qq busybox-static >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq busybox-static >/dev/null; }
fi
is_static || { echo "base-image: $busybox is not a static busybox; install Debian's busybox-static" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,www,root,var/www}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] && continue
  ln -sf /bin/busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/sh"]' \
  --message "busybox from Debian's busybox-static, imported by hoist's base-image.sh" \
  - "$tag" >/dev/null
echo "base-image: made $tag" >&2
