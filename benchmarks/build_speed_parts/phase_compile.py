"""The mamba-build phases, cold and warm: `compile` of the packages from the sdists, cold with an empty cache."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from .common import REPO, utc_now
from .measure import Measured
from .outputs import parse_compile_output, wheels_in


class CompilePhase:
    """Bench's cold and warm phases."""

    def compile_argv(self, wheel_dir: Path) -> list[str]:
        args = ["--package", ",".join(p.name for p in self.packages)]
        for p in self.packages:
            args += ["--source", f"{p.name}={self.sdists[p.name]}"]
        args += ["--wheel-dir", str(wheel_dir)]
        if self.args.arch and self.args.arch != "native":
            args += ["--arch", self.args.arch]
        return args + shlex.split(self.args.extra_compile_args or "")

    def phase_compile(self, phase: str) -> None:
        wheel_dir = self.out / f"wheels-{phase}"
        if phase == "cold":
            shutil.rmtree(self.out / "cache", ignore_errors=True)
        shutil.rmtree(wheel_dir, ignore_errors=True)
        log = self.out / f"{phase}.log"
        log.unlink(missing_ok=True)
        argv = [self.py, "-m", "mamba_build", "compile", *self.compile_argv(wheel_dir)]
        display = f"MAMBA_BUILD_CACHE={self.out / 'cache'} {shlex.join(argv)}"
        rec = self.results["phases"][phase] = {"status": "running", "started": utc_now(), "command": display,
                                               "log": log.name}
        self.current(phase, [log])
        self.save()
        m = Measured(argv, log, timeout=self.args.timeout_compile, env=self.env, cwd=REPO, display=display)
        self.wait_all({phase: m}, rec, key_of=lambda _n: None)
        res = m.result()
        rec.pop("elapsed_s", None)
        rec.update(res)
        rec.update(parse_compile_output(log.read_text(errors="replace")))
        rec["wheels"] = wheels_in(wheel_dir)
        runs = sorted((self.out / "cache" / "builds").glob("run-*/logs/pool.ninja_log"))
        if runs:  # the units' start and end times in the pool's one ninja (this phase's run is the newest)
            shutil.copy2(runs[-1], self.out / f"{phase}.pool.ninja_log")
            rec["pool_ninja_log"] = f"{phase}.pool.ninja_log"
        rec["status"] = "timeout" if res.get("timed_out") else ("done" if res["rc"] == 0 else "failed")
        rec["finished"] = utc_now()
