#!/usr/bin/env python3
"""Recompute expected.json and EXPECTED.md for the real-tool fixtures.

Usage: python3 compute_expected.py [DIR]   (DIR defaults to this file's folder)
       python3 compute_expected.py --same-members A.tar B.tar
         exit 0 if the two archives have the same members apart from mtimes

Reads every produced format (oci-dir/, real-docker.tar, real-docker.tar.gz,
real-oci-gzip.tar, real-oci-zstd.tar), checks that they describe the same image
(same diff_ids, blob digests/sizes match their descriptors), then replays the
layers as an overlay merge to derive content/wasted/visible figures.
Only the standard library is used; zstd blobs are decompressed with `zstd -dc`.

Definitions (same as the mlsize spec):
  content_bytes  sum of sizes of regular-file entries in a layer
                 (hard links, symlinks, dirs, whiteouts count 0)
  files          number of regular-file entries in a layer
  wasted_bytes   part of a layer's content_bytes absent from the final merged
                 filesystem (removed by a later whiteout / opaque whiteout,
                 replaced by a later entry at the same path or above it, or
                 written twice in one layer). A hard link keeps the content
                 visible while any of its names survives.
  visible_bytes  regular files in the final merged fs, each hard-linked
                 content counted once.
  compressed_bytes  blob size as stored in that format
  tar_bytes      length of the uncompressed layer tar
"""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

HERE = os.path.abspath(sys.argv[1] if len(sys.argv) == 2 else os.path.dirname(__file__))

# Figures derived by hand from what make.sh writes (see EXPECTED.md, "Hand
# derivation"). They depend only on the files make.sh creates and on umoci's
# diff behaviour, not on digests; a mismatch means a tool changed behaviour.
HAND = {
    "layers": [
        # files: part1 200, part2 100, main.py 15, a.conf 4, b.conf 5,
        # os-release 50, a.so 400, b.so 250, pip 700 + 300, tool 3000, libfoo.so 600
        {"files": 12, "content_bytes": 5624,
         # wasted: part1+part2 300 (dir->file, L4), a.conf+b.conf 9 (L4),
         # os-release 50 (L2), a.so+b.so 650 (opaque, L5), pip cache 1000 (L3),
         # tool 3000 (tool whited out in L3 AND tool-link re-emitted by L3)
         "wasted_bytes": 5009},
        {"files": 3, "content_bytes": 132, "wasted_bytes": 0},   # os-release 82, METADATA 40, long 10
        {"files": 1, "content_bytes": 3000, "wasted_bytes": 0},  # tool-link full copy
        {"files": 2, "content_bytes": 17, "wasted_bytes": 0},    # app/data 11, c.conf 6
        {"files": 1, "content_bytes": 512, "wasted_bytes": 0},   # opt/plugins/c.so
        {"files": 0, "content_bytes": 0, "wasted_bytes": 0},     # only usr/lib/.wh.libfoo.so
    ],
    # main.py 15 + libfoo (via libfoo.so.1) 600 + 132 + 3000 + 17 + 512
    "visible_bytes": 4276,
}

FORMATS = ["oci-dir", "real-docker.tar", "real-docker.tar.gz", "real-oci-gzip.tar", "real-oci-zstd.tar"]


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def decompress(blob):
    if blob[:2] == b"\x1f\x8b":
        return "gzip", gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        out = subprocess.run(["zstd", "-dc"], input=blob, stdout=subprocess.PIPE, check=True).stdout
        return "zstd", out
    return "none", blob


