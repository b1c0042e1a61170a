#!/usr/bin/env python3
"""Write a realistic, naive "PyTorch on CUDA" OCI image layout from real files.

Usage:
  build_image.py --rootfs DIR --wheels DIR --out LAYOUT --expected FILE.json
                 [--tag TAG] [--toolkit PKG,PKG,...] [--scratch DIR]

Standard library only. Streaming: every layer is written entry by entry, file
data is copied in 64 KiB chunks from its source (the debootstrap tree, a wheel
member, a .whl file), and the layer's sha256 (diff_id) and every file's sha256
are computed on the way, so memory stays small whatever the layer size.
Deterministic: fixed mtimes, uid/gid 0 (the base keeps its own), empty user
and group names, entries sorted the way Docker's archiver walks a tree, fixed
JSON. Two runs with the same inputs and the same Python give the same blobs.

Layers (what a naive Dockerfile gives):
  1  ADD file:... in /                debootstrap --variant=minbase bookworm
  2  RUN apt-get install cuda-...     the nvidia-* wheels' .so files copied (byte-identical)
                                      under /usr/local/cuda-12.4/targets/x86_64-linux/lib/
                                      with the toolkit's versioned names and symlinks,
                                      CUPTI under extras/CUPTI/lib64; rewrites
                                      /etc/ld.so.cache and /var/lib/dpkg/status (overwrites)
  3  RUN pip install torch==...       every wheel unpacked into site-packages as pip
                                      does (+ __pycache__, INSTALLER, REQUESTED, RECORD,
                                      console scripts) and every .whl in
                                      /root/.cache/pip/wheels/aa/bb/cc/<rest>/ (pip cache left behind)
  4  RUN rm -rf /root/.cache/pip      whiteout root/.cache/.wh.pip
  5  COPY app/ /app/                  a small app
  6  RUN chmod -R g+w .../nvidia/cuda_nvrtc   a metadata-only change that copies
                                      whole files (OpenShift-style permissions)

The expected figures (--expected) come from replaying the entries written here
as an overlay (never from mlsize): content, visible and wasted bytes (split
into the deleted pip cache and overwritten files), duplicates, the CUDA
libraries shipped twice.
"""

import argparse
import base64
import csv
import hashlib
import importlib._bootstrap_external as bootstrap_external
import io
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import warnings
import zipfile

MTIME = 1714521600  # 2024-05-01T00:00:00Z
CREATED = "2024-05-01T00:00:00Z"
CHUNK = 64 << 10
SITE = "usr/local/lib/python3.11/site-packages"
CUDA = "usr/local/cuda-12.4"
CUDA_LIB = f"{CUDA}/targets/x86_64-linux/lib"
CUPTI_LIB = f"{CUDA}/extras/CUPTI/lib64"
PIP_WHEELS = "root/.cache/pip/wheels"
CHMOD_DIR = f"{SITE}/nvidia/cuda_nvrtc"
DUP_MIN = 64 << 10
# The toolkit names libcupti after the CUPTI release (same bytes as the wheel's libcupti.so.12).
CUPTI_RELEASE = {"12.4.127": "2024.1.1"}
PY_TAG = sys.implementation.cache_tag  # cpython-311 with python3.11


def sort_key(path):
    return path.split("/")


# ----------------------------------------------------------------------------- tar writing


