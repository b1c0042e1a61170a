#!/usr/bin/env python3
"""Build a small, real, naive "PyTorch on nvidia/cuda" OCI image layout from
real NVIDIA CUDA wheels, then write its expected figures.

Usage:
  build_image.py --out LAYOUT_DIR [--tag TAG] [--expected FILE] WHEEL.whl...

Standard library only. Deterministic: every tar entry has mtime 0, uid/gid 0,
empty user/group names; entries are sorted the way Docker's archiver walks a
tree (component by component); gzip streams carry mtime 0 and no file name;
JSON is written with fixed key order. Two runs with the same wheels and the
same Python/zlib give byte-identical blobs.

Layers (what a naive Dockerfile on nvidia/cuda + pip install gives):
  1  ADD file:... in /          tiny Debian-like base (/etc, /usr/bin, docs)
  2  RUN apt-get install cuda-* the wheels' real .so files under the CUDA
                                toolkit's real versioned names in
                                /usr/local/cuda-X.Y/targets/x86_64-linux/lib/,
                                CUPTI in /usr/local/cuda-X.Y/extras/CUPTI/,
                                headers, the usual symlinks, ldconfig's cache
  3  RUN pip install ...        the wheels unpacked into site-packages as pip
                                does (files, __pycache__, dist-info with
                                INSTALLER/REQUESTED/RECORD) and the .whl files
                                in /root/.cache/pip/wheels/<aa>/<bb>/
  4  RUN rm -rf /root/.cache/pip  the whiteout root/.cache/.wh.pip

The expected figures are computed by expected.py from the entry lists built
here (never from mlsize), and written as JSON to --expected.
"""
import argparse
import base64
import csv
import gzip
import hashlib
import importlib._bootstrap_external as bootstrap_external
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected as expected_mod  # noqa: E402

SITE = "usr/local/lib/python3.11/site-packages"
PIP_CACHE = "root/.cache/pip/wheels"

# The CUDA toolkit names libcupti after the CUPTI release, not the CUDA version
# (libcupti.so.12 -> libcupti.so.2024.1.1 in CUDA 12.4 Update 1). The wheel of
# the same release ships that very file as libcupti.so.12 (same size, same
# sha256 fb2a7c5b...f3f7 as the toolkit's libcupti.so.2024.1.1).
CUPTI_RELEASE = {"12.4.127": "2024.1.1"}

# Content of the tiny base, fixed text so the image is deterministic.
OS_RELEASE = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""
PASSWD = b"""root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = b"""root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
nogroup:x:65534:
"""
COPYRIGHT_LIBC = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: glibc
Source: https://www.gnu.org/software/libc/libc.html

Files: *
Copyright: 1991-2023 Free Software Foundation, Inc.
License: LGPL-2.1+
"""
COPYRIGHT_DASH = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: dash
Source: https://git.kernel.org/pub/scm/utils/dash/dash.git

Files: *
Copyright: 1989-1994 The Regents of the University of California.
License: BSD-3-clause
"""
SITE_README = (b"This directory exists so that 3rd party packages can be installed\n"
               b"here.  Read the source for site.py for more details.\n")


def filler(n, seed):
    """n deterministic, incompressible-looking bytes (a sha256 chain)."""
    out, h = bytearray(), seed.encode()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


# ----------------------------------------------------------------- entries
# An entry: dict(path="a/b", type=dir|file|symlink|hardlink|whiteout,
#                data=bytes (file), target=str (symlink/hardlink), mode=int)

def d(path, mode=0o755):
    return {"path": path, "type": "dir", "mode": mode}


def f(path, data, mode=0o644):
    return {"path": path, "type": "file", "data": data, "mode": mode}


def sym(path, target):
    return {"path": path, "type": "symlink", "target": target, "mode": 0o777}


def hard(path, target):
    return {"path": path, "type": "hardlink", "target": target, "mode": 0o755}


def wh(path):
    return {"path": path, "type": "whiteout", "mode": 0o644}


DIR_MODES = {"root": 0o700, "tmp": 0o1777}


def with_parents(entries):
    """Adds a directory entry for every parent not already in the layer, and
    sorts as Docker's archiver walks a tree: by path components."""
    have = set()
    for e in entries:
        if e["path"] in have:
            raise SystemExit(f"build_image.py: {e['path']} twice in one layer")
        have.add(e["path"])
    extra = []
    for e in entries:
        parts = e["path"].split("/")[:-1]
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in have:
                have.add(p)
                extra.append(d(p, DIR_MODES.get(p, 0o755)))
    out = entries + extra
    out.sort(key=lambda e: e["path"].split("/"))
    return out


