#!/usr/bin/env python3
"""Make "version 2" of an OCI image layout for timing `mlsize diff`.

Usage:
    python3 benches/diff-variant.py SRC_LAYOUT DST_LAYOUT [--replace N] [--mib M]

DST shares every layer blob of SRC's first image except its last N layers
(default 1), which are replaced by N new uncompressed layers of M MiB each
(default 64; one file per layer, deterministic content): the usual shape of
two versions of an application built on the same base. Shared blobs are hard
links (no copy), so DST costs only the new layers on disk. Standard library
only; the new config's diff_ids and history are rewritten to match.

Then, for example:
    mlsize analyze DST; mlsize diff SRC DST    # shared layers are read once
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile


def blob_path(root, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(root, "blobs", algo, hexd)


def read_json(root, digest):
    with open(blob_path(root, digest), "rb") as f:
        return json.load(f)


def write_blob(root, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(root, digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return digest, len(data)


def new_layer(k, mib):
    """An uncompressed tar with one file of `mib` MiB, content depending on k."""
    size = mib << 20
    seed = hashlib.sha256(b"mlsize diff variant %d" % k).digest()
    block = (seed * (65536 // len(seed)))[:65536]
    data = (block * (size // len(block) + 1))[:size]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(f"app/v2/model-{k}.bin")
        info.size = size
        info.mtime = 1714521600
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def variant(manifest, config, replace, mib):
    """The manifest and config of the variant, and its new blobs (digest ->
    bytes): the last `replace` layers replaced by new ones of `mib` MiB."""
    layers = manifest["layers"]
    if not 0 < replace <= len(layers):
        sys.exit(f"--replace must be between 1 and {len(layers)}")
    keep = layers[: len(layers) - replace]
    diff_ids = config["rootfs"]["diff_ids"][: len(keep)]
    blobs, new = {}, []
    for k in range(replace):
        data = new_layer(k, mib)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        new.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": len(data)})
        diff_ids.append(digest)
    config = dict(config, rootfs=dict(config["rootfs"], diff_ids=diff_ids))
    # Keep the history entries of the kept layers, then one per new layer.
    hist, seen = [], 0
    for h in config.get("history", []):
        if seen >= len(keep):
            break
        hist.append(h)
        if not h.get("empty_layer"):
            seen += 1
    for k in range(replace):
        hist.append({"created": "2024-05-02T00:00:00Z", "created_by": f"COPY model-{k}.bin /app/v2/ # buildkit"})
    config["history"] = hist
    cdata = json.dumps(config, sort_keys=True).encode()
    cdigest = "sha256:" + hashlib.sha256(cdata).hexdigest()
    blobs[cdigest] = cdata
    manifest = dict(manifest, config=dict(manifest["config"], digest=cdigest, size=len(cdata)), layers=keep + new)
    return manifest, config, blobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--replace", type=int, default=1)
    ap.add_argument("--mib", type=int, default=64)
    a = ap.parse_args()
    if os.path.exists(a.dst):
        sys.exit(f"{a.dst} exists")
    with open(os.path.join(a.src, "index.json")) as f:
        index = json.load(f)
    mdesc = index["manifests"][0]
    manifest = read_json(a.src, mdesc["digest"])
    config = read_json(a.src, manifest["config"]["digest"])
    manifest, config, blobs = variant(manifest, config, a.replace, a.mib)
    os.makedirs(os.path.join(a.dst, "blobs", "sha256"))
    for l in manifest["layers"]:
        if l["digest"] not in blobs:
            os.link(blob_path(a.src, l["digest"]), blob_path(a.dst, l["digest"]))
    for data in blobs.values():
        write_blob(a.dst, data)
    mdigest, msize = write_blob(a.dst, json.dumps(manifest, sort_keys=True).encode())
    index["manifests"] = [dict(mdesc, digest=mdigest, size=msize)]
    with open(os.path.join(a.dst, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True)
    with open(os.path.join(a.dst, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    kept = len(manifest["layers"]) - a.replace
    print(f"{a.dst}: {kept} layers shared with {a.src}, {a.replace} new ({a.mib} MiB each)")


if __name__ == "__main__":
    main()