class HashWriter:
    """File wrapper that hashes everything written (the layer's diff_id)."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b):
        self.h.update(b)
        self.f.write(b)
        self.n += len(b)


class Layer:
    """A streaming tar writer that records what it wrote for the overlay replay."""

    def __init__(self, path, index):
        self.path = path
        self.index = index
        self.f = open(path, "wb", buffering=CHUNK)
        self.w = HashWriter(self.f)
        self.entries = []  # (path, kind, size, sha256 or None, linkname)
        self.written = set()

    def _header(self, ti):
        ti.mtime = MTIME
        ti.uname = ti.gname = ""
        self.w.write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _claim(self, path):
        if path in self.written:
            raise SystemExit(f"build_image.py: {path} written twice in layer {self.index}")
        self.written.add(path)

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self._claim(path)
        ti = tarfile.TarInfo(path)
        ti.type, ti.mode, ti.uid, ti.gid = tarfile.DIRTYPE, mode, uid, gid
        self._header(ti)
        self.entries.append((path, "dir", 0, None, ""))

    def symlink(self, path, target, uid=0, gid=0):
        self._claim(path)
        ti = tarfile.TarInfo(path)
        ti.type, ti.mode, ti.linkname, ti.uid, ti.gid = tarfile.SYMTYPE, 0o777, target, uid, gid
        self._header(ti)
        self.entries.append((path, "symlink", 0, None, target))

    def hardlink(self, path, target, mode, uid=0, gid=0):
        self._claim(path)
        ti = tarfile.TarInfo(path)
        ti.type, ti.mode, ti.linkname, ti.uid, ti.gid = tarfile.LNKTYPE, mode, target, uid, gid
        self._header(ti)
        self.entries.append((path, "hardlink", 0, None, target))

    def special(self, path, ti):
        self._claim(path)
        ti.name = path
        self._header(ti)
        self.entries.append((path, "special", 0, None, ""))

    def whiteout(self, path):
        """path is the whited-out name; writes dir/.wh.name as an empty file."""
        d, _, name = path.rpartition("/")
        wh = f"{d}/.wh.{name}" if d else f".wh.{name}"
        self._claim(wh)
        ti = tarfile.TarInfo(wh)
        ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o644, 0
        self._header(ti)
        self.entries.append((path, "whiteout", 0, None, ""))

    def file(self, path, size, src, mode=0o644, uid=0, gid=0):
        """src: a readable binary file object positioned at the data, or bytes."""
        self._claim(path)
        if isinstance(src, (bytes, bytearray)):
            src = io.BytesIO(src)
        ti = tarfile.TarInfo(path)
        ti.type, ti.mode, ti.size, ti.uid, ti.gid = tarfile.REGTYPE, mode, size, uid, gid
        self._header(ti)
        h = hashlib.sha256()
        left = size
        while left:
            b = src.read(min(CHUNK, left))
            if not b:
                raise SystemExit(f"build_image.py: {path}: source ended {left} bytes early")
            h.update(b)
            self.w.write(b)
            left -= len(b)
        pad = -size % 512
        if pad:
            self.w.write(b"\0" * pad)
        digest = h.hexdigest()
        self.entries.append((path, "file", size, digest, ""))
        return digest

    def close(self):
        self.w.write(b"\0" * 1024)  # end of archive, as Go's archive/tar writes it
        self.f.close()
        return "sha256:" + self.w.h.hexdigest(), self.w.n


def ensure_parents(paths):
    """All parent directories of paths (as a set)."""
    dirs = set()
    for p in paths:
        parts = p.split("/")
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
    return dirs


# ----------------------------------------------------------------------------- wheels


class Wheel:
    def __init__(self, path):
        self.path = path
        self.filename = os.path.basename(path)
        parts = self.filename[:-4].split("-")
        self.name, self.version = parts[0], parts[1]
        self.project = self.name.replace("_", "-").lower()
        self.zip = zipfile.ZipFile(path)
        self.infos = [i for i in self.zip.infolist() if not i.is_dir()]
        self.dist_info = f"{self.name}-{self.version}.dist-info"
        self.size = os.path.getsize(path)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        self.sha256 = h.hexdigest()

    def text(self, member):
        return self.zip.read(member).decode("utf-8")

    def installed_path(self, name):
        """Where pip puts a wheel member (relative to /), or None to skip."""
        first, _, rest = name.partition("/")
        if first.endswith(".data"):
            kind, _, rest2 = rest.partition("/")
            if kind in ("purelib", "platlib"):
                return f"{SITE}/{rest2}"
            if kind == "scripts":
                return f"usr/local/bin/{rest2}"
            if kind == "headers":
                return f"usr/local/include/python3.11/{self.project}/{rest2}"
            if kind == "data":
                return f"usr/local/{rest2}"
            raise SystemExit(f"build_image.py: {self.filename}: unknown .data kind {kind}")
        return f"{SITE}/{name}"

    def console_scripts(self):
        ep = f"{self.dist_info}/entry_points.txt"
        if ep not in self.zip.namelist():
            return []
        out, section = [], None
        for line in self.text(ep).splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]")
            elif section == "console_scripts" and "=" in line:
                name, _, target = line.partition("=")
                out.append((name.strip(), target.strip()))
        return out


def script_text(target):
    module, _, func = target.partition(":")
    top = func.split(".")[0]
    return (
        "#!/usr/local/bin/python3.11\n"
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        f"from {module} import {top}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({func}())\n"
    ).encode()


def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def pip_cache_path(wheel):
    """pip's wheel cache layout: wheels/aa/bb/cc/<rest of sha224>/<file>."""
    url = f"https://files.pythonhosted.org/packages/{wheel.filename}"
    h = hashlib.sha224(url.encode()).hexdigest()
    return f"{PIP_WHEELS}/{h[:2]}/{h[2:4]}/{h[4:6]}/{h[6:]}/{wheel.filename}"


