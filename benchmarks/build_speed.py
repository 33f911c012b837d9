"""Build speed: upstream's default build vs `mamba-build compile` cold vs warm, on one machine, in one run.

Usage (from the repo root; on the H100 through scripts/gpu/h100_bench.sh + scripts/gpu/poll.sh):

    python benchmarks/build_speed.py --sdists .carry/sdists --out /tmp/bench \
        [--packages causal-conv1d,mamba-ssm] [--arch 9.0 | native] [--phases cold,warm,kernels-aa,upstream,kernels] \
        [--upstream-mode sequential|concurrent] [--python PY] [--extra-compile-args "..."] \
        [--report docs/benchmarks.md --section h100-build-speed]
    python benchmarks/build_speed.py --report-only /tmp/bench [--report docs/benchmarks.md --section NAME]

Phases (always run in this order, whichever are asked for):

- cold: `PY -m mamba_build compile --package ... --source PKG=<sdist> ... --wheel-dir OUT/wheels-cold` with
  MAMBA_BUILD_CACHE=OUT/cache emptied first;
- warm: the same command again with the same cache (a verified cache hit);
- upstream: each pristine sdist unpacked and built with `PY -m pip wheel --no-build-isolation --no-deps -v`,
  only `<PREFIX>FORCE_BUILD=TRUE` and `CUDA_HOME` set (MAX_JOBS unset: ninja's default), one after the
  other (`sequential`, what `pip install causal-conv1d mamba-ssm` does) or both at once (`concurrent`);
- kernels-aa: mamba-build's cold wheels timed against themselves with `benchmarks/kernel_speed.py`
  (`--kernel-aa-args`, default `--quick`): the method's noise floor, and a check on this GPU that the timing
  script works before the long upstream phase;
- kernels: both builds' wheels unzipped, then `PY benchmarks/kernel_speed.py` compares their kernels, for
  every package both built (`--ops`): a package whose upstream build did not finish is left out and named.

Every command runs under a small wrapper child process that runs it and prints its own
getrusage(RUSAGE_CHILDREN): wall, user+sys CPU time of the whole (waited-for) process tree, and peak RSS of
the largest single process, per phase, nothing accumulated across phases. OUT/results.json and
OUT/table.md are rewritten after every phase (and every 20 s during one), so partial results survive a
machine that is taken away; OUT/current names the running phase and its logs; OUT/done is written at the end.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _report import write_section  # noqa: E402

from mamba_build.hashing import sha256_file  # noqa: E402  (the project's one copy)

REPO = Path(__file__).resolve().parent.parent
SCHEMA = 1

TARGET_COLD_S = 150.0      # cold build of both packages, wall, whole command
TARGET_SPEEDUP = 8.0       # upstream default total / mamba-build cold
TARGET_WARM_S = 10.0       # warm rebuild, wall, whole command
TARGET_BOUND_RATIO = 1.15  # cold wall / CPU-work bound (CPU seconds of the command / CPUs), issue 17

PHASES = ("cold", "warm", "kernels-aa", "upstream", "kernels")
KERNEL_OPS = {"causal-conv1d": "causal_conv1d", "mamba-ssm": "selective_scan"}  # package -> kernel_speed.py --ops
HEARTBEAT_S = 20.0


@dataclass(frozen=True)
class Package:
    name: str
    sdist: str          # the file expected in --sdists
    prefix: str         # upstream's env prefix (FORCE_BUILD, ...)
    dist: str           # the wheel's distribution name


PACKAGES = {
    "causal-conv1d": Package("causal-conv1d", "causal_conv1d-1.7.0.tar.gz", "CAUSAL_CONV1D_", "causal_conv1d"),
    "mamba-ssm": Package("mamba-ssm", "mamba_ssm-2.3.2.post1.tar.gz", "MAMBA_", "mamba_ssm"),
}


# ----------------------------------------------------------------------------------------------------------
# measuring one command: a wrapper child runs it and reports its own RUSAGE_CHILDREN

WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
spec = json.loads(sys.argv[1])
try:  # orphans of the tree (their parent killed or gone) come back to us: reaped and counted, not left as zombies
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
def reap(seconds):
    end = time.monotonic() + seconds
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= end:
                return
            time.sleep(0.1)
log = open(spec["log"], "ab", buffering=0)
log.write(("$ " + spec["display"] + "\n").encode())
start = time.monotonic()
proc = subprocess.Popen(spec["argv"], cwd=spec.get("cwd"), stdout=log, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, start_new_session=True)
def kill_tree(*_):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            pass
def on_signal(signum, _frame):
    kill_tree()
    reap(15)
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
timed_out = False
try:
    rc = proc.wait(timeout=spec.get("timeout"))
except subprocess.TimeoutExpired:
    timed_out = True
    kill_tree()
    rc = proc.wait()
reap(15 if timed_out else 0)
wall = time.monotonic() - start
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
log.write(("\n[exit %s after %.1f s%s]\n" % (rc, wall, ", timed out" if timed_out else "")).encode())
print(json.dumps({"rc": rc, "wall_s": round(wall, 3), "user_s": round(ru.ru_utime, 3), "sys_s": round(ru.ru_stime, 3),
                  "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "maxrss_kb": ru.ru_maxrss, "timed_out": timed_out}))
"""


