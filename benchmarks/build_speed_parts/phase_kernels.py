"""The kernels phases: kernels-aa (mamba-build against itself) and kernels (upstream against mamba-build)."""

from __future__ import annotations

import shlex
import shutil
import time
import zipfile

from .common import KERNEL_OPS, REPO, utc_now
from .measure import Measured
from .outputs import wheel_package


class KernelsPhase:
    """Bench's kernels and kernels-aa phases."""

    def phase_kernels(self, phase: str = "kernels") -> None:
        """kernels: upstream's wheels (baseline) against mamba-build's cold wheels, for every package that both
        built (a package whose upstream build did not finish is left out and named). kernels-aa: mamba-build's
        cold wheels against themselves (the same files in two processes), run before the long upstream phase:
        the noise floor of the method, and an early check that kernel_speed.py works on this GPU."""
        rec = self.results["phases"][phase] = {"status": "running", "started": utc_now()}
        script = REPO / "benchmarks" / "kernel_speed.py"
        cold = self.out / "wheels-cold"
        up = self.out / "wheels-upstream"
        mine = {wheel_package(w.name): w for w in (sorted(cold.glob("*.whl")) if cold.is_dir() else [])}
        theirs = {wheel_package(w.name): w for w in (sorted(up.glob("*/*.whl")) if up.is_dir() else [])}
        if not script.exists():
            rec.update(status="skipped", note="benchmarks/kernel_speed.py is not in this checkout")
            return
        aa = phase == "kernels-aa"
        base_label, base = ("mamba-build", mine) if aa else ("upstream", theirs)
        other_label = "mamba-build-again" if aa else "mamba-build"
        both = [p for p in self.packages if p.name in base and p.name in mine]
        left = [p.name for p in self.packages if p not in both]
        if not both:
            sides = [("mamba-build cold", mine)] if aa else [(base_label, base), ("mamba-build cold", mine)]
            missing = [f"{label}: {', '.join(p.name for p in self.packages if p.name not in have)}"
                       for label, have in sides if any(p.name not in have for p in self.packages)]
            rec.update(status="skipped", note="no wheel to compare: " + "; ".join(missing))
            return
        if left:
            rec["left_out"] = left
            rec["note"] = (f"only {', '.join(p.name for p in both)}: no {base_label} wheel of "
                           f"{', '.join(left)} to compare")
        ops = [KERNEL_OPS[p.name] for p in both]
        kb = self.out / ("kb-aa" if aa else "kb")
        shutil.rmtree(kb, ignore_errors=True)
        for label, wheels in ((base_label, base), (other_label, mine)):
            for p in both:
                with zipfile.ZipFile(wheels[p.name]) as zf:
                    zf.extractall(kb / label)
        extra = self.args.kernel_aa_args if aa else self.args.kernel_args
        argv = [self.py, str(script), "--build", f"{base_label}={kb / base_label}",
                "--build", f"{other_label}={kb / other_label}", "--ops", ",".join(ops),
                "--json", str(self.out / f"{phase}.json"), "--markdown", str(self.out / f"{phase}.md"),
                *shlex.split(extra or "")]
        log = self.out / f"{phase}.log"
        log.unlink(missing_ok=True)
        rec["command"] = shlex.join(argv)
        rec["log"] = log.name
        self.current(phase, [log])
        self.save()
        timeout = self.args.timeout_kernels
        if self.args.deadline_s:
            timeout = max(30.0, min(timeout, self.t0 + self.args.deadline_s - time.monotonic()))
        m = Measured(argv, log, timeout=timeout, env=self.env, cwd=REPO)
        self.wait_all({phase: m}, rec, key_of=lambda _n: None)
        rec.pop("elapsed_s", None)
        rec.update(m.result())
        rec["status"] = "timeout" if rec.get("timed_out") else ("done" if rec["rc"] == 0 else "failed")
        if rec["status"] != "done":
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip() and not ln.startswith("[exit ")]
            rec["error_tail"] = lines[-3:]
        md = self.out / f"{phase}.md"
        if md.exists():
            rec["markdown"] = md.read_text(errors="replace")[:20000]
