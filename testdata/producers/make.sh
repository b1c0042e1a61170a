#!/usr/bin/env bash
# Builds one tiny image with buildah (no base image, no RUN: files copied in,
# then deleted through `buildah mount`, so the second layer has real
# whiteouts and a hard link) and exports it through real producers into the
# layouts of containers/image's directory transport, which mlsize reads as
# `dir` inputs:
#
#   skopeo-dir/          skopeo copy ... dir:            OCI manifest (kept from the store), plain tar layers
#   skopeo-dir-v2s2-gz/  skopeo copy --format v2s2 --dest-compress ... dir:   Docker schema 2, gzip layers
#   skopeo-dir-v2s1/     skopeo copy --format v2s1 ... dir:   Docker schema 1 (fsLayers, v1Compatibility, signed)
#   podman-docker-dir/   podman save --format docker-dir      Docker schema 2, plain tar layers
#
#   apt-get install -y podman skopeo      # Debian 12: buildah 1.28.2, podman 4.3.1, skopeo 1.9.3
#   bash testdata/producers/make.sh       # as root (buildah mount with the vfs driver)
#
# The outputs are committed; tests/producers.rs reads them without any of these
# tools. Not byte-reproducible: buildah stamps history entries with the wall
# clock, so blob digests change with every run (the figures do not).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TZ=UTC LC_ALL=C
umask 022
for tool in buildah podman skopeo; do
  command -v "$tool" >/dev/null || { echo "make.sh: missing $tool (apt-get install -y podman skopeo)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "make.sh: run as root (buildah mount)" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/mlsize-producers.XXXXXX")
S="--root $W/store --runroot $W/run --storage-driver vfs"
B="buildah $S"
cleanup() {
  $B rm --all >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# fill FILE BYTES CHAR: BYTES copies of CHAR.
fill() { head -c "$2" /dev/zero | tr '\0' "$3" > "$1"; }

C="$W/ctx"
mkdir -p "$C/data/gone/deep"
fill "$C/data/keep.bin" 3000 k
fill "$C/data/gone/x.bin" 2000 x
fill "$C/data/gone/deep/y.bin" 1000 y
fill "$C/data/old.txt" 500 o

# Layer 1: COPY data /data (buildah records the copy as an empty_layer entry
# and the commit as "/bin/sh"), and an ENV entry without a layer.
c=$($B from scratch)
$B copy -q --add-history "$c" "$C/data" /data >/dev/null
$B config --env A=b --add-history "$c"
$B commit -q --timestamp 0 "$c" fx:1 >/dev/null
$B rm "$c" >/dev/null

# Layer 2: delete a directory and a file, write a file and hard-link it.
c=$($B from fx:1)
m=$($B mount "$c")
rm -r "$m/data/gone" "$m/data/old.txt"
fill "$m/data/new.bin" 700 n
ln "$m/data/new.bin" "$m/data/new.link"
$B umount "$c" >/dev/null
$B config --created-by "/bin/sh -c rm -r /data/gone /data/old.txt && head -c 700 /dev/zero | tr '\\0' n > /data/new.bin && ln /data/new.bin /data/new.link" "$c"
$B commit -q --timestamp 0 "$c" fx:2 >/dev/null
$B rm "$c" >/dev/null

SRC="containers-storage:[vfs@$W/store+$W/run]localhost/fx:2"
O="$W/out"
mkdir -p "$O"
skopeo copy -q "$SRC" "dir:$O/skopeo-dir"
skopeo copy -q --format v2s2 --dest-compress "$SRC" "dir:$O/skopeo-dir-v2s2-gz"
skopeo copy -q --format v2s1 "$SRC" "dir:$O/skopeo-dir-v2s1"
podman $S save -q --format docker-dir -o "$O/podman-docker-dir" localhost/fx:2

for d in skopeo-dir skopeo-dir-v2s2-gz skopeo-dir-v2s1 podman-docker-dir; do
  rm -rf "${HERE:?}/$d"
  mv "$O/$d" "$HERE/$d"
done
du -sh "$HERE"/*/ | sed "s|$HERE/||"
