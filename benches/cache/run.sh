#!/usr/bin/env bash
# Layer cache (issue 14): first vs second run, side by side, on the same
# machine in one go.
#
#   bash benches/cache/run.sh            # release build, then every part
#
# 1. The realistic 9.5 GB image (benches/realistic/run.sh builds it into
#    $MLSIZE_BENCH_CACHE/image; skipped when absent): gzip and zstd
#    oci-archive, and docker-save archive verified and --no-verify. For
#    each, page cache warm: `--no-cache` (no cache at all), the first run
#    with an empty cache (verified: it stores the entries), the second run
#    (with the row's options).
# 2. A loopback registry (docker-registry serve, plain HTTP on 127.0.0.1):
#    an image pushed as app:main, a variant whose top layer differs pushed
#    as app:pr (benches/diff-variant.py), then `analyze app:main` cold,
#    `analyze app:pr` warm (only its new layer is downloaded), and
#    `diff app:main app:pr` cold and warm. Layer bytes downloaded are the
#    JSON's image.cache.bytes_read. The image is gen-image.py's
#    `small-files` profile (200k files, ~1 GB) unless MLSIZE_BENCH_REG_IMAGE
#    names another OCI layout.
# 3. Entry size and load time for 40,000 and 1,000,000 files
#    (examples/cache-entry.rs).
#
# Needs: cargo, python3, skopeo, docker-registry, pigz, zstd, GNU time.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH=${MLSIZE_BENCH_CACHE:-$HOME/.cache/mlsize-bench}
WORK=${MLSIZE_BENCH_WORK:-/tmp/mlsize-cache-bench}
ROUNDS=${MLSIZE_BENCH_ROUNDS:-1}
mkdir -p "$WORK"
cd "$REPO"
cargo build --release --quiet
cargo build --release --quiet --example cache-entry
M=$REPO/target/release/mlsize
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo), $(uname -sr)"

# seconds of one run
t() { /usr/bin/time -f %e -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }; cat "$WORK/time"; }
cached() { python3 - "$WORK/out" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["image"]["cache"]
print(f"{c['layers_from_cache']} cached, {c['layers_read']} read: {c['bytes_read'] / 1e6:.1f} MB of layer blobs downloaded")
PY
}

row() { # label image args...
  local label=$1 img=$2; shift 2
  local cdir=$WORK/cache-$RANDOM
  # Page cache warm, as in the README's other figures: one read first.
  cat "$img" >/dev/null
  for r in $(seq "$ROUNDS"); do
    rm -rf "$cdir"
    local none first second
    none=$(t "$M" analyze "$img" --no-cache --format json "$@")
    # Entries are stored by verified runs only: the first run verifies.
    first=$(t env MLSIZE_CACHE_DIR="$cdir" "$M" analyze "$img" --format json)
    second=$(t env MLSIZE_CACHE_DIR="$cdir" "$M" analyze "$img" --format json "$@")
    printf '| %s | %s s | %s s | %s s | %.1f%% | %s |\n' "$label" "$none" "$first" "$second" \
      "$(python3 -c "print(100*$second/$none)")" "$(du -sb "$cdir" | cut -f1 | numfmt --to=iec)"
  done
  rm -rf "$cdir"
}

echo
echo "## 1. Realistic image: --no-cache / first run (stores) / second run"
IMG=$BENCH/image
if [ -f "$IMG/bench-gzip.oci.tar" ]; then
  echo "| input | --no-cache | first run (empty cache, stores) | second run | second / --no-cache | cache on disk |"
  echo "|---|---|---|---|---|---|"
  row "oci-archive, gzip" "$IMG/bench-gzip.oci.tar"
  row "oci-archive, zstd" "$IMG/bench-zstd.oci.tar"
  row "docker-archive, verified" "$IMG/bench.docker.tar"
  row "docker-archive, --no-verify" "$IMG/bench.docker.tar" --no-verify
else
  echo "(skipped: run benches/realistic/run.sh first)"
fi

echo
echo "## 2. Loopback registry: top layer changed"
REG_IMAGE=${MLSIZE_BENCH_REG_IMAGE:-}
if [ -z "$REG_IMAGE" ]; then
  python3 benches/gen-image.py "$WORK/gen" small-files >/dev/null
  REG_IMAGE=$WORK/gen/small-files-oci-gzip
fi
rm -rf "$WORK/variant"
python3 benches/diff-variant.py "$REG_IMAGE" "$WORK/variant" --replace 1 --mib 64 >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$WORK/registry"; mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
trap 'kill $REG_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$REG_IMAGE" "docker://127.0.0.1:$PORT/app:main"
skopeo copy -q --dest-tls-verify=false "oci:$WORK/variant" "docker://127.0.0.1:$PORT/app:pr"
R=docker://127.0.0.1:$PORT/app
C=$WORK/reg-cache; rm -rf "$C"
echo "| run | time | layers |"
echo "|---|---|---|"
s=$(t "$M" analyze "$R:pr" --no-cache --format json); echo "| analyze app:pr, --no-cache | $s s | $(cached 2>/dev/null || echo 'all read')  |"
s=$(t env MLSIZE_CACHE_DIR="$C" "$M" analyze "$R:main" --format json); echo "| analyze app:main, empty cache | $s s | $(cached) |"
s=$(t env MLSIZE_CACHE_DIR="$C" "$M" analyze "$R:pr" --format json); echo "| analyze app:pr after app:main | $s s | $(cached) |"
rm -rf "$C"
s=$(t "$M" diff "$R:main" "$R:pr" --no-cache --format json); echo "| diff main pr, --no-cache | $s s | (every distinct layer once) |"
env MLSIZE_CACHE_DIR="$C" "$M" analyze "$R:main" -q >/dev/null
s=$(t env MLSIZE_CACHE_DIR="$C" "$M" diff "$R:main" "$R:pr" --format json); echo "| diff main pr, app:main cached | $s s | (only the new layer read) |"
kill $REG_PID; trap - EXIT

echo
echo "## 3. Entry size and load time"
echo '```'
"$REPO/target/release/examples/cache-entry" 40000 1000000
echo '```'
