#!/usr/bin/env bash
# Builds testdata/builders/Dockerfile with two real builders and keeps the
# history of the images they write (the config's `history` array):
#
#   classic.history.json          Docker Engine classic builder (DOCKER_BUILDKIT=0)
#   buildah-layers.history.json   buildah bud --layers (a layer per instruction)
#   buildah.history.json          buildah bud (one layer for the whole stage)
#
#   apt-get install -y docker.io podman busybox-static python3   # Debian 12: docker 20.10, buildah 1.28
#   bash testdata/builders/make.sh                                  # as root
#
# Starts its own dockerd (vfs storage, unix socket in a temp dir, no iptables,
# no bridge) and buildah store in the temp dir, and stops/removes them at the
# end. The base image is busybox-static's /bin/busybox with an sh symlink,
# imported with `docker import` / `podman import`. The outputs are committed;
# src/history/dockerfile.rs tests read them, nothing needs these tools.
# History timestamps and content hashes change with every run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LC_ALL=C
umask 022
for tool in dockerd docker buildah podman python3 curl; do
  command -v "$tool" >/dev/null || { echo "make.sh: missing $tool" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "make.sh: missing /bin/busybox (apt-get install busybox-static)" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/mlsize-builders.XXXXXX")
DPID=
B="buildah --root $W/bstore --runroot $W/brun --storage-driver vfs"
cleanup() {
  if [ -n "$DPID" ]; then kill -TERM "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
  $B rm --all >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT

# Base image rootfs: busybox and sh.
mkdir -p "$W/rootfs/bin"
cp /bin/busybox "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/sh"
tar -C "$W/rootfs" -cf "$W/base.tar" .

# Build context.
C="$W/ctx"
mkdir -p "$C/data/sub" "$C/t"
cp "$HERE/Dockerfile" "$C/"
head -c 3000 /dev/zero | tr '\0' m > "$C/model.bin"
echo a > "$C/data/a.txt"
echo b > "$C/data/sub/b.txt"
echo c1 > "$C/c1.txt"
echo c2 > "$C/c2.txt"
echo 'a b' > "$C/a b.txt"
echo in-tar > "$C/t/in.txt"
tar -C "$C/t" -cf "$C/local.tar" in.txt
rm -r "$C/t"

# history [KEY] < JSON > OUT: the history array of an image config (under
# KEY, for `buildah inspect`), one entry a line.
history() {
  python3 -c '
import json, sys
c = json.load(sys.stdin)
for k in sys.argv[1:]:
    c = c[k]
print("[\n" + ",\n".join(json.dumps(e, sort_keys=True) for e in c["history"]) + "\n]")' "$@"
}

# Classic builder.
S="$W/docker.sock"
dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
  -H "unix://$S" --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/docker.pid" \
  >"$W/dockerd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
  curl -sf --unix-socket "$S" http://d/_ping >/dev/null 2>&1 && break
  sleep 0.1
done
D="docker -H unix://$S"
$D import - base:x <"$W/base.tar" >/dev/null
(cd "$C" && DOCKER_BUILDKIT=0 $D build -q -t classic:x . 2>/dev/null >/dev/null)
curl -sf --unix-socket "$S" http://d/images/classic:x/json >/dev/null
mkdir "$W/save"
curl -sf --unix-socket "$S" http://d/images/classic:x/get | tar -C "$W/save" -x
cfg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Config"])' "$W/save/manifest.json")
history <"$W/save/$cfg" >"$HERE/classic.history.json"
dockerd_version=$(dockerd --version)
kill -TERM "$DPID"; wait "$DPID" || true; DPID=

# buildah, with and without --layers.
podman --root "$W/bstore" --runroot "$W/brun" --storage-driver vfs import -q "$W/base.tar" base:x >/dev/null
(cd "$C" && $B bud -q --layers --isolation chroot -t layers:x . >/dev/null)
$B inspect --type image layers:x | history Docker >"$HERE/buildah-layers.history.json"
(cd "$C" && $B bud -q --isolation chroot -t squashed:x . >/dev/null)
$B inspect --type image squashed:x | history Docker >"$HERE/buildah.history.json"

echo "written with: $dockerd_version; $(buildah --version)"