# ------------------------------------------------------------------ wheels

class Wheel:
    def __init__(self, path):
        self.path = path
        self.filename = os.path.basename(path)
        m = re.match(r"^([A-Za-z0-9_.]+)-([0-9][^-]*)-", self.filename)
        if not m:
            raise SystemExit(f"build_image.py: not a wheel file name: {self.filename}")
        self.dist, self.version = m.group(1), m.group(2)
        self.project = self.dist.replace("_", "-")
        with open(path, "rb") as fh:
            self.raw = fh.read()
        z = zipfile.ZipFile(io.BytesIO(self.raw))
        self.files = {}  # wheel path -> (bytes, mode)
        for info in z.infolist():
            if info.is_dir():
                continue
            mode = (info.external_attr >> 16) & 0o7777 or 0o644
            self.files[info.filename] = (z.read(info), mode)
        self.dist_info = f"{self.dist}-{self.version}.dist-info"
        if f"{self.dist_info}/RECORD" not in self.files:
            raise SystemExit(f"build_image.py: {self.filename} has no {self.dist_info}/RECORD")
        wheel_meta = self.files[f"{self.dist_info}/WHEEL"][0].decode()
        if "Root-Is-Purelib: true" not in wheel_meta:
            raise SystemExit(f"build_image.py: {self.filename} is not purelib")


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def pyc_bytes(source, display_path):
    """What pip's compileall writes for SOURCE installed at display_path:
    a timestamp pyc whose header holds the source mtime (0 in this image) and
    size. Compiled by the running interpreter."""
    code = compile(source, display_path, "exec", dont_inherit=True)
    return bytes(bootstrap_external._code_to_timestamp_pyc(code, 0, len(source)))


def pip_install(wheels):
    """Entries of site-packages after `pip install` of the wheels: each
    wheel's files at their paths, a __pycache__/*.cpython-311.pyc for every
    .py (pip compiles by default), and in each .dist-info an INSTALLER
    ("pip"), an empty REQUESTED, and RECORD rewritten as pip 23 does (rows
    sorted, pyc rows with no hash, CRLF line ends). Files several wheels
    share (nvidia/__init__.py) are written once: a layer holds the final
    state of a path."""
    out = {}
    tag = sys.implementation.cache_tag  # cpython-311 with python3.11
    for w in wheels:
        rows = []
        with io.StringIO(w.files[f"{w.dist_info}/RECORD"][0].decode()) as fh:
            for row in csv.reader(fh):
                if row:
                    rows.append(tuple(row))
        recorded = {r[0] for r in rows}
        for name, (data, mode) in w.files.items():
            if name == f"{w.dist_info}/RECORD":
                continue
            if name not in recorded:
                raise SystemExit(f"build_image.py: {w.filename}: {name} not in RECORD")
            out[f"{SITE}/{name}"] = f(f"{SITE}/{name}", data, mode)
            if name.endswith(".py"):
                head, base = name.rsplit("/", 1) if "/" in name else ("", name)
                pyc_rel = (head + "/" if head else "") + f"__pycache__/{base[:-3]}.{tag}.pyc"
                pyc = pyc_bytes(data, f"/{SITE}/{name}")
                out[f"{SITE}/{pyc_rel}"] = f(f"{SITE}/{pyc_rel}", pyc)
                rows.append((pyc_rel, "", ""))
        for gen_name, data in (("INSTALLER", b"pip\n"), ("REQUESTED", b"")):
            rel = f"{w.dist_info}/{gen_name}"
            out[f"{SITE}/{rel}"] = f(f"{SITE}/{rel}", data)
            rows.append((rel, record_hash(data), str(len(data))))
        rows = [r for r in rows if r[0] != f"{w.dist_info}/RECORD"]
        rows.append((f"{w.dist_info}/RECORD", "", ""))
        rows.sort()
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)  # excel dialect: CRLF, as pip writes
        rel = f"{w.dist_info}/RECORD"
        out[f"{SITE}/{rel}"] = f(f"{SITE}/{rel}", buf.getvalue().encode())
    return list(out.values())


def pip_cache(wheels):
    """The downloaded wheels as pip's wheel cache keeps them."""
    out = []
    for w in wheels:
        h = hashlib.sha224(w.filename.encode()).hexdigest()
        out.append(f(f"{PIP_CACHE}/{h[:2]}/{h[2:4]}/{w.filename}", w.raw))
    return out


# ------------------------------------------------------------------ layers

