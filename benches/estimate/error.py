#!/usr/bin/env python3
"""How far mlsize's gzip estimate is from real gzip sizes of the same layers.

Usage:
    python3 benches/estimate/error.py MLSIZE IMAGE [--gzip REF]... [--zlib BIN] [--go]

IMAGE is an image whose layers are stored uncompressed (docker-archive, or an
uncompressed OCI layout/archive). Its per-layer `estimated_gzip_bytes` (mlsize
JSON) is compared with:

  --gzip REF   the gzip layer blobs of the same image (same diff_ids) in REF, an
               OCI layout directory or oci-archive tar (e.g. pigz -6 -n layers
               from benches/gen-image.py, or a registry's copy);
  --zlib BIN   the whole layer gzipped by BIN (`cargo build --release --example
               gzip-size`: flate2 at the estimate's level, the encoder mlsize
               samples with, so the difference is the sampling error alone);
  --go         the whole layer gzipped by Go's compress/gzip at
               DefaultCompression, as `docker push` does it (needs `go`).

It also checks that the estimate is the same with and without --no-verify and
with -j1. Prints a markdown table per layer and a summary line per reference:
error = (estimate - real) / real.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))


def mlsize_json(mlsize, image, *flags):
    out = subprocess.run([mlsize, "analyze", image, "--format", "json", *flags],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def tar_members(path):
    with tarfile.open(path, "r:") as t:
        return {m.name.lstrip("./"): m for m in t.getmembers()}


def read_member(path, members, name):
    m = members[name]
    while m.issym() or m.islnk():
        target = m.linkname if m.islnk() else os.path.normpath(os.path.join(os.path.dirname(m.name), m.linkname))
        m = members[target.lstrip("./")]
    with open(path, "rb") as f:
        f.seek(m.offset_data)
        return m, f.read(m.size) if m.size < (64 << 20) else None


def oci_docs(ref):
    """(read(name) -> bytes, spec(name) -> FILE:OFFSET:LEN) for a layout dir or tar."""
    if os.path.isdir(ref):
        def read(name):
            with open(os.path.join(ref, name), "rb") as f:
                return f.read()

        def spec(name):
            p = os.path.join(ref, name)
            return f"{p}:0:{os.path.getsize(p)}"
        return read, spec
    members = tar_members(ref)

    def read(name):
        return read_member(ref, members, name)[1]

    def spec(name):
        m = read_member(ref, members, name)[0]
        return f"{ref}:{m.offset_data}:{m.size}"
    return read, spec


def blob_name(digest):
    algo, hexd = digest.split(":", 1)
    return f"blobs/{algo}/{hexd}"


def oci_layers(ref):
    """[(diff_id, blob size, FILE:OFFSET:LEN)] of the first image of an OCI layout/archive."""
    read, spec = oci_docs(ref)
    index = json.loads(read("index.json"))
    desc = index["manifests"][0]
    manifest = json.loads(read(blob_name(desc["digest"])))
    while "manifests" in manifest:  # an index: its first image
        manifest = json.loads(read(blob_name(manifest["manifests"][0]["digest"])))
    config = json.loads(read(blob_name(manifest["config"]["digest"])))
    return [(d, l["size"], spec(blob_name(l["digest"])))
            for d, l in zip(config["rootfs"]["diff_ids"], manifest["layers"])]


def image_layers(image):
    """[(diff_id, FILE:OFFSET:LEN)] of the uncompressed image's layer blobs."""
    if os.path.isdir(image) or "index.json" in tar_members(image):
        return [(d, s) for d, _, s in oci_layers(image)]
    members = tar_members(image)
    manifest = json.loads(read_member(image, members, "manifest.json")[1])[0]
    config = json.loads(read_member(image, members, manifest["Config"])[1])
    out = []
    for d, name in zip(config["rootfs"]["diff_ids"], manifest["Layers"]):
        m = read_member(image, members, name)[0]
        out.append((d, f"{image}:{m.offset_data}:{m.size}"))
    return out


