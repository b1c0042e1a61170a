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
#    as app:pr (benches/diff-variant.py), then `analyze app:main` on an
#    empty cache and again warm, `analyze app:pr` warm (only its new layer
#    is downloaded) and cold, and `diff app:main app:pr` cold and warm.
#    Bytes downloaded are counted twice: the layer blob bytes mlsize says
#    it read (JSON image.cache.bytes_read; old/new in a diff), and every
#    byte the registry served to the run (the sum of its access log's
#    http.response.written: manifests, configs and blobs). The image is
#    gen-image.py's `small-files` profile (200k files, ~1 GB) unless
#    MLSIZE_BENCH_REG_IMAGE names another: an OCI layout directory, an
#    oci-archive (pushed by push.py, which streams blobs out of the tar
#    instead of unpacking it), or `realistic` for the 9.5 GB image's gzip
#    oci-archive (part 1). The registry's storage (a copy of every blob,
#    deleted after the run) is $WORK/registry unless
#    MLSIZE_BENCH_REG_STORAGE names another directory (/dev/shm/... when
#    the disk has no room).
# 3. Entry size and load time for 40,000 and 1,000,000 files
#    (examples/cache-entry.rs).
#
# MLSIZE_BENCH_PARTS selects parts (default "1 2 3"), e.g.
#   MLSIZE_BENCH_PARTS=2 MLSIZE_BENCH_REG_IMAGE=realistic bash benches/cache/run.sh
#
# Needs: cargo, python3, skopeo (OCI layouts), docker-registry, pigz, zstd, GNU time.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BENCH=${MLSIZE_BENCH_CACHE:-$HOME/.cache/mlsize-bench}
WORK=${MLSIZE_BENCH_WORK:-/tmp/mlsize-cache-bench}
ROUNDS=${MLSIZE_BENCH_ROUNDS:-1}
PARTS=${MLSIZE_BENCH_PARTS:-1 2 3}
part() { [[ " $PARTS " == *" $1 "* ]]; }
mkdir -p "$WORK"
cd "$REPO"
cargo build --release --quiet
cargo build --release --quiet --example cache-entry
M=$REPO/target/release/mlsize
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1e6}' /proc/meminfo), $(uname -sr); load average at start $(cut -d' ' -f1-3 /proc/loadavg)"

# seconds of one run
t() { /usr/bin/time -f %e -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }; cat "$WORK/time"; }
# what the last run's JSON says came from the cache (both images of a diff)
cached() { python3 - "$WORK/out" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
size = lambda b: f"{b / 1e6:.1f} MB" if b >= 100e3 else f"{b / 1e3:.1f} kB"
sides = [("", v["image"])] if "image" in v else [("old: ", v["old"]), ("new: ", v["new"])]
out = []
for name, s in sides:
    c = s["cache"]
    if c is None:
        out.append(f"{name}{s['layer_count']} read (--no-cache)")
    else:
        out.append(f"{name}{c['layers_from_cache']} cached, {c['layers_read']} read ({size(c['bytes_read'])})")
print("; ".join(out))
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

IMG=$BENCH/image
if part 1; then
echo
echo "## 1. Realistic image: --no-cache / first run (stores) / second run"
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
fi

registry_part() {
echo
echo "## 2. Loopback registry: top layer changed"
REG_IMAGE=${MLSIZE_BENCH_REG_IMAGE:-}
[ "$REG_IMAGE" = realistic ] && REG_IMAGE=$IMG/bench-gzip.oci.tar
STORE=${MLSIZE_BENCH_REG_STORAGE:-$WORK/registry}
rm -rf "$STORE" "$WORK/variant"
cleanup() {
  [ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null || true
  rm -rf "$STORE" "$WORK/variant"
}
trap cleanup EXIT
if [ -z "$REG_IMAGE" ]; then
  python3 benches/gen-image.py "$WORK/gen" small-files >/dev/null
  REG_IMAGE=$WORK/gen/small-files-oci-gzip
fi
mkdir -p "$STORE"
if [ -f "$REG_IMAGE" ]; then
  # The registry stores a copy of every blob: check there is room.
  need=$(( $(stat -c %s "$REG_IMAGE") + (1 << 30) ))
  free=$(( $(df -B1 --output=avail "$STORE" | tail -1) ))
  if [ "$free" -lt "$need" ]; then
    echo "(skipped: $(numfmt --to=iec "$free") free for the registry in $STORE, $(numfmt --to=iec "$need") needed)"
    return
  fi
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Log level info: one "response completed" line per request, with the
# bytes written (http.response.written), to count what a run downloads.
cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STORE
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
if [ -f "$REG_IMAGE" ]; then
  # An oci-archive: streamed from the tar (skopeo would unpack it first).
  python3 "$HERE/push.py" "$REG_IMAGE" "http://127.0.0.1:$PORT/app:main" >/dev/null
  python3 "$HERE/push.py" "$REG_IMAGE" "http://127.0.0.1:$PORT/app:pr" --replace 1 --mib 64 >/dev/null
else
  python3 benches/diff-variant.py "$REG_IMAGE" "$WORK/variant" --replace 1 --mib 64 >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$REG_IMAGE" "docker://127.0.0.1:$PORT/app:main"
  skopeo copy -q --dest-tls-verify=false "oci:$WORK/variant" "docker://127.0.0.1:$PORT/app:pr"
fi
echo "registry: $(du -sh "$STORE" | cut -f1) stored in $STORE; $(df -h --output=avail "$STORE" | tail -1 | tr -d ' ') left free there"
R=docker://127.0.0.1:$PORT/app
C=$WORK/reg-cache; rm -rf "$C"
# bytes the registry served since the mark (every request of the run)
mark() { MARK=$(wc -l <"$WORK/registry.log"); }
served() { tail -n +"$((MARK + 1))" "$WORK/registry.log" | grep -o 'http.response.written=[0-9]*' | cut -d= -f2 | awk '{s += $1} END {if (s >= 100e3) printf "%.1f MB", s / 1e6; else printf "%.1f kB", s / 1e3}'; }
reg() { # label command...
  local label=$1; shift
  mark
  local s; s=$(t "$@")
  sleep 0.2 # the registry logs a response once it is written
  echo "| $label | $s s | $(cached) | $(served) |"
}
echo "| run | time | layers (bytes read, JSON) | served by the registry |"
echo "|---|---|---|---|"
reg "analyze app:main, empty cache" env MLSIZE_CACHE_DIR="$C" "$M" analyze "$R:main" --format json
reg "analyze app:main again" env MLSIZE_CACHE_DIR="$C" "$M" analyze "$R:main" --format json
reg "analyze app:pr after app:main" env MLSIZE_CACHE_DIR="$C" "$M" analyze "$R:pr" --format json
reg "analyze app:pr, --no-cache" "$M" analyze "$R:pr" --no-cache --format json
rm -rf "$C"
reg "diff app:main app:pr, --no-cache" "$M" diff "$R:main" "$R:pr" --no-cache --format json
env MLSIZE_CACHE_DIR="$C" "$M" analyze "$R:main" -q >/dev/null
reg "diff app:main app:pr, app:main cached" env MLSIZE_CACHE_DIR="$C" "$M" diff "$R:main" "$R:pr" --format json
rm -rf "$C"
cleanup; trap - EXIT
}
if part 2; then registry_part; fi

if part 3; then
echo
echo "## 3. Entry size and load time"
echo '```'
"$REPO/target/release/examples/cache-entry" 40000 1000000
echo '```'
fi
