#!/usr/bin/env bash
# Everything tests/fix.rs builds its images from, made once into OUT_DIR
# (the test caches it under target/tmp, keyed by this directory's files):
#   OUT/base.tar              the base image's root file system (rootfs.sh)
#   OUT/cuda-runtime/         what nvidia/cuda:12.4.1-runtime adds to it: the
#                             real libcudart and libnvrtc from NVIDIA's wheels
#                             in /usr/local/cuda-12.4/targets/x86_64-linux/lib
#   OUT/cuda-base/            what the -base variant adds: libcudart only
#   OUT/cuda-devel/           what -devel adds: -runtime's libraries, CUPTI in
#                             extras/CUPTI, headers, ptxas and libnvvm (NVIDIA's
#                             cupti and nvcc wheels)
#   OUT/index/                what the test's server (serve.py) serves:
#     simple/NAME/index.html  a PEP 503 index of the wheels in wheels/
#     wheels/                 generated wheels (wheel.py), nvidia-cuda-nvrtc-cu12 and uv
#     apt/                    a flat apt repository: the .debs the Dockerfiles
#                             install (with their dependencies and recommends,
#                             resolved against the base's dpkg status) and Packages
# Needs: apt-get (Debian bookworm's lists: apt-get update), dpkg-deb, python3,
# pip (NVIDIA's wheels are cached in $MLSIZE_TESTDATA_CACHE/wheels, shared
# with testdata/cuda-wheels/make.sh).
#
# usage: assets.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/work
mkdir -p "$work"

bash "$here/rootfs.sh" "$out/base.tar" "$work"
status=$work/rootfs/var/lib/dpkg/status

# --- apt repository
apt=$out/index/apt
mkdir -p "$apt"
# hello: a small package; libc6-dev with its recommends (gcc and the rest).
apt-get -o Dir::State::status="$status" -o APT::Install-Recommends=true \
  install --print-uris -qq hello libc6-dev gcc |
  awk '{ split($2, a, "_"); print a[1] }' >"$work/apt.packages"