class Measured:
    """One command running under the rusage wrapper (started at once; `result()` waits)."""

    def __init__(self, argv: list[str], log: Path, *, timeout: float | None = None, env: dict | None = None,
                 cwd: Path | str | None = None, display: str | None = None):
        self.argv = [str(a) for a in argv]
        self.display = display or shlex.join(self.argv)
        self.log = Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        spec = {"argv": self.argv, "log": str(self.log), "timeout": timeout, "display": self.display,
                "cwd": str(cwd) if cwd else None}
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-c", WRAPPER, json.dumps(spec)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        self._result: dict | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def done(self) -> bool:
        return self.proc.poll() is not None

    def stop(self) -> None:
        if not self.done():
            self.proc.send_signal(signal.SIGTERM)

    def result(self) -> dict:
        if self._result is None:
            out, err = self.proc.communicate()
            try:
                self._result = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                self._result = {"rc": self.proc.returncode, "wall_s": round(self.elapsed(), 3), "cpu_s": None,
                                "user_s": None, "sys_s": None, "maxrss_kb": None, "timed_out": False,
                                "wrapper_error": (err or out)[-2000:]}
        return self._result


def measure(argv: list[str], log: Path, **kw) -> dict:
    """Run `argv` to the end under the wrapper: {rc, wall_s, user_s, sys_s, cpu_s, maxrss_kb, timed_out}."""
    return Measured(argv, log, **kw).result()


# ----------------------------------------------------------------------------------------------------------
# small helpers


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")




def run_text(argv: list[str], timeout: float = 60, **kw) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BUILT = re.compile(r"^built\s+(\S+\.whl)\s+in\s+([0-9.]+)\s*s\b(?:.*?inside:\s*(.*))?")
BUILT_ALL = re.compile(r"^built\s+all\s+in\s+([0-9.]+)\s*s\b")
CACHED = re.compile(r"^cached\s+(\S+\.whl)")
TIMING = re.compile(r"^timing\s+(.*)$")
STAGE = re.compile(r"([a-z+ ]+?) ([0-9.]+)s(?:,|$)")


def wheel_package(filename: str) -> str:
    return filename.split("-", 1)[0].replace("_", "-").lower()


def parse_compile_output(text: str) -> dict:
    """What `compile` printed: per-package build seconds (`built   <wheel> in <N>s; inside: ...`), the pool's
    `built   all in <N>s`, and the verified cache hits (`cached  <wheel> ...`). Unknown lines are ignored."""
    built: dict[str, dict] = {}
    cached: list[str] = []
    built_all = None
    stages: dict[str, float] = {}
    for raw in re.split(r"[\r\n]+", ANSI.sub("", text)):
        line = raw.strip()
        if m := TIMING.match(line):
            stages = {k.strip(): float(v) for k, v in STAGE.findall(m.group(1))}
        elif m := BUILT_ALL.match(line):
            built_all = float(m.group(1))
        elif m := BUILT.match(line):
            archs = [a.strip() for a in (m.group(3) or "").split(",") if a.strip()]
            built[wheel_package(m.group(1))] = {"wheel": m.group(1), "seconds": float(m.group(2)), "archs": archs}
        elif m := CACHED.match(line):
            cached.append(m.group(1))
    return {"built": built, "built_all_s": built_all, "cached": cached, "stages_s": stages}


def wheels_in(directory: Path) -> dict[str, dict]:
    """{package: {file, bytes}} for the wheels in a directory."""
    out = {}
    for whl in sorted(Path(directory).glob("*.whl")) if Path(directory).is_dir() else []:
        out[wheel_package(whl.name)] = {"file": whl.name, "bytes": whl.stat().st_size}
    return out


def cuobjdump_archs(wheel: Path, cuda_home: str | None) -> dict | None:
    """{"sass": [...], "ptx": [...]} of every .so in the wheel, read with CUDA_HOME/bin/cuobjdump; None
    when cuobjdump is not available."""
    tool = Path(cuda_home or "/nonexistent") / "bin" / "cuobjdump"
    if not tool.exists():
        found = shutil.which("cuobjdump")
        if not found:
            return None
        tool = Path(found)
    sass, ptx = set(), set()
    with tempfile.TemporaryDirectory(prefix="bs-objdump-") as tmp, zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if not member.endswith(".so"):
                continue
            so = Path(zf.extract(member, tmp))
            for flag, into, pat in (("--list-elf", sass, r"\bsm_(\d+[a-z]?)\b"), ("--list-ptx", ptx, r"\bsm_(\d+[a-z]?)\b")):
                text = run_text([str(tool), flag, str(so)], timeout=600) or ""
                into.update(re.findall(pat, text))
    key = lambda a: (int(re.sub(r"\D", "", a) or 0), a)  # noqa: E731
    return {"sass": [f"sm_{a}" for a in sorted(sass, key=key)], "ptx": [f"compute_{a}" for a in sorted(ptx, key=key)]}


# ----------------------------------------------------------------------------------------------------------
# sdists and the machine

_GENCODE = re.compile(r'"arch=compute_(\d+)[af]?,code=sm_(\d+)[af]?"')