# ----------------------------------------------------------------------------- layers


def layer_base(layer, rootfs):
    """Walk the debootstrap tree like Docker's archiver (lexical, depth first)."""
    inodes = {}

    def walk(d, rel):
        for name in sorted(os.listdir(d)):
            full = os.path.join(d, name)
            path = f"{rel}/{name}" if rel else name
            st = os.lstat(full)
            m = st.st_mode
            perm = stat.S_IMODE(m)
            if stat.S_ISDIR(m):
                layer.dir(path, perm, st.st_uid, st.st_gid)
                walk(full, path)
            elif stat.S_ISLNK(m):
                layer.symlink(path, os.readlink(full), st.st_uid, st.st_gid)
            elif stat.S_ISREG(m):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in inodes:
                    layer.hardlink(path, inodes[key], perm, st.st_uid, st.st_gid)
                    continue
                if st.st_nlink > 1:
                    inodes[key] = path
                with open(full, "rb") as f:
                    layer.file(path, st.st_size, f, perm, st.st_uid, st.st_gid)
            elif stat.S_ISFIFO(m) or stat.S_ISCHR(m) or stat.S_ISBLK(m):
                ti = tarfile.TarInfo(path)
                ti.type = tarfile.FIFOTYPE if stat.S_ISFIFO(m) else (tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE)
                ti.mode, ti.uid, ti.gid = perm, st.st_uid, st.st_gid
                if not stat.S_ISFIFO(m):
                    ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                layer.special(path, ti)
            else:
                print(f"build_image.py: skipping socket {path}", file=sys.stderr)

    walk(rootfs, "")


def toolkit_name(soname, version):
    """libcublas.so.12 + 12.4.5.8 -> libcublas.so.12.4.5.8 (None: keep the name)."""
    m = re.match(r"^(.+\.so)\.([0-9.]+)$", soname)
    if m and (version == m.group(2) or version.startswith(m.group(2) + ".")):
        return f"{m.group(1)}.{version}"
    return None


