#!/usr/bin/env python3
"""Compare mlsize's JSON report with expected.json, figure by figure.

Usage: check.py MLSIZE EXPECTED.json IMAGE[=COMPRESSION] [IMAGE[=COMPRESSION]...]

IMAGE is the OCI layout directory build_image.py wrote, or another archive of
the same image (docker-archive, oci-archive). COMPRESSION is what mlsize must
report for every layer (gzip, zstd, none); default: gzip for a directory,
unchecked otherwise. Blob digests and compressed sizes are checked for the
OCI layout only (other archives store other blobs); everything else (content,
visible, wasted, files, categories, duplicates, CUDA families, top files,
history, diff_ids, tar sizes) is checked for every input. For the layout,
mlsize also runs with --dup-min-bytes 1 and its groups are checked against
duplicates_min_1. Plain layers (=none) must have a gzip estimate within 5% of
the layout's gzip -6 blob (3% for the image), the same with --no-verify;
compressed ones none, and download_bytes their real size.

Prints every difference; exits 1 if there is any, 2 if mlsize fails.
"""
import json
import os
import subprocess
import sys


def run(mlsize, image, *extra):
    cmd = [mlsize, "analyze", image, "--format", "json", "--quiet", *extra]
    p = subprocess.run(cmd, capture_output=True)
    if p.returncode != 0:
        print(f"check.py: {' '.join(cmd)} exited {p.returncode}: {p.stderr.decode().strip()}")
        sys.exit(2)
    return json.loads(p.stdout)


def compare(where, want, got, diffs):
    if isinstance(want, dict):
        if not isinstance(got, dict):
            diffs.append(f"{where}: expected an object, got {json.dumps(got)[:200]}")
            return
        for k in want:
            if k not in got:
                diffs.append(f"{where}.{k}: missing in mlsize's report (expected {json.dumps(want[k])[:200]})")
            else:
                compare(f"{where}.{k}", want[k], got[k], diffs)
        return
    if isinstance(want, list):
        if not isinstance(got, list):
            diffs.append(f"{where}: expected a list, got {json.dumps(got)[:200]}")
            return
        if len(want) != len(got):
            diffs.append(f"{where}: expected {len(want)} entries, got {len(got)}")
        for i, (w, g) in enumerate(zip(want, got)):
            compare(f"{where}[{i}]", w, g, diffs)
        if len(got) > len(want):
            for i, g in enumerate(got[len(want):], len(want)):
                diffs.append(f"{where}[{i}]: unexpected {json.dumps(g)[:300]}")
        elif len(want) > len(got):
            for i, w in enumerate(want[len(got):], len(got)):
                diffs.append(f"{where}[{i}]: missing {json.dumps(w)[:300]}")
        return
    if want != got:
        diffs.append(f"{where}: expected {json.dumps(want)}, got {json.dumps(got)}")


def check(mlsize, exp, image, compression):
    is_layout = os.path.isdir(image)
    if compression is None and is_layout:
        compression = "gzip"
    rep = run(mlsize, image)
    diffs = []

    img = {k: v for k, v in exp["image"].items() if k != "compressed_bytes_oci_layout"}
    img["platform"] = exp["platform"]
    img["verified"] = True
    if is_layout:
        img["compressed_bytes"] = exp["image"]["compressed_bytes_oci_layout"]
        img["format"] = "oci-layout"
    compare("image", img, rep["image"], diffs)

    layer_keys = ["index", "content_bytes", "wasted_bytes", "files", "categories", "top_category",
                  "created_by", "instruction", "diff_id", "tar_bytes"]
    if is_layout:
        layer_keys += ["digest", "compressed_bytes"]
    layers = []
    for lw in exp["layers"]:
        row = {k: lw[k] for k in layer_keys}
        if compression:
            row["compression"] = compression
        layers.append(row)
    compare("layers", layers, rep["layers"], diffs)
    for key in ("categories", "duplicates", "cuda_duplicates", "top_files", "history"):
        compare(key, exp[key], rep[key], diffs)
    # Every category is reported, in rule order, even when empty.
    names = [c["name"] for c in rep["categories"]]
    if names != [c["name"] for c in exp["categories"]]:
        diffs.append(f"categories: names/order {names}")
    if rep.get("warnings"):
        diffs.append(f"warnings: expected none, got {rep['warnings']}")

    check_download(mlsize, exp, image, rep, compression, diffs)

    if is_layout:
        rep1 = run(mlsize, image, "--dup-min-bytes", "1")
        compare("duplicates(--dup-min-bytes 1)", exp["duplicates_min_1"], rep1["duplicates"], diffs)
        compare("image.duplicate_reclaimable_bytes(--dup-min-bytes 1)",
                sum(g["reclaimable_bytes"] for g in exp["duplicates_min_1"]),
                rep1["image"]["duplicate_reclaimable_bytes"], diffs)
    return diffs


def check_download(mlsize, exp, image, rep, compression, diffs):
    """Issue 11: plain layers get a gzip estimate close to the layout's gzip -6 blobs (written
    by Python's zlib, independently of mlsize), the same with --no-verify; compressed layers
    keep their real size."""
    if compression is None:
        return
    est = [l.get("estimated_gzip_bytes") for l in rep["layers"]]
    img = rep["image"]
    if compression != "none":
        if any(e is not None for e in est) or img.get("download_bytes_basis") != "stored" \
                or img.get("download_bytes") != img["compressed_bytes"]:
            diffs.append(f"download: a {compression} image has no estimate and downloads its blobs: "
                         f"{est} {img.get('download_bytes')} {img.get('download_bytes_basis')}")
        return
    if None in est:
        diffs.append(f"estimated_gzip_bytes: missing for a plain layer: {est}")
        return
    again = [l["estimated_gzip_bytes"] for l in run(mlsize, image, "--no-verify")["layers"]]
    if again != est:
        diffs.append(f"estimated_gzip_bytes: {est} verified but {again} with --no-verify")
    for i, (e, lw) in enumerate(zip(est, exp["layers"])):
        real = lw["compressed_bytes"]
        # Compressed whole (up to 1 MiB): zlib-rs against Python's zlib; sampled: 5%.
        ok = abs(e - real) <= real // 100 + 32 if lw["tar_bytes"] <= 1 << 20 else abs(e - real) <= real * 0.05
        if not ok:
            diffs.append(f"layers[{i}].estimated_gzip_bytes: {e}, gzip -6 blob {real} ({(e - real) / real:+.2%})")
    real = exp["image"]["compressed_bytes_oci_layout"]
    if abs(sum(est) - real) > real * 0.03 or img.get("download_bytes") != sum(est) \
            or img.get("download_bytes_basis") != "estimated":
        diffs.append(f"image.download_bytes: {img.get('download_bytes')} ({img.get('download_bytes_basis')}), "
                     f"estimates {sum(est)}, gzip -6 blobs {real}")


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    mlsize, expected_path, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(expected_path) as fh:
        exp = json.load(fh)
    total = 0
    for arg in images:
        image, _, comp = arg.partition("=")
        diffs = check(mlsize, exp, image, comp or None)
        total += len(diffs)
        status = "OK" if not diffs else f"{len(diffs)} difference(s)"
        print(f"check.py: {image}: {status}")
        for dline in diffs:
            print(f"  {dline}")
    if total:
        sys.exit(1)


if __name__ == "__main__":
    main()