def upstream_arch_list(sdists: list[Path]) -> str:
    """The -gencode archs every sdist's setup.py names (CUDA 13 takes them all), in the first one's order, as an
    --arch list ("7.5,8.0,..."); the sdists must agree (causal-conv1d 1.7.0 and mamba-ssm 2.3.2.post1 do)."""
    lists = []
    for sdist in sdists:
        with tarfile.open(sdist) as tf:
            member = next(m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/setup.py"))
            text = tf.extractfile(member).read().decode("utf-8", "replace")
        archs = [f"{int(c) // 10}.{int(c) % 10}" for c, _ in _GENCODE.findall(text)]
        lists.append(list(dict.fromkeys(archs)))
    if not lists or not lists[0] or any(set(x) != set(lists[0]) for x in lists):
        raise SystemExit("--arch upstream: the sdists' setup.py name different arch lists: "
                         + "; ".join(f"{s.name}: {','.join(x)}" for s, x in zip(sdists, lists, strict=True)))
    return ",".join(lists[0])


def ensure_sdist(sdists: Path, pkg: Package) -> Path:
    """The sdist in --sdists; downloaded with curl from PyPI's simple index (sha256 checked) if absent."""
    path = sdists / pkg.sdist
    if path.exists():
        return path
    sdists.mkdir(parents=True, exist_ok=True)
    index = run_text(["curl", "-fsSL", f"https://pypi.org/simple/{pkg.name}/"], timeout=120)
    if not index:
        raise SystemExit(f"{path} is missing and https://pypi.org/simple/{pkg.name}/ could not be read: "
                         f"put {pkg.sdist} into {sdists}")
    m = re.search(r'href="([^"]*/' + re.escape(pkg.sdist) + r'(?:#sha256=([0-9a-f]{64}))?)"', index)
    if not m:
        raise SystemExit(f"{pkg.sdist} is not listed on https://pypi.org/simple/{pkg.name}/")
    url, digest = m.group(1).split("#")[0], m.group(2)
    tmp = path.with_name(path.name + ".part")
    if subprocess.run(["curl", "-fsSL", "-o", str(tmp), url]).returncode != 0:
        raise SystemExit(f"could not download {url}")
    if digest and sha256_file(tmp) != digest:
        tmp.unlink()
        raise SystemExit(f"{url}: sha256 mismatch")
    os.replace(tmp, path)
    return path


def machine_fingerprint(py: str, cuda_home: str | None) -> dict:
    info: dict = {"hostname": platform.node(), "cpus": os.cpu_count(),
                  "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        info["cpu_model"] = m.group(1).strip() if m else platform.processor() or None
    except OSError:
        info["cpu_model"] = platform.processor() or None
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        info["mem_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, AttributeError):
        info["mem_gib"] = None
    gpus = run_text(["nvidia-smi", "-L"], timeout=30)
    info["gpus"] = [g.split(" (UUID")[0].strip() for g in (gpus or "").splitlines() if g.strip()]
    nvcc = Path(cuda_home) / "bin" / "nvcc" if cuda_home else None
    text = run_text([str(nvcc), "--version"]) if nvcc and nvcc.exists() else None
    info["cuda_home"] = cuda_home
    info["nvcc"] = next((ln.strip() for ln in (text or "").splitlines() if "release" in ln), None)
    probe = ("import json, platform, sys\nout = {'python': platform.python_version(), 'executable': sys.executable}\n"
             "try:\n import torch; out['torch'] = torch.__version__; out['torch_cuda'] = torch.version.cuda\n"
             "except Exception as e: out['torch'] = 'import failed: %s' % e\n"
             "import importlib.util as u\n"
             "out['missing_modules'] = [m for m in ('ninja', 'packaging', 'setuptools', 'wheel', 'rich', 'requests')"
             " if u.find_spec(m) is None]\nprint(json.dumps(out))")
    try:
        info.update(json.loads(run_text([py, "-c", probe], timeout=120) or "{}"))
    except ValueError:
        pass
    info["os"] = platform.platform()
    git = run_text(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], timeout=20)
    info["git"] = git.strip() if git else None
    return info


def dry_run_plan(py: str, compile_args: list[str], env: dict) -> dict:
    """`compile --dry-run --json` of the same command: the toolkit, compiler, archs, jobs it will use."""
    try:
        out = subprocess.run([py, "-m", "mamba_build", "compile", *compile_args, "--dry-run", "--json"],
                             capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
        plan = json.loads(out.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}
    keep = ("cuda_home", "cuda_version", "torch_version", "archs", "jobs", "jobs_reason", "schedule", "split_compile",
            "split_units", "nvcc_threads", "nvcc_threads_reason", "use_ninja", "install", "local_version",
            "predicted_build_s", "cpu_work_s", "cpu_bound_s", "prediction_reason")
    plan_small = {k: plan.get(k) for k in keep if k in plan}
    plan_small["compiler"] = (plan.get("compiler") or {}).get("cxx")
    return plan_small


# ----------------------------------------------------------------------------------------------------------
# the benchmark


class Bench:
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

    # -- phases
    def compile_argv(self, wheel_dir: Path) -> list[str]:
        args = ["--package", ",".join(p.name for p in self.packages)]
        for p in self.packages:
            args += ["--source", f"{p.name}={self.sdists[p.name]}"]
        args += ["--wheel-dir", str(wheel_dir)]
        if self.args.arch and self.args.arch != "native":
            args += ["--arch", self.args.arch]
        return args + shlex.split(self.args.extra_compile_args or "")

    def preflight(self) -> None:
        plan = dry_run_plan(self.py, self.compile_argv(self.out / "wheels-cold"), self.env)
        self.cuda_home = (self.args.cuda_home or plan.get("cuda_home") or os.environ.get("CUDA_HOME")
                          or ("/usr/local/cuda" if Path("/usr/local/cuda").exists() else None))
        self.results["plan"] = plan
        self.results["machine"] = machine_fingerprint(self.py, self.cuda_home)
        self.save()

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


# ----------------------------------------------------------------------------------------------------------
# rendering


def fmt_s(s: float | None) -> str:
    if s is None:
        return ""
    if s < 100:
        return f"{s:.1f} s"
    n = int(round(s))
    return f"{n} s ({n // 60}:{n % 60:02d})"


def fmt_rss(kb: int | None) -> str:
    return "" if not kb else f"{kb / 1024 / 1024:.2f} GiB" if kb >= 1024 * 1024 else f"{kb / 1024:.0f} MiB"


def fmt_bytes(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:.1f} MB"


def _status_wall(rec: dict | None) -> tuple[str, float | None, bool]:
    """(wall text, seconds or lower bound, finished) for one command's record."""
    if not rec:
        return "not run", None, False
    st = rec.get("status")
    if st == "done":
        return fmt_s(rec.get("wall_s")), rec.get("wall_s"), True
    if st == "failed":
        return f"failed (exit {rec.get('rc')}) after {fmt_s(rec.get('wall_s'))}", rec.get("wall_s"), False
    if st == "timeout":
        return f"> {fmt_s(rec.get('wall_s'))}, did not finish (timeout)", rec.get("wall_s"), False
    if st == "running":
        el = rec.get("elapsed_s")
        return (f"> {fmt_s(el)}, did not finish" if el else "started, did not finish"), el, False
    if st == "error":
        return f"error: {rec.get('error', '')[:120]}", None, False
    if st == "skipped":
        return f"skipped: {rec.get('note', '')}", None, False
    return str(st or "not run"), None, False


def upstream_total(up: dict | None) -> tuple[float | None, str]:
    """(total wall, state): state "done" (every package built: the measured total), "partial" (cut off or
    timed out: a lower bound from what ran: sequential, the finished walls plus the running one's elapsed
    time; concurrent, the longest), "failed" (a build failed), or "none" (nothing ran)."""
    if not up:
        return None, "none"
    pk = list((up.get("packages") or {}).values())
    if pk and all(r.get("status") == "done" for r in pk):
        if up.get("status") == "done" and up.get("wall_s"):
            return up["wall_s"], "done"
        walls = [r.get("wall_s") or 0 for r in pk]
        return (max(walls) if up.get("mode") == "concurrent" else sum(walls)), "done"
    if any(r.get("status") in ("failed", "error") for r in pk) or (up.get("status") == "error" and not pk):
        return None, "failed"
    walls = []
    for r in pk:
        w = r.get("wall_s") if r.get("status") in ("done", "timeout") else r.get("elapsed_s")
        if w:
            walls.append(w)
    if not walls:
        return None, "none"
    return (max(walls) if up.get("mode") == "concurrent" else sum(walls)), "partial"


def archs_text(archs: dict | list | None) -> str:
    if not archs:
        return ""
    if isinstance(archs, dict):
        items = list(archs.get("sass") or []) + list(archs.get("ptx") or [])
    else:
        items = list(archs)
    return ", ".join(items)


def render_table(results: dict) -> str:
    phases = results.get("phases") or {}
    packages = (results.get("settings") or {}).get("packages") or list(PACKAGES)
    sdists = (results.get("settings") or {}).get("sdists") or {}
    targets = {"cold_s": TARGET_COLD_S, "speedup": TARGET_SPEEDUP, "warm_s": TARGET_WARM_S,
               "bound_ratio": TARGET_BOUND_RATIO, **(results.get("targets") or {})}

    def label(name: str) -> str:
        f = (sdists.get(name) or {}).get("file") or (PACKAGES[name].sdist if name in PACKAGES else name)
        m = re.match(r"[A-Za-z0-9_]+-(.+)\.tar\.gz$", f)
        return f"{name} {m.group(1)}" if m else name

    rows = ["| build | wall | CPU time (user+sys) | peak RSS (largest process) | wheel size |", "|---|---|---|---|---|"]
    up = phases.get("upstream")
    mode = (up or {}).get("mode") or (results.get("settings") or {}).get("upstream_mode") or "sequential"
    if up:
        for name in packages:
            r = (up.get("packages") or {}).get(name)
            wall, _, _ = _status_wall(r) if r else ("not run", None, False)
            if r and r.get("status", "").startswith("not started"):
                wall = r["status"]
            a = archs_text((r or {}).get("archs"))
            rows.append(f"| upstream default, {label(name)}" + (f" ({a})" if a else "") + f" | {wall} | "
                        f"{fmt_s((r or {}).get('cpu_s'))} | {fmt_rss((r or {}).get('maxrss_kb'))} | "
                        f"{fmt_bytes(((r or {}).get('wheel') or {}).get('bytes'))} |")
        total, state = upstream_total(up)
        total_txt = {"done": fmt_s(total), "partial": f"> {fmt_s(total)}, did not finish",
                     "failed": "failed"}.get(state, "did not finish")
        size = sum(((r.get("wheel") or {}).get("bytes") or 0) for r in (up.get("packages") or {}).values())
        rows.append(f"| **upstream default, total** ({mode}) | **{total_txt}** | {fmt_s(up.get('cpu_s'))} | "
                    f"{fmt_rss(up.get('maxrss_kb'))} | {fmt_bytes(size) if size else ''} |")
    else:
        rows.append("| upstream default | not run | | | |")

    for phase in ("cold", "warm"):
        rec = phases.get(phase)
        if not rec:
            rows.append(f"| mamba-build {phase} | not run | | | |")
            continue
        wheels = rec.get("wheels") or {}
        if phase == "cold":
            built = rec.get("built") or {}
            for name in packages:
                b = built.get(name)
                w = wheels.get(name) or {}
                a = ", ".join((b or {}).get("archs") or [])
                rows.append(f"| mamba-build cold, {label(name)}: build" + (f" ({a})" if a else "")
                            + f" | {fmt_s(b['seconds']) if b else ''} | | | {fmt_bytes(w.get('bytes'))} |")
            installs = (results.get("plan") or {}).get("install", True)
            what = "plan, builds, arch check, smoke test" + (", install" if installs else "; no install")
            if rec.get("built_all_s") is not None:
                what += f"; builds at the same time, all in {fmt_s(rec['built_all_s'])}"
            if rec.get("stages_s"):
                what += "; stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in rec["stages_s"].items())
        else:
            cached = rec.get("cached") or []
            hit = len(cached) >= len(packages) and bool(cached)
            what = ("verified cache hit: " + ", ".join(wheel_package(c) for c in cached)) if cached else "no cache hit seen"
            if rec.get("built") and not hit:
                what += "; rebuilt: " + ", ".join(rec["built"])
        wall, _, _ = _status_wall(rec)
        size = sum((w.get("bytes") or 0) for w in wheels.values())
        rows.append(f"| **mamba-build {phase}, whole command** ({what}) | **{wall}** | {fmt_s(rec.get('cpu_s'))} | "
                    f"{fmt_rss(rec.get('maxrss_kb'))} | {fmt_bytes(size) if size else ''} |")
    return "\n".join(rows) + "\n\n" + "\n".join(target_lines(results, targets))


def bound_lines(results: dict, targets: dict) -> list[str]:
    """How close the cold build came to its CPU-work bound (CPU seconds of the whole command / CPUs), and what the
    plan predicted (one-core seconds of the 2-core machine: data/build_costs.toml)."""
    cold = (results.get("phases") or {}).get("cold") or {}
    cpus = (results.get("machine") or {}).get("cpus_usable") or (results.get("machine") or {}).get("cpus")
    plan = results.get("plan") or {}
    out = []
    if cold.get("cpu_s") and cpus:
        bound = cold["cpu_s"] / cpus
        ratio = cold["wall_s"] / bound
        goal = targets.get("bound_ratio")
        out.append(f"- CPU-work bound: {cold['cpu_s']:.0f} CPU s / {cpus} CPUs = {fmt_s(bound)}; cold wall / bound = "
                   f"{ratio:.2f}" + (f" (target <= {goal:.2f}): {'**pass**' if ratio <= goal else '**miss**'}" if goal else ""))
    if plan.get("predicted_build_s") is not None:
        out.append(f"- the plan predicted: build ~{plan['predicted_build_s']:.0f} s, CPU-work bound "
                   f"{plan.get('cpu_bound_s') or 0:.0f} s ({plan.get('cpu_work_s') or 0:.0f} CPU s / {plan.get('jobs')} "
                   f"slots; one-core seconds of the 2-core machine), nvcc --threads {plan.get('nvcc_threads')}, "
                   f"split units {plan.get('split_units')}")
    return out


def _unfinished_verdict(rec: dict | None, target: float) -> str:
    """The verdict for a compile phase that did not finish successfully."""
    if not rec:
        return "not run"
    wall, seconds, _ = _status_wall(rec)
    if rec.get("status") == "running" and (seconds or 0) < target:
        return f"not established ({wall}: cut off)"
    return f"**miss** ({wall})"


def _upstream_subset(results: dict) -> list[str]:
    """The upstream packages when they are fewer than the compiled ones (else [])."""
    st = results.get("settings") or {}
    pk, up = st.get("packages") or list(PACKAGES), st.get("upstream_packages")
    return list(up) if up and set(up) < set(pk) else []


def target_lines(results: dict, targets: dict) -> list[str]:
    phases = results.get("phases") or {}
    cold, warm, up = phases.get("cold"), phases.get("warm"), phases.get("upstream")
    lines = []
    cold_ok = bool(cold) and cold.get("status") == "done"
    c_s = cold.get("wall_s") if cold_ok else None
    pk = (results.get("settings") or {}).get("packages") or list(PACKAGES)
    which = "both packages" if len(pk) == 2 else ", ".join(pk) + " only"
    repeats = results.get("cold_repeats") or []
    if cold_ok and repeats:  # several cold runs of the same command: the median decides, the spread is reported
        walls = sorted(r["wall_s"] for r in repeats)
        c_s = statistics.median(walls)
        spread = walls[-1] - walls[0]
        verdict = ("" if targets.get("cold_s") is None else
                   f" (target < {targets['cold_s']:.0f} s): {'**pass**' if c_s < targets['cold_s'] else '**miss**'}")
        lines.append(f"- cold build ({which}, whole command), median of {len(walls)} cold runs: {fmt_s(c_s)}{verdict}; "
                     f"runs {', '.join(fmt_s(w) for w in walls)}; spread (max - min) {spread:.0f} s "
                     f"({100 * spread / c_s:.0f} % of the median)")
    elif cold_ok:
        if targets.get("cold_s") is None:
            lines.append(f"- cold build ({which}, whole command): {fmt_s(c_s)}")
        else:
            verdict = "**pass**" if c_s < targets["cold_s"] else "**miss**"
            lines.append(f"- cold build ({which}, whole command) under {targets['cold_s']:.0f} s: {fmt_s(c_s)}: {verdict}")
    elif targets.get("cold_s") is not None:
        lines.append(f"- cold build under {targets['cold_s']:.0f} s: " + _unfinished_verdict(cold, targets["cold_s"]))
    if cold_ok:
        lines += bound_lines(results, targets)
    total, state = upstream_total(up)
    goal = f"(target >= {targets['speedup']:.0f}x)"
    if not up:
        lines.append(f"- speedup over upstream's default build {goal}: not measured (upstream not run)")
    elif not cold_ok:
        lines.append(f"- speedup over upstream's default build {goal}: not measured (no successful cold build)")
    elif state == "done" and _upstream_subset(results):
        sp = total / c_s
        only = ", ".join(_upstream_subset(results))
        verdict = "**pass** (already at the lower bound)" if sp >= targets["speedup"] else "**not established**"
        lines.append(f"- speedup >= {sp:.1f}x = upstream {only} alone {fmt_s(total)} (a lower bound of upstream's default "
                     f"install of both: pip builds them one after the other) / cold {fmt_s(c_s)} {goal}: {verdict}")
    elif state == "done":
        sp = total / c_s
        lines.append(f"- speedup = upstream total {fmt_s(total)} / cold {fmt_s(c_s)} = {sp:.1f}x {goal}: "
                     f"{'**pass**' if sp >= targets['speedup'] else '**miss**'}")
    elif state == "partial":
        sp = total / c_s
        verdict = ("**pass** (already at the lower bound)" if sp >= targets["speedup"]
                   else "**not established**: upstream stopped before the ratio could reach the target")
        lines.append(f"- speedup > {sp:.1f}x = upstream > {fmt_s(total)} (did not finish) / cold {fmt_s(c_s)} {goal}: {verdict}")
    elif state == "failed":
        lines.append(f"- speedup over upstream's default build {goal}: not measured (upstream's build failed; see its log)")
    else:
        lines.append(f"- speedup over upstream's default build {goal}: not measured (upstream: {up.get('status')})")
    if warm and warm.get("status") == "done":
        w_s = warm["wall_s"]
        hit = bool(warm.get("cached"))
        lines.append(f"- warm rebuild under {targets['warm_s']:.0f} s: {fmt_s(w_s)}"
                     + ("" if hit else " (no `cached` line in its output)") + f": {'**pass**' if w_s < targets['warm_s'] else '**miss**'}")
    else:
        lines.append(f"- warm rebuild under {targets['warm_s']:.0f} s: " + _unfinished_verdict(warm, targets["warm_s"]))
    return lines


def machine_line(m: dict) -> str:
    if not m:
        return "unknown"
    gpu = ", ".join(m.get("gpus") or []) or "no GPU"
    parts = [f"{m.get('hostname') or 'host'}: {m.get('cpu_model') or 'CPU ?'} x {m.get('cpus_usable') or m.get('cpus')} CPUs",
             f"{m.get('mem_gib')} GiB RAM", gpu]
    if m.get("nvcc"):
        parts.append(f"nvcc {m['nvcc'].split('release')[-1].strip(' ,')} at {m.get('cuda_home')}")
    if m.get("torch"):
        parts.append(f"torch {m['torch']}")
    if m.get("python"):
        parts.append(f"Python {m['python']}")
    return ", ".join(parts)


def merge_runs(first: dict, *more: dict) -> dict:
    """One report of several runs on the same machine (``--report-only A --merge B``): A's phases, plus the upstream
    packages that only a later run built (each of them built alone, so the upstream mode is "sequential": one
    after the other, as `pip install` of both does) and every run's kernel tables. ``merged_from`` names them."""
    import copy

    out = copy.deepcopy(first)
    up = out.setdefault("phases", {}).setdefault("upstream", {"mode": "sequential", "packages": {}})
    kern = out["phases"].get("kernels")
    out["merged_from"] = [first.get("command")]
    out["merged_how"] = []
    for other in more:
        how = _same_run(first, other)
        same = how.startswith("same machine")
        out["merged_from"].append(other.get("command"))
        out["merged_how"].append(how)
        oup = (other.get("phases") or {}).get("upstream") or {}
        for name, rec in (oup.get("packages") or {}).items():
            if (up["packages"].get(name) or {}).get("status") != "done":
                up["packages"][name] = dict(rec, run=other.get("started"))
        ok = (other.get("phases") or {}).get("kernels")
        if ok and ok.get("markdown"):
            md = ok["markdown"].strip()
            if not same:  # another run's tables compare THAT run's wheels, not this run's
                md = f"(from the run of {other.get('started')}: its own wheels, NOT this run's)\n\n" + md
            if kern is None:
                kern = out["phases"]["kernels"] = dict(ok, markdown=md)
                if not same:
                    kern["note"] = f"kernel tables of another run ({other.get('started')}), not of this run's wheels"
            else:
                kern["markdown"] = (kern.get("markdown") or "").rstrip() + "\n\n" + md
                kern["note"] = ("both packages, one kernel_speed.py run per package (one per benchmark run)" if same
                                else "kernel tables of several runs; those of other runs compare their own wheels")
        if same:
            out["finished"] = other.get("finished") or out.get("finished")
    pk = list(up["packages"].values())
    if pk and all(r.get("status") == "done" for r in pk):
        up.update(status="done", mode="sequential", wall_s=round(sum(r.get("wall_s") or 0 for r in pk), 3),
                  cpu_s=round(sum(r.get("cpu_s") or 0 for r in pk), 3),
                  maxrss_kb=max((r.get("maxrss_kb") or 0) for r in pk))
        up.pop("timeout_reason", None)
        out.setdefault("settings", {})["upstream_packages"] = list(up["packages"])
    return out


def _same_run(first: dict, other: dict) -> str:
    """How another run relates to the first: the same lease (same host, started within 2 h of the first's end),
    or a different run, named, whose numbers are NOT from the same run."""
    def when(text):
        try:
            return _dt.datetime.strptime((text or "")[:19], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
    a, b = when(first.get("finished") or first.get("started")), when(other.get("started"))
    host_a, host_b = (first.get("machine") or {}).get("hostname"), (other.get("machine") or {}).get("hostname")
    if a and b and host_a == host_b and abs((b - a).total_seconds()) <= 7200:
        return "same machine, same lease, right after"
    return (f"a different run: {other.get('started')} on {host_b or 'another machine'} ({machine_line(other.get('machine') or {})}); "
            "its numbers are NOT from the same run")


def add_repeats(results: dict, runs: list[dict]) -> dict:
    """Several cold runs of the same command (``--report-only A --repeat B --repeat C``): the table shows A, the
    target line the median and spread of every run's cold wall."""
    reps = []
    for k, r in enumerate([results, *runs], 1):
        cold = (r.get("phases") or {}).get("cold") or {}
        if cold.get("status") == "done":
            reps.append({"run": k, "wall_s": cold["wall_s"], "cpu_s": cold.get("cpu_s"), "started": r.get("started")})
    out = dict(results)
    out["cold_repeats"] = reps
    return out


def render_report(results: dict) -> str:
    m = results.get("machine") or {}
    plan = results.get("plan") or {}
    phases = results.get("phases") or {}
    lines = [f"- machine: {machine_line(m)}",
             f"- date: {results.get('started')}" + (f" to {results['finished']}" if results.get("finished") else " (unfinished)"),
             f"- command: `{results.get('command')}`" + (f" (git {m['git']})" if m.get("git") else "")]
    for k, extra in enumerate((results.get("merged_from") or [])[1:]):
        how = (results.get("merged_how") or [])[k] if k < len(results.get("merged_how") or []) else \
            "same machine, same lease, right after"
        lines.append(f"- merged with the run of `{extra}` ({how})")
    for r in results.get("cold_repeats") or []:
        lines.append(f"- cold run {r['run']}: {fmt_s(r['wall_s'])} wall, {fmt_s(r.get('cpu_s'))} CPU ({r['started']})")
    if plan:
        lines.append(f"- mamba-build plan: archs {', '.join(plan.get('archs') or [])}, "
                     f"{plan.get('schedule') or 'sequential'} schedule, jobs {plan.get('jobs')}, "
                     f"compiler {plan.get('compiler')}, toolkit {plan.get('cuda_home')}, install {plan.get('install')}")
    if m.get("missing_modules"):
        lines.append(f"- modules missing from that Python: {', '.join(m['missing_modules'])}")
    up = phases.get("upstream")
    lines.append("")
    lines.append(render_table(results))
    lines.append("")
    notes = ["upstream default = the pristine sdist built with `pip wheel --no-build-isolation --no-deps -v`, only "
             "`<PREFIX>FORCE_BUILD=TRUE` and `CUDA_HOME` set, MAX_JOBS unset (ninja's default), upstream's own arch "
             "list and flags. `pip install` would first try to download a prebuilt wheel from GitHub; the benchmark "
             "machine has no network, so that cannot be the default path here, and FORCE_BUILD makes it build."]
    if up:
        notes.append(f"upstream mode: {up.get('mode')} ("
                     + ("one package after the other, as `pip install causal-conv1d mamba-ssm` does)" if up.get("mode") != "concurrent"
                        else "both packages at the same time: faster for upstream, so a conservative baseline)"))
        if up.get("timeout_reason"):
            notes.append(f"upstream's time limit: {fmt_s(up.get('timeout_s'))} ({up['timeout_reason']}); a build "
                         "cut off there gives a lower bound, never a measured total")
    notes.append("wall = elapsed time of the command; CPU time = user+sys of the whole process tree; peak RSS = the "
                 "largest single process (getrusage(RUSAGE_CHILDREN) of a wrapper process per command)")
    if "cold" in phases:
        notes.append("mamba-build per-package rows: the build seconds `compile` printed (`built ... in Ns`); "
                     "with the pool schedule they overlap")
    lines += [f"- {n}" for n in notes]
    for name, title in (("kernels-aa", "Kernel timing noise floor (`benchmarks/kernel_speed.py`, mamba-build's cold "
                                       "wheels against themselves, before the upstream phase)"),
                        ("kernels", "Kernel parity (`benchmarks/kernel_speed.py`, upstream vs mamba-build cold wheels)")):
        k = phases.get(name)
        if not k:
            continue
        lines.append("")
        lines.append(title + ":")
        if k.get("note") and k.get("status") != "skipped":
            lines.append(f"- {k['note']}")
        if k.get("markdown"):
            lines.append("")
            lines.append(k["markdown"].strip())
        else:
            lines.append(f"- {_status_wall(k)[0]}" + (f" (log: {k['log']})" if k.get("log") else ""))
            lines += [f"  `{ln.strip()[:300]}`" for ln in k.get("error_tail") or []]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sdists", help="directory with the sdists (downloaded from PyPI if absent)")
    ap.add_argument("--out", help="results directory (results.json, table.md, logs, wheels, cache)")
    ap.add_argument("--packages", default="causal-conv1d,mamba-ssm")
    ap.add_argument("--arch", default="native", help="compile --arch (default native: the visible GPUs); upstream: "
                    "the archs of the sdists' own setup.py (causal-conv1d 1.7.0, mamba-ssm 2.3.2.post1: sm_75 ... sm_121)")
    ap.add_argument("--phases", default=",".join(PHASES), help="any of " + ",".join(PHASES) + " (run in that order)")
    ap.add_argument("--upstream-mode", choices=("sequential", "concurrent"), default="sequential")
    ap.add_argument("--upstream-packages", default=None,
                    help="upstream builds only these (default: --packages); a subset gives a lower bound of upstream's "
                         "default install of all (pip builds them one after the other), e.g. causal-conv1d alone")
    ap.add_argument("--python", default=sys.executable, help="the Python that builds (default: this one)")
    ap.add_argument("--cuda-home", default=None, help="toolkit for upstream (default: the one compile's plan picks)")
    ap.add_argument("--extra-compile-args", default="", help="appended to both compile commands")
    ap.add_argument("--kernel-args", default="", help="appended to the kernel_speed.py command (e.g. --quick)")
    ap.add_argument("--kernel-aa-args", default="--quick",
                    help="appended to the kernels-aa command (mamba-build against itself; default --quick)")
    ap.add_argument("--timeout-compile", type=float, default=3600.0, help="seconds per compile command")
    ap.add_argument("--timeout-upstream", type=float, default=5400.0, help="seconds for the whole upstream phase")
    ap.add_argument("--timeout-kernels", type=float, default=1800.0)
    ap.add_argument("--deadline-s", type=float, default=None,
                    help="end the whole run within this many seconds of its start (a leased machine): the upstream "
                         "phase is cut off early enough to leave --reserve-kernels-s for the kernels phase")
    ap.add_argument("--reserve-kernels-s", type=float, default=150.0)
    ap.add_argument("--report", default=None, help="markdown file whose section to replace (e.g. docs/benchmarks.md)")
    ap.add_argument("--section", default="h100-build-speed")
    ap.add_argument("--target-cold-s", type=float, default=TARGET_COLD_S,
                    help=f"the cold build's target in seconds (default {TARGET_COLD_S:.0f}; 0: none)")
    ap.add_argument("--target-speedup", type=float, default=TARGET_SPEEDUP,
                    help=f"the speedup over upstream's default build to reach (default {TARGET_SPEEDUP:.0f})")
    ap.add_argument("--repeat", metavar="OUT2", action="append", default=[],
                    help="with --report-only: more cold runs of the same command (median and spread of the cold wall)")
    ap.add_argument("--merge", metavar="OUT2", action="append", default=[],
                    help="with --report-only: add the upstream packages and kernel tables of another run's results")
    ap.add_argument("--report-only", metavar="OUT", default=None,
                    help="regenerate table.md (and --report) from OUT/results.json, run nothing")
    argv, i = list(argv), 0
    while i < len(argv) - 1:  # these values start with "--": argparse would take them for options
        if argv[i] in ("--extra-compile-args", "--kernel-args", "--kernel-aa-args"):
            argv[i:i + 2] = [f"{argv[i]}={argv[i + 1]}"]
        i += 1
    args = ap.parse_args(argv)
    args.argv = argv
    if not args.target_cold_s:
        args.target_cold_s = None
    args.packages = [p.strip() for p in args.packages.split(",") if p.strip()]
    for p in args.packages:
        if p not in PACKAGES:
            ap.error(f"--packages: unknown {p!r} (known: {', '.join(PACKAGES)})")
    up = args.upstream_packages
    args.upstream_packages = [p.strip() for p in up.split(",") if p.strip()] if up else list(args.packages)
    for p in args.upstream_packages:
        if p not in args.packages:
            ap.error(f"--upstream-packages: {p!r} is not one of --packages")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    for p in args.phases:
        if p not in PHASES:
            ap.error(f"--phases: unknown {p!r} (known: {', '.join(PHASES)})")
    if not args.report_only and not (args.sdists and args.out):
        ap.error("--sdists and --out are required (or --report-only OUT)")
    return args


def report_only(args: argparse.Namespace) -> int:
    src = Path(args.report_only)
    results = json.loads((src / "results.json" if src.is_dir() else src).read_text(encoding="utf-8"))
    if args.merge:
        others = [json.loads((Path(m) / "results.json" if Path(m).is_dir() else Path(m)).read_text(encoding="utf-8"))
                  for m in args.merge]
        results = merge_runs(results, *others)
    if args.repeat:
        results = add_repeats(results, [json.loads((Path(m) / "results.json" if Path(m).is_dir() else Path(m))
                                                   .read_text(encoding="utf-8")) for m in args.repeat])
    report = render_report(results)
    table = (src if src.is_dir() else src.parent) / "table.md"
    try:
        write_atomic(table, report + "\n")
    except OSError as exc:
        print(f"(table.md not rewritten: {exc})", file=sys.stderr)
    print(report)
    if args.report:
        write_section(args.section, report, Path(args.report))
    return 0


def _sigterm(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report_only:
        return report_only(args)
    if argv is None:
        signal.signal(signal.SIGTERM, _sigterm)
    bench = Bench(args)
    rc = 1
    try:
        rc = bench.run()
    finally:
        (bench.out / "current").unlink(missing_ok=True)
        (bench.out / "done").write_text(f"exit {rc} {utc_now()}\n")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
