#!/bin/sh
# Fetches the pinned d3-hierarchy build that the HTML report inlines
# (src/render/html.rs, include_str!) from the npm registry, and checks it.
# Run from anywhere: sh assets/html/vendor/fetch.sh
set -eu
cd "$(dirname "$0")"
VERSION=3.1.2
SHA256=a8771380454be89ec5ffe9a6396ba7c247081e348ae740dc9cb9629abd4c0e43
url="https://registry.npmjs.org/d3-hierarchy/-/d3-hierarchy-$VERSION.tgz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "$url" -o "$tmp/pkg.tgz" 2>/dev/null || wget -q "$url" -O "$tmp/pkg.tgz"
tar -xzf "$tmp/pkg.tgz" -C "$tmp"
cp "$tmp/package/dist/d3-hierarchy.min.js" d3-hierarchy.min.js
cp "$tmp/package/LICENSE" d3-hierarchy.LICENSE
got=$(sha256sum d3-hierarchy.min.js | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
  echo "d3-hierarchy.min.js: sha256 $got, expected $SHA256" >&2
  exit 1
fi
echo "d3-hierarchy $VERSION: ok"
