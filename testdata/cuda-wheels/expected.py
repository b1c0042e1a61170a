#!/usr/bin/env python3
"""Expected mlsize figures for an image, computed from the layer entry lists
that build_image.py wrote (never from mlsize's output).

It replays the layers as an overlay (OCI image-spec whiteouts, as written down
in ACCOUNTING.md) and applies the category rules of issue 3 / builtin_rules()
with their glob semantics (first matching rule wins; `*` never crosses `/`;
`**/` is any number of leading directories; `/**` is everything below).

Entry: dict(path="a/b" (no leading slash), type=dir|file|symlink|hardlink|
whiteout|opaque, data=bytes (file), target=str (links)). A whiteout entry names
the path it hides (the tar holds `.wh.<name>`); an opaque entry names the
directory whose lower contents it hides (the tar holds `<dir>/.wh..wh..opq`).
"""
import hashlib
import re

# ------------------------------------------------------------- categories
CUDA_LIB_STEMS = [
    "cublas", "cublasLt", "cudart", "cudnn", "cufft", "cufftw", "curand", "cusolver",
    "cusolverMg", "cusparse", "cusparseLt", "nccl", "nvrtc", "nvJitLink", "nvToolsExt",
    "nvblas", "nvjpeg", "npp", "cufile", "cuda", "nvidia-ml",
]
_STEMS = ",".join(CUDA_LIB_STEMS)
RULES = [
    ("pip-cache", ["**/.cache/pip/**", "**/.cache/uv/**", "/tmp/pip-*/**"]),
    ("conda-pkgs", ["/opt/conda/pkgs/**", "**/miniconda3/pkgs/**", "**/miniforge3/pkgs/**",
                    "**/mambaforge/pkgs/**", "**/anaconda3/pkgs/**", "**/micromamba/pkgs/**"]),
    ("apt-cache", ["/var/lib/apt/lists/**", "/var/cache/apt/**"]),
    ("model-cache", ["**/.cache/huggingface/**", "**/.cache/torch/**"]),
    ("nsight", ["**/nsight-compute*/**", "**/nsight-systems*/**"]),
    ("cupti", ["**/extras/CUPTI/**", "**/nvidia/cuda_cupti/**", "**/libcupti*",
               "**/libnvperf_*", "**/libpcsamplingutil*"]),
    ("headers", ["**/include/**", "**/*.{h,hh,hpp,hxx,cuh,inl}"]),
    ("static-libs", ["**/*.a"]),
    ("cuda-libs", ["**/lib{" + _STEMS + "}.so*", "**/lib{" + _STEMS + "}[._-]*.so*",
                   "/usr/local/cuda*/**/lib*.so*", "**/site-packages/nvidia/**/lib*.so*",
                   "**/dist-packages/nvidia/**/lib*.so*"]),
    ("cuda-tools", ["/usr/local/cuda*/bin/**", "/usr/local/cuda*/nvvm/**", "**/nvidia/cuda_nvcc/**"]),
    ("python-bytecode", ["**/__pycache__/**", "**/*.pyc"]),
    ("docs", ["/usr/share/doc/**", "/usr/share/man/**", "/usr/share/info/**"]),
    ("other", []),
]
CATEGORY_NAMES = [r[0] for r in RULES]


