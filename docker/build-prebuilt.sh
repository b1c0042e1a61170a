#!/bin/sh
# Builds the mlsize container image from a prebuilt static binary, offline:
#   docker/build-prebuilt.sh BINARY TAG [CA_BUNDLE]
# BINARY must be static (no dynamic loader in a scratch image), e.g. from
#   RUSTFLAGS='-C target-feature=+crt-static' \
#     cargo build --locked --release --target x86_64-unknown-linux-gnu
# CA_BUNDLE defaults to /etc/ssl/certs/ca-certificates.crt (Debian's
# ca-certificates). Uses `docker` as configured (DOCKER_HOST, DOCKER_BUILDKIT).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 BINARY TAG [CA_BUNDLE]" >&2; exit 2; }
binary=$1 tag=$2 ca=${3:-/etc/ssl/certs/ca-certificates.crt}
here=$(cd "$(dirname "$0")" && pwd)
if file "$binary" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "$binary is dynamically linked: a scratch image has no loader nor libc" >&2
  exit 2
fi
ctx=$(mktemp -d "${TMPDIR:-/tmp}/mlsize-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/w" "$ctx/rootfs/tmp"
chmod 0755 "$ctx/rootfs" "$ctx/rootfs/etc" "$ctx/rootfs/etc/ssl" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/w"
chmod 1777 "$ctx/rootfs/tmp"
cp "$binary" "$ctx/rootfs/mlsize"
chmod 0755 "$ctx/rootfs/mlsize"
cp "$here/passwd" "$here/group" "$ctx/rootfs/etc/"
cp "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
cp "$here/Dockerfile.prebuilt" "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx"