def tar_members(tar_bytes):
    """name -> bytes for every regular member of an outer archive (no symlink following)."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as t:
        for m in t:
            if m.isreg():
                out[m.name] = t.extractfile(m).read()
    return out


def outer_listing(tar_bytes):
    """Member order of an outer archive, without mtimes (oci-archive mtimes are wall-clock)."""
    rows = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as t:
        for m in t:
            kind = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
                    tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}.get(m.type, repr(m.type))
            extra = f" -> {m.linkname}" if m.linkname else ""
            rows.append(f"{kind:8} {oct(m.mode)[2:]:>4} {m.size:>6}  {m.name}{extra}")
    return rows


def load_oci(get, fmt):
    index = json.loads(get("index.json"))
    mdesc = index["manifests"][0]
    mbytes = get("blobs/sha256/" + mdesc["digest"].split(":")[1])
    assert sha256(mbytes) == mdesc["digest"] and len(mbytes) == mdesc["size"], fmt
    manifest = json.loads(mbytes)
    cdesc = manifest["config"]
    cbytes = get("blobs/sha256/" + cdesc["digest"].split(":")[1])
    assert sha256(cbytes) == cdesc["digest"] and len(cbytes) == cdesc["size"], fmt
    layers = []
    for d in manifest["layers"]:
        blob = get("blobs/sha256/" + d["digest"].split(":")[1])
        assert sha256(blob) == d["digest"], (fmt, d["digest"])
        assert len(blob) == d["size"], (fmt, d["digest"])
        comp, tar = decompress(blob)
        layers.append({"media_type": d["mediaType"], "digest": d["digest"], "compressed_bytes": len(blob),
                       "compression": comp, "tar": tar})
    return {"index": index, "manifest": manifest, "manifest_media_type": mdesc["mediaType"],
            "config": json.loads(cbytes), "config_digest": cdesc["digest"], "layers": layers}


def load_docker(tar_bytes, fmt):
    members = tar_members(tar_bytes)
    manifest = json.loads(members["manifest.json"])
    assert len(manifest) == 1, fmt
    m = manifest[0]
    cbytes = members[m["Config"]]
    layers = []
    for name in m["Layers"]:
        blob = members[name]
        comp, tar = decompress(blob)
        layers.append({"media_type": None, "digest": name, "compressed_bytes": len(blob),
                       "compression": comp, "tar": tar})
    return {"manifest": m, "config": json.loads(cbytes), "config_digest": sha256(cbytes),
            "layers": layers, "outer": outer_listing(tar_bytes)}


def load_format(fmt):
    path = os.path.join(HERE, fmt)
    if fmt == "oci-dir":
        return load_oci(lambda p: open(os.path.join(path, p), "rb").read(), fmt)
    raw = open(path, "rb").read()
    if fmt.endswith(".gz"):
        raw = gzip.decompress(raw)
    if "docker" in fmt:
        return load_docker(raw, fmt)
    members = tar_members(raw)
    img = load_oci(lambda p: members[p], fmt)
    img["outer"] = outer_listing(raw)
    return img


# ------------------------------------------------------------ raw tar facts
def raw_tar_facts(data):
    """Header-level facts Python's tarfile hides: header kinds, PAX keys, footer."""
    off, kinds, pax_keys, prefix_used, zero_blocks = 0, [], set(), 0, 0
    while off + 512 <= len(data):
        h = data[off:off + 512]
        if h == b"\0" * 512:
            zero_blocks += 1
            off += 512
            continue
        typ = h[156:157].decode() or "\\0"
        magic = h[257:265]
        fmt = {b"ustar\x0000": "ustar", b"ustar  \x00": "gnu"}.get(magic, "v7")
        size = int(h[124:136].strip(b"\0 ") or b"0", 8)
        if fmt == "ustar" and h[345:500].strip(b"\0"):
            prefix_used += 1
        if typ in ("x", "g"):
            body = data[off + 512: off + 512 + size]
            while body:
                n, rest = body.split(b" ", 1)
                rec, body = body[:int(n)], body[int(n):]
                pax_keys.add(rec.split(b" ", 1)[1].split(b"=", 1)[0].decode())
        kinds.append((fmt, typ))
        off += 512 + (size + 511) // 512 * 512
    footer = f"{zero_blocks} zero block(s)"
    if off > len(data):
        footer = f"MISSING: last member's data ends at byte {len(data)}, {off - len(data)} padding bytes and the 1024-byte footer absent"
    elif zero_blocks == 0:
        footer = "MISSING: no end-of-archive zero blocks (stream ends right after the last member)"
    formats = sorted({k for k, _ in kinds})
    types = sorted({t for _, t in kinds})
    return {"header_formats": formats, "typeflags": types, "pax_keys": sorted(pax_keys),
            "ustar_prefix_used": prefix_used, "footer": footer, "len_mod_512": len(data) % 512}


