"""The upstream phase: each pristine sdist built with `pip wheel`, upstream's default build."""

from __future__ import annotations

import shlex
import shutil
import tarfile
import time
from pathlib import Path

from .common import utc_now
from .measure import Measured
from .outputs import cuobjdump_archs, wheels_in


class UpstreamPhase:
    """Bench's upstream phase."""

    def phase_upstream(self) -> None:
        mode = self.args.upstream_mode
        rec = self.results["phases"]["upstream"] = {
            "status": "running", "mode": mode, "started": utc_now(), "cuda_home": self.cuda_home, "packages": {}}
        deadline = time.monotonic() + self.args.timeout_upstream
        if self.args.deadline_s:  # leave the kernels phase its reserve before the run's own deadline
            cut = self.t0 + self.args.deadline_s - self.args.reserve_kernels_s
            if cut < deadline:
                deadline = cut
                rec["timeout_s"] = round(max(0.0, cut - time.monotonic()), 1)
                rec["timeout_reason"] = (f"--deadline-s {self.args.deadline_s:.0f} less --reserve-kernels-s "
                                         f"{self.args.reserve_kernels_s:.0f} for the kernels phase")
        jobs: dict[str, tuple[list[str], Path, dict, Path, str]] = {}
        for p in self.packages:
            if p.name not in self.args.upstream_packages:
                continue
            src = self.out / "src-upstream" / p.name
            shutil.rmtree(src, ignore_errors=True)
            src.mkdir(parents=True)
            with tarfile.open(self.sdists[p.name]) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(src, filter="data")
                else:
                    tf.extractall(src)
            tops = [d for d in src.iterdir() if d.is_dir()]
            tree = tops[0] if len(tops) == 1 else src
            wheel_dir = self.out / "wheels-upstream" / p.name
            shutil.rmtree(wheel_dir, ignore_errors=True)
            env = {k: v for k, v in self.env.items() if k not in ("MAX_JOBS", "MAMBA_BUILD_CACHE")}
            added = {f"{p.prefix}FORCE_BUILD": "TRUE"}
            if self.cuda_home:
                added["CUDA_HOME"] = self.cuda_home
            env.update(added)
            argv = [self.py, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-v", "-w", str(wheel_dir), "."]
            display = f"cd {tree} && " + " ".join(f"{k}={v}" for k, v in added.items()) + " " + shlex.join(argv)
            log = self.out / f"upstream-{p.name}.log"
            log.unlink(missing_ok=True)
            jobs[p.name] = (argv, log, env, tree, display)
            rec["packages"][p.name] = {"status": "not started", "command": display, "log": log.name}
        self.save()
        start = time.monotonic()
        try:
            if mode == "concurrent":
                running = {}
                for name, (argv, log, env, tree, display) in jobs.items():
                    rec["packages"][name].update(status="running", started=utc_now())
                    running[name] = Measured(argv, log, timeout=max(1.0, deadline - time.monotonic()), env=env,
                                             cwd=tree, display=display)
                self.current("upstream (concurrent)", [j[1] for j in jobs.values()])
                self.save()
                self.wait_all(running, rec, key_of=lambda n: ("packages", n))
                for name, m in running.items():
                    self.finish_upstream(rec["packages"][name], m.result(), name)
            else:
                for name, (argv, log, env, tree, display) in jobs.items():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        rec["packages"][name]["status"] = "not started (phase timeout)"
                        continue
                    rec["packages"][name].update(status="running", started=utc_now())
                    self.current(f"upstream {name}", [log])
                    self.save()
                    m = Measured(argv, log, timeout=left, env=env, cwd=tree, display=display)
                    self.wait_all({name: m}, rec, key_of=lambda n: ("packages", n))
                    self.finish_upstream(rec["packages"][name], m.result(), name)
                    self.save()
        finally:
            rec["wall_s"] = round(time.monotonic() - start, 3)
            pk = [r for r in rec["packages"].values()]
            cpu = [r.get("cpu_s") for r in pk if r.get("cpu_s") is not None]
            rss = [r.get("maxrss_kb") for r in pk if r.get("maxrss_kb")]
            rec["cpu_s"] = round(sum(cpu), 3) if cpu else None
            rec["maxrss_kb"] = max(rss) if rss else None
            ok = all(r.get("status") == "done" for r in pk)
            timed = any(r.get("status") in ("timeout", "not started (phase timeout)", "running") for r in pk)
            rec["status"] = "done" if ok else ("timeout" if timed else "failed")
            rec["finished"] = utc_now()

    def finish_upstream(self, prec: dict, res: dict, name: str) -> None:
        prec.pop("elapsed_s", None)
        prec.update(res)
        prec["status"] = "timeout" if res.get("timed_out") else ("done" if res["rc"] == 0 else "failed")
        prec["finished"] = utc_now()
        wheels = wheels_in(self.out / "wheels-upstream" / name)
        if name in wheels:
            prec["wheel"] = wheels[name]
            prec["archs"] = cuobjdump_archs(self.out / "wheels-upstream" / name / wheels[name]["file"], self.cuda_home)