def glob_regex(g):
    """A glob over absolute image paths as a regex (whole-path match)."""
    out, i = "", 0
    while i < len(g):
        if i == 0 and g.startswith("**/"):
            out, i = out + "(?:.*/)?", 3
        elif g.startswith("/**/", i):
            out, i = out + "/(?:.*/)?", i + 4
        elif g.startswith("/**", i) and i + 3 == len(g):
            out, i = out + "/.*", i + 3
        elif g[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif g[i] == "?":
            out, i = out + "[^/]", i + 1
        elif g[i] == "[":
            j = g.index("]", i + 1)
            out, i = out + "[" + "".join("\\" + c if c in "\\^[" else c for c in g[i + 1:j]) + "]", j + 1
        elif g[i] == "{":
            j = g.index("}", i)
            out += "(?:" + "|".join(re.escape(alt) for alt in g[i + 1:j].split(",")) + ")"
            i = j + 1
        else:
            out, i = out + re.escape(g[i]), i + 1
    return re.compile(out, re.S)


_COMPILED = [(name, [glob_regex(g) for g in globs]) for name, globs in RULES]


def classify(path):
    """Category of an absolute image path: the first rule with a matching glob."""
    for name, regs in _COMPILED:
        if any(r.fullmatch(path) for r in regs):
            return name
    return "other"


def cuda_family(name):
    """Family key: a lib*.so* name cut after the first number that follows
    `.so` (libcudart.so.12.4.127 -> libcudart.so.12; libnvperf_host.so stays)."""
    m = re.match(r"(lib.*?\.so)(\.[0-9]+)?", name)
    if not m:
        return None
    return m.group(0)


def instruction(created_by):
    """The instruction a person wrote, for the created_by forms this image uses."""
    s = created_by
    m = re.match(r"^/bin/sh -c #\(nop\)\s+(.*?)\s*$", s)
    if m:
        return m.group(1)
    m = re.match(r"^RUN (?:\|\d+(?: [A-Za-z_][A-Za-z0-9_]*=\S*)* )?/bin/sh -c (.*?)(?: # buildkit)?$", s)
    if m:
        return "RUN " + m.group(1)
    return s


# ---------------------------------------------------------------- overlay
class Node:
    __slots__ = ("layer", "bytes", "sha256", "category", "written_at")

    def __init__(self, layer, data, path):
        self.layer = layer
        self.bytes = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.written_at = path
        self.category = classify(path)


def _remove(tree, path):
    """Removes path and its whole subtree."""
    tree.pop(path, None)
    prefix = path.rstrip("/") + "/"
    for p in [p for p in tree if p.startswith(prefix)]:
        del tree[p]


def _ensure_parents(tree, path):
    parts = path.split("/")[1:-1]
    cur = ""
    for part in parts:
        cur += "/" + part
        kind = tree.get(cur)
        if kind is None:
            tree[cur] = ("dir",)
        elif kind[0] != "dir":  # a file or symlink in the way is replaced
            _remove(tree, cur)
            tree[cur] = ("dir",)


def replay(layers):
    """Returns (nodes, tree): every regular-file node written, and the final
    tree {abs path: ("dir",) | ("file", node) | ("symlink", target)}."""
    tree = {"/": ("dir",)}
    nodes = []
    warnings = []
    for li, entries in enumerate(layers):
        # Whiteouts act on the lower layers only, wherever they sit in the tar.
        for e in entries:
            p = "/" + e["path"]
            if e["type"] == "whiteout":
                if p not in tree:
                    warnings.append(f"layer {li}: whiteout of missing {p}")
                _remove(tree, p)
            elif e["type"] == "opaque":
                prefix = p.rstrip("/") + "/"
                for q in [q for q in tree if q.startswith(prefix)]:
                    del tree[q]
        for e in entries:
            p, t = "/" + e["path"], e["type"]
            if t in ("whiteout", "opaque"):
                continue
            _ensure_parents(tree, p)
            if t == "dir":
                if tree.get(p, ("none",))[0] != "dir":
                    _remove(tree, p)
                    tree[p] = ("dir",)
            elif t == "file":
                _remove(tree, p)
                n = Node(li, e["data"], p)
                nodes.append(n)
                tree[p] = ("file", n)
            elif t == "symlink":
                _remove(tree, p)
                tree[p] = ("symlink", e["target"])
            elif t == "hardlink":
                target = tree.get("/" + e["target"].lstrip("/"))
                if target is None or target[0] != "file":
                    warnings.append(f"layer {li}: hard link {p} to missing {e['target']}")
                    continue
                _remove(tree, p)
                tree[p] = target
            else:
                raise ValueError(f"unknown entry type {t}")
    return nodes, tree, warnings


# ---------------------------------------------------------------- figures
def dup_groups(visible, shown, min_bytes):
    groups = {}
    for n in visible:
        if n.bytes >= max(min_bytes, 1):
            groups.setdefault((n.bytes, n.sha256), []).append(n)
    out = []
    for (size, _), ns in groups.items():
        if len(ns) < 2:
            continue
        paths = sorted(shown[id(n)] for n in ns)
        out.append({"bytes_each": size, "paths": paths, "reclaimable_bytes": size * (len(paths) - 1)})
    out.sort(key=lambda g: (-g["reclaimable_bytes"], g["paths"]))
    return out


def compute(layers, layer_meta=None, history=None, wheels=None, tag=None):
    nodes, tree, warnings = replay(layers)
    names = {}  # node -> visible names
    for p, v in tree.items():
        if v[0] == "file":
            names.setdefault(id(v[1]), []).append(p)
    shown = {k: min(v) for k, v in names.items()}
    visible = [n for n in nodes if id(n) in names]

    lay = []
    for li in range(len(layers)):
        mine = [n for n in nodes if n.layer == li]
        cats = {}
        for n in mine:
            cats[n.category] = cats.get(n.category, 0) + n.bytes
        cats = {k: v for k, v in sorted(cats.items()) if v > 0}
        ranked = [(cats.get(c, 0), -i, c) for i, c in enumerate(CATEGORY_NAMES[:-1]) if cats.get(c, 0) > 0]
        row = {
            "index": li,
            "content_bytes": sum(n.bytes for n in mine),
            "wasted_bytes": sum(n.bytes for n in mine if id(n) not in names),
            "files": len(mine),
            "categories": cats,
            "top_category": max(ranked)[2] if ranked else None,
        }
        if layer_meta:
            row.update(layer_meta[li])
            row["instruction"] = instruction(layer_meta[li]["created_by"])
        lay.append(row)

    cats = []
    for c in CATEGORY_NAMES:
        mine = [n for n in nodes if n.category == c]
        cats.append({
            "name": c,
            "content_bytes": sum(n.bytes for n in mine),
            "visible_bytes": sum(n.bytes for n in mine if id(n) in names),
            "wasted_bytes": sum(n.bytes for n in mine if id(n) not in names),
            "files": len(mine),
        })

    dups = dup_groups(visible, shown, 65536)
    dups1 = dup_groups(visible, shown, 1)

    fams = {}
    for n in visible:
        if n.category not in ("cuda-libs", "cupti"):
            continue
        name = shown[id(n)].rsplit("/", 1)[1]
        if ".so" not in name:
            continue
        key = cuda_family(name)
        if key:
            fams.setdefault(key, []).append(n)
    cuda = []
    for lib, ns in sorted(fams.items()):
        dirs = {shown[id(n)].rsplit("/", 1)[0] or "/" for n in ns}
        if len(dirs) < 2:
            continue
        ns.sort(key=lambda n: (-n.bytes, shown[id(n)]))
        copies = [{
            "path": shown[id(n)], "bytes": n.bytes, "layer_index": n.layer,
            "identical": any(o is not n and o.sha256 == n.sha256 and o.bytes == n.bytes for o in ns),
        } for n in ns]
        cuda.append({"library": lib, "copies": copies,
                     "reclaimable_bytes": sum(n.bytes for n in ns) - ns[0].bytes})
    cuda.sort(key=lambda fam: (-fam["reclaimable_bytes"], fam["library"]))

    top = sorted(visible, key=lambda n: (-n.bytes, shown[id(n)]))[:10]

    image = {
        "layer_count": len(layers),
        "content_bytes": sum(n.bytes for n in nodes),
        "visible_bytes": sum(n.bytes for n in visible),
        "wasted_bytes": sum(n.bytes for n in nodes if id(n) not in names),
        "files": len(nodes),
        "duplicate_reclaimable_bytes": sum(g["reclaimable_bytes"] for g in dups),
        "cuda_duplicate_reclaimable_bytes": sum(f["reclaimable_bytes"] for f in cuda),
    }
    if layer_meta:
        image["tar_bytes"] = sum(m["tar_bytes"] for m in layer_meta)
        image["compressed_bytes_oci_layout"] = sum(m["compressed_bytes"] for m in layer_meta)
    out = {
        "note": "computed by expected.py from the entries build_image.py wrote; not from mlsize",
        "tag": tag,
        "platform": "linux/amd64",
        "wheels": wheels,
        "image": image,
        "layers": lay,
        "categories": cats,
        "duplicates": dups,
        "duplicates_min_1": dups1,
        "cuda_duplicates": cuda,
        "top_files": [{"path": shown[id(n)], "bytes": n.bytes, "layer_index": n.layer,
                       "category": n.category} for n in top],
        "replay_warnings": warnings,
    }
    if history is not None:
        hist, nxt = [], 0
        for h in history:
            li = None
            if not h.get("empty_layer"):
                li, nxt = nxt, nxt + 1
            hist.append({"created_by": h["created_by"], "instruction": instruction(h["created_by"]),
                         "empty_layer": bool(h.get("empty_layer")), "layer_index": li})
        out["history"] = hist
    return out


def _self_test():
    cases = {
        "/root/.cache/pip/wheels/ab/cd/x.whl": "pip-cache",
        "/usr/local/cuda-12.4/extras/CUPTI/lib64/libcupti.so.2024.1.1": "cupti",
        "/usr/local/cuda-12.4/extras/CUPTI/include/cupti.h": "cupti",
        "/usr/local/lib/python3.11/site-packages/nvidia/cuda_cupti/lib/__init__.py": "cupti",
        "/usr/local/lib/python3.11/site-packages/nvidia/cuda_runtime/include/cuda.h": "headers",
        "/usr/local/lib/python3.11/site-packages/nvidia/cuda_runtime/include/__init__.py": "headers",
        "/usr/local/cuda-12.4/targets/x86_64-linux/lib/libnvrtc-builtins.so.12.4.127": "cuda-libs",
        "/usr/local/lib/python3.11/site-packages/nvidia/nvjitlink/lib/libnvJitLink.so.12": "cuda-libs",
        "/usr/local/lib/python3.11/site-packages/nvidia/__pycache__/__init__.cpython-311.pyc": "python-bytecode",
        "/usr/share/doc/libc6/copyright": "docs",
        "/usr/local/cuda-12.4/EULA.txt": "other",
        "/usr/lib/x86_64-linux-gnu/libcudaxx.so": "other",
        "/usr/local/cuda-12.4/bin/nvcc": "cuda-tools",
        "/tmp/pip-req-build-x1/README": "pip-cache",
        "/tmp/pipx/x": "other",
    }
    for p, want in cases.items():
        assert classify(p) == want, (p, classify(p), want)
    fam = {"libcudart.so.12.4.127": "libcudart.so.12", "libcudart.so.12": "libcudart.so.12",
           "libnvrtc-builtins.so.12.4": "libnvrtc-builtins.so.12", "libnvperf_host.so": "libnvperf_host.so",
           "libcupti.so.2024.1.1": "libcupti.so.2024"}
    for n, want in fam.items():
        assert cuda_family(n) == want, (n, cuda_family(n), want)
    assert instruction("RUN |1 TARGETARCH=amd64 /bin/sh -c apt-get update # buildkit") == "RUN apt-get update"
    assert instruction("/bin/sh -c #(nop) ADD file:ab in / ") == "ADD file:ab in /"
    print("expected.py self-test OK")


if __name__ == "__main__":
    _self_test()