def sizes_from(cmd, specs, cache, key):
    """Sizes of the ranges by `cmd`, remembered in `cache` (whole-layer gzip is slow)."""
    want = [s for s in specs if f"{key} {s}" not in cache]
    if want:
        out = subprocess.run(cmd + want, check=True, capture_output=True, text=True).stdout
        for spec, line in zip(want, out.splitlines()):
            cache[f"{key} {spec}"] = int(line.split("\t", 1)[0])
    return [cache[f"{key} {s}"] for s in specs]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mlsize")
    ap.add_argument("image")
    ap.add_argument("--gzip", action="append", default=[], help="OCI layout/archive with gzip layers")
    ap.add_argument("--zlib", help="gzip-size example binary")
    ap.add_argument("--go", action="store_true")
    ap.add_argument("--cache", help="JSON file remembering whole-layer gzip sizes between runs")
    a = ap.parse_args()
    cache = {}
    if a.cache and os.path.exists(a.cache):
        with open(a.cache) as f:
            cache = json.load(f)

    report = mlsize_json(a.mlsize, a.image, "--no-verify")
    for flags in (("-j1", "--no-verify"), ()):
        other = mlsize_json(a.mlsize, a.image, *flags)
        got = [l["estimated_gzip_bytes"] for l in other["layers"]]
        want = [l["estimated_gzip_bytes"] for l in report["layers"]]
        if got != want:
            sys.exit(f"estimates differ with {flags or 'verification'}: {got} vs {want}")
    layers = report["layers"]
    blobs = image_layers(a.image)
    refs = {}
    for ref in a.gzip:
        by_diff = {d: size for d, size, _ in oci_layers(ref)}
        refs[os.path.basename(ref.rstrip("/"))] = [by_diff.get(l["diff_id"]) for l in layers]
    specs = [s for _, s in blobs]
    if a.zlib:
        refs["zlib-rs -6 (whole layer)"] = sizes_from([a.zlib], specs, cache, "zlib")
    if a.go:
        go = ["go", "run", os.path.join(HERE, "gosize.go")]
        refs["Go gzip -6 (docker push)"] = sizes_from(go, specs, cache, "go")
    if a.cache:
        with open(a.cache, "w") as f:
            json.dump(cache, f, indent=1)

    names = list(refs)
    print(f"image: {a.image}  ({report['image']['format']}, {len(layers)} layers)\n")
    print("| layer | tar bytes | estimate | " + " | ".join(f"{n} | error" for n in names) + " |")
    print("|---:|---:|---:|" + "---:|---:|" * len(names))
    for i, l in enumerate(layers):
        row = [str(i + 1), f"{l['tar_bytes']:,}", f"{l['estimated_gzip_bytes']:,}"]
        for n in names:
            real = refs[n][i]
            if real is None:
                row += ["-", "-"]
            else:
                row += [f"{real:,}", f"{(l['estimated_gzip_bytes'] - real) / real:+.2%}"]
        print("| " + " | ".join(row) + " |")
    est_total = sum(l["estimated_gzip_bytes"] for l in layers)
    print()
    for n in names:
        pairs = [(l["estimated_gzip_bytes"], r) for l, r in zip(layers, refs[n]) if r]
        errs = [abs(e - r) / r for e, r in pairs]
        total = sum(r for _, r in pairs)
        est = sum(e for e, _ in pairs)
        print(f"{n}: image {est:,} vs {total:,} ({(est - total) / total:+.2%}); "
              f"per layer max |error| {max(errs):.2%}, mean {sum(errs) / len(errs):.2%} ({len(errs)} layers)")
    print(f"(estimate total {est_total:,}; download_bytes {report['image']['download_bytes']:,}, "
          f"basis {report['image']['download_bytes_basis']})")


if __name__ == "__main__":
    main()
