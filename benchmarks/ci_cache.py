"""A shared object cache across CI jobs: two jobs of one matrix row that share nothing but ccache's remote storage.

Usage (repo root; real builds, so on the shared machine under ``flock /work/heavy.lock``)::

    python benchmarks/ci_cache.py --sdist causal_conv1d-1.7.0.tar.gz --package causal-conv1d --arch 9.0 \
        --python /venvs/a/bin/python --python /venvs/b/bin/python --out DIR \
        [--backend http|file] [--report docs/benchmarks.md --section NAME]

Each job gets its own fresh directory: its MAMBA_BUILD_CACHE, its local CCACHE_DIR, its output folder, and its own
venv (two venvs of the same Python and torch, at different paths: two runners of one row). The only thing they
share is ``CCACHE_REMOTE_STORAGE``: an HTTP store (``benchmarks/ccache_http_store.py``, GET/PUT like any
ccache HTTP backend) or a directory (``file:``, e.g. an NFS mount or a runner volume). Job 1 starts with an
empty store; job 2 runs the same command after it. Recorded per job: wall, CPU, and ccache's own counters
(hits, misses, remote-storage hits); the hit rate of job 2 is the measurement. Writes OUT/results.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _report import ccache_counters, machine, write_section  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sdist", required=True, type=Path)
    p.add_argument("--package", required=True)
    p.add_argument("--arch", default="9.0")
    p.add_argument("--python", action="append", required=True, help="job 1's venv python, then job 2's")
    p.add_argument("--backend", choices=["http", "file"], default="http")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--report", type=Path)
    p.add_argument("--section", default="ci-cache-2core")
    args = p.parse_args(argv)
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    store = out / "remote-store"
    server = None
    if args.backend == "http":
        port_file = out / "port"
        server = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "ccache_http_store.py"), "--root",
                                   str(store), "--port-file", str(port_file)], stderr=open(out / "store.log", "w"))
        for _ in range(100):
            if port_file.is_file() and port_file.read_text().strip():
                break
            time.sleep(0.1)
        remote = f"http://127.0.0.1:{port_file.read_text().strip()}/cache"
    else:
        store.mkdir()
        remote = f"file:{store}"
    started = _dt.datetime.now(_dt.timezone.utc)
    jobs = []
    try:
        for k, py in enumerate(args.python, 1):
            d = out / f"job{k}"
            d.mkdir()
            env = dict(os.environ, MAMBA_BUILD_CACHE=str(d / "mb-cache"), CCACHE_DIR=str(d / "ccache"),
                       CCACHE_REMOTE_STORAGE=remote)
            argv_ = [sys.executable, "-m", "mamba_build", "wheels", "--package", args.package, "--source",
                     f"{args.package}={args.sdist.resolve()}", "--arch", args.arch, "--python", py,
                     "--launcher", "ccache", "--out", str(d / "dist")]
            print(f"job {k}: {shlex.join(argv_)}", flush=True)
            start = time.monotonic()
            with open(d / "job.log", "w") as log:
                proc = subprocess.Popen(argv_, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=d)
                _, status, ru = os.wait4(proc.pid, 0)
            c = ccache_counters(d / "ccache")
            hits, misses = c["hits"], c["misses"]
            job = {"job": k, "python": py, "command": shlex.join(argv_), "rc": os.waitstatus_to_exitcode(status),
                   "wall_s": round(time.monotonic() - start, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
                   "hits": hits, "misses": misses, "remote_hits": c.get("remote_storage_hit", 0),
                   "remote_misses": c.get("remote_storage_miss", 0), "remote_errors": c.get("remote_storage_error", 0),
                   "hit_rate": round(hits / (hits + misses), 3) if hits + misses else None, "counters": c}
            jobs.append(job)
            print(f"  rc {job['rc']}, {job['wall_s']} s, hits {hits}, misses {misses}, remote hits "
                  f"{job['remote_hits']}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    summary = {"package": args.package, "arch": args.arch, "backend": args.backend, "remote": remote,
               "started": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "jobs": jobs,
               "store_files": sum(1 for f in store.rglob("*") if f.is_file()),
               "store_mib": round(sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 2**20, 1)}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    text = render(summary)
    print(text)
    if args.report:
        write_section(args.section, text, args.report)
    return 0 if all(j["rc"] == 0 for j in jobs) else 1


def render(s: dict) -> str:
    lines = [f"- date: {s['started']}; machine: {s['machine']}",
             f"- {s['package']}, arch {s['arch']}; remote storage: {s['backend']} (`CCACHE_REMOTE_STORAGE={s['remote']}`), "
             f"{s['store_files']} files, {s['store_mib']} MiB after both jobs",
             "- each job: a fresh folder with its own MAMBA_BUILD_CACHE, local CCACHE_DIR and venv; command "
             f"`{s['jobs'][0]['command']}` (job 2: its own venv's python)",
             "", "| job | wall | CPU | ccache hits / misses | from remote storage | hit rate |", "|---|---|---|---|---|---|"]
    for j in s["jobs"]:
        rate = f"{100 * j['hit_rate']:.0f} %" if j["hit_rate"] is not None else "-"
        lines.append(f"| {j['job']} | {j['wall_s']:.0f} s | {j['cpu_s']:.0f} s | {j['hits']} / {j['misses']} | "
                     f"{j['remote_hits']} | {rate} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
