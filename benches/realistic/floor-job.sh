#!/usr/bin/env bash
# One job of a decode+hash floor (run by bench.py through `xargs -P2 -L1`):
#   floor-job.sh ARCHIVE OUTDIR INDEX OFFSET SIZE none|gzip|zstd coreutils|fast
# Reads the layer blob at OFFSET/SIZE inside ARCHIVE (dd: the `cat` of the blob),
# decodes it and hashes it; the job's wall/user/sys seconds go to
# OUTDIR/INDEX.time, the digest to OUTDIR/INDEX.sum.
#   coreutils: pigz -dc / zstd -dc / none, then sha256sum (the floor as specified)
#   fast:      igzip -dc (ISA-L; pigz if missing) / zstd -dc / none, then
#              openssl dgst -sha256 (SHA-NI): a floor made of the fastest stock tools
set -euo pipefail
archive=$1 out=$2 i=$3 off=$4 size=$5 comp=$6 mode=${7:-coreutils}
read_blob="dd if=$(printf %q "$archive") iflag=skip_bytes,count_bytes skip=$off count=$size bs=64K status=none"
if [ "$mode" = fast ]; then
  hash="openssl dgst -sha256 -r"
  gunzip="pigz -dc"; command -v igzip >/dev/null && gunzip="igzip -dc"
else
  hash=sha256sum
  gunzip="pigz -dc"
fi
case $comp in
  none) pipeline="$read_blob | $hash" ;;
  gzip) pipeline="$read_blob | $gunzip | $hash" ;;
  zstd) pipeline="$read_blob | zstd -dcq --long=31 | $hash" ;;
  *) echo "floor-job.sh: unknown compression $comp" >&2; exit 2 ;;
esac
exec /usr/bin/time -f '%e %U %S' -o "$out/$i.time" bash -o pipefail -c "$pipeline > $(printf %q "$out/$i.sum")"
