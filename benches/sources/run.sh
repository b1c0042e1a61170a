#!/usr/bin/env bash
# Speed pairs of issue 13: reading an image where it lives against reading
# the same image from a file, side by side, on one machine.
#
#   (a) analyze docker://127.0.0.1:PORT/IMG   vs  analyze IMG-gzip.oci.tar   (the same gzip blobs)
#   (b) analyze docker-daemon:IMG             vs  docker save IMG | analyze -
#   (c) cat IMG.docker.tar | analyze -        vs  analyze IMG.docker.tar     (verified, then
#                                                 --no-cache, then --no-verify)
#
#   bash benches/sources/run.sh
#
# Every command uses a layer cache of its own in the work directory, which
# the warm-up round fills: the rounds measure what a second analysis of an
# image costs (for a docker-save archive, its layers re-hashed to verify
# them, not re-scanned; for a registry, its manifest and config fetched and
# nothing else); the `--no-cache` rows of (a) and (c) what a first one does,
# which is what (a)'s target is about: streaming the blobs. (b) reads the
# whole docker-save stream either way.
#
# The image comes from the repository's generator (benches/gen-image.py):
# profile "medium" (~1.5 GB uncompressed) by default, MLSIZE_BENCH_PROFILE=large
# for the ~9.5 GB one. It starts its own loopback registry (docker-registry)
# and its own dockerd (vfs storage, a socket in the work directory), and
# stops both at the end.
#
#   MLSIZE_BENCH_PROFILE   gen-image.py profile (default medium)
#   MLSIZE_BENCH_DIR       work directory, outside the repository
#                          (default /tmp/mlsize-sources-bench; generated images are reused)
#   MLSIZE_BENCH_ROUNDS    runs of each command (default 3; the median is shown)
#   MLSIZE_BENCH_PAIRS     which pairs to run (default "a b c"; "c" alone needs
#                          neither the registry nor dockerd)
#   MLSIZE_BIN             mlsize binary (default: cargo build --release, target/release/mlsize)
#
# Needs: python3, pigz, zstd, skopeo, docker-registry, docker.io (dockerd and
# the docker CLI), GNU time. Prints a markdown table: the median wall time and
# the median peak RSS of mlsize for each command, and each pair's ratio.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PROFILE=${MLSIZE_BENCH_PROFILE:-medium}
WORK=${MLSIZE_BENCH_DIR:-/tmp/mlsize-sources-bench}
ROUNDS=${MLSIZE_BENCH_ROUNDS:-3}
PAIRS=${MLSIZE_BENCH_PAIRS:-a b c}
want() { case " $PAIRS " in *" $1 "*) return 0 ;; esac; return 1; }
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in "$REPO"/*) echo "run.sh: MLSIZE_BENCH_DIR must be outside the repository" >&2; exit 2 ;; esac
PATH=$PATH:/usr/sbin:/sbin
for t in python3 pigz zstd skopeo /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "run.sh: missing $t" >&2; exit 2; }
done
NEEDS=()
if want a; then NEEDS+=(docker-registry); fi
if want b; then NEEDS+=(dockerd docker); fi
for t in "${NEEDS[@]}"; do
  command -v "$t" >/dev/null || { echo "run.sh: missing $t" >&2; exit 2; }
done

if [ -z "${MLSIZE_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --locked -q)
  MLSIZE_BIN=$REPO/target/release/mlsize
fi
MLSIZE=$MLSIZE_BIN

echo "== image ($PROFILE)"
python3 "$REPO/benches/gen-image.py" "$WORK/images" "$PROFILE"
IMG=$WORK/images
NAME=mlsize-bench/$PROFILE:latest
# The runs' own layer cache (see above), emptied first.
export MLSIZE_CACHE_DIR=$WORK/cache
rm -rf "$MLSIZE_CACHE_DIR"

# Everything started here is stopped on exit, by PID.
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  if grep -q " $WORK/docker/data " /proc/self/mounts 2>/dev/null; then umount -l "$WORK/docker/data" || true; fi
}
trap cleanup EXIT

if want a; then
  echo "== registry"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$WORK/registry"
  cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $WORK/registry/storage}}
http: {addr: 127.0.0.1:$PORT, secret: mlsize-bench}
EOF
  docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
  REF=127.0.0.1:$PORT/bench/$PROFILE:latest
  # The OCI layout the oci-archive was made from: the registry gets the same gzip blobs.
  skopeo --insecure-policy copy -q --preserve-digests --dest-tls-verify=false \
    "oci:$IMG/$PROFILE-oci-gzip:latest" "docker://$REF"
fi

if want b; then
  echo "== dockerd"
  mkdir -p "$WORK/docker"
  SOCK=$WORK/docker/docker.sock
  dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    -H "unix://$SOCK" --data-root "$WORK/docker/data" --exec-root "$WORK/docker/exec" \
    --pidfile "$WORK/docker/docker.pid" >"$WORK/docker/log" 2>&1 &
  PIDS+=($!)
  export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$WORK/docker/cli
  for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
  docker load -q -i "$IMG/$PROFILE.docker.tar"
fi

# One run: prints "SECONDS KB" (wall time of the whole command, peak RSS of mlsize).
one() {
  local out=$WORK/time.txt
  sync
  case $1 in
    registry) /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze "docker://$REF" --format json >/dev/null ;;
    oci-archive) /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze "$IMG/$PROFILE-gzip.oci.tar" --format json >/dev/null ;;
    registry-nc) /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze "docker://$REF" --no-cache --format json >/dev/null ;;
    oci-archive-nc) /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze "$IMG/$PROFILE-gzip.oci.tar" --no-cache --format json >/dev/null ;;
    docker-daemon) /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze "docker-daemon:$NAME" --format json >/dev/null ;;
    docker-save) docker save "$NAME" | /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze - --format json >/dev/null ;;
    cat-stdin) cat "$IMG/$PROFILE.docker.tar" | /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze - --format json >/dev/null ;;
    file) /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze "$IMG/$PROFILE.docker.tar" --format json >/dev/null ;;
    cat-stdin-nc) cat "$IMG/$PROFILE.docker.tar" | /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze - --no-cache --format json >/dev/null ;;
    file-nc) /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze "$IMG/$PROFILE.docker.tar" --no-cache --format json >/dev/null ;;
    cat-stdin-nv) cat "$IMG/$PROFILE.docker.tar" | /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze - --no-verify --format json >/dev/null ;;
    file-nv) /usr/bin/time -o "$out" -f '%e %M' "$MLSIZE" analyze "$IMG/$PROFILE.docker.tar" --no-verify --format json >/dev/null ;;
  esac
  tail -n1 "$out"
}

declare -A T M
KINDS=()
if want a; then KINDS+=(registry oci-archive registry-nc oci-archive-nc); fi
if want b; then KINDS+=(docker-daemon docker-save); fi
if want c; then KINDS+=(cat-stdin file cat-stdin-nc file-nc cat-stdin-nv file-nv); fi
echo "== warm-up"
for k in "${KINDS[@]}"; do one "$k" >/dev/null; done
echo "== $ROUNDS rounds, pairs side by side"
for r in $(seq "$ROUNDS"); do
  for k in "${KINDS[@]}"; do
    read -r s kb < <(one "$k")
    T[$k]+="$s "; M[$k]+="$kb "
    echo "round $r $k: $s s, $kb KB"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { # pair-name, left kind, left label, right kind, right label, target
  local a b ma mb
  a=$(echo "${T[$2]}" | median); b=$(echo "${T[$4]}" | median)
  ma=$(echo "${M[$2]}" | median); mb=$(echo "${M[$4]}" | median)
  printf '| %s | `%s` | %s s, %s MiB | `%s` | %s s, %s MiB | %sx | %s |\n' "$1" "$3" "$a" $((ma / 1024)) "$5" "$b" $((mb / 1024)) \
    "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')" "$6"
}
size=$(du -b "$IMG/$PROFILE.docker.tar" | cut -f1)
echo
echo "Image: gen-image.py profile $PROFILE, $((size / 1000000)) MB docker-archive; $(nproc) cores; $(date -u +%Y-%m-%d); median of $ROUNDS."
echo
echo '| pair | source | time, peak RSS | reference | time, peak RSS | ratio | target |'
echo '|---|---|---|---|---|---|---|'
if want a; then
  row a registry "analyze docker://127.0.0.1:PORT/img" oci-archive "analyze img-gzip.oci.tar" "-"
  row "a, --no-cache" registry-nc "analyze docker://127.0.0.1:PORT/img --no-cache" oci-archive-nc "analyze img-gzip.oci.tar --no-cache" "≤ 1.2x"
fi
if want b; then
  row b docker-daemon "analyze docker-daemon:img" docker-save "docker save img \\| analyze -" "≤ 1.2x"
fi
if want c; then
  row c cat-stdin "cat img.docker.tar \\| analyze -" file "analyze img.docker.tar" "≤ 1.3x"
  row "c, --no-cache" cat-stdin-nc "cat img.docker.tar \\| analyze - --no-cache" file-nc "analyze img.docker.tar --no-cache" "-"
  row "c, --no-verify" cat-stdin-nv "cat img.docker.tar \\| analyze - --no-verify" file-nv "analyze img.docker.tar --no-verify" "-"
fi
