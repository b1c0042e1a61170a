#!/usr/bin/env python3
"""Writes a small valid wheel for tests/fix.rs (py3-none-any, a RECORD with
sha256 digests), so that a real `pip install` from the test's own PEP 503
index installs it.

usage: wheel.py OUT_DIR NAME VERSION random BYTES      one module and BYTES of
                                                       incompressible data
       wheel.py OUT_DIR NAME VERSION modules N BYTES   N modules of BYTES each,
                                                       string constants that pip
                                                       byte-compiles to .pyc
Prints the wheel's file name. Content is seeded by NAME: the same arguments
give the same wheel.
"""
import base64
import hashlib
import random
import sys
import zipfile


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"{path},sha256={digest.decode()},{len(data)}"


def main():
    out, name, version, kind = sys.argv[1:5]
    pkg = name.replace("-", "_")
    rng = random.Random(name)
    files = {f"{pkg}/__init__.py": b"VERSION = %r\n" % version.encode()}
    if kind == "random":
        files[f"{pkg}/data.bin"] = rng.randbytes(int(sys.argv[5]))
    elif kind == "modules":
        count, size = int(sys.argv[5]), int(sys.argv[6])
        for i in range(count):
            # Hex text: a str constant the .pyc stores whole.
            text = rng.randbytes(size // 2).hex()
            files[f"{pkg}/m{i:04}.py"] = f"DATA = {text!r}\n".encode()
    else:
        sys.exit(f"wheel.py: unknown kind {kind!r}")
    info = f"{pkg}-{version}.dist-info"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: mlsize-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    files[f"{info}/top_level.txt"] = f"{pkg}\n".encode()
    record = [record_line(p, d) for p, d in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    file_name = f"{pkg}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(f"{out}/{file_name}", "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files.items():
            info_ = zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0))
            info_.external_attr = 0o644 << 16
            info_.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info_, d)
    print(file_name)


main()
