#!/usr/bin/env bash
# Builds tiny *real* container image fixtures with real writers (umoci + skopeo
# from Debian), then recomputes expected.json / EXPECTED.md from them.
#
#   apt-get install -y umoci skopeo zstd      # Debian 12: umoci 0.4.7, skopeo 1.9.3
#   bash testdata/real/make.sh                # as root (umoci unpack/repack keep uid 0)
#
# The outputs are committed; tests only read them, nothing needs these tools.
#
# Outputs (all in this directory):
#   oci-dir/               OCI image layout written by umoci (gzip layers), tag "1"
#   real-docker.tar        skopeo docker-archive (docker-save format, uncompressed layers)
#   real-docker.tar.gz     whole-archive gzip of real-docker.tar (gzip -n -9)
#   real-oci-gzip.tar      skopeo oci-archive, gzip layers
#   real-oci-zstd.tar      skopeo oci-archive, zstd layers
#   oci-dir-truncated/     umoci 0.4.7 `insert` bug: layer tar cut mid-block
#   expected.json, EXPECTED.md   written by compute_expected.py
#
# Idempotent: every output is rebuilt in a temp dir and then replaces the old
# one. Deterministic where the tools allow: file contents, mtimes, history and
# config timestamps are fixed, so umoci's blobs, the docker-archive and its .gz
# are byte-identical between runs. skopeo's oci-archives stamp members with the
# wall clock; the previous file is kept when only those mtimes differ.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TZ=UTC LC_ALL=C
umask 022

for tool in umoci skopeo zstd python3 gzip; do
  command -v "$tool" >/dev/null || { echo "make.sh: missing $tool (apt-get install -y umoci skopeo zstd)" >&2; exit 1; }
done