def layer_cuda(layer, wheels, toolkit, rootfs):
    """The CUDA 'toolkit': byte-identical copies of the wheels' .so files."""
    items = {}  # path -> ("file", wheel, info, mode) | ("symlink", target) | ("bytes", data, mode)
    cuda_copies = []  # (toolkit path, wheel member path) pairs, identical bytes
    for w in wheels:
        if w.project not in toolkit:
            continue
        cupti = w.project == "nvidia-cuda-cupti-cu12"
        for info in w.infos:
            base = info.filename.rsplit("/", 1)[-1]
            if "/lib/" not in info.filename or ".so" not in base:
                continue
            libdir = CUPTI_LIB if cupti else CUDA_LIB
            if cupti and base.startswith("libcupti.so."):
                real = f"libcupti.so.{CUPTI_RELEASE.get(w.version, w.version)}"
            else:
                real = toolkit_name(base, w.version)
            mode = 0o644
            items[f"{libdir}/{real or base}"] = ("file", w, info, mode)
            cuda_copies.append((f"{libdir}/{real or base}", w.installed_path(info.filename)))
            if real:
                items[f"{libdir}/{base}"] = ("symlink", real)
                dev = base.split(".so")[0] + ".so"
                items.setdefault(f"{libdir}/{dev}", ("symlink", base))
    items[f"{CUDA}/lib64"] = ("symlink", "targets/x86_64-linux/lib")
    items["usr/local/cuda"] = ("symlink", "/etc/alternatives/cuda")
    items["usr/local/cuda-12"] = ("symlink", "/etc/alternatives/cuda-12")
    items["etc/alternatives/cuda"] = ("symlink", "/usr/local/cuda-12.4")
    items["etc/alternatives/cuda-12"] = ("symlink", "/usr/local/cuda-12.4")
    items["etc/ld.so.conf.d/000_cuda.conf"] = ("bytes", b"/usr/local/cuda/targets/x86_64-linux/lib\n", 0o644)
    items["etc/ld.so.conf.d/988_cuda-12.conf"] = (
        "bytes", b"/usr/local/cuda-12/targets/x86_64-linux/lib\n/usr/local/cuda-12/extras/CUPTI/lib64\n", 0o644)
    # apt and ldconfig rewrite files of the base: whole-file copies (overwrites).
    libs = sorted(p for p, v in items.items() if v[0] in ("file", "symlink") and ".so" in p)
    with open(os.path.join(rootfs, "etc/ld.so.cache"), "rb") as f:
        old_cache = f.read()
    extra = "".join(f"\0{os.path.basename(p)}\0/{p}" for p in libs).encode()
    items["etc/ld.so.cache"] = ("bytes", old_cache + extra, 0o644)
    with open(os.path.join(rootfs, "var/lib/dpkg/status"), "rb") as f:
        status = f.read()
    for pkg, ver in (("cuda-cudart-12-4", "12.4.127-1"), ("cuda-libraries-12-4", "12.4.1-1"),
                     ("cuda-cupti-12-4", "12.4.127-1"), ("libnccl2", "2.21.5-1+cuda12.4")):
        status += (f"\nPackage: {pkg}\nStatus: install ok installed\nPriority: optional\nSection: multiverse/devel\n"
                   f"Maintainer: cudatools <cudatools@nvidia.com>\nArchitecture: amd64\nVersion: {ver}\n"
                   f"Description: {pkg}\n").encode()
    items["var/lib/dpkg/status"] = ("bytes", status, 0o644)
    emit(layer, items)
    return cuda_copies


def emit(layer, items, dir_mode=None):
    """Write items (path -> spec) with their parent directories, in walk order."""
    dir_mode = dir_mode or {}
    for d in ensure_parents(items):
        items.setdefault(d, ("dir", dir_mode.get(d, 0o755)))
    for path in sorted(items, key=sort_key):
        spec = items[path]
        kind = spec[0]
        if kind == "dir":
            layer.dir(path, spec[1])
        elif kind == "symlink":
            layer.symlink(path, spec[1])
        elif kind == "bytes":
            layer.file(path, len(spec[1]), spec[1], spec[2])
        elif kind == "file":
            _, w, info, mode = spec
            with w.zip.open(info) as src:
                layer.file(path, info.file_size, src, mode)
        elif kind == "path":
            _, src_path, mode = spec
            with open(src_path, "rb") as src:
                layer.file(path, os.path.getsize(src_path), src, mode)
        elif kind == "pyc":
            _, pyc_path, mode = spec
            with open(pyc_path, "rb") as src:
                layer.file(path, os.path.getsize(pyc_path), src, mode)
        else:
            raise AssertionError(kind)


def compile_pycs(wheels, scratch):
    """pip compiles every .py it installs: __pycache__/<name>.cpython-311.pyc.

    The .pyc files go to scratch (small) so the layer can be streamed in order."""
    out = {}
    n = 0
    warnings.simplefilter("ignore")
    for w in wheels:
        for info in w.infos:
            if not info.filename.endswith(".py"):
                continue
            dest = w.installed_path(info.filename)
            if not dest.startswith(SITE + "/"):
                continue
            source = w.zip.read(info)
            d, _, name = dest.rpartition("/")
            pyc = f"{d}/__pycache__/{name[:-3]}.{PY_TAG}.pyc"
            try:
                code = compile(source, "/" + dest, "exec", dont_inherit=True)
            except (SyntaxError, ValueError):
                continue  # pip's compileall skips these too
            data = bytes(bootstrap_external._code_to_timestamp_pyc(code, MTIME, len(source)))
            fn = os.path.join(scratch, f"{n}.pyc")
            n += 1
            with open(fn, "wb") as f:
                f.write(data)
            out[pyc] = (w, fn)
    return out


