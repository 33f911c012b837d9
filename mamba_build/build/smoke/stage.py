"""Smoke-test built wheels in a staging directory, in a child process, before installing them.

:func:`smoke_test_wheels` installs the wheels with ``pip install --no-deps --no-index --target
<staging>`` (never into the environment), runs ``checks.py`` in the target Python with the
staging dir first on ``PYTHONPATH``, and returns a :class:`SmokeReport`. Only when it passed
should the caller ``pip install --no-deps`` the wheels for real, so a bad build never replaces a
working install.

Without a GPU, ``passed`` means "the staged modules import" and ``gpu`` is False: the caller must
say "import only, not a pass" (``SmokeReport.verdict == "import-only"``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamba_build import child, runner
from mamba_build.build.smoke.checks import ABORTED
from mamba_build.errors import SmokeTestError

SMOKE_DIR = Path(__file__).resolve().parent
SCRIPT_FILES = ("checks.py", "references.py", "triton_warmup.py")  # copied out, with the protocol's _mb_child.py
# Triton keeps autotuning's winners in its on-disk cache (Triton >= 3.2; older ones ignore it): the smoke test's
# children and the warm-up set it, unless the user's environment already says otherwise
TRITON_AUTOTUNE_CACHE = "TRITON_CACHE_AUTOTUNING"

# top-level names found in the staging dir -> the package checks.py knows
_TOP_LEVEL = {
    "causal_conv1d": "causal_conv1d",
    "causal_conv1d_cuda": "causal_conv1d",
    "mamba_ssm": "mamba_ssm",
    "selective_scan_cuda": "mamba_ssm",
}

OK, FAIL, SKIPPED = "ok", "fail", "skipped"


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    status: str  # "ok", "fail", "skipped"
    detail: str = ""
    max_abs_err: float | None = None  # |kernel - ref| at the worst element (element-wise check)
    tol: float | None = None  # that element's bound, atol + rtol * |ref|
    optional: bool = False  # may be skipped on a GPU (Mamba2 where triton does not import)


@dataclass(frozen=True)
class SmokeReport:
    passed: bool  # with gpu=False this only means "imports ok"
    gpu: bool
    checks: list[SmokeCheck] = field(default_factory=list)
    device: str | None = None
    packages: tuple[str, ...] = ()  # what the wheels held: "causal_conv1d", "mamba_ssm"
    staging_dir: Path | None = None
    log_path: Path | None = None
    reused: str | None = None  # the verdict was stored with these exact (cached) wheels: when and where

    @property
    def verdict(self) -> str:
        """'pass' (numbers checked on a GPU), 'import-only' (no GPU) or 'fail'."""
        if not self.passed:
            return "fail"
        return "pass" if self.gpu else "import-only"

    @property
    def failed(self) -> list[SmokeCheck]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def unchecked(self) -> list[SmokeCheck]:
        """Checks a GPU run skipped that may not be skipped there (no reference, a package that did not
        import): the run proves nothing about them, so it is no pass even when nothing failed."""
        return [c for c in self.checks if self.gpu and c.status == SKIPPED and not c.optional]

    def failure_details(self) -> str:
        """What a failed smoke test reports: each failing check, else each check the GPU run skipped."""
        rows = [f"  {c.name}: {c.detail}" for c in self.failed]
        rows = rows or [f"  {c.name}: skipped on the GPU ({c.detail})" for c in self.unchecked]
        return "\n".join(rows) or str(self)

    def summary(self) -> str:
        if self.verdict == "pass":
            n = sum(c.status == OK for c in self.checks)
            return f"smoke test passed on {self.device or 'the GPU'} ({n} checks)"
        if self.verdict == "import-only":
            return "import only (no GPU): the modules import, kernels NOT run -- this is not a pass"
        if not self.failed and self.unchecked:
            names = ", ".join(c.name for c in self.unchecked)
            return f"smoke test INCOMPLETE on {self.device or 'the GPU'}: {names} not checked -- this is not a pass"
        names = ", ".join(c.name for c in self.failed) or "no result"
        return f"smoke test FAILED: {names}"

    def raise_for_failure(self) -> None:
        """Raise SmokeTestError (exit code 7) when the smoke test failed."""
        if self.passed:
            return
        raise SmokeTestError(
            self.summary(),
            "nothing was installed; read the failing checks below"
            + (f" and the log {self.log_path}" if self.log_path else "")
            + ", fix the build, and rebuild",
            details=self.failure_details() if (self.failed or self.unchecked) else None,
        )


def staged_packages(staging: Path) -> list[str]:
    """Which known packages a staging dir holds (by top-level module, package dir or .so)."""
    found: set[str] = set()
    if not staging.is_dir():
        return []
    for entry in staging.iterdir():
        name = entry.name
        if entry.is_dir() and (entry / "__init__.py").exists() and name in _TOP_LEVEL:
            found.add(_TOP_LEVEL[name])
        elif entry.is_file():
            stem = name.split(".", 1)[0]
            if stem in _TOP_LEVEL and name.endswith((".so", ".py", ".pyd")):
                found.add(_TOP_LEVEL[stem])
    return sorted(found)


def other_extension_modules(staging: Path) -> list[str]:
    """Top-level compiled modules in staging that belong to no known package (e.g. our test fixture)."""
    if not staging.is_dir():
        return []
    mods = {e.name.split(".", 1)[0] for e in staging.iterdir() if e.is_file() and e.name.endswith(".so")}
    return sorted(m for m in mods if m not in _TOP_LEVEL)


def stage_wheels(
    wheels: Sequence[Path], python: str, staging: Path, timeout: float = 600, installer=None
) -> runner.CommandResult:
    """``pip install --no-deps --no-index --target staging`` (or the plan's installer's equivalent): the
    wheels' files, and nothing of the environment."""
    from mamba_build.plan.installer import default as default_installer

    inst = installer or default_installer(python)
    return runner.run(
        inst.install_argv(wheels, no_deps=True, no_index=True, target=staging),
        timeout=timeout,
        extra_env={"PIP_NO_INPUT": "1", "PIP_REQUIRE_VIRTUALENV": "0"},
    )