(cd "$apt" && xargs apt-get download -q=2 <"$work/apt.packages" 2> >(grep -v unsandboxed >&2))
for deb in "$apt"/*.deb; do
  dpkg-deb -f "$deb"
  printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$(basename "$deb")" \
    "$(stat -c %s "$deb")" "$(sha256sum "$deb" | cut -d' ' -f1)"
done >"$apt/Packages"

# --- wheels and their index
wheels=$out/index/wheels
mkdir -p "$wheels"
python3 "$here/wheel.py" "$wheels" mlsize-blob 1.0 random 8000000 >/dev/null
python3 "$here/wheel.py" "$wheels" mlsize-pymods 1.0 modules 300 100000 >/dev/null
python3 "$here/wheel.py" "$wheels" mlsize-uvblob 1.0 random 6000000 >/dev/null
cache=${MLSIZE_TESTDATA_CACHE:-$HOME/.cache/mlsize-testdata}/wheels
nvrtc=nvidia_cuda_nvrtc_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl
nvrtc_sha=a178759ebb095827bd30ef56598ec182b85547f1508941a3d560eb7ea1fbf338
runtime=nvidia_cuda_runtime_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl
runtime_sha=64403288fa2136ee8e467cdc9c9427e0434110899d07c779f25b5c068934faa5
# CUPTI (libraries and headers) and nvcc's ptxas, libnvvm and headers: what
# the -devel stand-in adds.
cupti=nvidia_cuda_cupti_cu12-12.4.127-py3-none-manylinux2014_x86_64.whl
cupti_sha=9dec60f5ac126f7bb551c055072b69d85392b13311fcc1bcda2202d172df30fb
nvcc=nvidia_cuda_nvcc_cu12-12.4.131-py3-none-manylinux2014_x86_64.whl
nvcc_sha=e4c9a35435c3b0e36c6397c5696334c9ea6650e524736cbd1c5d345ea099bb04
# uv, the installer whose cache the uv cases leave (a static binary in a wheel).
uv=uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
uv_sha=d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19
mkdir -p "$cache"
for w in "$nvrtc $nvrtc_sha nvidia-cuda-nvrtc-cu12==12.4.127" \
  "$runtime $runtime_sha nvidia-cuda-runtime-cu12==12.4.127" \
  "$cupti $cupti_sha nvidia-cuda-cupti-cu12==12.4.127" \
  "$nvcc $nvcc_sha nvidia-cuda-nvcc-cu12==12.4.131" "$uv $uv_sha uv==0.13.9"; do
  read -r file sha spec <<<"$w"
  if ! echo "$sha  $cache/$file" | sha256sum -c --status - 2>/dev/null; then
    echo "$spec --hash=sha256:$sha" >"$work/req.txt"
    python3 -m pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
      --python-version 3.11 --require-hashes -r "$work/req.txt" -d "$cache" \
      --no-cache-dir --disable-pip-version-check -q
  fi
done
cp "$cache/$nvrtc" "$cache/$uv" "$wheels/"
for whl in "$wheels"/*.whl; do
  file=$(basename "$whl")
  name=$(echo "${file%%-*}" | tr _ - | tr '[:upper:]' '[:lower:]')
  mkdir -p "$out/index/simple/$name"
  printf '<!DOCTYPE html>\n<html><body><a href="../../wheels/%s#sha256=%s">%s</a></body></html>\n' \
    "$file" "$(sha256sum "$whl" | cut -d' ' -f1)" "$file" >"$out/index/simple/$name/index.html"
done

# --- the nvidia/cuda stand-ins' CUDA files, laid out as NVIDIA's images have
# them: -base libcudart; -runtime also libnvrtc; -devel also CUPTI under
# extras/CUPTI, the headers, and nvcc's ptxas and libnvvm.
python3 - "$cache/$runtime" "$cache/$nvrtc" "$cache/$cupti" "$cache/$nvcc" "$out" <<'PY'
import os, sys, zipfile
runtime, nvrtc, cupti, nvcc, out = sys.argv[1:6]
top = "usr/local/cuda-12.4"
lib = top + "/targets/x86_64-linux/lib"
include = top + "/targets/x86_64-linux/include"
def libs(w):
    return [(i, lib) for i in zipfile.ZipFile(w).namelist() if "/lib/lib" in i]
def under(w, part, dest):
    # Files below `part` in the wheel, kept in their subdirectories.
    return [(i, dest + "/" + os.path.dirname(i.split(part, 1)[1]))
            for i in zipfile.ZipFile(w).namelist()
            if part in i and not i.endswith("__init__.py")]
devel_extra = {
    cupti: [(i, top + "/extras/CUPTI/lib64") for i, _ in libs(cupti)]
    + under(cupti, "cuda_cupti/include/", top + "/extras/CUPTI/include"),
    nvcc: under(nvcc, "cuda_nvcc/include/", include)
    + under(nvcc, "cuda_nvcc/bin/", top + "/bin")
    + under(nvcc, "cuda_nvcc/nvvm/", top + "/nvvm"),
}
variants = (
    ("cuda-base", {runtime: libs(runtime)}),
    ("cuda-runtime", {runtime: libs(runtime), nvrtc: libs(nvrtc)}),
    ("cuda-devel", {runtime: libs(runtime), nvrtc: libs(nvrtc), **devel_extra}),
)
for variant, wheels in variants:
    for w, files in wheels.items():
        with zipfile.ZipFile(w) as z:
            for member, dest in files:
                d = os.path.join(out, variant, dest)
                os.makedirs(d, exist_ok=True)
                path = os.path.join(d, member.rsplit("/", 1)[-1])
                with open(path, "wb") as f:
                    f.write(z.read(member))
                if "/bin/" in member:
                    os.chmod(path, 0o755)
    local = os.path.join(out, variant, "usr/local")
    os.symlink("targets/x86_64-linux/lib", os.path.join(local, "cuda-12.4/lib64"))
    os.symlink("cuda-12.4", os.path.join(local, "cuda"))
PY
rm -rf "$work"