def layer_pip(layer, wheels, requested, pycs, scratch):
    items = {}
    pip_cache = []
    for w in wheels:
        record_rows = []
        for info in w.infos:
            dest = w.installed_path(info.filename)
            if info.filename == f"{w.dist_info}/RECORD":
                continue
            xmode = (info.external_attr >> 16) & 0o111
            items[dest] = ("file", w, info, 0o755 if xmode else 0o644)
        for row in csv.reader(io.StringIO(w.text(f"{w.dist_info}/RECORD"))):
            if row and row[0] != f"{w.dist_info}/RECORD":
                record_rows.append(row)
        installer = b"pip\n"
        items[f"{SITE}/{w.dist_info}/INSTALLER"] = ("bytes", installer, 0o644)
        record_rows.append([f"{w.dist_info}/INSTALLER", record_hash(installer), str(len(installer))])
        if w.project in requested:
            items[f"{SITE}/{w.dist_info}/REQUESTED"] = ("bytes", b"", 0o644)
            record_rows.append([f"{w.dist_info}/REQUESTED", record_hash(b""), "0"])
        for name, target in w.console_scripts():
            data = script_text(target)
            items[f"usr/local/bin/{name}"] = ("bytes", data, 0o755)
            record_rows.append([f"../../../bin/{name}", record_hash(data), str(len(data))])
        for pyc, (pw, fn) in pycs.items():
            if pw is w:
                items[pyc] = ("pyc", fn, 0o644)
                record_rows.append([pyc[len(SITE) + 1:], "", ""])
        record_rows.append([f"{w.dist_info}/RECORD", "", ""])
        buf = io.StringIO()
        csv.writer(buf).writerows(sorted(record_rows))
        items[f"{SITE}/{w.dist_info}/RECORD"] = ("bytes", buf.getvalue().encode(), 0o644)
        cache = pip_cache_path(w)
        items[cache] = ("path", w.path, 0o644)
        pip_cache.append((cache, w.size))
    # /root is 0700 in Debian; pip creates ~/.cache 0700 too.
    emit(layer, items, {"root": 0o700, "root/.cache": 0o700})
    return pip_cache


def layer_rm_cache(layer):
    layer.dir("root", 0o700)
    layer.dir("root/.cache", 0o700)
    layer.whiteout("root/.cache/pip")


APP_TRAIN = b'''"""Fine-tune a small classifier (the app of the mlsize realistic benchmark)."""
import argparse
import json
import os

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, 512), nn.GELU(), nn.Linear(512, classes))

    def forward(self, x):
        return self.body(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="/app/config.json")
    args = p.parse_args()
    cfg = json.load(open(args.config))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = Net(cfg["dim"], cfg["classes"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
    for step in range(cfg["steps"]):
        x = torch.randn(cfg["batch"], cfg["dim"], device=device)
        y = torch.randint(0, cfg["classes"], (cfg["batch"],), device=device)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(step, float(loss))
    os.makedirs("/app/out", exist_ok=True)
    torch.save(model.state_dict(), "/app/out/model.pt")


if __name__ == "__main__":
    main()
'''


