#!/usr/bin/env python3
"""Push an oci-archive to a registry without unpacking it.

Usage:
    python3 benches/cache/push.py ARCHIVE http://127.0.0.1:PORT/REPO:TAG [--replace N --mib M]

Each blob is streamed from its place in the archive's tar into a monolithic
upload (POST, then PUT with the digest); blobs the registry already holds
are skipped. skopeo unpacks an oci-archive into a temporary directory
first, which for the 9.5 GB realistic image needs another 7 GB of disk;
this needs none. With --replace, what is pushed is benches/diff-variant.py's
variant: the last N layers replaced by new ones of M MiB. Standard library
only; plain HTTP, no auth (a loopback bench registry).
"""

import argparse
import hashlib
import http.client
import importlib.util
import json
import os
import sys
import tarfile
import urllib.parse


def load_variant():
    path = os.path.join(os.path.dirname(__file__), "..", "diff-variant.py")
    spec = importlib.util.spec_from_file_location("diff_variant", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.variant


class Registry:
    def __init__(self, base, repo):
        u = urllib.parse.urlsplit(base)
        self.host, self.repo = u.netloc, repo

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection(self.host, timeout=600, blocksize=1 << 20)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def has(self, digest):
        r, _ = self.request("HEAD", f"/v2/{self.repo}/blobs/{digest}")
        return r.status == 200

    def put_blob(self, digest, size, body):
        r, data = self.request("POST", f"/v2/{self.repo}/blobs/uploads/")
        if r.status != 202:
            sys.exit(f"starting the upload of {digest}: {r.status} {data[:200]!r}")
        loc = urllib.parse.urlsplit(r.getheader("Location"))
        query = (loc.query + "&" if loc.query else "") + "digest=" + urllib.parse.quote(digest)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        r, data = self.request("PUT", f"{loc.path}?{query}", body=body, headers=headers)
        if r.status != 201:
            sys.exit(f"uploading {digest}: {r.status} {data[:200]!r}")

    def put_manifest(self, tag, media_type, data):
        headers = {"Content-Type": media_type}
        r, body = self.request("PUT", f"/v2/{self.repo}/manifests/{tag}", body=data, headers=headers)
        if r.status != 201:
            sys.exit(f"pushing the manifest: {r.status} {body[:200]!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive")
    ap.add_argument("dest", help="http://HOST:PORT/REPO:TAG")
    ap.add_argument("--replace", type=int, default=0)
    ap.add_argument("--mib", type=int, default=64)
    a = ap.parse_args()
    base, _, ref = a.dest.rpartition("/")
    u = urllib.parse.urlsplit(base)
    repo_tail, _, tag = ref.partition(":")
    repo = (u.path.strip("/") + "/" + repo_tail).strip("/")
    reg = Registry(f"{u.scheme}://{u.netloc}", repo)

    t = tarfile.open(a.archive)
    members = {m.name.removeprefix("./"): m for m in t.getmembers() if m.isfile()}

    def blob(digest):
        algo, hexd = digest.split(":", 1)
        return members[f"blobs/{algo}/{hexd}"]

    index = json.load(t.extractfile(members["index.json"]))
    mdesc = index["manifests"][0]
    manifest = json.load(t.extractfile(blob(mdesc["digest"])))
    config = json.load(t.extractfile(blob(manifest["config"]["digest"])))
    new = {}
    if a.replace:
        manifest, config, new = load_variant()(manifest, config, a.replace, a.mib)
    for d in [l["digest"] for l in manifest["layers"]] + [manifest["config"]["digest"]]:
        if reg.has(d):
            continue
        if d in new:
            reg.put_blob(d, len(new[d]), new[d])
        else:
            m = blob(d)
            reg.put_blob(d, m.size, t.extractfile(m))
    media = manifest.get("mediaType", mdesc.get("mediaType", "application/vnd.oci.image.manifest.v1+json"))
    if a.replace:
        data = json.dumps(manifest, sort_keys=True).encode()
    else:
        # The manifest as stored: its digest is the image's.
        data = t.extractfile(blob(mdesc["digest"])).read()
    reg.put_manifest(tag, media, data)
    print(f"{a.dest}: sha256:{hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