def base_layer():
    perl = filler(70000, "usr/bin/perl")  # >= 64 KiB; perl5.36.0 is a hard link: one node
    return [
        sym("bin", "usr/bin"),
        sym("lib", "usr/lib"),
        sym("lib64", "usr/lib64"),
        d("etc"),
        f("etc/debian_version", b"12.5\n"),
        f("etc/group", GROUP),
        f("etc/hostname", b"localhost\n"),
        f("etc/ld.so.cache", filler(4096, "etc/ld.so.cache v1")),
        d("etc/ld.so.conf.d"),
        f("etc/ld.so.conf.d/x86_64-linux-gnu.conf",
          b"# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n"),
        f("etc/os-release", OS_RELEASE),
        f("etc/passwd", PASSWD),
        d("root", 0o700),
        d("tmp", 0o1777),
        f("usr/bin/dash", filler(125640, "usr/bin/dash"), 0o755),
        f("usr/bin/perl", perl, 0o755),
        hard("usr/bin/perl5.36.0", "usr/bin/perl"),
        sym("usr/bin/sh", "dash"),
        d("usr/lib/x86_64-linux-gnu"),
        d("usr/lib64"),
        sym("usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        f("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", filler(210968, "ld.so"), 0o755),
        f(f"{SITE}/README.txt", SITE_README),
        # A second node with perl's content: a duplicate group of two copies,
        # /usr/bin/perl (lowest name of the hard-linked node) and this one.
        f("usr/local/bin/perl", perl, 0o755),
        f("usr/share/doc/dash/copyright", COPYRIGHT_DASH),
        f("usr/share/doc/libc6/copyright", COPYRIGHT_LIBC),
    ]


def cuda_layer(wheels, cuda):
    """What installing the CUDA toolkit's runtime, NVRTC, nvJitLink and CUPTI
    debs puts in /usr/local/cuda-X.Y, made from the wheels' real files."""
    root = f"usr/local/cuda-{cuda}"
    lib = f"{root}/targets/x86_64-linux/lib"
    inc = f"{root}/targets/x86_64-linux/include"
    cupti = f"{root}/extras/CUPTI"
    out = [
        f("etc/ld.so.cache", filler(9216, "etc/ld.so.cache v2")),  # ldconfig rewrote it
        f("etc/ld.so.conf.d/988_cuda-12.conf", f"/usr/local/cuda-12/targets/x86_64-linux/lib\n".encode()),
        f("etc/ld.so.conf.d/nvidia.conf", b"/usr/local/nvidia/lib\n/usr/local/nvidia/lib64\n"),
        sym("etc/alternatives/cuda", f"/usr/local/cuda-{cuda}"),
        sym("etc/alternatives/cuda-12", f"/usr/local/cuda-{cuda}"),
        sym("usr/local/cuda", "/etc/alternatives/cuda"),
        sym("usr/local/cuda-12", "/etc/alternatives/cuda-12"),
        sym(f"{root}/lib64", "targets/x86_64-linux/lib"),
        sym(f"{root}/include", "targets/x86_64-linux/include"),
    ]
    license_done = False
    for w in wheels:
        for name, (data, mode) in sorted(w.files.items()):
            parts = name.split("/")
            if parts[0] != "nvidia" or len(parts) < 4:
                if name.endswith(".dist-info/License.txt") and not license_done:
                    out.append(f(f"{root}/EULA.txt", data))
                    license_done = True
                continue
            pkg, kind, rest = parts[1], parts[2], "/".join(parts[3:])
            if rest == "__init__.py" or rest.endswith("/__init__.py"):
                continue  # Python package markers are not in the toolkit
            if kind == "include":
                dest = f"{cupti}/include" if pkg == "cuda_cupti" else inc
                out.append(f(f"{dest}/{rest}", data))
            elif kind == "lib":
                if pkg == "cuda_cupti":
                    if rest == "libcupti.so.12":
                        real = f"libcupti.so.{CUPTI_RELEASE.get(w.version, w.version)}"
                        out += [f(f"{cupti}/lib64/{real}", data),
                                sym(f"{cupti}/lib64/libcupti.so.12", real),
                                sym(f"{cupti}/lib64/libcupti.so", "libcupti.so.12")]
                    else:  # libcheckpoint.so, libnvperf_*.so, libpcsamplingutil.so
                        out.append(f(f"{cupti}/lib64/{rest}", data))
                    continue
                m = re.match(r"^(lib.+\.so)\.\d+(?:\.\d+)*$", rest)
                if not m:
                    raise SystemExit(f"build_image.py: unexpected library name {name}")
                stem = m.group(1)
                real = f"{stem}.{w.version}"  # libcudart.so.12 -> libcudart.so.12.4.127
                soname = rest  # the wheel ships the file under its SONAME
                out += [f(f"{lib}/{real}", data),
                        sym(f"{lib}/{soname}", real),  # libcudart.so.12 -> ...12.4.127
                        sym(f"{lib}/{stem}", soname)]  # libcudart.so -> libcudart.so.12
    return out


def pip_layer(wheels):
    return pip_install(wheels) + pip_cache(wheels)


def cleanup_layer():
    return [wh("root/.cache/pip")]  # with its parents root/ and root/.cache/


# ---------------------------------------------------------------- writing

class Hashing:
    """A write-only file object that hashes and counts what passes through."""

    def __init__(self, inner=None):
        self.inner, self.h, self.n = inner, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        if self.inner is not None:
            self.inner.write(b)
        return len(b)

    def flush(self):
        if self.inner is not None:
            self.inner.flush()


def tar_info(e):
    name = e["path"]
    if e["type"] == "whiteout":
        head, _, base = name.rpartition("/")
        name = (head + "/" if head else "") + ".wh." + base
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
    ti.mode = e["mode"]
    t = e["type"]
    if t == "dir":
        ti.type = tarfile.DIRTYPE
    elif t == "symlink":
        ti.type, ti.linkname = tarfile.SYMTYPE, e["target"]
    elif t == "hardlink":
        ti.type, ti.linkname = tarfile.LNKTYPE, e["target"]
    else:  # file, whiteout (an empty regular file)
        ti.type = tarfile.REGTYPE
        ti.size = len(e["data"]) if t == "file" else 0
    return ti


def write_layer(entries, blobs_dir):
    """Writes one gzip layer blob; returns (digest, diff_id, size, tar_bytes)."""
    fd, tmp = tempfile.mkstemp(dir=blobs_dir, prefix=".layer-")
    with os.fdopen(fd, "wb") as raw:
        outer = Hashing(raw)
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=outer, mtime=0, compresslevel=6)
        inner = Hashing(gz)
        with tarfile.open(fileobj=inner, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for e in entries:
                ti = tar_info(e)
                tar.addfile(ti, io.BytesIO(e["data"]) if e["type"] == "file" else None)
        gz.close()
    digest = "sha256:" + outer.h.hexdigest()
    os.replace(tmp, os.path.join(blobs_dir, outer.h.hexdigest()))
    return digest, "sha256:" + inner.h.hexdigest(), outer.n, inner.n


def write_blob(blobs_dir, data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs_dir, h), "wb") as fh:
        fh.write(data)
    return "sha256:" + h, len(data)