def parse_layer(tar):
    """List of entries; tolerates a missing footer (tarfile does) but not mid-block truncation."""
    entries = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as t:
        for m in t:
            name = m.name
            while name.startswith("./"):
                name = name[2:]
            name = name.strip("/")
            if name == ".":
                name = ""
            base = name.rsplit("/", 1)[-1]
            parent = name.rsplit("/", 1)[0] if "/" in name else ""
            if base == ".wh..wh..opq":
                kind = "opaque"
            elif base.startswith(".wh."):
                kind = "whiteout"
            elif m.isreg():
                kind = "file"
            elif m.islnk():
                kind = "hardlink"
            elif m.issym():
                kind = "symlink"
            elif m.isdir():
                kind = "dir"
            else:
                kind = "other"
            link = m.linkname.strip("/") if m.islnk() else m.linkname
            entries.append({"name": name, "parent": parent, "base": base, "kind": kind,
                            "size": m.size if kind == "file" else 0, "link": link,
                            "mode": m.mode, "mtime": m.mtime})
    return entries


def tar_tvf(tar):
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    p = subprocess.run(["tar", "-tvf", "-"], input=tar, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.stdout.decode()
    if p.returncode:
        out += f"[tar exit status {p.returncode}]\n"
    return out


# ------------------------------------------------------------ overlay replay
def under(path, d):
    return d == "" or path.startswith(d + "/")


def replay(layers_entries):
    merged = {}   # path -> (kind, cid or None, layer index)
    sizes = {}    # cid -> size
    owner = {}    # cid -> (layer, path of the regular entry)
    fate = {}     # cid -> list of events

    def drop(path, layer, why, subtree=True):
        for p in [p for p in merged if p == path or (subtree and under(p, path) and p != path)]:
            k, cid, _ = merged.pop(p)
            if cid is not None:
                fate.setdefault(cid, []).append(f"name `/{p}` removed in layer {layer + 1} ({why})")

    for li, entries in enumerate(layers_entries):
        # 1) whiteouts apply to lower layers only
        for e in entries:
            if e["kind"] == "whiteout":
                target = (e["parent"] + "/" if e["parent"] else "") + e["base"][4:]
                drop(target, li, f"whiteout `{e['name']}`")
            elif e["kind"] == "opaque":
                d = e["parent"]
                for p in [p for p in merged if under(p, d) and p != d]:
                    drop(p, li, f"opaque whiteout `{e['name']}`", subtree=False)
        # 2) entries, in archive order
        for i, e in enumerate(entries):
            k, p = e["kind"], e["name"]
            if k in ("whiteout", "opaque"):
                continue
            # a non-directory in the way of an ancestor is replaced
            parts = p.split("/")
            for j in range(1, len(parts)):
                anc = "/".join(parts[:j])
                if anc in merged and merged[anc][0] != "dir":
                    drop(anc, li, f"replaced by directory needed for `{p}`")
            old = merged.get(p)
            if old is not None and not (old[0] == "dir" and k == "dir"):
                drop(p, li, f"replaced by {k} entry `{p}`")
            if k == "file":
                cid = (li, i)
                sizes[cid], owner[cid] = e["size"], (li, p)
                merged[p] = ("file", cid, li)
            elif k == "hardlink":
                tgt = merged.get(e["link"])
                if tgt is None or tgt[1] is None:
                    raise SystemExit(f"layer {li + 1}: hard link {p} -> {e['link']}: target not a file")
                merged[p] = ("file", tgt[1], li)
            else:
                merged[p] = (k, None, li)

    visible = {cid for (_, cid, _) in merged.values() if cid is not None}
    return merged, sizes, owner, fate, visible


# ------------------------------------------------------------ main
def main():
    imgs = {f: load_format(f) for f in FORMATS}
    ref = imgs["oci-dir"]
    diff_ids = ref["config"]["rootfs"]["diff_ids"]
    for f, img in imgs.items():
        assert len(img["layers"]) == len(diff_ids), f
        for i, l in enumerate(img["layers"]):
            assert sha256(l["tar"]) == diff_ids[i], (f, i)
            assert l["tar"] == ref["layers"][i]["tar"], (f, i)
        assert img["config"]["rootfs"]["diff_ids"] == diff_ids, f

    layer_entries = [parse_layer(l["tar"]) for l in ref["layers"]]
    merged, sizes, owner, fate, visible = replay(layer_entries)

    out_layers, md_layers = [], []
    for li, (l, entries) in enumerate(zip(ref["layers"], layer_entries)):
        files = [e for e in entries if e["kind"] == "file"]
        cids = [(li, i) for i, e in enumerate(entries) if e["kind"] == "file"]
        content = sum(e["size"] for e in files)
        wasted = sum(sizes[c] for c in cids if c not in visible)
        count = lambda k: sum(1 for e in entries if e["kind"] == k)
        out_layers.append({
            "diff_id": diff_ids[li], "tar_bytes": len(l["tar"]), "content_bytes": content,
            "wasted_bytes": wasted, "files": len(files),
            "hardlinks": count("hardlink"), "symlinks": count("symlink"), "dirs": count("dir"),
            "whiteouts": count("whiteout"), "opaque_whiteouts": count("opaque"),
        })
        md_layers.append((li, l, entries, cids))

    image = {
        "visible_bytes": sum(sizes[c] for c in visible),
        "visible_files": sum(1 for (k, _, _) in merged.values() if k == "file"),
        "content_bytes": sum(l["content_bytes"] for l in out_layers),
        "wasted_bytes": sum(l["wasted_bytes"] for l in out_layers),
        "files": sum(l["files"] for l in out_layers),
    }
    assert image["content_bytes"] - image["wasted_bytes"] == image["visible_bytes"]

    per_format = {}
    for f in FORMATS:
        img = imgs[f]
        per_format[f] = {
            "compressed_bytes": [l["compressed_bytes"] for l in img["layers"]],
            "compression": [l["compression"] for l in img["layers"]],
            "layer_media_types": [l["media_type"] for l in img["layers"]],
            "layer_blobs": [l["digest"] for l in img["layers"]],
            "config_digest": img["config_digest"],
        }
    per_format["real-docker.tar"]["note"] = "layers stored uncompressed as <diff_id hex>.tar; compressed_bytes == tar_bytes"
    per_format["real-docker.tar.gz"]["note"] = "whole archive gzipped; inner layer members are uncompressed, so compressed_bytes == tar_bytes"

    final_files = {"/" + pth: sizes[cid] for pth, (k, cid, _) in sorted(merged.items()) if k == "file"}
    final_symlinks = {"/" + pth: layer_entries[li][[e["name"] for e in layer_entries[li]].index(pth)]["link"]
                      for pth, (k, _, li) in sorted(merged.items()) if k == "symlink"}
    expected = {"layers": out_layers, **image, "per_format": per_format,
                "final_files": final_files, "final_symlinks": final_symlinks,
                "history": ref["config"].get("history", [])}

    # ---- compare with the hand derivation
    problems = []
    for i, (h, c) in enumerate(zip(HAND["layers"], out_layers)):
        for k, v in h.items():
            if c[k] != v:
                problems.append(f"layer {i + 1} {k}: computed {c[k]}, hand {v}")
    if len(HAND["layers"]) != len(out_layers):
        problems.append(f"layer count: computed {len(out_layers)}, hand {len(HAND['layers'])}")
    if image["visible_bytes"] != HAND["visible_bytes"]:
        problems.append(f"visible_bytes: computed {image['visible_bytes']}, hand {HAND['visible_bytes']}")

    with open(os.path.join(HERE, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=2)
        fh.write("\n")

    trunc = truncated_fixture()
    with open(os.path.join(HERE, "EXPECTED.md"), "w") as fh:
        fh.write(render_md(imgs, expected, md_layers, merged, sizes, owner, fate, visible, trunc))

    if problems:
        print("compute_expected.py: computed figures differ from the hand derivation:", *problems, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print("compute_expected.py: wrote expected.json and EXPECTED.md; figures match the hand derivation")


def truncated_fixture():
    path = os.path.join(HERE, "oci-dir-truncated")
    if not os.path.isdir(path):
        return None
    img = load_oci(lambda p: open(os.path.join(path, p), "rb").read(), "oci-dir-truncated")
    l = img["layers"][0]
    assert sha256(l["tar"]) == img["config"]["rootfs"]["diff_ids"][0]
    facts = raw_tar_facts(l["tar"])
    try:
        parse_layer(l["tar"])
        strict = "Python tarfile: reads it without error"
    except Exception as e:  # expected: unexpected end of data
        strict = f"Python tarfile: `{type(e).__name__}: {e}`"
    return {"img": img, "layer": l, "facts": facts, "strict": strict, "tvf": tar_tvf(l["tar"])}


def tool_version(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.strip().splitlines()[0]
    except OSError:
        return "not installed"


def render_md(imgs, expected, md_layers, merged, sizes, owner, fate, visible, trunc):
    ref = imgs["oci-dir"]
    hist = [h for h in ref["config"].get("history", []) if not h.get("empty_layer")]
    w = []
    p = w.append
    p("# Real-tool image fixtures: expected facts\n")
    p("Generated by `compute_expected.py` (called from `make.sh`); do not edit by hand.\n")
    p("## Tool versions used\n")
    for cmd in (["umoci", "--version"], ["skopeo", "--version"], ["gzip", "--version"], ["zstd", "--version"],
                ["tar", "--version"]):
        p(f"- `{' '.join(cmd)}`: {tool_version(cmd)}")
    p(f"- python: {sys.version.split()[0]}\n")

    p("## Files\n")
    p("| file | what | layer blobs |")
    p("| --- | --- | --- |")
    p("| `oci-dir/` | OCI image layout written by umoci (tag `1`) | gzip, `application/vnd.oci.image.layer.v1.tar+gzip` |")
    p("| `real-docker.tar` | `skopeo copy oci:oci-dir:1 docker-archive:real-docker.tar:mlsize/real:1` | uncompressed `<diff_id hex>.tar` + legacy `<v1 id>/layer.tar` symlinks |")
    p("| `real-docker.tar.gz` | `gzip -n -9` of `real-docker.tar` | (as above, inside) |")
    p("| `real-oci-gzip.tar` | `skopeo copy oci:oci-dir:1 oci-archive:real-oci-gzip.tar:1` | gzip blobs reused byte-for-byte from `oci-dir/` |")
    p("| `real-oci-zstd.tar` | `skopeo copy --dest-compress-format zstd oci:oci-dir:1 oci-archive:real-oci-zstd.tar:1` | zstd, `application/vnd.oci.image.layer.v1.tar+zstd` |")
    p("| `oci-dir-truncated/` | umoci 0.4.7 `insert` bug: single layer tar truncated mid-block (see end) | gzip |\n")

    p("## Figures\n")
    p("| layer | created_by | tar_bytes | files | content_bytes | wasted_bytes | hardlinks | symlinks | whiteouts | opaque |")
    p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i, l in enumerate(expected["layers"]):
        cb = hist[i]["created_by"] if i < len(hist) else ""
        cb = (cb[:60] + "…") if len(cb) > 60 else cb
        p(f"| {i + 1} | `{cb}` | {l['tar_bytes']} | {l['files']} | {l['content_bytes']} | {l['wasted_bytes']} | "
          f"{l['hardlinks']} | {l['symlinks']} | {l['whiteouts']} | {l['opaque_whiteouts']} |")
    p(f"| **image** | | {sum(l['tar_bytes'] for l in expected['layers'])} | {expected['files']} | "
      f"{expected['content_bytes']} | {expected['wasted_bytes']} | | | | |\n")
    p(f"- visible_bytes (image) = **{expected['visible_bytes']}** "
      f"({expected['visible_files']} regular-file names in the final fs; hard-linked content counted once)")
    p(f"- check: content_bytes − wasted_bytes = {expected['content_bytes']} − {expected['wasted_bytes']} = "
      f"{expected['content_bytes'] - expected['wasted_bytes']} = visible_bytes\n")

    p("### compressed_bytes (blob size) per format\n")
    p("| layer | diff_id | " + " | ".join(FORMATS) + " |")
    p("| --- | --- | " + " | ".join("---:" for _ in FORMATS) + " |")
    for i, l in enumerate(expected["layers"]):
        p(f"| {i + 1} | `{l['diff_id']}` | " +
          " | ".join(str(expected["per_format"][f]["compressed_bytes"][i]) for f in FORMATS) + " |")
    p("")
    p("Layer blob digests as listed by each manifest:\n")
    for f in ("oci-dir", "real-oci-gzip.tar", "real-oci-zstd.tar", "real-docker.tar"):
        p(f"- `{f}` (config `{expected['per_format'][f]['config_digest']}`):")
        for i, d in enumerate(expected["per_format"][f]["layer_blobs"]):
            mt = expected["per_format"][f]["layer_media_types"][i]
            p(f"  {i + 1}. `{d}`" + (f" — `{mt}`" if mt else ""))
    p("")

    p("### History (config, in order; `empty_layer` entries have no layer)\n")
    for h in ref["config"].get("history", []):
        p(f"- {h['created']} {'(empty_layer) ' if h.get('empty_layer') else ''}`{h['created_by']}`")
    p("")

    p("## Layers in detail\n")
    for li, l, entries, cids in md_layers:
        e_out = expected["layers"][li]
        p(f"### Layer {li + 1}\n")
        if li < len(hist):
            p(f"- created_by: `{hist[li]['created_by']}`")
        p(f"- blob (oci-dir): `{l['digest']}` ({l['compressed_bytes']} B, `{l['media_type']}`)")
        p(f"- diff_id: `{e_out['diff_id']}`; tar_bytes {e_out['tar_bytes']}")
        facts = raw_tar_facts(l["tar"])
        p(f"- tar headers: formats {facts['header_formats']}, typeflags {facts['typeflags']}, "
          f"PAX keys {facts['pax_keys'] or 'none'}, ustar prefix field used by {facts['ustar_prefix_used']} entr(y/ies); "
          f"end of archive: {facts['footer']}")
        p(f"- files {e_out['files']}, content_bytes {e_out['content_bytes']}, wasted_bytes {e_out['wasted_bytes']}\n")
        p("`tar -tvf` of the decompressed blob (archive order):\n")
        p("```")
        p(tar_tvf(l["tar"]).rstrip("\n"))
        p("```\n")
        regs = [(i, e) for i, e in enumerate(entries) if e["kind"] == "file"]
        if regs:
            p("Regular files:\n")
            for i, e in regs:
                cid = (li, i)
                if cid in visible:
                    names = sorted(pth for pth, (k, c, _) in merged.items() if c == cid)
                    status = "visible as " + ", ".join(f"`/{n}`" for n in names)
                else:
                    status = "**wasted**: " + "; ".join(fate.get(cid, ["?"]))
                p(f"- `/{e['name']}` {e['size']} B — {status}")
            p("")
        for kind, label in (("hardlink", "Hard links"), ("symlink", "Symlinks"),
                            ("whiteout", "Whiteouts"), ("opaque", "Opaque whiteouts")):
            items = [e for e in entries if e["kind"] == kind]
            if items:
                p(f"{label}:\n")
                for e in items:
                    if kind in ("hardlink", "symlink"):
                        p(f"- `/{e['name']}` -> `{e['link']}`")
                    elif kind == "whiteout":
                        tgt = (e["parent"] + "/" if e["parent"] else "") + e["base"][4:]
                        p(f"- `{e['name']}` (deletes `/{tgt}`)")
                    else:
                        p(f"- `{e['name']}` (hides lower-layer contents of `/{e['parent']}`)")
                p("")

    p("## Final merged filesystem (regular files)\n")
    p("| path | size | from layer | shares content with |")
    p("| --- | ---: | ---: | --- |")
    for pth in sorted(merged):
        k, cid, li = merged[pth]
        if k != "file":
            continue
        others = sorted(q for q, (k2, c2, _) in merged.items() if c2 == cid and q != pth)
        p(f"| `/{pth}` | {sizes[cid]} | {cid[0] + 1} (entry `{owner[cid][1]}`) | {', '.join('`/' + o + '`' for o in others)} |")
    p("")

    p("Symlinks in the final filesystem:\n")
    for pth, (k, _, li) in sorted(merged.items()):
        if k == "symlink":
            tgt = [e for e in md_layers[li][2] if e["name"] == pth][0]["link"]
            resolved = os.path.normpath(os.path.join(os.path.dirname(pth), tgt)) if not tgt.startswith("/") else tgt.lstrip("/")
            dangling = "" if resolved in merged else " (dangling: target no longer exists)"
            p(f"- `/{pth}` -> `{tgt}` (layer {li + 1}){dangling}")
    p("")

    p("## Hand derivation\n")
    p(HAND_TEXT)

    p("## Outer archive member order\n")
    for f in ("real-docker.tar", "real-oci-gzip.tar", "real-oci-zstd.tar"):
        raw = open(os.path.join(HERE, f), "rb").read()
        facts = raw_tar_facts(raw)
        p(f"`{f}` ({len(raw)} B; headers {facts['header_formats']}, typeflags {facts['typeflags']}, "
          f"PAX keys {facts['pax_keys'] or 'none'}, end of archive: {facts['footer']}). "
          "Type, raw header mode (octal), size, name; mtimes omitted:\n")
        p("```")
        p("\n".join(imgs[f]["outer"]))
        p("```\n")

    p(QUIRKS_TEXT)

    if trunc:
        t = trunc
        p("## Extra fixture: `oci-dir-truncated/`\n")
        p("One layer written by `umoci insert` (umoci 0.4.7 forgets to close its tar writer, umoci issue #436, "
          "fixed upstream by PR #534). The layer tar stops right after the last member's data.\n")
        p(f"- blob `{t['layer']['digest']}` ({t['layer']['compressed_bytes']} B gzip)")
        p(f"- diff_id `{t['img']['config']['rootfs']['diff_ids'][0]}` (sha256 of the truncated tar as stored)")
        p(f"- tar_bytes {len(t['layer']['tar'])} (not a multiple of 512: remainder {t['facts']['len_mod_512']})")
        p(f"- end of archive: {t['facts']['footer']}")
        p(f"- {t['strict']}")
        p("- expected (lenient reader): 1 regular file `/blob.bin`, 120 B; files 1, content_bytes 120, "
          "wasted_bytes 0, visible_bytes 120\n")
        p("`tar -tvf`:\n")
        p("```")
        p(t["tvf"].rstrip("\n"))
        p("```\n")
    return "\n".join(w) + "\n"


HAND_TEXT = """Derived from what `make.sh` writes, independently of the replay code
(`HAND` in `compute_expected.py` holds these numbers and the script fails if the
replay disagrees):

- Layer 1 regular files: `app/data/part1.bin` 200, `app/data/part2.bin` 100,
  `app/main.py` 15, `etc/conf.d/a.conf` 4, `etc/conf.d/b.conf` 5,
  `etc/os-release` 50, `opt/plugins/a.so` 400, `opt/plugins/b.so` 250,
  `root/.cache/pip/http/a/b/0123456789abcdef` 700,
  `root/.cache/pip/http/selfcheck.json` 300, `usr/bin/tool` 3000,
  `usr/lib/libfoo.so` 600 → 12 files, 5624 B.
  (`usr/bin/tool-link` and `usr/lib/libfoo.so.1` are hard-link entries, 0 B.)
  Wasted: part1+part2 300 (layer 4 turns `/app/data` into a file), a.conf+b.conf
  9 (layer 4 whiteouts), os-release 50 (layer 2 overwrites), a.so+b.so 650
  (layer 5 opaque whiteout), pip cache 1000 (layer 3 `.wh..cache`), tool 3000
  (layer 3 whites out `usr/bin/tool` *and* re-emits `usr/bin/tool-link` as a
  full regular file, so neither name still refers to layer 1's content)
  → 5009. Not wasted: main.py 15 and libfoo 600 (layer 6 whites out
  `usr/lib/libfoo.so`, the name holding the regular entry, but the hard link
  `usr/lib/libfoo.so.1` survives) → 615 visible.
- Layer 2: `etc/os-release` 82, `.../METADATA_FOR_A_RATHER_LONG_PATH_NAME` 40,
  `usr/share/doc/mlsize/this_is_…limit.txt` 10 → 3 files, 132 B, 0 wasted.
- Layer 3: `usr/bin/tool-link` 3000 → 1 file, 3000 B, 0 wasted.
- Layer 4: `app/data` 11, `etc/conf.d/c.conf` 6 → 2 files, 17 B, 0 wasted.
- Layer 5: `opt/plugins/c.so` 512 → 1 file, 512 B, 0 wasted.
- Layer 6: whiteout only → 0 files, 0 B.
- Image: files 19, content 9285, wasted 5009, visible 615+132+3000+17+512 = 4276.
"""

QUIRKS_TEXT = """## Writer quirks observed (umoci 0.4.7, skopeo 1.9.3)

umoci layer tars (`repack`):
- Entry names have no `./` or `/` prefix; directories end in `/`; the rootfs
  itself appears as `.` (first entry of layer 1). Entries are in lexical walk
  order (parents before children) — except whiteouts, see below.
- Only changed paths are written: parent directories are omitted when their
  metadata did not change (layer 2 has `etc/os-release` without `etc/`, layer 3
  has `usr/bin/` without `usr/`).
- Headers are plain ustar (Go `archive/tar`); names > 100 chars that can be split
  at a `/` use the ustar prefix field; an unsplittable name (a component > 100
  chars) or link target > 100 chars gets a PAX `x` header (`path` / `linkpath`).
  No GNU `L`/`K` headers. uname/gname empty, uid/gid 0, mtimes whole seconds.
- Hard links: the lexically first name gets the regular entry, later names are
  typeflag `1` entries whose linkname is the full path (`usr/bin/tool`).
- Whiteouts are per-file `.wh.<name>` entries, mode 0000, mtime 0 (1970). `rm -rf
  dir` gives one `.wh.dir` in the parent (layer 3: `root/.wh..cache`); `repack`
  never writes opaque whiteouts, even when a directory is removed and recreated
  (layer 4 lists `.wh.a.conf`, `.wh.b.conf` next to the new `c.conf`).
- Directory replaced by a file (layer 4): the new regular file `app/data` is
  written *and* whiteouts for the old children are written beneath it
  (`app/data/.wh.part1.bin`), i.e. whiteouts under a path that is a regular file
  in the same layer. An extractor must not try to create `app/data/` for them.
- Deleting one name of a hard-linked pair changes the survivor's nlink, which
  umoci's mtree diff treats as a modification: the survivor is re-emitted as a
  full regular file (layer 3 `usr/bin/tool-link`, 3000 B, keeping the layer-1
  mtime).
- `insert --opaque` writes `<dir>/.wh..wh..opq` *before* the `<dir>/` entry.
- `insert` (0.4.7) does not close the tar writer: layers 5 and 6 have no
  end-of-archive zero blocks. Here the last member ends on a 512 boundary so
  only the footer is missing; otherwise the data is cut mid-block
  (`oci-dir-truncated/`).
- `oci-dir/`: `index.json` with `org.opencontainers.image.ref.name` = `1`;
  blobs written mode 0600 (make.sh relaxes to 0644); gzip blobs are
  byte-for-byte reproducible. Config `created` comes from `umoci config
  --created`; unreferenced blobs remain until `umoci gc`.

skopeo `docker-archive` (docker-save format):
- Member order: layer tars first (`<diff_id hex>.tar`, uncompressed, mode 0444),
  then the config `<config digest hex>.json`, then for each layer a legacy
  directory `<v1 id>/` *without a directory entry* holding `layer.tar` (a
  **symlink** to `../<diff_id hex>.tar`), `VERSION` and `json`; `manifest.json`
  and `repositories` come last. All mtimes 0, uid/gid 0.
- `manifest.json` `Layers` point at the top-level `<hex>.tar` files, not at
  `<id>/layer.tar`; `RepoTags` is normalised to `docker.io/mlsize/real:1`.
- The config is the OCI config blob copied verbatim (same digest as in
  `oci-dir/`), not converted to a Docker config.
- Layer members keep umoci's tar bytes verbatim, including the missing footer
  (layer 6's member is 512 bytes: one whiteout header, no end-of-archive blocks).
- The `<v1 id>/layer.tar` symlinks have mode 0000.

skopeo `oci-archive`:
- A tar of an OCI layout: `blobs/`, `blobs/sha256/`, blobs sorted by hex,
  `index.json`, `oci-layout` last. Member mtimes are the wall-clock time of the
  copy, uname/gname `root`, so their bytes change on every skopeo run even
  though their blobs do not (make.sh keeps the previous file when only mtimes
  differ, so re-running it leaves the tree unchanged).
- Header mode fields carry the file-type bits (`0040755` for directories,
  `0100644` for files): mask with `0o7777`.
- Without flags the gzip blobs are reused byte-for-byte. With
  `--dest-compress-format zstd` every layer is recompressed, media type becomes
  `application/vnd.oci.image.layer.v1.tar+zstd`, new manifest digest, same config.
"""

def members_signature(path):
    """Members of an archive with everything but mtimes (for make.sh's keep-if-same)."""
    with tarfile.open(path, mode="r:") as t:
        return [(m.name, m.type, m.mode, m.uid, m.gid, m.uname, m.gname, m.linkname,
                 t.extractfile(m).read() if m.isreg() else None) for m in t]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--same-members":
        sys.exit(0 if members_signature(sys.argv[2]) == members_signature(sys.argv[3]) else 1)
    main()
