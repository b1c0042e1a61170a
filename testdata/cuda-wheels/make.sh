#!/usr/bin/env bash
# Builds a small REAL naive "PyTorch on nvidia/cuda" image from real NVIDIA
# CUDA wheels (PyPI), writes its independently computed expected figures, and
# checks mlsize against them. See README.md beside this file.
#
#   bash testdata/cuda-wheels/make.sh [OUT_LAYOUT_DIR]
#
# Environment:
#   MLSIZE_TESTDATA_CACHE  cache dir for wheels and outputs
#                          (default: $HOME/.cache/mlsize-testdata)
#   MLSIZE                 mlsize binary to check (default: build this checkout
#                          with cargo into $MLSIZE_TESTDATA_CACHE/cargo-target)
#   MLSIZE_SKIP_CHECK=1    build the image and expected.json only
#
# Outputs (OUT defaults to $MLSIZE_TESTDATA_CACHE/cuda-wheels-image):
#   OUT/                   OCI image layout, gzip layers, tag "latest"
#   OUT.expected.json      expected figures (expected.py, not mlsize)
#   OUT.docker.tar         skopeo docker-archive (uncompressed layers), if skopeo
#   OUT.oci-zstd.tar       skopeo oci-archive with zstd layers, if skopeo
# Nothing is written inside the repository.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export TZ=UTC LC_ALL=C
umask 022
START=$(date +%s)

CACHE=${MLSIZE_TESTDATA_CACHE:-$HOME/.cache/mlsize-testdata}
OUT=${1:-$CACHE/cuda-wheels-image}
OUT=${OUT%/}
mkdir -p "$CACHE" "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")

for tool in python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "make.sh: missing $tool" >&2; exit 1; }
done

# ------------------------------------------------------------------ wheels
# CUDA 12.4 Update 1 (12.4.127), the CUDA that PyTorch 2.4/2.5 wheels pin.
# Sizes: runtime 883,737 B; cupti 13,813,957 B; nvrtc 24,640,306 B;
# nvjitlink 21,066,810 B (60,404,810 B in all).
PY=3.11
PLATFORM=manylinux2014_x86_64
WHEELS=(
  "nvidia-cuda-runtime-cu12==12.4.127 64403288fa2136ee8e467cdc9c9427e0434110899d07c779f25b5c068934faa5 nvidia_cuda_runtime_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cuda-cupti-cu12==12.4.127 9dec60f5ac126f7bb551c055072b69d85392b13311fcc1bcda2202d172df30fb nvidia_cuda_cupti_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
  "nvidia-cuda-nvrtc-cu12==12.4.127 a178759ebb095827bd30ef56598ec182b85547f1508941a3d560eb7ea1fbf338 nvidia_cuda_nvrtc_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
  "nvidia-nvjitlink-cu12==12.4.127 06b3b9b25bf3f8af351d664978ca26a16d2c5127dbd53c0497e28d1fb9611d57 nvidia_nvjitlink_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl"
)
WDIR="$CACHE/wheels"
mkdir -p "$WDIR"

wheels_ok() {
  local spec sha file
  for w in "${WHEELS[@]}"; do
    read -r spec sha file <<<"$w"
    [ -f "$WDIR/$file" ] || return 1
    echo "$sha  $WDIR/$file" | sha256sum -c --status - || { echo "make.sh: $file in cache has the wrong sha256; downloading again" >&2; rm -f "$WDIR/$file"; return 1; }
  done
}

T0=$(date +%s)
if wheels_ok; then
  echo "make.sh: wheels: reusing $WDIR"
else
  command -v pip >/dev/null || command -v pip3 >/dev/null || { echo "make.sh: missing pip" >&2; exit 1; }
  PIP=$(command -v pip || command -v pip3)
  REQ=$(mktemp "${TMPDIR:-/tmp}/mlsize-cuda-wheels-req.XXXXXX")
  trap 'rm -f "$REQ"' EXIT
  for w in "${WHEELS[@]}"; do
    read -r spec sha file <<<"$w"
    echo "$spec --hash=sha256:$sha" >>"$REQ"
  done
  echo "make.sh: wheels: pip download into $WDIR"
  "$PIP" download --no-deps --only-binary=:all: --platform "$PLATFORM" --python-version "$PY" \
    --require-hashes -r "$REQ" -d "$WDIR" --no-cache-dir --disable-pip-version-check -q
  wheels_ok || { echo "make.sh: downloaded wheels do not match their pinned sha256" >&2; exit 1; }
fi
T1=$(date +%s)
FILES=()
for w in "${WHEELS[@]}"; do
  read -r spec sha file <<<"$w"
  FILES+=("$WDIR/$file")
  printf '  %-36s %11s B  %s\n' "$spec" "$(stat -c %s "$WDIR/$file")" "$file"
done

# ------------------------------------------------------------------- image
echo "make.sh: image: building $OUT"
python3 "$HERE/build_image.py" --out "$OUT" --tag latest --expected "$OUT.expected.json" "${FILES[@]}"
T2=$(date +%s)

# -------------------------------------------------------- other archives
FORMATS=("$OUT=gzip")
if ! command -v skopeo >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "make.sh: skopeo missing; apt-get install -y skopeo"
  apt-get install -y -q skopeo >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q skopeo >/dev/null 2>&1; } || true
fi
if command -v skopeo >/dev/null; then
  SKTMP=$(mktemp -d "$CACHE/.skopeo.XXXXXX")
  SK=(skopeo --insecure-policy --tmpdir "$SKTMP")
  rm -f "$OUT.docker.tar" "$OUT.oci-zstd.tar"
  echo "make.sh: skopeo: $OUT.docker.tar"
  "${SK[@]}" copy -q "oci:$OUT:latest" "docker-archive:$OUT.docker.tar:mlsize/cuda-wheels:latest"
  echo "make.sh: skopeo: $OUT.oci-zstd.tar"
  # --dest-compress-format alone recompresses the gzip layers as zstd (skopeo 1.9).
  "${SK[@]}" copy -q --dest-compress-format zstd "oci:$OUT:latest" "oci-archive:$OUT.oci-zstd.tar:latest"
  rm -rf "$SKTMP"
  FORMATS+=("$OUT.docker.tar=none" "$OUT.oci-zstd.tar=zstd")
else
  echo "make.sh: skopeo not available: only the OCI layout is built" >&2
fi
T3=$(date +%s)

# ------------------------------------------------------------------- check
STATUS=0
if [ "${MLSIZE_SKIP_CHECK:-0}" != 1 ]; then
  if [ -z "${MLSIZE:-}" ]; then
    command -v cargo >/dev/null || { echo "make.sh: no MLSIZE given and no cargo to build it" >&2; exit 1; }
    echo "make.sh: building mlsize (cargo build --release, target dir $CACHE/cargo-target)"
    cargo build -q --release --locked --manifest-path "$REPO/Cargo.toml" --target-dir "$CACHE/cargo-target"
    MLSIZE="$CACHE/cargo-target/release/mlsize"
  fi
  echo "make.sh: check: $MLSIZE against $OUT.expected.json"
  python3 "$HERE/check.py" "$MLSIZE" "$OUT.expected.json" "${FORMATS[@]}" || STATUS=$?
fi
T4=$(date +%s)

echo "make.sh: outputs:"
du -sh "$OUT" "$OUT".* 2>/dev/null | sed 's/^/  /'
echo "make.sh: times: wheels $((T1 - T0))s, image $((T2 - T1))s, skopeo $((T3 - T2))s, check $((T4 - T3))s, total $((T4 - START))s"
exit $STATUS
