#!/usr/bin/env bash
# One job of the decode+hash floor (run by bench.py through `xargs -P2 -L1`):
#   floor-job.sh ARCHIVE OUTDIR INDEX OFFSET SIZE none|gzip|zstd
# Reads the layer blob at OFFSET/SIZE inside ARCHIVE (dd, the `cat` of a blob),
# decodes it (pigz -dc / zstd -dc) and hashes it (sha256sum); the job's
# wall/user/sys seconds go to OUTDIR/INDEX.time, the digest to OUTDIR/INDEX.sum.
set -euo pipefail
archive=$1 out=$2 i=$3 off=$4 size=$5 comp=$6
read_blob="dd if=$(printf %q "$archive") iflag=skip_bytes,count_bytes skip=$off count=$size bs=64K status=none"
case $comp in
  none) pipeline="$read_blob | sha256sum" ;;
  gzip) pipeline="$read_blob | pigz -dc | sha256sum" ;;
  zstd) pipeline="$read_blob | zstd -dcq --long=31 | sha256sum" ;;
  *) echo "floor-job.sh: unknown compression $comp" >&2; exit 2 ;;
esac
exec /usr/bin/time -f '%e %U %S' -o "$out/$i.time" bash -o pipefail -c "$pipeline > $(printf %q "$out/$i.sum")"
