"""The Python axis of a wheel matrix: the same (package, torch, CUDA, archs) built for several Python versions.

Usage (repo root; real builds, so on the shared machine under ``flock /work/heavy.lock``)::

    python benchmarks/python_axis.py --sdist causal_conv1d-1.7.0.tar.gz --package causal-conv1d --arch 8.0,9.0 \
        --python /venvs/py311/bin/python --python /venvs/py310/bin/python ... --out DIR \
        [--launcher ccache] [--report docs/benchmarks.md --section NAME]

Each Python is one matrix job: ``mamba-build wheels --package P --source P=SDIST --arch A --python PY --launcher L
--out OUT/wheels-N --no-cache --json``, one after the other, with ONE compiler cache (a fresh CCACHE_DIR under OUT)
and one mamba-build cache (MAMBA_BUILD_CACHE under OUT, so torch's headers sit at one path: mamba_build/
torch_headers.py). Each job's wall time, CPU time (user+sys of its process tree) and launcher hits/misses are
recorded; then every wheel's cubins are extracted (``cuobjdump -xelf all``) and compared byte for byte with the
first wheel's. Goal (issue 17): all Pythons together cost <= 1.5x the first. Writes OUT/results.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _report import ccache_counters, machine, write_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5


def cubins(wheel: Path, tool: str) -> dict[str, str]:
    """{extension file / cubin name: sha256} of every cubin in the wheel's extension modules."""
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if not name.endswith(".so"):
                continue
            so = Path(tmp) / Path(name).name
            so.write_bytes(zf.read(name))
            work = Path(tmp) / (so.name + ".x")
            work.mkdir()
            subprocess.run([tool, "-xelf", "all", str(so)], cwd=work, capture_output=True, check=True, timeout=900)
            for cubin in sorted(work.iterdir()):
                out[f"{so.name.split('.')[0]}/{cubin.name}"] = hashlib.sha256(cubin.read_bytes()).hexdigest()
    return out


def run_job(argv: list[str], env: dict[str, str], log: Path) -> dict:
    start = time.monotonic()
    with open(log, "w") as out, open(str(log) + ".json", "w") as js:
        proc = subprocess.Popen(argv, env=env, stdout=js, stderr=out, cwd=REPO)
        _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    rc = os.waitstatus_to_exitcode(status)
    try:
        report = json.loads(Path(str(log) + ".json").read_text())
    except ValueError:
        report = {}
    return {"rc": rc, "wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1), "report": report}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sdist", required=True, type=Path)
    p.add_argument("--package", required=True)
    p.add_argument("--arch", default="8.0,9.0")
    p.add_argument("--python", action="append", required=True, help="a venv's python (repeat; the first is the base)")
    p.add_argument("--launcher", default="ccache")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--extra", default="", help="more `wheels` options, e.g. --jobs 2")
    p.add_argument("--report", type=Path)
    p.add_argument("--section", default="python-axis")
    args = p.parse_args(argv)
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = dict(os.environ, MAMBA_BUILD_CACHE=str(out / "mb-cache"), CCACHE_DIR=str(out / "ccache"))
    from mamba_build.dist.fatbin import find_cuobjdump

    tool = str(find_cuobjdump())
    jobs = []
    started = _dt.datetime.now(_dt.timezone.utc)
    for k, py in enumerate(args.python):
        version = subprocess.run([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        argv_ = [sys.executable, "-m", "mamba_build", "wheels", "--package", args.package, "--source",
                 f"{args.package}={args.sdist.resolve()}", "--arch", args.arch, "--python", py, "--launcher",
                 args.launcher, "--no-cache", "--out", str(out / f"wheels-{k}"), "--json", *shlex.split(args.extra)]
        print(f"[{k}] Python {version}: {shlex.join(argv_)}", flush=True)
        before = ccache_counters(out / "ccache")
        res = run_job(argv_, env, out / f"job-{k}.log")
        res.pop("report")
        after = ccache_counters(out / "ccache")
        wheels = sorted((out / f"wheels-{k}").glob("*.whl"))
        job = {"python": version, "python_path": py, "command": shlex.join(argv_), **res,
               "hits": after["hits"] - before["hits"], "misses": after["misses"] - before["misses"],
               "wheel": wheels[0].name if wheels else None,
               "cubins": cubins(wheels[0], tool) if wheels else {}}
        jobs.append(job)
        print(f"    rc {job['rc']}, {job['wall_s']} s wall, {job['cpu_s']} s CPU, hits {job['hits']}, "
              f"misses {job['misses']}, {len(job['cubins'])} cubins", flush=True)
        (out / "results.json").write_text(json.dumps(_summary(args, jobs, started), indent=1))
    summary = _summary(args, jobs, started)
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    text = render(summary)
    print(text)
    if args.report:
        write_section(args.section, text, args.report)
    return 0 if all(j["rc"] == 0 for j in jobs) and summary["kernels_identical"] else 1


def _summary(args, jobs: list[dict], started) -> dict:
    base = jobs[0]
    total = sum(j["wall_s"] for j in jobs)
    same = all(j["cubins"] == base["cubins"] and j["cubins"] for j in jobs)
    return {"package": args.package, "sdist": args.sdist.name, "arch": args.arch, "launcher": args.launcher,
            "started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "jobs": jobs, "total_wall_s": round(total, 1), "ratio": round(total / base["wall_s"], 2) if base["wall_s"] else None,
            "kernels_identical": same, "target_ratio": TARGET_RATIO}


def render(s: dict) -> str:
    lines = [f"- date: {s['started']}; machine: {s['machine']}",
             f"- {s['package']} ({s['sdist']}), archs {s['arch']}, `--launcher {s['launcher']}`, one compiler cache and "
             "one MAMBA_BUILD_CACHE for all jobs, each job `mamba-build wheels ... --python PY --no-cache`, one after the other",
             "", "| job | Python | wall | CPU (user+sys) | launcher hits / misses | cubins | same cubins as job 0 |",
             "|---|---|---|---|---|---|---|"]
    for k, j in enumerate(s["jobs"]):
        lines.append(f"| {k} | {j['python']} | {j['wall_s']:.0f} s | {j['cpu_s']:.0f} s | {j['hits']} / {j['misses']} | "
                     f"{len(j['cubins'])} | {'yes (byte-identical)' if j['cubins'] == s['jobs'][0]['cubins'] else 'NO'} |")
    lines += ["", f"- all {len(s['jobs'])} Pythons: {s['total_wall_s']:.0f} s = **{s['ratio']}x** the first "
                  f"(target <= {s['target_ratio']}x): **{'pass' if s['ratio'] and s['ratio'] <= s['target_ratio'] else 'miss'}**",
              f"- kernels: {'every wheel holds byte-identical cubins' if s['kernels_identical'] else 'cubins DIFFER'}",
              "- commands: " + "; ".join(f"`{j['command']}`" for j in s["jobs"][:1]) + " (then the same with each --python)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
