#!/usr/bin/env python3
"""Deterministic synthetic ML-shaped container images for benchmarking mlsize.

Usage:
    python3 benches/gen-image.py OUTDIR [PROFILE ...] [--force]

PROFILE is one or more of: large (~6.8 GB, 40k files), medium (~1.4 GB), small-files (200k files, ~1 GB),
million (1M files of ~1 KB), tiny (seconds; smoke test). Default: large small-files million.
OUTDIR must be outside the repository (e.g. /tmp/mlsize-bench).

For each profile P this writes into OUTDIR:

    P-oci-plain/        OCI image layout, uncompressed layers (ref "latest")
    P-oci-gzip/         OCI image layout, gzip layers (pigz -6 -n)
    P-oci-zstd/         OCI image layout, zstd layers (zstd -3 -T0)
    P.docker.tar        docker-archive (skopeo; uncompressed layers), name mlsize-bench/P:latest
    P-gzip.oci.tar      oci-archive with gzip layers (skopeo)
    P-zstd.oci.tar      oci-archive with zstd layers (skopeo)
    P.expected.json     what the generator wrote: per-layer files/bytes, the bytes
                        deleted by whiteouts / overwritten, and the intended duplicates

Everything is a function of the profile name only (fixed seeds, fixed mtimes, pigz -n),
so two runs produce byte-identical layouts and docker-archives (skopeo's
oci-archive tar wrapper stores mtimes; the blobs inside it are identical). Layers are streamed: tar headers are built
with tarfile.TarInfo.tobuf() and file content is generated in segments of at most
64 KiB, so memory stays small whatever the layer size.

An output that already exists is kept (delete it, or pass --force, to regenerate).
Needs python3 (stdlib only), pigz, zstd and skopeo.
"""

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time

MTIME = 1714521600  # 2024-05-01T00:00:00Z
CREATED = "2024-05-01T00:00:00Z"
POOL = 32 << 20  # bytes in each content pool
MIB = 1 << 20

# --------------------------------------------------------------------------------------
# Content: pools of bytes that compress like real files.
# --------------------------------------------------------------------------------------

WORDS = (
    "def class self return import from None True False if else elif for in while try "
    "except finally with as lambda yield raise assert pass break continue global nonlocal "
    "tensor torch cuda device dtype shape size module forward backward grad weight bias "
    "layer input output kernel stream float32 bfloat16 int64 numpy array index value key "
    "args kwargs config model optimizer loss batch step epoch scale norm linear conv attention "
    "_C __init__ __name__ isinstance len range list dict tuple str int float bool print "
    "Optional Union List Dict Tuple Any Callable Tensor torch.nn.functional F nn.Module"
).split()