def deterministic_bytes(seed, n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def layer_app(layer):
    items = {
        "app/train.py": ("bytes", APP_TRAIN, 0o644),
        "app/requirements.txt": ("bytes", b"torch==2.5.1\n", 0o644),
        "app/config.json": ("bytes", b'{"dim": 1024, "classes": 10, "lr": 0.0003, "steps": 1000, "batch": 64}\n', 0o644),
        "app/README.md": ("bytes", b"# app\n\nTrain: `python3 /app/train.py`\n", 0o644),
        # a small checkpoint: incompressible bytes, like real weights
        "app/assets/tokenizer.bin": ("bytes", deterministic_bytes("tokenizer", 3 << 20), 0o644),
    }
    emit(layer, items)


# ----------------------------------------------------------------------------- overlay replay


def replay(layers):
    """Overlay the recorded entries; returns figures independent of any tool."""
    nodes = []  # [layer, size, sha256, path]
    final = {}  # path -> ("file", node) | ("dir",) | ("symlink",) | ("special",)
    per_layer = []
    removed_by = {}  # node -> how it stopped being visible ("deleted" | "overwritten")

    def drop_below(prefix, reason):
        for p in [p for p in final if p == prefix or p.startswith(prefix + "/")]:
            v = final.pop(p)
            if v[0] == "file":
                removed_by.setdefault(v[1], reason)

    for li, entries in enumerate(layers):
        content = files = 0
        for path, kind, size, digest, link in entries:
            if kind == "whiteout":
                drop_below(path, "deleted")
                continue
            old = final.get(path)
            if old is not None and old[0] == "file":
                removed_by.setdefault(old[1], "overwritten")
            if old is not None and old[0] == "dir" and kind != "dir":
                drop_below(path, "overwritten")
            if kind == "file":
                nodes.append([li, size, digest, path])
                final[path] = ("file", len(nodes) - 1)
                content += size
                files += 1
            elif kind == "hardlink":
                target = final.get(link)
                if target is None or target[0] != "file":
                    raise SystemExit(f"replay: hard link {path} -> {link}: no such file")
                final[path] = target
                files += 1
            else:
                final[path] = (kind,)
        per_layer.append({"content_bytes": content, "files": files})
    visible = {v[1] for v in final.values() if v[0] == "file"}
    wasted = {"deleted": 0, "overwritten": 0}
    for i, (li, size, digest, path) in enumerate(nodes):
        if i not in visible:
            reason = removed_by.get(i, "overwritten")
            # a node can lose some names to a whiteout and others to an overwrite
            wasted[reason] += size
            per_layer[li].setdefault("wasted_bytes", 0)
            per_layer[li]["wasted_bytes"] += size
    groups = {}
    for i in visible:
        li, size, digest, path = nodes[i]
        if size >= DUP_MIN:
            groups.setdefault((digest, size), []).append(i)
    dup = sum((len(g) - 1) * nodes[g[0]][1] for g in groups.values() if len(g) > 1)
    dup_groups = sum(1 for g in groups.values() if len(g) > 1)
    content = sum(n[1] for n in nodes)
    vis = sum(nodes[i][1] for i in visible)
    biggest = sorted(((nodes[i][1], nodes[i][3], nodes[i][0] + 1) for i in range(len(nodes)) if i not in visible),
                     reverse=True)[:10]
    return {
        "content_bytes": content,
        "visible_bytes": vis,
        "wasted_bytes": content - vis,
        "wasted_deleted_bytes": wasted["deleted"],
        "wasted_overwritten_bytes": wasted["overwritten"],
        "duplicate_reclaimable_bytes": dup,
        "duplicate_groups": dup_groups,
        "files_visible": len({p for p, v in final.items() if v[0] == "file"}),
        "per_layer": per_layer,
        "largest_wasted": [{"bytes": b, "path": "/" + p, "layer": l} for b, p, l in biggest],
    }


# ----------------------------------------------------------------------------- OCI layout


def blob_path(out, digest):
    return os.path.join(out, "blobs", "sha256", digest.split(":", 1)[1])


def write_blob(out, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob_path(out, digest), "wb") as f:
        f.write(data)
    return digest, len(data)


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--wheels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--tag", default="1")
    ap.add_argument("--scratch")
    ap.add_argument("--toolkit", default="")
    ap.add_argument("--requested", default="torch")
    args = ap.parse_args()

    toolkit = {p.strip() for p in args.toolkit.split(",") if p.strip()}
    wheel_files = sorted(f for f in os.listdir(args.wheels) if f.endswith(".whl"))
    wheels = [Wheel(os.path.join(args.wheels, f)) for f in wheel_files]
    torch = [w for w in wheels if w.project == "torch"]
    out = args.out
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "blobs", "sha256"))
    scratch = args.scratch or out + ".scratch"
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    os.makedirs(scratch)

    def new_layer(i):
        return Layer(os.path.join(out, "blobs", "sha256", f".layer{i}.tmp"), i)

    layers, recorded = [], []

    def finish(layer):
        diff_id, n = layer.close()
        os.rename(layer.path, blob_path(out, diff_id))
        layers.append((diff_id, n))
        recorded.append(layer.entries)
        print(f"build_image.py: layer {layer.index}: {n:,} bytes, {len(layer.entries):,} entries, {diff_id}", flush=True)

    # 1 base
    l1 = new_layer(1)
    layer_base(l1, args.rootfs)
    finish(l1)
    # 2 CUDA toolkit
    l2 = new_layer(2)
    cuda_copies = layer_cuda(l2, wheels, toolkit, args.rootfs)
    finish(l2)
    # 3 pip install (+ cache)
    print(f"build_image.py: compiling .py files to {PY_TAG} .pyc", flush=True)
    pycs = compile_pycs(wheels, scratch)
    l3 = new_layer(3)
    pip_cache = layer_pip(l3, wheels, {r.strip() for r in args.requested.split(",")}, pycs, scratch)
    finish(l3)
    # 4 rm -rf /root/.cache/pip
    l4 = new_layer(4)
    layer_rm_cache(l4)
    finish(l4)
    # 5 app
    l5 = new_layer(5)
    layer_app(l5)
    finish(l5)
    # 6 chmod -R g+w: whole-file copies of the wheel's files (read again from the wheel)
    l6 = new_layer(6)
    items = {}
    nvrtc = [w for w in wheels if w.project == "nvidia-cuda-nvrtc-cu12"]
    for path, kind, size, digest, link in recorded[2]:
        if path != CHMOD_DIR and not path.startswith(CHMOD_DIR + "/"):
            continue
        if kind == "dir":
            items[path] = ("dir", 0o775)
    for w in nvrtc:
        for info in w.infos:
            dest = w.installed_path(info.filename)
            if dest.startswith(CHMOD_DIR + "/"):
                xmode = (info.external_attr >> 16) & 0o111
                items[dest] = ("file", w, info, 0o775 if xmode else 0o664)
    for pyc, (pw, fn) in pycs.items():
        if pyc.startswith(CHMOD_DIR + "/"):
            items[pyc] = ("pyc", fn, 0o664)
    for path, kind, size, digest, link in recorded[2]:
        if kind == "file" and path.startswith(CHMOD_DIR + "/") and path not in items:
            raise SystemExit(f"build_image.py: {path} (a .pyc?) below {CHMOD_DIR} is not in the wheel")
    # parents above CHMOD_DIR appear as unchanged directories, as Docker's diff writes them
    dir_mode = {d: 0o755 for d in ensure_parents([CHMOD_DIR])}
    emit(l6, items, dir_mode)
    finish(l6)
    shutil.rmtree(scratch)

    # config, manifest, index
    diff_ids = [d for d, _ in layers]
    base_digest = layers[0][0].split(":")[1]
    history = [
        ("/bin/sh -c #(nop) ADD file:%s in / " % base_digest, False, ""),
        ('/bin/sh -c #(nop)  CMD ["bash"]', True, ""),
        ("ENV NVARCH=x86_64", True, "buildkit.dockerfile.v0"),
        ("ENV CUDA_VERSION=12.4.1", True, "buildkit.dockerfile.v0"),
        ("RUN |1 TARGETARCH=amd64 /bin/sh -c apt-get update && apt-get install -y --no-install-recommends "
         "cuda-cudart-12-4=12.4.127-1 cuda-libraries-12-4=12.4.1-1 cuda-cupti-12-4=12.4.127-1 "
         "libnccl2=2.21.5-1+cuda12.4 && rm -rf /var/lib/apt/lists/* # buildkit",
         False, "buildkit.dockerfile.v0"),
        ("ENV PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         True, "buildkit.dockerfile.v0"),
        ("ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64", True, "buildkit.dockerfile.v0"),
        ("RUN /bin/sh -c pip install %s # buildkit" % " ".join(
            f"{w.project}=={w.version}" for w in torch) if torch else "RUN /bin/sh -c pip install -r requirements.txt # buildkit",
         False, "buildkit.dockerfile.v0"),
        ("RUN /bin/sh -c rm -rf /root/.cache/pip # buildkit", False, "buildkit.dockerfile.v0"),
        ("WORKDIR /app", True, "buildkit.dockerfile.v0"),
        ("COPY app/ /app/ # buildkit", False, "buildkit.dockerfile.v0"),
        ("RUN /bin/sh -c chmod -R g+w %s # buildkit" % ("/" + CHMOD_DIR), False, "buildkit.dockerfile.v0"),
        ('CMD ["python3" "/app/train.py"]', True, "buildkit.dockerfile.v0"),
    ]
    assert sum(1 for h in history if not h[1]) == len(layers)
    hist = []
    for created_by, empty, comment in history:
        e = {"created": CREATED, "created_by": created_by}
        if comment:
            e["comment"] = comment
        if empty:
            e["empty_layer"] = True
        hist.append(e)
    config = {
        "created": CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": [
                "PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "NVARCH=x86_64",
                "CUDA_VERSION=12.4.1",
                "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
                "NVIDIA_VISIBLE_DEVICES=all",
                "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
            ],
            "Cmd": ["python3", "/app/train.py"],
            "WorkingDir": "/app",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": hist,
    }
    cfg_digest, cfg_size = write_blob(out, dumps(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n} for d, n in layers],
    }
    man_digest, man_size = write_blob(out, dumps(manifest))
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man_digest,
            "size": man_size,
            "annotations": {"org.opencontainers.image.ref.name": args.tag},
        }],
    }
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(dumps(index))
    with open(os.path.join(out, "oci-layout"), "wb") as f:
        f.write(b'{"imageLayoutVersion":"1.0.0"}')

    # expected figures
    truth = replay(recorded)
    pip_cache_bytes = sum(n for _, n in pip_cache)
    cuda_identical = sum(
        e[2] for e in recorded[1] if e[1] == "file" and any(e[0] == c[0] for c in cuda_copies))
    expected = {
        "generator": "benches/realistic/build_image.py",
        "image": {
            "layer_count": len(layers),
            "tar_bytes": sum(n for _, n in layers),
            "content_bytes": truth["content_bytes"],
            "visible_bytes": truth["visible_bytes"],
            "wasted_bytes": truth["wasted_bytes"],
            "wasted_deleted_bytes": truth["wasted_deleted_bytes"],
            "wasted_overwritten_bytes": truth["wasted_overwritten_bytes"],
            "pip_cache_bytes": pip_cache_bytes,
            "pip_cache_files": len(pip_cache),
            "duplicate_reclaimable_bytes": truth["duplicate_reclaimable_bytes"],
            "duplicate_groups": truth["duplicate_groups"],
            "cuda_identical_copy_bytes": cuda_identical,
            "cuda_identical_copies": len(cuda_copies),
            "files_visible": truth["files_visible"],
        },
        "layers": [
            {"index": i + 1, "diff_id": d, "tar_bytes": n, **truth["per_layer"][i]}
            for i, (d, n) in enumerate(layers)
        ],
        "largest_wasted": truth["largest_wasted"],
        "wheels": [{"file": w.filename, "bytes": w.size, "sha256": w.sha256} for w in wheels],
        "toolkit_packages": sorted(toolkit),
        "cuda_copies": [{"toolkit": "/" + a, "wheel": "/" + b} for a, b in cuda_copies],
    }
    tmp = args.expected + ".tmp"
    with open(tmp, "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    os.rename(tmp, args.expected)
    im = expected["image"]
    print(f"build_image.py: {len(layers)} layers, tar {im['tar_bytes']:,} B, content {im['content_bytes']:,} B, "
          f"visible {im['visible_bytes']:,} B, wasted {im['wasted_bytes']:,} B "
          f"(pip cache {pip_cache_bytes:,} + overwritten {im['wasted_overwritten_bytes']:,})")


if __name__ == "__main__":
    main()