def jdump(obj):
    return json.dumps(obj, indent=2).encode() + b"\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="OCI layout directory to create (replaced)")
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--expected", help="write the expected figures here")
    ap.add_argument("wheels", nargs="+")
    a = ap.parse_args()

    wheels = [Wheel(p) for p in sorted(a.wheels, key=os.path.basename)]
    runtime = [w for w in wheels if w.project == "nvidia-cuda-runtime-cu12"]
    if not runtime:
        raise SystemExit("build_image.py: nvidia-cuda-runtime-cu12 wheel needed")
    cuda = ".".join(runtime[0].version.split(".")[:2])  # 12.4.127 -> 12.4
    if sys.version_info[:2] != (3, 11):
        print(f"build_image.py: note: python {sys.version.split()[0]} compiles the .pyc files "
              "(the image claims python3.11)", file=sys.stderr)

    pins = " ".join(f"{w.project}=={w.version}" for w in wheels)
    debs = {"nvidia-cuda-runtime-cu12": ["cuda-cudart-{v}", "cuda-cudart-dev-{v}"],
            "nvidia-cuda-nvrtc-cu12": ["cuda-nvrtc-{v}", "cuda-nvrtc-dev-{v}"],
            "nvidia-nvjitlink-cu12": ["libnvjitlink-{v}", "libnvjitlink-dev-{v}"],
            "nvidia-cuda-cupti-cu12": ["cuda-cupti-{v}", "cuda-cupti-dev-{v}"]}
    dv = cuda.replace(".", "-")
    apt_pkgs = " ".join(f"{p.format(v=dv)}={w.version}-1" for w in wheels
                        for p in debs.get(w.project, []))

    layers = [
        with_parents(base_layer()),
        with_parents(cuda_layer(wheels, cuda)),
        with_parents(pip_layer(wheels)),
        with_parents(cleanup_layer()),
    ]

    out = os.path.abspath(a.out.rstrip("/"))
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(dir=parent, prefix=".cuda-wheels-build-")
    try:
        blobs = os.path.join(work, "blobs", "sha256")
        os.makedirs(blobs)
        written = [write_layer(entries, blobs) for entries in layers]
        diff_ids = [w[1] for w in written]

        bk = "buildkit.dockerfile.v0"
        t = ["2024-04-16T06:12:00Z", "2024-04-16T06:12:01Z", "2024-04-18T21:03:10Z",
             "2024-04-18T21:03:10Z", "2024-04-18T21:05:42Z", "2024-04-18T21:05:42Z",
             "2024-04-18T21:05:42Z", "2024-11-28T09:14:03Z", "2024-11-28T09:14:05Z",
             "2024-11-28T09:14:05Z"]
        path_env = ("/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:"
                    "/usr/sbin:/usr/bin:/sbin:/bin")
        history = [
            {"created": t[0], "created_by": f"/bin/sh -c #(nop) ADD file:{diff_ids[0][7:]} in / "},
            {"created": t[1], "created_by": '/bin/sh -c #(nop)  CMD ["bash"]', "empty_layer": True},
            {"created": t[2], "created_by": "ENV NVARCH=x86_64", "comment": bk, "empty_layer": True},
            {"created": t[3], "created_by": f"ENV CUDA_VERSION={runtime[0].version}",
             "comment": bk, "empty_layer": True},
            {"created": t[4], "created_by":
                f"RUN |1 TARGETARCH=amd64 /bin/sh -c apt-get update && apt-get install -y "
                f"--no-install-recommends {apt_pkgs} && rm -rf /var/lib/apt/lists/* # buildkit",
             "comment": bk},
            {"created": t[5], "created_by": f"ENV PATH={path_env}", "comment": bk, "empty_layer": True},
            {"created": t[6], "created_by": "ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
             "comment": bk, "empty_layer": True},
            {"created": t[7], "created_by": f"RUN /bin/sh -c pip install {pins} # buildkit", "comment": bk},
            {"created": t[8], "created_by": "RUN /bin/sh -c rm -rf /root/.cache/pip # buildkit", "comment": bk},
            {"created": t[9], "created_by": 'CMD ["python3"]', "comment": bk, "empty_layer": True},
        ]
        config = {
            "created": t[-1],
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": [f"PATH={path_env}", "NVARCH=x86_64", f"CUDA_VERSION={runtime[0].version}",
                        "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
                        "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
                "Cmd": ["python3"],
                "Labels": {"maintainer": "NVIDIA CORPORATION <cudatools@nvidia.com>"},
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
        cfg_digest, cfg_size = write_blob(blobs, jdump(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cfg_digest, "size": cfg_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": dg, "size": size} for dg, _, size, _ in written],
        }
        man_digest, man_size = write_blob(blobs, jdump(manifest))
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": man_digest, "size": man_size,
                           "annotations": {"org.opencontainers.image.ref.name": a.tag},
                           "platform": {"architecture": "amd64", "os": "linux"}}],
        }
        with open(os.path.join(work, "index.json"), "wb") as fh:
            fh.write(jdump(index))
        with open(os.path.join(work, "oci-layout"), "wb") as fh:
            fh.write(b'{"imageLayoutVersion":"1.0.0"}')
        for root_, dirs, files in os.walk(work):
            for n in dirs:
                os.chmod(os.path.join(root_, n), 0o755)
            for n in files:
                os.chmod(os.path.join(root_, n), 0o644)
        if os.path.lexists(out):
            shutil.rmtree(out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

    for i, (dg, diff, size, tar_bytes) in enumerate(written):
        print(f"layer {i}: {size:>11} B gzip  {tar_bytes:>11} B tar  {dg}", file=sys.stderr)

    if a.expected:
        exp = expected_mod.compute(
            layers,
            layer_meta=[{"digest": dg, "diff_id": diff, "compressed_bytes": size, "tar_bytes": tb,
                         "created_by": h["created_by"]}
                        for (dg, diff, size, tb), h in
                        zip(written, [h for h in history if not h.get("empty_layer")])],
            history=history,
            wheels=[{"file": w.filename, "project": w.project, "version": w.version,
                     "bytes": len(w.raw), "sha256": hashlib.sha256(w.raw).hexdigest()}
                    for w in wheels],
            tag=a.tag,
        )
        tmp = a.expected + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(exp, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, a.expected)


if __name__ == "__main__":
    main()