def _fail(name: str, detail: str, **kw) -> SmokeReport:
    return SmokeReport(passed=False, gpu=False, checks=[SmokeCheck(name, FAIL, detail)], **kw)


class WarmChild:
    """The smoke test's child Python, started while the wheels build: it imports torch and the packages'
    third-party dependencies and creates the CUDA context (seconds that do not depend on the wheels), then
    waits for :meth:`go` (checks.py ``--wait-for``). :func:`smoke_test_wheels` hands it the staged wheels;
    :meth:`abort` (always safe, also after go) lets it exit untested. It also exits if its parent dies."""

    def __init__(
        self,
        python: str,
        workdir: Path,
        timeout: float = 7200,
        imports: Sequence[tuple[str, Sequence[str]]] = (),
        own: Sequence[str] = (),
    ):
        """``imports``: the third-party imports of the packages (:func:`import_graph.for_packages`), which the
        child imports while it waits; ``own``: the top-level names that must come from staging."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.go_file = self.workdir / "smoke-go.json"
        self.go_file.unlink(missing_ok=True)
        scripts = _copy_scripts(self.workdir)
        self.python, self.script = python, scripts / "checks.py"
        self.args = ["--wait-for", str(self.go_file), "--wait-timeout", str(timeout)]
        if imports:
            warm_file = self.workdir / "smoke-warm-imports.json"
            doc = {"imports": [[m, list(names)] for m, names in imports], "own": list(own)}
            warm_file.write_text(json.dumps(doc, indent=1), encoding="utf-8")
            self.args += ["--warm-imports", str(warm_file)]
        self.result: child.ChildRun | None = None
        env = child_env()
        self._thread = threading.Thread(target=self._run, args=(timeout + 60, env), daemon=True, name="smoke-warm")
        self._thread.start()

    def _run(self, timeout: float, env: dict) -> None:
        self.result = child.run_script(
            self.python, self.script, self.args, timeout=timeout, cwd=self.workdir, extra_env=env
        )

    def _write(self, payload: dict) -> None:
        if not self.go_file.exists():
            tmp = self.go_file.with_name(self.go_file.name + ".tmp")
            tmp.write_text(json.dumps(payload), encoding="utf-8")
            os.replace(tmp, self.go_file)

    def go(self, staging: Path, expect: Sequence[str], imports: Sequence[str], timeout: float) -> child.ChildRun | None:
        self._write({"staging": str(staging), "expect": list(expect), "imports": list(imports)})
        self._thread.join(timeout)
        return self.result

    def abort(self) -> None:
        self._write({"abort": True})
        self._thread.join(30)


def triton_env() -> dict[str, str]:
    """The smoke test's children keep Triton's autotuning results on disk (see :data:`TRITON_AUTOTUNE_CACHE`)."""
    return {} if TRITON_AUTOTUNE_CACHE in os.environ else {TRITON_AUTOTUNE_CACHE: "1"}


def child_env() -> dict[str, str]:
    """What every child of the smoke test runs with: no bytecode written (into staging or a source tree), no user
    site-packages, and Triton's autotuning kept on disk."""
    return {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", **triton_env()}


class TritonWarmup:
    """``triton_warmup.py`` in a child, started while the wheels build: it runs the smoke test's Mamba2 block from
    mamba-ssm's source tree so that Triton's on-disk cache holds its kernels (and autotuning's results) when the
    smoke test starts. :meth:`finish` waits for it (what it compiles, the smoke test would compile anyway) and
    says how it went; :meth:`stop` (always safe) ends it early. It also exits if its parent dies."""

    def __init__(self, python: str, workdir: Path, source: Path, timeout: float = 900, log_path: Path | None = None):
        self.workdir = Path(workdir)
        self.log_path = Path(log_path) if log_path is not None else self.workdir / "triton-warmup.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stop_file = self.workdir / "triton-warmup.stop"
        self.stop_file.unlink(missing_ok=True)
        scripts = _copy_scripts(self.workdir)
        self.args = [str(scripts / "triton_warmup.py"), "--source", str(source), "--stop-file", str(self.stop_file)]
        self.python, self.started = python, time.monotonic()
        self.result: child.ChildRun | None = None
        env = child_env()
        self._thread = threading.Thread(target=self._run, args=(timeout, env), daemon=True, name="triton-warmup")
        self._thread.start()

    def _run(self, timeout: float, env: dict) -> None:
        self.result = child.run_argv(
            [self.python, *self.args], timeout=timeout, cwd=self.workdir, extra_env=env, log_path=self.log_path
        )

    def finish(self, wait: float) -> str:
        """Wait up to ``wait`` s more for the warm-up, stop it if it is still running; one line saying how it went."""
        self._thread.join(wait)
        if self._thread.is_alive():
            self.stop()
            return (
                f"triton warm-up: stopped, still running {time.monotonic() - self.started:.0f} s after it started; "
                "the smoke test compiles what it had not"
            )
        rec = next((r for r in reversed(self.result.records if self.result else []) if "warmup" in r), None)
        if rec is None:
            res = self.result.result if self.result else None
            why = f"exit {res.returncode}" if res is not None else "no result"
            return f"triton warm-up: said nothing ({why}; {self.log_path}); the smoke test compiles Mamba2's kernels"
        after = " (the smoke test compiles Mamba2's kernels itself)" if rec["warmup"] == "failed" else ""
        return f"triton warm-up: {rec['warmup']} in {rec.get('seconds', 0):.0f} s{after}: {rec.get('detail', '')}"

    def stop(self) -> None:
        if self._thread.is_alive():
            self.stop_file.write_text("stop\n", encoding="utf-8")
            self._thread.join(30)


def _copy_scripts(workdir: Path) -> Path:
    """Copies of the scripts outside the staging dir and the source tree: the child must import the packages
    from staging, and nothing of ours besides the references."""
    scripts = Path(workdir) / "smoke-scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    for name in SCRIPT_FILES:
        shutil.copyfile(SMOKE_DIR / name, scripts / name)
    shutil.copyfile(child.PROTOCOL_FILE, scripts / child.PROTOCOL_FILE.name)
    return scripts


def smoke_test_wheels(
    wheels: Sequence[Path],
    *,
    python: str = sys.executable,
    workdir: Path,
    timeout: float = 900,
    warm: WarmChild | None = None,
    installer=None,
    log_path: Path | None = None,
) -> SmokeReport:
    """Install ``wheels`` into ``workdir/smoke-staging`` (not the environment) and smoke-test them
    in a child ``python``. ``installer`` (mamba_build.plan.installer; default: ``python``'s own pip) does the
    staging install. Never raises for a failing build: read the report (or call
    ``report.raise_for_failure()``). ``log_path`` (default ``workdir/smoke.log``): where the staging install and
    the child's output and records go; ``compile`` puts it with the run's other logs, which outlive the staging
    dir."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    staging = workdir / "smoke-staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    log_path = Path(log_path) if log_path is not None else workdir / "smoke.log"
    wheels = [Path(w) for w in wheels]
    common: dict[str, Any] = {"staging_dir": staging, "log_path": log_path}

    missing = [str(w) for w in wheels if not w.is_file()]
    if not wheels or missing:
        detail = "no wheels given" if not wheels else f"wheel(s) not found: {', '.join(missing)}"
        log_path.write_text(detail + "\n", encoding="utf-8")
        return _fail("install to staging", detail, **common)

    pip = stage_wheels(wheels, python, staging, timeout=min(timeout, 600), installer=installer)
    with open(log_path, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(f"$ {pip.cmdline}\n# rc={pip.returncode}\n{pip.output}\n")
    if not pip.ok:
        tail = "\n".join(pip.output.strip().splitlines()[-15:])
        why = "timed out" if pip.timed_out else ("could not start" if pip.missing else f"exited {pip.returncode}")
        return _fail(
            "install to staging", f"{installer.kind if installer else 'pip'} install --target {why}: {tail}", **common
        )

    packages = staged_packages(staging)
    others = other_extension_modules(staging)
    if not packages and not others:
        return _fail(
            "install to staging",
            "the wheels hold no extension module "
            f"(staging has: {', '.join(sorted(p.name for p in staging.iterdir()))})",
            **common,
        )

    run = warm.go(staging, packages, others, timeout) if warm is not None else None
    if run is not None and run.result.returncode != ABORTED and run.records:
        env_extra = {"PYTHONPATH": f"(pre-started: sys.path[0] = {staging} after its warm-up)"}
    else:  # not pre-started, or it gave up (ABORTED) or died before its first word: run a fresh child
        scripts = _copy_scripts(workdir)
        args = ["--staging", str(staging)]
        for pkg in packages:
            args += ["--expect", pkg]
        for mod in others:
            args += ["--import", mod]
        old_pp = os.environ.get("PYTHONPATH")
        env_extra = {
            "PYTHONPATH": str(staging) + (os.pathsep + old_pp if old_pp else ""),
            **child_env(),
        }
        run = child.run_script(python, scripts / "checks.py", args, timeout=timeout, cwd=workdir, extra_env=env_extra)
    res = run.result
    records = "\n".join(json.dumps(r) for r in run.records)
    with open(log_path, "a", encoding="utf-8", errors="replace") as fh:
        fh.write(
            f"\n$ PYTHONPATH={env_extra['PYTHONPATH']} {res.cmdline}\n# rc={res.returncode} "
            f"timed_out={res.timed_out} {res.duration:.1f}s\n# stdout\n{res.stdout}\n# stderr\n{res.stderr}\n"
            f"# result records ($MAMBA_BUILD_RESULT)\n{records}\n"
        )
    payload, running = read_result(run.records)
    if payload is None or running is not None:
        rc = res.returncode if res.returncode is not None else 0
        why = (
            "timed out"
            if res.timed_out
            else "could not start"
            if res.missing
            else f"was killed by {_signal_name(-rc)}"
            if rc < 0
            else f"died (exit {rc})"
        )
        where = (
            " without a result"
            if payload is None
            else f" while running {running}"
            if running
            else " between two checks"
        )
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-15:])
        detail = f"the smoke test process {why}{where}: {tail}"
        if payload is None:
            return _fail("smoke script", detail, packages=tuple(packages), **common)
        died = SmokeCheck("smoke script", FAIL, detail)
        done = [_check(c) for c in payload.get("checks", [])]
        return SmokeReport(
            passed=False,
            gpu=bool(payload.get("gpu")),
            checks=[*done, died],
            device=payload.get("device"),
            packages=tuple(packages),
            **common,
        )

    checks = [_check(c) for c in payload.get("checks", [])]
    gpu = bool(payload.get("gpu"))
    any_fail = any(c.status not in (OK, SKIPPED) for c in checks)
    imports_ok = any(c.name.startswith("import ") and c.status == OK for c in checks)
    if gpu:  # on a GPU every numerical check must have run and passed
        passed = not any_fail and imports_ok and all(c.status == OK or c.optional for c in checks)
    else:
        passed = not any_fail and imports_ok
    if res.timed_out or (res.returncode not in (0, 1)):
        checks.append(SmokeCheck("smoke script", FAIL, f"exit status {res.returncode}, timed_out={res.timed_out}"))
        passed = False
    return SmokeReport(
        passed=passed, gpu=gpu, checks=checks, device=payload.get("device"), packages=tuple(packages), **common
    )


def _check(c: dict) -> SmokeCheck:
    return SmokeCheck(
        str(c.get("name")),
        str(c.get("status")),
        str(c.get("detail") or ""),
        c.get("max_abs_err"),
        c.get("tol"),
        bool(c.get("optional")),
    )


def read_result(records: Sequence[Any]) -> tuple[dict | None, str | None]:
    """checks.py's answer from its records (``child.ChildRun.records``): ``(RESULT, None)`` when it finished;
    when it died first, what it had said: ``({header..., "checks": done}, the check it was running)``
    (``running`` "" when it died between two checks); ``(None, None)`` when it said nothing."""
    header: dict | None = None
    done: list[dict] = []
    running: str | None = None
    for rec in records:
        if not isinstance(rec, dict):
            continue
        if "result" in rec and isinstance(rec["result"], dict):
            return rec["result"], None
        if "header" in rec:
            header = rec["header"]
        elif "running" in rec:
            running = str(rec["running"])
        elif "check" in rec:
            done.append(rec["check"])
            if rec["check"].get("name") == running:
                running = None
    if header is None and not done:
        return None, None
    return {**(header or {}), "checks": done}, running or ""


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"
