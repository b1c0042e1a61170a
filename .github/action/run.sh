#!/bin/sh
# The GitHub Action's one step (action.yml): `mlsize check` with annotations,
# the markdown summary and the step outputs. Plain POSIX sh, no jq, so that
# tests/action.rs runs exactly this file outside GitHub.
#
# Reads (action.yml passes the inputs as these variables):
#   INPUT_IMAGE     the image, any reference mlsize reads (file, docker://, docker-daemon:, ...)
#   INPUT_BASELINE  optional previous image, for the growth rules (--baseline)
#   INPUT_BUDGET    optional budget file (--budget); else mlsize.toml found from the working dir
#   INPUT_ARGS      optional extra `check` flags, split on whitespace (no quoting)
#   MLSIZE          the mlsize binary (default: mlsize on PATH)
#   GITHUB_OUTPUT   file that receives visible-bytes, compressed-bytes,
#                   download-bytes, wasted-bytes and passed (name=value lines)
#   GITHUB_STEP_SUMMARY  mlsize check appends its markdown report to it
#   RUNNER_TEMP     where the JSON report is written (default: $TMPDIR or /tmp)
# Exit status: 0 every rule passed, 1 a rule failed, 2 an error (also shown as
# an ::error annotation).
set -eu
set -f # INPUT_ARGS is split on whitespace, never glob-expanded

mlsize=${MLSIZE:-mlsize}

# One-line workflow command for an error, data escaped as GitHub requires.
annotate_error() {
  msg=$(printf '%s' "$1" | sed -e 's/%/%25/g' | awk 'BEGIN { ORS = "%0A" } { print }' | sed -e 's/%0A$//')
  printf '::error title=mlsize::%s\n' "$msg"
}

if [ -z "${INPUT_IMAGE:-}" ]; then
  annotate_error "the 'image' input is empty: give an image archive or a reference such as docker://ghcr.io/org/app:tag"
  exit 2
fi

tmp=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mlsize-action.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Input flags that `analyze` accepts too: the second run must read the same
# image the same way (platform, credentials, TLS).
analyze_args=
take_value=
for a in ${INPUT_ARGS:-}; do
  if [ -n "$take_value" ]; then
    analyze_args="$analyze_args $a"
    take_value=
    continue
  fi
  case $a in
  --platform | --image | -j | --threads | --max-uncompressed | --rules | --dup-min-bytes | --creds | --cert-dir)
    analyze_args="$analyze_args $a"
    take_value=1
    ;;
  --platform=* | --image=* | -j?* | --threads=* | --max-uncompressed=* | --rules=* | --dup-min-bytes=* | --creds=* | --cert-dir=* | \
    --no-verify | --no-content-hash | --tls-verify | --tls-verify=*)
    analyze_args="$analyze_args $a"
    ;;
  esac
done

# 1. The check: annotations on stdout, markdown appended to GITHUB_STEP_SUMMARY
#    by mlsize itself (--format github). Its stderr is kept for the error
#    annotation and passed through.
set -- check "$INPUT_IMAGE" --format github
[ -z "${INPUT_BUDGET:-}" ] || set -- "$@" --budget "$INPUT_BUDGET"
[ -z "${INPUT_BASELINE:-}" ] || set -- "$@" --baseline "$INPUT_BASELINE"
# shellcheck disable=SC2086 # split on purpose
set -- "$@" ${INPUT_ARGS:-}
status=0
"$mlsize" "$@" 2>"$tmp/stderr" || status=$?
cat "$tmp/stderr" >&2
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
  err=$(grep '^mlsize: ' "$tmp/stderr" | tail -n 1 || true)
  annotate_error "${err:-mlsize check exited with status $status}"
  exit 2
fi

# 2. The figures for the step outputs. `check --format json` holds the rules'
#    figures only, so the image is analysed a second time (see the README).
#    serde_json's pretty printer indents the top-level "image" object's fields
#    by exactly 4 spaces; layers and files are nested deeper.
# shellcheck disable=SC2086 # split on purpose
if ! "$mlsize" analyze "$INPUT_IMAGE" --format json -q -o "$tmp/report.json" $analyze_args 2>"$tmp/stderr"; then
  cat "$tmp/stderr" >&2
  err=$(grep '^mlsize: ' "$tmp/stderr" | tail -n 1 || true)
  annotate_error "${err:-mlsize analyze failed}"
  exit 2
fi
field() {
  sed -n "s/^    \"$1\": \([0-9][0-9]*\),\{0,1\}\$/\1/p" "$tmp/report.json" | head -n 1
}
if [ "$status" -eq 0 ]; then passed=true; else passed=false; fi
{
  printf 'visible-bytes=%s\n' "$(field visible_bytes)"
  printf 'compressed-bytes=%s\n' "$(field compressed_bytes)"
  printf 'download-bytes=%s\n' "$(field download_bytes)"
  printf 'wasted-bytes=%s\n' "$(field wasted_bytes)"
  printf 'passed=%s\n' "$passed"
} >>"${GITHUB_OUTPUT:-/dev/stdout}"
exit "$status"