[ "$(id -u)" = 0 ] || { echo "make.sh: run as root (umoci unpack restores ownership)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mlsize-real.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

TAG=1
IMG="$WORK/oci"
REF="$IMG:$TAG"
BUNDLE="$WORK/bundle"
R="$BUNDLE/rootfs"

# Fixed clock: 1700000000 = 2023-11-14T22:13:20Z. Layer N's new/modified
# entries get mtime T0 + N*1000; history entries get matching "created".
T0=1700000000
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# gen SIZE SEED: SIZE deterministic, incompressible-looking bytes (sha256 chain).
gen() {
  python3 - "$1" "$2" <<'EOF'
import hashlib, sys
n, seed = int(sys.argv[1]), sys.argv[2].encode()
out, h = bytearray(), seed
while len(out) < n:
    h = hashlib.sha256(h).digest()
    out += h
sys.stdout.buffer.write(bytes(out[:n]))
EOF
}

# Unpack the current image into a fresh bundle (so each repack diffs against
# exactly the previous image state) and drop a stamp to find what we touched.
begin_layer() {
  rm -rf "$BUNDLE"
  umoci unpack --image "$REF" "$BUNDLE"
  touch -d "@$(( $(date +%s) - 2 ))" "$WORK/stamp"
}

# Normalise mtimes of everything created/modified since begin_layer, then repack.
end_layer() { # N created_by
  local t=$(( T0 + $1 * 1000 ))
  find "$R" -newer "$WORK/stamp" -exec touch -h -d "@$t" {} +
  umoci repack --image "$REF" --history.created "$(iso "$t")" --history.created_by "$2" "$BUNDLE"
}

# Metadata-only change => history entry with empty_layer=true.
config_step() { # N created_by umoci-config-args...
  local t=$(( T0 + $1 * 1000 + 500 )) by=$2
  shift 2
  umoci config --image "$REF" --history.created "$(iso "$t")" --history.created_by "$by" "$@"
}

umoci init --layout "$IMG"
umoci new --image "$REF"
umoci config --image "$REF" --no-history --os linux --architecture amd64 --created "$(iso "$T0")"

# ---------------------------------------------------------------- layer 1 (base)
begin_layer
mkdir -p "$R/etc/conf.d" "$R/usr/bin" "$R/usr/lib" "$R/root/.cache/pip/http/a/b" "$R/app/data" "$R/opt/plugins"
printf 'NAME="mlsize real fixture"\nID=mlsize\nVERSION_ID=1\n' > "$R/etc/os-release"   # 50 B
printf 'a=1\n' > "$R/etc/conf.d/a.conf"                                              # 4 B
printf 'b=22\n' > "$R/etc/conf.d/b.conf"                                             # 5 B
gen 3000 tool > "$R/usr/bin/tool"                                                    # 3000 B
ln "$R/usr/bin/tool" "$R/usr/bin/tool-link"          # hard link, same layer
ln -s tool "$R/usr/bin/tool-sym"                      # relative symlink
ln -s ../../etc/os-release "$R/usr/bin/os-release-sym"
gen 600 libfoo > "$R/usr/lib/libfoo.so.1"                                            # 600 B
ln "$R/usr/lib/libfoo.so.1" "$R/usr/lib/libfoo.so"   # umoci stores the lexically first name
                                                      # (libfoo.so) as the regular file and
                                                      # libfoo.so.1 as a hard link to it
gen 700 pip1 > "$R/root/.cache/pip/http/a/b/0123456789abcdef"                        # 700 B
gen 300 pip2 > "$R/root/.cache/pip/http/selfcheck.json"                              # 300 B
printf 'print("hello")\n' > "$R/app/main.py"                                         # 15 B
gen 200 data1 > "$R/app/data/part1.bin"                                              # 200 B
gen 100 data2 > "$R/app/data/part2.bin"                                              # 100 B
gen 400 plugA > "$R/opt/plugins/a.so"                                                # 400 B
gen 250 plugB > "$R/opt/plugins/b.so"                                                # 250 B
end_layer 1 '/bin/sh -c #(nop) ADD file:9c1e7a3b5d2f40e8a6b1c3d5e7f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b in / '

config_step 1 '/bin/sh -c #(nop)  ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ------------------------------------- layer 2 (overwrite + long names via PAX)
begin_layer
printf 'NAME="mlsize real fixture"\nID=mlsize\nVERSION_ID=2\nPRETTY_NAME="mlsize fixture v2"\n' > "$R/etc/os-release"  # 82 B, overwrites layer 1
# > 100 chars total but splittable at a '/': Go writes a plain USTAR header (prefix field).
SP="usr/local/lib/python3.11/site-packages/mlsize_demo_package-1.0.0.dist-info"
mkdir -p "$R/$SP"
printf 'Metadata-Version: 2.1\nName: mlsize-demo\n' > "$R/$SP/METADATA_FOR_A_RATHER_LONG_PATH_NAME"   # 40 B
# A single component > 100 chars: cannot be split, forces a PAX 'path' record.
LONGNAME="this_is_a_deliberately_very_long_file_name_that_exceeds_the_one_hundred_byte_ustar_name_field_limit.txt"
mkdir -p "$R/usr/share/doc/mlsize"
printf 'long name\n' > "$R/usr/share/doc/mlsize/$LONGNAME"                           # 10 B
# Symlink whose target is > 100 chars: forces a PAX 'linkpath' record.
ln -s "$LONGNAME" "$R/usr/share/doc/mlsize/long-target-sym"
end_layer 2 '/bin/sh -c #(nop) COPY dir:3f2a9d8c7b6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a in / '

# ------------------------------- layer 3 (whiteouts: dir + single file)
begin_layer
rm -rf "$R/root/.cache"          # -> root/.wh..cache
rm -f "$R/usr/bin/tool"          # -> usr/bin/.wh.tool ; tool-link survives (nlink 2->1)
end_layer 3 '/bin/sh -c pip install --no-compile mlsize-demo==1.0.0 && rm -rf /root/.cache && rm /usr/bin/tool'

config_step 3 '/bin/sh -c #(nop) WORKDIR /app' --config.workingdir /app

# ------------------- layer 4 (dir replaced by file; dir removed and recreated)
begin_layer
rm -rf "$R/app/data"
printf 'now a file\n' > "$R/app/data"                                                # 11 B
rm -rf "$R/etc/conf.d"
mkdir "$R/etc/conf.d"
printf 'c=333\n' > "$R/etc/conf.d/c.conf"                                            # 6 B
end_layer 4 '/bin/sh -c rm -rf /app/data /etc/conf.d && mkdir /etc/conf.d && echo c=333 > /etc/conf.d/c.conf && echo now a file > /app/data'

# --------------------------- layer 5 (opaque whiteout via `umoci insert --opaque`)
# umoci 0.4.7 `insert` never closes its tar writer (umoci issue #436, fixed by
# PR #534 in later releases): the layer tar has no end-of-archive zero blocks and
# the last member's data is not padded to 512. We make the last member exactly
# 512 bytes so this layer only lacks the footer (GNU tar, Go and Python read it
# fine); the mid-block truncation is kept in the separate oci-dir-truncated/.
mkdir -p "$WORK/plugins"
gen 512 plugC > "$WORK/plugins/c.so"                                                 # 512 B
find "$WORK/plugins" -exec touch -h -d "@$(( T0 + 5000 ))" {} +
umoci insert --opaque --image "$REF" \
  --history.created "$(iso $(( T0 + 5000 )))" \
  --history.created_by '/bin/sh -c #(nop) COPY dir:7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908 in /opt/plugins ' \
  "$WORK/plugins" /opt/plugins

# ----------- layer 6 (whiteout of a hard-link *target* via `umoci insert --whiteout`)
# Removes the name that holds the regular-file entry (usr/lib/libfoo.so) while its
# hard link usr/lib/libfoo.so.1 survives, so layer 1's 600 bytes stay visible.
# (Deleting it in a rootfs + repack would not do: umoci's mtree diff sees nlink
# 2->1 on the surviving name and re-emits it as a full copy, as layer 3 shows.)
umoci insert --whiteout --image "$REF" \
  --history.created "$(iso $(( T0 + 6000 )))" \
  --history.created_by '/bin/sh -c rm /usr/lib/libfoo.so' \
  /usr/lib/libfoo.so

config_step 6 '/bin/sh -c #(nop)  CMD ["/usr/bin/tool-link"]' --config.cmd /usr/bin/tool-link \
  --created "$(iso $(( T0 + 7000 )))"

umoci gc --layout "$IMG"

# ----------------- extra fixture: umoci 0.4.7 insert layer truncated mid-block
# One layer, one 120-byte file: the tar ends right after the file's 120 data
# bytes (no 392-byte padding, no 1024-byte footer). Strict readers (GNU tar,
# Python tarfile) report "unexpected EOF"; Go's archive/tar and umoci accept it.
TIMG="$WORK/trunc"
umoci init --layout "$TIMG"
umoci new --image "$TIMG:$TAG"
umoci config --image "$TIMG:$TAG" --no-history --os linux --architecture amd64 --created "$(iso "$T0")"
mkdir -p "$WORK/trunc-src"
gen 120 trunc > "$WORK/trunc-src/blob.bin"                                           # 120 B
touch -h -d "@$(( T0 + 1000 ))" "$WORK/trunc-src/blob.bin"
umoci insert --image "$TIMG:$TAG" --history.created "$(iso $(( T0 + 1000 )))" \
  --history.created_by '/bin/sh -c #(nop) COPY file:5d41402abc4b2a76b9719d911017c592 in /blob.bin ' \
  "$WORK/trunc-src/blob.bin" /blob.bin
umoci gc --layout "$TIMG"

# ------------------------------------------------------------------ outputs
OUT="$WORK/out"
mkdir -p "$OUT"
cp -a "$IMG" "$OUT/oci-dir"
cp -a "$TIMG" "$OUT/oci-dir-truncated"
chmod -R u=rwX,go=rX "$OUT/oci-dir" "$OUT/oci-dir-truncated"   # umoci writes blobs 0600

SK=(skopeo --insecure-policy --tmpdir "$WORK")
"${SK[@]}" copy -q "oci:$OUT/oci-dir:$TAG" "docker-archive:$OUT/real-docker.tar:mlsize/real:1"
"${SK[@]}" copy -q "oci:$OUT/oci-dir:$TAG" "oci-archive:$OUT/real-oci-gzip.tar:$TAG"
# skopeo 1.9.3: --dest-compress-format alone makes it decompress the gzip blobs
# and recompress them as zstd (--dest-compress is documented for 'dir:' only).
"${SK[@]}" copy -q --dest-compress-format zstd \
  "oci:$OUT/oci-dir:$TAG" "oci-archive:$OUT/real-oci-zstd.tar:$TAG"
gzip -n -9 -c "$OUT/real-docker.tar" > "$OUT/real-docker.tar.gz"

# skopeo's oci-archive members carry the wall-clock mtime of the copy; keep the
# previous file when nothing but those mtimes changed, so re-runs are no-ops.
for f in real-oci-gzip.tar real-oci-zstd.tar; do
  if [ -f "$HERE/$f" ] && python3 "$HERE/compute_expected.py" --same-members "$HERE/$f" "$OUT/$f"; then
    cp -p "$HERE/$f" "$OUT/$f"
  fi
done

OUTPUTS=(oci-dir oci-dir-truncated real-docker.tar real-docker.tar.gz real-oci-gzip.tar real-oci-zstd.tar)
for f in "${OUTPUTS[@]}"; do
  rm -rf "${HERE:?}/$f"
  mv "$OUT/$f" "$HERE/$f"
done

python3 "$HERE/compute_expected.py" "$HERE"

# Independent cross-check: let umoci apply the layers (its own whiteout logic)
# and compare the resulting regular files / symlinks with expected.json.
umoci unpack --image "$HERE/oci-dir:$TAG" "$WORK/check" >/dev/null
python3 - "$WORK/check/rootfs" "$HERE/expected.json" <<'EOF'
import json, os, sys
root, exp = sys.argv[1], json.load(open(sys.argv[2]))
files, links, inodes = {}, {}, {}
for d, dirs, names in os.walk(root):
    for n in dirs + names:
        p = os.path.join(d, n)
        st = os.lstat(p)
        rel = "/" + os.path.relpath(p, root)
        if os.path.islink(p):
            links[rel] = os.readlink(p)
        elif os.path.isfile(p):
            files[rel] = st.st_size
            inodes[(st.st_dev, st.st_ino)] = st.st_size
ok = files == exp["final_files"] and links == exp["final_symlinks"] and sum(inodes.values()) == exp["visible_bytes"]
print("umoci unpack cross-check:", "OK" if ok else "MISMATCH", f"({len(files)} files, visible {sum(inodes.values())} B)")
if not ok:
    print(" unpacked:", files, links, file=sys.stderr)
    sys.exit(1)
EOF

echo "sizes (bytes):"
( cd "$HERE" && du -b -s "${OUTPUTS[@]}" expected.json EXPECTED.md )
status=0
for f in "$HERE"/real-* $(find "$HERE/oci-dir" "$HERE/oci-dir-truncated" -type f); do
  sz=$(stat -c %s "$f")
  if [ "$sz" -ge 204800 ]; then echo "make.sh: $f is $sz bytes (>= 200 KB)" >&2; status=1; fi
done
exit $status
