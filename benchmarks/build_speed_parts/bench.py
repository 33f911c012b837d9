"""The benchmark run: bookkeeping (results.json, table.md, heartbeat) and the phases in order."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from _report import write_section

from mamba_build.hashing import sha256_file  # the project's one copy

from .common import (
    HEARTBEAT_S,
    PACKAGES,
    PHASES,
    SCHEMA,
    TARGET_BOUND_RATIO,
    TARGET_WARM_S,
    utc_now,
    write_atomic,
)
from .machine import dry_run_plan, ensure_sdist, machine_fingerprint, upstream_arch_list
from .measure import Measured
from .phase_compile import CompilePhase
from .phase_kernels import KernelsPhase
from .phase_upstream import UpstreamPhase
from .report import render_report


class Bench(CompilePhase, UpstreamPhase, KernelsPhase):
    """One run: the preflight, then the phases asked for in PHASES order, saving results after each."""


    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.py = args.python
        self.packages = [PACKAGES[p] for p in args.packages]
        self.sdists = {p.name: ensure_sdist(Path(args.sdists).resolve(), p) for p in self.packages}
        if args.arch == "upstream":  # upstream's own arch list, read from the sdists' setup.py
            args.arch = upstream_arch_list(list(self.sdists.values()))
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", MAMBA_BUILD_CACHE=str(self.out / "cache"))
        self.results: dict = {
            "schema": SCHEMA,
            "command": shlex.join(["python", "benchmarks/build_speed.py", *args.argv]),
            "started": utc_now(), "finished": None,
            "settings": {"packages": args.packages, "arch": args.arch, "phases": args.phases,
                         "upstream_mode": args.upstream_mode, "upstream_packages": args.upstream_packages,
                         "python": self.py,
                         "extra_compile_args": args.extra_compile_args, "kernel_args": args.kernel_args,
                         "kernel_aa_args": args.kernel_aa_args,
                         "timeouts_s": {"compile": args.timeout_compile, "upstream": args.timeout_upstream,
                                        "kernels": args.timeout_kernels},
                         "deadline_s": args.deadline_s, "reserve_kernels_s": args.reserve_kernels_s,
                         "sdists": {n: {"file": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
                                    for n, p in self.sdists.items()}},
            "targets": {"cold_s": args.target_cold_s, "speedup": args.target_speedup, "warm_s": TARGET_WARM_S,
                        "bound_ratio": TARGET_BOUND_RATIO},
            "phases": {},
        }
        self._last_save = 0.0
        self.t0 = time.monotonic()

    # -- bookkeeping
    def save(self) -> None:
        write_atomic(self.out / "results.json", json.dumps(self.results, indent=2) + "\n")
        write_atomic(self.out / "table.md", render_report(self.results) + "\n")
        self._last_save = time.monotonic()

    def current(self, phase: str, logs: list[Path]) -> None:
        write_atomic(self.out / "current", f"phase {phase} since {utc_now()}\n" + "".join(f"log {p}\n" for p in logs))

    def wait_all(self, running: dict[str, Measured], record: dict, key_of=lambda n: n) -> None:
        """Wait for every Measured, refreshing the phase record's elapsed times (and the saved results) so a
        run cut off mid-phase still leaves a lower bound."""
        try:
            while not all(m.done() for m in running.values()):
                time.sleep(0.2)
                if time.monotonic() - self._last_save >= HEARTBEAT_S:
                    for name, m in running.items():
                        if not m.done():
                            record_for(record, key_of(name))["elapsed_s"] = round(m.elapsed(), 1)
                    self.save()
        except BaseException:  # interrupted (SIGTERM, Ctrl-C): the wrappers kill their process trees
            for name, m in running.items():
                if not m.done():
                    record_for(record, key_of(name))["elapsed_s"] = round(m.elapsed(), 1)
                m.stop()
            for m in running.values():
                try:
                    m.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
            raise

    # -- phases: CompilePhase, UpstreamPhase, KernelsPhase
    def preflight(self) -> None:
        plan = dry_run_plan(self.py, self.compile_argv(self.out / "wheels-cold"), self.env)
        self.cuda_home = (self.args.cuda_home or plan.get("cuda_home") or os.environ.get("CUDA_HOME")
                          or ("/usr/local/cuda" if Path("/usr/local/cuda").exists() else None))
        self.results["plan"] = plan
        self.results["machine"] = machine_fingerprint(self.py, self.cuda_home)
        self.save()

    def run(self) -> int:
        try:
            self.preflight()
            for phase in PHASES:
                if phase not in self.args.phases:
                    continue
                try:
                    if phase in ("cold", "warm"):
                        self.phase_compile(phase)
                    elif phase == "upstream":
                        self.phase_upstream()
                    else:
                        self.phase_kernels(phase)
                except Exception as exc:  # keep going: one broken phase must not lose the others
                    rec = self.results["phases"].setdefault(phase, {})
                    rec.update(status="error", error=f"{type(exc).__name__}: {exc}")
                self.save()
                print(f"[build_speed] {phase}: {self.results['phases'][phase].get('status')}", flush=True)
        finally:
            self.results["finished"] = utc_now()
            self.save()
        report = render_report(self.results)
        print(report)
        if self.args.report:
            write_section(self.args.section, report, Path(self.args.report))
        bad = [p for p in ("cold", "warm") if self.results["phases"].get(p, {}).get("status") not in (None, "done")]
        return 1 if bad else 0


def record_for(record: dict, key) -> dict:
    """The dict that holds one running command's numbers inside a phase record."""
    if key is None:
        return record
    for part in key:
        record = record.setdefault(part, {})
    return record