IDENT = "abcdefghijklmnopqrstuvwxyz_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Pools:
    """Three 32 MiB pools, built once from a fixed seed.

    rand: uniform random bytes (incompressible, like compressed sections / weights)
    low:  bytes from a skewed 16-symbol alphabet (~4 bits/byte, like code and tables)
    text: Python-like source text (compresses ~3-4x)
    """

    def __init__(self):
        rng = random.Random("mlsize-bench-pools-v1")
        chunks = [rng.getrandbits(8 * MIB).to_bytes(MIB, "little") for _ in range(POOL // MIB)]
        self.rand = b"".join(chunks)
        # 16 symbols, skewed: common opcode-ish bytes appear more often.
        alphabet = [0x00, 0x48, 0x89, 0x8B, 0xE8, 0x0F, 0x85, 0xFF, 0x24, 0x44, 0xC3, 0x41, 0x4C, 0x83, 0x74, 0x01]
        table = bytes(alphabet[(b * b >> 12) % 16] for b in range(256))
        lows = [rng.getrandbits(8 * MIB).to_bytes(MIB, "little").translate(table) for _ in range(POOL // MIB)]
        self.low = b"".join(lows)
        words = []
        n = 0
        indent = ""
        while n < POOL:
            line_words = [
                WORDS[int(rng.paretovariate(1.2)) % len(WORDS)] if rng.random() < 0.8
                else "".join(rng.choice(IDENT) for _ in range(rng.randint(3, 12)))
                for _ in range(rng.randint(2, 10))
            ]
            r = rng.random()
            if r < 0.15:
                indent = " " * (4 * rng.randint(0, 3))
            line = indent + " ".join(line_words) + ("(" + ", ".join(line_words[:2]) + ")\n" if r < 0.5 else ":\n")
            words.append(line)
            n += len(line)
        self.text = "".join(words).encode()[:POOL]
        self.mrand = memoryview(self.rand)
        self.mlow = memoryview(self.low)
        self.mtext = memoryview(self.text)


POOLS = None


def pools():
    global POOLS
    if POOLS is None:
        POOLS = Pools()
    return POOLS


def gen_content(w, seed, size, kind):
    """Write exactly `size` bytes of content for file seed `seed` to writer `w`.

    Same (seed, size, kind) -> same bytes; distinct seeds -> distinct content (the seed is
    embedded near the start). kind: 'bin' (ELF-like mix), 'text', 'random'.
    """
    if size == 0:
        return
    p = pools()
    rng = random.Random(seed)
    if kind == "text":
        head = b"# %016x\n" % (seed & 0xFFFFFFFFFFFFFFFF)
    elif kind == "random":
        head = b"PK\x03\x04" + (seed & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    else:
        head = b"\x7fELF\x02\x01\x01\x00" + (seed & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little") + bytes(48)
    head = head[:size]
    w.write(head)
    left = size - len(head)
    while left > 0:
        if kind == "text":
            n = min(left, rng.randint(2048, 65536))
            o = rng.randrange(POOL - n)
            w.write(p.mtext[o : o + n])
        elif kind == "random":
            n = min(left, 65536)
            o = rng.randrange(POOL - n)
            w.write(p.mrand[o : o + n])
        else:
            n = min(left, rng.randint(4096, 65536))
            r = rng.random()
            if r < 0.25:  # incompressible section
                o = rng.randrange(POOL - n)
                w.write(p.mrand[o : o + n])
            elif r < 0.55:  # code-like, ~2x
                o = rng.randrange(POOL - n)
                w.write(p.mlow[o : o + n])
            elif r < 0.75:  # zero padding / .bss-like
                w.write(bytes(n))
            else:  # repeated short pattern (tables, fatbin padding)
                o = rng.randrange(POOL - 64)
                pat = bytes(p.mrand[o : o + rng.choice((4, 8, 16, 32, 64))])
                w.write((pat * (n // len(pat) + 1))[:n])
        left -= n


# --------------------------------------------------------------------------------------
# Streaming tar writer with an overlay model for the expected figures.
# --------------------------------------------------------------------------------------


class HashWriter:
    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b):
        self.h.update(b)
        self.f.write(b)
        self.n += len(b)


class Overlay:
    """Tracks what the image's final filesystem holds, to compute expected figures."""

    def __init__(self):
        self.paths = {}  # path -> inode id (regular files only)
        self.inodes = []  # [layer, size]
        self.whiteout_bytes = 0
        self.overwrite_bytes = 0

    def finish(self):
        live = set(self.paths.values())
        visible = sum(self.inodes[i][1] for i in live)
        content = sum(s for _, s in self.inodes)
        return content, visible


class Layer:
    def __init__(self, f, overlay, index):
        self.w = HashWriter(f)
        self.ov = overlay
        self.index = index
        self.dirs = set()
        self.files = 0
        self.content = 0
        self.entries = 0
        self.hardlinks = 0
        self.symlinks = 0
        self.whiteouts = 0
        self.path_chars = 0
        self.local = {}  # path -> inode, for hardlinks within the layer

    def _ti(self, path, typ, mode):
        ti = tarfile.TarInfo(path)
        ti.type = typ
        ti.mode = mode
        ti.mtime = MTIME
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    def _emit(self, ti):
        self.w.write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self.entries += 1
        self.path_chars += len(ti.name)

    def parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self._emit(self._ti(d, tarfile.DIRTYPE, 0o755))

    def dir(self, path, mode=0o755):
        self.parents(path)
        if path not in self.dirs:
            self.dirs.add(path)
            self._emit(self._ti(path, tarfile.DIRTYPE, mode))

    def file(self, path, size, seed, kind="bin", mode=0o644):
        self.parents(path)
        ti = self._ti(path, tarfile.REGTYPE, mode)
        ti.size = size
        self._emit(ti)
        before = self.w.n
        gen_content(self.w, seed, size, kind)
        assert self.w.n - before == size, (path, size, self.w.n - before)
        pad = (-size) % 512
        if pad:
            self.w.write(bytes(pad))
        self.files += 1
        self.content += size
        # overlay model
        old = self.ov.paths.get(path)
        ino = len(self.ov.inodes)
        self.ov.inodes.append([self.index, size])
        self.ov.paths[path] = ino
        if old is not None and self.ov.inodes[old][0] < self.index:
            self.ov.overwrite_bytes += self.ov.inodes[old][1]
        self.local[path] = ino

    def symlink(self, path, target):
        self.parents(path)
        ti = self._ti(path, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self._emit(ti)
        self.symlinks += 1

    def hardlink(self, path, target):
        self.parents(path)
        ti = self._ti(path, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self._emit(ti)
        self.hardlinks += 1
        self.ov.paths[path] = self.local[target]

    def whiteout(self, path):
        """Delete `path` (file or directory tree) from lower layers: writes DIR/.wh.NAME."""
        d, _, name = path.rpartition("/")
        wh = (d + "/" if d else "") + ".wh." + name
        self.parents(wh)
        ti = self._ti(wh, tarfile.REGTYPE, 0o600)
        ti.size = 0
        self._emit(ti)
        self.whiteouts += 1
        prefix = path + "/"
        gone = [p for p in self.ov.paths if p == path or p.startswith(prefix)]
        for p in gone:  # bytes deleted = inodes left unreachable, computed in finish()
            del self.ov.paths[p]

    def close(self):
        self.w.write(bytes(1024))

    def stats(self):
        return {
            "files": self.files,
            "content_bytes": self.content,
            "tar_entries": self.entries,
            "hardlinks": self.hardlinks,
            "symlinks": self.symlinks,
            "whiteouts": self.whiteouts,
            "tar_bytes": self.w.n,
            "diff_id": "sha256:" + self.w.h.hexdigest(),
        }


def lognormal_sizes(rng, n, mean, sigma=1.0, cap=None, zero_frac=0.0):
    mu = math.log(mean) - sigma * sigma / 2
    out = []
    for _ in range(n):
        if zero_frac and rng.random() < zero_frac:
            out.append(0)
            continue
        s = int(rng.lognormvariate(mu, sigma))
        if cap:
            s = min(s, cap)
        out.append(max(s, 1))
    return out


def seed_of(*parts):
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "little")


NAMES = (
    "alpha beta gamma delta core util base common io net ssl crypto xml json yaml http "
    "sql lite zip lz bz gdbm ffi uuid readline ncurses tinfo gcc stdc sys proc fs mount "
    "audit cap acl attr pam selinux systemd dbus glib gio gobject pango cairo pixman "
    "freetype fontconfig png jpeg tiff webp expat icu idn2 unistring gmp mpfr mpc isl "
    "krb5 gssapi k5crypto ldap sasl nghttp2 rtmp psl brotli zstd lzma xxhash blkid"
).split()


def name_for(rng, i):
    return "%s%s%d" % (rng.choice(NAMES), rng.choice(("", "-", "_")), i)


# --------------------------------------------------------------------------------------
# Profiles: each layer builder gets (Layer, rng) and writes entries.
# --------------------------------------------------------------------------------------

PY = "usr/local/lib/python3.11"
SITE = PY + "/site-packages"
CUDA = "usr/local/cuda-12.4"
CUDALIB = CUDA + "/targets/x86_64-linux/lib"

# name, soname-suffix (major), version, MiB
CUDA_LIBS = [
    ("libcublas", "12", "12.4.5.8", 105),
    ("libcublasLt", "12", "12.4.5.8", 520),
    ("libcufft", "11", "11.2.1.3", 275),
    ("libcufftw", "11", "11.2.1.3", 1),
    ("libcurand", "10", "10.3.5.147", 96),
    ("libcusolver", "11", "11.6.1.9", 280),
    ("libcusolverMg", "11", "11.6.1.9", 170),
    ("libcusparse", "12", "12.3.1.170", 265),
    ("libnppc", "12", "12.2.5.30", 1),
    ("libnppial", "12", "12.2.5.30", 18),
    ("libnppicc", "12", "12.2.5.30", 7),
    ("libnppidei", "12", "12.2.5.30", 11),
    ("libnppif", "12", "12.2.5.30", 95),
    ("libnppig", "12", "12.2.5.30", 42),
    ("libnppim", "12", "12.2.5.30", 11),
    ("libnppist", "12", "12.2.5.30", 35),
    ("libnppisu", "12", "12.2.5.30", 1),
    ("libnppitc", "12", "12.2.5.30", 6),
    ("libnpps", "12", "12.2.5.30", 20),
    ("libnvrtc", "12", "12.4.127", 58),
    ("libnvrtc-builtins", "12.4", "12.4.127", 6),
    ("libnvJitLink", "12", "12.4.127", 52),
    ("libcudart", "12", "12.4.127", 0.7),
    ("libnvjpeg", "12", "12.3.1.117", 6),
]
# pip wheel -> (dir, libs): (wheel lib name, cuda lib it copies or None, MiB if not a copy)
NVIDIA_WHEELS = [
    ("cublas", [("libcublas.so.12", "libcublas", None), ("libcublasLt.so.12", "libcublasLt", None), ("libnvblas.so.12", None, 0.7)]),
    ("cufft", [("libcufft.so.11", "libcufft", None), ("libcufftw.so.11", "libcufftw", None)]),
    ("curand", [("libcurand.so.10", "libcurand", None)]),
    ("cusolver", [("libcusolver.so.11", None, 282), ("libcusolverMg.so.11", None, 171)]),
    ("cusparse", [("libcusparse.so.12", None, 266)]),
    ("cuda_runtime", [("libcudart.so.12", "libcudart", None)]),
    ("cuda_nvrtc", [("libnvrtc.so.12", "libnvrtc", None), ("libnvrtc-builtins.so.12.4", "libnvrtc-builtins", None)]),
    ("nvjitlink", [("libnvJitLink.so.12", "libnvJitLink", None)]),
    ("cudnn", [
        ("libcudnn.so.9", None, 0.1),
        ("libcudnn_engines_precompiled.so.9", None, 250),
        ("libcudnn_engines_runtime_compiled.so.9", None, 9),
        ("libcudnn_heuristic.so.9", None, 50),
        ("libcudnn_adv.so.9", None, 90),
        ("libcudnn_cnn.so.9", None, 4),
        ("libcudnn_graph.so.9", None, 2),
        ("libcudnn_ops.so.9", None, 50),
    ]),
    ("nccl", [("libnccl.so.2", None, 100)]),
    ("cuda_cupti", [("libcupti.so.12", None, 7), ("libnvperf_host.so", None, 20)]),
]
TORCH_LIBS = [("libtorch_cuda.so", 300), ("libtorch_cpu.so", 180), ("libtorch_python.so", 30),
              ("libc10_cuda.so", 1), ("libc10.so", 1), ("libgomp-a34b3233.so.1", 0.3),
              ("libshm.so", 0.05), ("libcaffe2_nvrtc.so", 0.02)]


def cuda_lib_size(name):
    for n, _, _, mib in CUDA_LIBS:
        if n == name:
            return int(mib * MIB) + (seed_of("cuda-size", n) % 65536)
    raise KeyError(name)


def build_base(L, rng, scale=1.0):
    """Debian-like base: ~20k small files, ~300 MB."""
    groups = [
        # dir, count, mean size, kind, extension
        ("usr/bin", 700, 80_000, "bin", ""),
        ("usr/lib/x86_64-linux-gnu", 1800, 90_000, "bin", ".so"),
        ("usr/include", 3500, 6_000, "text", ".h"),
        ("usr/share/locale", 3000, 4_000, "bin", ".mo"),
        ("usr/share/doc", 1000, 3_000, "text", ""),
        ("usr/share/man", 2500, 3_000, "random", ".gz"),
        (PY, 3500, 9_000, "text", ".py"),
        ("usr/share/zoneinfo", 1200, 2_000, "bin", ""),
        ("var/lib/dpkg/info", 2500, 2_000, "text", ".list"),
        ("usr/share/perl5", 800, 10_000, "text", ".pm"),
        ("etc", 300, 1_500, "text", ".conf"),
    ]
    for d, count, mean, kind, ext in groups:
        count = max(1, int(count * scale))
        sizes = lognormal_sizes(rng, count, mean, 1.1, cap=mean * 60, zero_frac=0.01)
        nsub = max(1, count // 40)
        subs = [name_for(rng, j) for j in range(nsub)]
        for i, size in enumerate(sizes):
            sub = subs[i % nsub] if d not in ("usr/bin", "etc") else ""
            base = name_for(rng, i)
            if ext == ".so":
                path = "%s/lib%s.so.%d.%d.%d" % (d, base, rng.randint(0, 9), rng.randint(0, 40), rng.randint(0, 9))
            else:
                path = "%s/%s%s%s" % (d, sub + "/" if sub else "", base, ext)
            mode = 0o755 if d == "usr/bin" else 0o644
            L.file(path, size, seed_of(L.index, path), kind, mode)
            if ext == ".so" and i % 3 == 0:
                L.symlink(path.rsplit(".", 2)[0], path.rsplit("/", 1)[1])
            if d == "usr/bin" and i % 70 == 0:
                L.hardlink(path + "-hl", path)
    L.symlink("bin", "usr/bin")
    L.symlink("lib", "usr/lib")
    L.symlink("lib64", "usr/lib/x86_64-linux-gnu")
    L.dir("tmp", 0o1777)
    L.dir("root", 0o700)


def build_cuda(L, rng):
    """CUDA toolkit: ~2.2 GB of large .so files + headers + tools."""
    for name, major, ver, _ in CUDA_LIBS:
        real = "%s.so.%s" % (name, ver)
        L.file("%s/%s" % (CUDALIB, real), cuda_lib_size(name), seed_of("cuda-lib", name), "bin", 0o755)
        L.symlink("%s/%s.so.%s" % (CUDALIB, name, major), real)
        L.symlink("%s/%s.so" % (CUDALIB, name), "%s.so.%s" % (name, major))
    for tool, mib in (("nvcc", 20), ("ptxas", 30), ("cuobjdump", 10), ("nvdisasm", 50), ("nvlink", 25)):
        L.file("%s/bin/%s" % (CUDA, tool), int(mib * MIB), seed_of("cuda-bin", tool), "bin", 0o755)
    for i, size in enumerate(lognormal_sizes(rng, 800, 20_000, 1.0)):
        p = "%s/targets/x86_64-linux/include/%s%s.h" % (CUDA, ("crt/", "thrust/", "cub/", "")[i % 4], name_for(rng, i))
        L.file(p, size, seed_of(L.index, p), "text")
    L.symlink(CUDA + "/lib64", "targets/x86_64-linux/lib")
    L.symlink(CUDA + "/include", "targets/x86_64-linux/include")
    L.symlink("usr/local/cuda", "cuda-12.4")
    L.symlink("usr/local/cuda-12", "cuda-12.4")
    L.file("etc/ld.so.conf.d/000_cuda.conf", 24, seed_of("ldconf"), "text")


def build_pip(L, rng, cache_mib=900):
    """pip install torch + nvidia-* wheels: ~2.7 GB site-packages + ~0.9 GB pip cache."""
    for wheel, libs in NVIDIA_WHEELS:
        L.file("%s/nvidia/%s/__init__.py" % (SITE, wheel), 0, 0, "text")
        for lib, copy_of, mib in libs:
            p = "%s/nvidia/%s/lib/%s" % (SITE, wheel, lib)
            if copy_of:  # byte-identical to the CUDA toolkit's copy
                L.file(p, cuda_lib_size(copy_of), seed_of("cuda-lib", copy_of), "bin", 0o755)
            else:
                L.file(p, int(mib * MIB) + seed_of("pip-size", lib) % 65536, seed_of("pip-lib", lib), "bin", 0o755)
        for i in range(rng.randint(5, 40)):
            p = "%s/nvidia/%s/include/%s.h" % (SITE, wheel, name_for(rng, i))
            L.file(p, lognormal_sizes(rng, 1, 15_000)[0], seed_of(L.index, p), "text")
        di = "%s/nvidia_%s_cu12-12.4.127.dist-info" % (SITE, wheel)
        for f in ("METADATA", "RECORD", "WHEEL", "INSTALLER", "top_level.txt"):
            L.file("%s/%s" % (di, f), rng.randint(50, 4000), seed_of(di, f), "text")
    L.file("%s/torch/version.py" % SITE, 250, seed_of("torch-version"), "text")  # the app layer replaces it
    for lib, mib in TORCH_LIBS:
        L.file("%s/torch/lib/%s" % (SITE, lib), int(mib * MIB) + seed_of("torch", lib) % 65536,
               seed_of("torch-lib", lib), "bin", 0o755)
    # Python packages: many .py files and their .pyc
    pkgs = [("torch", 8000), ("numpy", 900), ("transformers", 3500), ("sympy", 1500),
            ("networkx", 600), ("jinja2", 60), ("filelock", 10), ("fsspec", 100), ("triton", 340)]
    for pkg, n in pkgs:
        nsub = max(1, n // 25)
        subs = ["/".join(name_for(rng, j) for _ in range(1 + j % 3)) for j in range(nsub)]
        sizes = lognormal_sizes(rng, n, 9_500, 1.2, cap=2_000_000, zero_frac=0.05)
        for i, size in enumerate(sizes):
            d = "%s/%s/%s" % (SITE, pkg, subs[i % nsub])
            stem = name_for(rng, i)
            L.file("%s/%s.py" % (d, stem), size, seed_of(L.index, d, stem), "text")
            if i % 5 == 0:  # some packages ship compiled .pyc
                L.file("%s/__pycache__/%s.cpython-311.pyc" % (d, stem), size // 2 + 100,
                       seed_of(L.index, d, stem, "pyc"), "bin")
    # pip's http cache: wheel bodies, incompressible
    n = max(1, cache_mib // 2)
    sizes = lognormal_sizes(rng, n, cache_mib * MIB // n, 1.5, cap=400 * MIB)
    for i, size in enumerate(sizes):
        h = "%064x" % seed_of("pipcache", i)
        p = "root/.cache/pip/http-v2/%s/%s/%s/%s/%s/%s.body" % (h[0], h[1], h[2], h[3], h[4], h[5:])
        L.file(p, size, seed_of(p), "random")
    L.file("root/.cache/pip/selfcheck/%064x.json" % seed_of("selfcheck"), 220, 7, "text")


def build_rm_cache(L, rng):
    """RUN rm -rf /root/.cache"""
    L.whiteout("root/.cache")


def build_app(L, rng):
    """COPY . /app: small app layer; overwrites two files from lower layers."""
    for i, size in enumerate(lognormal_sizes(rng, 120, 6_000)):
        p = "app/%s%s.py" % (("", "serving/", "models/", "utils/")[i % 4], name_for(rng, i))
        L.file(p, size, seed_of(L.index, p), "text")
    L.file("app/models/tokenizer.json", 7 * MIB, seed_of("tok"), "text")
    L.file("app/requirements.txt", 400, seed_of("req"), "text")
    L.file("%s/torch/version.py" % SITE, 300, seed_of("torch-version-2"), "text")  # overwrite
    L.file("etc/ld.so.conf.d/000_cuda.conf", 48, seed_of("ldconf-2"), "text")  # overwrite


def build_many(prefix, count, mean, sigma, exts, cap=None):
    def b(L, rng):
        sizes = lognormal_sizes(rng, count, mean, sigma, cap=cap, zero_frac=0.01)
        per_dir = 50
        d = None
        for i, size in enumerate(sizes):
            if i % per_dir == 0:
                d = "%s/%s/%s" % (prefix, name_for(rng, i // 2000), name_for(rng, i // per_dir))
            ext, kind = exts[i % len(exts)]
            p = "%s/%s%s" % (d, name_for(rng, i), ext)
            L.file(p, size, seed_of(L.index, i), kind)
    return b


SMALL_EXTS = [(".py", "text"), (".js", "text"), (".json", "text"), (".pyc", "bin"), (".so", "bin"),
              (".d.ts", "text"), (".png", "random"), (".txt", "text")]

PROFILES = {
    "large": [
        ("/bin/sh -c #(nop) ADD file:5d2e8c5c2b9a1f3c8e7e4ad0f1a6b9c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708 in / ", build_base),
        ("RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends cuda-toolkit-12-4 # buildkit", build_cuda),
        ("RUN /bin/sh -c pip install torch==2.3.0 transformers numpy # buildkit", build_pip),
        ("RUN /bin/sh -c rm -rf /root/.cache # buildkit", build_rm_cache),
        ("COPY . /app # buildkit", build_app),
    ],
    "tiny": [  # seconds to build; for smoke-testing the generator and mlsize end to end
        ("/bin/sh -c #(nop) ADD file:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff in / ",
         lambda L, rng: build_base(L, rng, scale=0.02)),
        ("RUN /bin/sh -c pip install tiny # buildkit",
         lambda L, rng: (build_many("root/.cache/pip", 200, 20_000, 1.0, [("", "random")])(L, rng),
                         build_many(SITE, 300, 5_000, 1.0, SMALL_EXTS)(L, rng))),
        ("RUN /bin/sh -c rm -rf /root/.cache # buildkit", build_rm_cache),
        ("COPY . /app # buildkit", build_app),
    ],
    "medium": [  # ~1.4 GB, the large profile's shape at a fifth of its size (benches/sources/run.sh)
        ("/bin/sh -c #(nop) ADD file:7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f in / ", build_base),
        ("RUN /bin/sh -c pip install torch # buildkit",
         lambda L, rng: (build_many("root/.cache/pip/http-v2", 150, 2 * MIB, 1.0, [(".body", "random")])(L, rng),
                         build_many(SITE + "/torch/lib", 60, 12 * MIB, 1.0, [(".so", "bin")], cap=200 * MIB)(L, rng),
                         build_many(SITE, 12_000, 9_500, 1.2, SMALL_EXTS, cap=2_000_000)(L, rng))),
        ("RUN /bin/sh -c rm -rf /root/.cache # buildkit", build_rm_cache),
        ("COPY . /app # buildkit", build_app),
    ],
    "small-files": [
        ("/bin/sh -c #(nop) ADD file:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 in / ",
         build_many("usr/lib/node_modules", 100_000, 5_000, 1.3, SMALL_EXTS, cap=1 << 20)),
        ("RUN /bin/sh -c pip install -r requirements.txt # buildkit",
         build_many(SITE, 100_000, 5_000, 1.3, SMALL_EXTS, cap=1 << 20)),
    ],
    "million": [
        ("/bin/sh -c #(nop) ADD file:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100 in / ",
         build_many("usr/share/dataset", 500_000, 1_000, 0.8, [(".txt", "text"), (".json", "text"), (".bin", "bin")], cap=16_384)),
        ("RUN /bin/sh -c python3 unpack.py # buildkit",
         build_many("opt/shards", 500_000, 1_000, 0.8, [(".txt", "text"), (".json", "text"), (".bin", "bin")], cap=16_384)),
    ],
}
EMPTY_HISTORY = {  # history entries with no layer, inserted after layer i
    0: ['/bin/sh -c #(nop)  CMD ["bash"]'],
    1: ["ENV CUDA_HOME=/usr/local/cuda PATH=/usr/local/cuda/bin:/usr/local/bin:/usr/bin:/bin"],
    3: ["WORKDIR /app"],
}

# --------------------------------------------------------------------------------------
# Blobs and layouts
# --------------------------------------------------------------------------------------

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = {"plain": "application/vnd.oci.image.layer.v1.tar",
            "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
            "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MIB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def put_blob_file(layout, tmp):
    d = sha256_file(tmp)
    dst = os.path.join(layout, "blobs", "sha256", d)
    os.replace(tmp, dst)
    return "sha256:" + d, os.path.getsize(dst)


def put_blob_bytes(layout, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def gen_layouts(out, profile, log):
    """Write P-oci-{plain,gzip,zstd}/ and P.expected.json."""
    final = {v: os.path.join(out, "%s-oci-%s" % (profile, v)) for v in ("plain", "gzip", "zstd")}
    expected_path = os.path.join(out, profile + ".expected.json")
    if all(os.path.exists(p) for p in final.values()) and os.path.exists(expected_path):
        log("cached: %s layouts" % profile)
        return
    work = {v: p + ".partial" for v, p in final.items()}
    for p in list(work.values()) + list(final.values()):
        shutil.rmtree(p, ignore_errors=True)
    for p in work.values():
        os.makedirs(os.path.join(p, "blobs", "sha256"))
        with open(os.path.join(p, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
    ov = Overlay()
    layers = []
    descs = {v: [] for v in final}
    for i, (created_by, build) in enumerate(PROFILES[profile]):
        t0 = time.time()
        tmp = os.path.join(work["plain"], "blobs", "sha256", "layer%d.tmp" % i)
        with open(tmp, "wb", buffering=4 * MIB) as f:
            L = Layer(f, ov, i)
            build(L, random.Random("%s/layer%d" % (profile, i)))
            L.close()
        st = L.stats()
        st["created_by"] = created_by
        st["avg_path_chars"] = round(L.path_chars / max(1, L.entries), 1)
        digest = st["diff_id"]
        dst = os.path.join(work["plain"], "blobs", "sha256", digest.split(":")[1])
        os.replace(tmp, dst)
        descs["plain"].append({"mediaType": MT_LAYER["plain"], "digest": digest, "size": st["tar_bytes"]})
        t1 = time.time()
        # compress gzip and zstd concurrently (pigz gets both cores most of the time)
        gz_tmp = os.path.join(work["gzip"], "blobs", "sha256", "layer%d.tmp" % i)
        zs_tmp = os.path.join(work["zstd"], "blobs", "sha256", "layer%d.tmp" % i)
        with open(dst, "rb") as src, open(gz_tmp, "wb") as g:
            pg = subprocess.Popen(["pigz", "-6", "-n", "-c"], stdin=src, stdout=g)
        pz = subprocess.Popen(["zstd", "-3", "-T0", "-q", "-c", "--no-progress", dst], stdout=open(zs_tmp, "wb"))
        if pg.wait() != 0 or pz.wait() != 0:
            sys.exit("compression failed for %s layer %d" % (profile, i))
        gd, gs = put_blob_file(work["gzip"], gz_tmp)
        zd, zsz = put_blob_file(work["zstd"], zs_tmp)
        descs["gzip"].append({"mediaType": MT_LAYER["gzip"], "digest": gd, "size": gs})
        descs["zstd"].append({"mediaType": MT_LAYER["zstd"], "digest": zd, "size": zsz})
        st["gzip_bytes"], st["zstd_bytes"] = gs, zsz
        layers.append(st)
        log("  %s layer %d: %d files, %s tar, gzip %s, zstd %s (gen %.0fs, compress %.0fs)" % (
            profile, i, st["files"], human(st["tar_bytes"]), human(gs), human(zsz), t1 - t0, time.time() - t1))

    history = []
    for i, st in enumerate(layers):
        history.append({"created": CREATED, "created_by": st["created_by"],
                        "comment": "buildkit.dockerfile.v0" if "buildkit" in st["created_by"] else None})
        for e in EMPTY_HISTORY.get(i, []) if profile == "large" else []:
            history.append({"created": CREATED, "created_by": e, "empty_layer": True,
                            "comment": "buildkit.dockerfile.v0"})
    for h in history:
        if h["comment"] is None:
            del h["comment"]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": ["PATH=/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "CUDA_HOME=/usr/local/cuda"],
            "Cmd": ["python3", "/app/serve.py"],
            "WorkingDir": "/app",
        },
        "rootfs": {"type": "layers", "diff_ids": [st["diff_id"] for st in layers]},
        "history": history,
    }
    cfg = canon(config)
    for v, layout in work.items():
        cd, cs = put_blob_bytes(layout, cfg)
        manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": {"mediaType": MT_CONFIG, "digest": cd, "size": cs},
                    "layers": descs[v]}
        md, ms = put_blob_bytes(layout, canon(manifest))
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": MT_MANIFEST, "digest": md, "size": ms,
                                "platform": {"architecture": "amd64", "os": "linux"},
                                "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
        with open(os.path.join(layout, "index.json"), "wb") as f:
            f.write(canon(index))

    content, visible = ov.finish()
    expected = {
        "profile": profile,
        "layers": layers,
        "files": sum(st["files"] for st in layers),
        "hardlinks": sum(st["hardlinks"] for st in layers),
        "tar_bytes": sum(st["tar_bytes"] for st in layers),
        "content_bytes": content,
        "visible_bytes": visible,
        "wasted_bytes": content - visible,
        "wasted_by_overwrite_bytes": ov.overwrite_bytes,
        "wasted_by_whiteout_bytes": content - visible - ov.overwrite_bytes,
        "visible_files": len(ov.paths),
    }
    if profile == "large":
        dups = []
        for wheel, libs in NVIDIA_WHEELS:
            for lib, copy_of, _ in libs:
                if copy_of:
                    dups.append({"bytes_each": cuda_lib_size(copy_of),
                                 "paths": ["/%s/%s.so.%s" % (CUDALIB, copy_of, [v for n, _, v, _ in CUDA_LIBS if n == copy_of][0]),
                                           "/%s/nvidia/%s/lib/%s" % (SITE, wheel, lib)]})
        expected["intended_duplicates"] = dups
        expected["intended_duplicate_reclaimable_bytes"] = sum(d["bytes_each"] for d in dups)
    with open(expected_path + ".tmp", "w") as f:
        json.dump(expected, f, indent=1)
    for v in final:
        os.replace(work[v], final[v])
    os.replace(expected_path + ".tmp", expected_path)


def skopeo(src, dst):
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", src, dst], check=True)


def gen_archives(out, profile, log):
    jobs = [
        ("%s.docker.tar" % profile, "plain", "docker-archive:{}:mlsize-bench/%s:latest" % profile),
        ("%s-gzip.oci.tar" % profile, "gzip", "oci-archive:{}:latest"),
        ("%s-zstd.oci.tar" % profile, "zstd", "oci-archive:{}:latest"),
    ]
    for name, variant, dst in jobs:
        path = os.path.join(out, name)
        if os.path.exists(path):
            log("cached: %s" % name)
            continue
        tmp = path + ".partial"
        if os.path.exists(tmp):
            os.remove(tmp)
        t0 = time.time()
        skopeo("oci:%s:latest" % os.path.join(out, "%s-oci-%s" % (profile, variant)), dst.format(tmp))
        os.replace(tmp, path)
        log("  wrote %s (%.0fs)" % (name, time.time() - t0))


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.2f %s" % (n, unit))
        n /= 1024


def du(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("profiles", nargs="*", default=["large", "small-files", "million"])
    ap.add_argument("--force", action="store_true", help="regenerate even if outputs exist")
    args = ap.parse_args()
    for p in args.profiles:
        if p not in PROFILES:
            ap.error("unknown profile %r (have: %s)" % (p, ", ".join(PROFILES)))
    for tool in ("pigz", "zstd", "skopeo"):
        if not shutil.which(tool):
            sys.exit("%s not found (apt-get install -y pigz zstd skopeo)" % tool)
    out = os.path.abspath(args.outdir)
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    if out == repo or out.startswith(repo + os.sep):
        sys.exit("OUTDIR must be outside the repository (%s)" % repo)
    os.makedirs(out, exist_ok=True)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    for p in args.profiles:
        if args.force:
            for name in ("%s-oci-plain", "%s-oci-gzip", "%s-oci-zstd", "%s.docker.tar", "%s-gzip.oci.tar",
                         "%s-zstd.oci.tar", "%s.expected.json"):
                q = os.path.join(out, name % p)
                if os.path.isdir(q):
                    shutil.rmtree(q)
                elif os.path.exists(q):
                    os.remove(q)
        log("profile %s" % p)
        gen_layouts(out, p, log)
        gen_archives(out, p, log)

    print("%-36s %12s" % ("output", "size"))
    for p in args.profiles:
        for name in ("%s-oci-plain", "%s-oci-gzip", "%s-oci-zstd", "%s.docker.tar", "%s-gzip.oci.tar",
                     "%s-zstd.oci.tar"):
            q = os.path.join(out, name % p)
            print("%-36s %12s" % (os.path.join(out, name % p), human(du(q))))
        with open(os.path.join(out, p + ".expected.json")) as f:
            e = json.load(f)
        print("  %s: %d layers, %d files, tar %s, content %s, visible %s, wasted %s" % (
            p, len(e["layers"]), e["files"], human(e["tar_bytes"]), human(e["content_bytes"]),
            human(e["visible_bytes"]), human(e["wasted_bytes"])))


if __name__ == "__main__":
    main()
