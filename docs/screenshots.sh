#!/bin/sh
# Makes the README's screenshots of the three HTML pages (analyze, diff,
# check) with headless Chromium, from the example images the demo builds.
# Run from the repository root: sh docs/screenshots.sh
set -eu
cargo build --release --quiet
cargo run --release --quiet --features test-support --example demo >/dev/null
bin=target/release/mlsize
ex=target/mlsize-example
out=target/mlsize-pages
mkdir -p "$out"
$bin analyze "$ex/naive-ml.tar" --format html -o "$out/analyze.html"
$bin diff "$ex/optimized-ml.tar" "$ex/naive-ml.tar" --format html -o "$out/diff.html"
printf 'max_visible_bytes = "100MB"\nmax_wasted_percent = 10\n' >"$out/mlsize.toml"
$bin check "$ex/naive-ml.tar" --budget "$out/mlsize.toml" --format html -o "$out/check.html" || true
for page in analyze diff check; do
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --disable-background-networking --window-size=1200,900 \
    --screenshot="docs/$page.png" "file://$PWD/$out/$page.html" 2>/dev/null
done
ls -l docs/*.png
