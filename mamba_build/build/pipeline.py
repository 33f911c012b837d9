"""Execute a BuildPlan: fetch, verify, patch, build, check archs, smoke-test in staging, install.

Nothing here decides anything: every choice is in the plan. Loses nothing on failure or Ctrl-C:
torch's files are restored, partial wheels never reach the wheel directory, and nothing is
installed unless the smoke test passed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as _dt
import errno
import hashlib
import re
import shlex
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mamba_build import paths, runner
from mamba_build.build import cache
from mamba_build.errors import BuildError, DiskFullError, ExtensionMissingError, SmokeTestError
from mamba_build.plan import archs as archs_mod
from mamba_build.plan.build_plan import BuildPlan, PackagePlan
from mamba_build.progress import ProgressDisplay, ProgressGroup

if TYPE_CHECKING:
    from mamba_build.build.smoke.stage import SmokeReport
    from mamba_build.build.sources import FetchedSource


@dataclass
class BuiltWheel:
    package: str
    version: str
    wheel: Path
    log: Path
    seconds: float
    source_origin: str
    source_sha256: str | None
    sass: tuple[int, ...] = ()
    ptx: tuple[int, ...] = ()
    from_cache: bool = False
    cache_key: str | None = None
    cache_components: dict = field(default_factory=dict)
    smoke: dict | None = None  # the verdict stored with a cached wheel


@dataclass
class CompileReport:
    wheels: list[BuiltWheel] = field(default_factory=list)
    smoke: SmokeReport | None = None
    installed: bool = False
    log_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds, in the order they ran
    patches: dict[str, list[dict]] = field(default_factory=dict)  # package -> recipe results (which switch it set)


class _Stopwatch:
    """Seconds per stage of one run (the `timing` line: where a cold build's minutes go)."""

    def __init__(self, into: dict[str, float]):
        self.into = into
        self.mark = time.monotonic()

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.into[stage] = self.into.get(stage, 0.0) + now - self.mark
        self.mark = now

    def line(self) -> str:
        return "timing  " + ", ".join(f"{k} {v:.1f}s" for k, v in self.into.items())


def patch_options(plan: BuildPlan):
    from mamba_build.build.patching import PatchOptions

    return PatchOptions(
        archs=plan.archs,
        nvcc_threads=plan.nvcc_threads,
        split_compile=plan.split_compile,
        use_ninja=plan.use_ninja,
        cxx11_abi=plan.cxx11_abi,
        compiler_bounds=plan.compiler_bounds if plan.patch_torch == "process" else None,
        allow_unsupported_compiler=plan.compiler.unsupported_override,
        split_units=plan.split_units,
        cxx_std=plan.cxx_std,
    )


def explain_failure(log: str | Path, plan: BuildPlan | None = None) -> tuple[str, str | None, str]:
    """(cause, fix, evidence) from the shared catalog of `mamba-build explain` (a log file or its text)."""
    from mamba_build.diagnose.explain import explain_file, explain_text

    context = {}
    if plan is not None:
        context = {
            "cuda_home": plan.cuda_home,
            "toolkits": plan.cuda_home,
            "torch_cuda": plan.torch_cuda,
            "torch_version": plan.torch_version,
            "nvcc_version": plan.cuda_version,
            "gcc_version": plan.compiler.version,
        }
    expl = explain_file(str(log), context) if isinstance(log, Path) else explain_text(log, context)
    if expl.findings:
        first = expl.findings[0]
        evidence = "\n".join(f"  {n}: {t}" for n, t in first.evidence[:6])
        extra = [f"also: [{f.id}] {f.cause}" for f in expl.findings[1:3]]
        extra += [f"also considered: [{c.id}] {c.why_not_root}" for c in expl.alternatives[:2]]
        return f"[{first.id}] {first.cause}", first.fix, "\n".join([evidence, *extra]).rstrip()
    lines = "\n".join(f"  {n}: {t}" for n, t in expl.suspicious_lines[:10])
    maybe = "\n".join(f"possible (weak evidence): [{c.id}] {c.why_not_root}" for c in expl.alternatives[:2])
    return "no known cause recognised in the log", None, "\n".join(x for x in (lines, maybe) if x)


def smoke_failure_cause(smoke, plan: BuildPlan | None = None) -> tuple[str, str | None]:
    """(cause, fix) of a smoke test that did not pass: the catalog's reading of its failing checks, or -- when
    nothing failed but a GPU run skipped checks it may not skip -- that, said plainly (no log to explain)."""
    if not smoke.failed and smoke.unchecked:
        names = ", ".join(c.name for c in smoke.unchecked)
        return (
            f"the GPU run skipped {names}, so the kernels were not checked",
            "the smoke test holds numerical references only for causal-conv1d, mamba-ssm and mamba-build's "
            "fixture, and a module without one cannot pass on a GPU: check its kernels yourself before you "
            "install its wheel by hand",
        )
    cause, fix, _ = explain_failure(smoke.failure_details(), plan)
    if fix is None and smoke.failed and all(WRONG_NUMBERS.search(c.detail) for c in smoke.failed):
        names = ", ".join(c.name for c in smoke.failed)
        return (
            f"the kernels ran but computed wrong numbers in {names}",
            "the wheels, not the environment, are at fault (the modules imported and ran): read the failing cases "
            "below (each names its worst element); build them again from unmodified sources (`mamba-build compile "
            "--keep-build` keeps the build tree to inspect), and if those give the same, report it upstream with "
            "the smoke log",
        )
    return cause, fix


# a numerical check's own failure text (smoke/checks.py compare_tensor): results off their reference, or not finite
WRONG_NUMBERS = re.compile(r"\d+ of \d+ elements (?:off|non-finite)")


def cache_components(plan: BuildPlan, pkg: PackagePlan, fetched) -> dict:
    """Everything that decides the built binary (the wheel cache key is their hash)."""
    from mamba_build.build.cache import tree_digest

    recipes = hashlib.sha256()
    for recipe_file in sorted(paths.patches_dir().glob("*.toml")):
        recipes.update(recipe_file.read_bytes())
    return {
        "package": pkg.name,
        "version": fetched.version,
        "source_sha256": fetched.sha256 or tree_digest(fetched.tree),
        "recipes": recipes.hexdigest(),
        "python": plan.python,
        "torch": plan.torch_version,
        "torch_cuda": plan.torch_cuda,
        "cxx11_abi": plan.cxx11_abi,
        "toolkit": plan.cuda_home,
        "cuda": plan.cuda_version,
        "compiler": f"{plan.compiler.cxx} {plan.compiler.version}",
        "unsupported_compiler": plan.compiler.unsupported_override,
        "archs": list(plan.archs),
        "nvcc_threads": plan.nvcc_threads,
        "split_compile": plan.split_compile,
        "include_dirs": list(plan.include_dirs),
        "local_version": plan.local_version,
        "split_units": plan.split_units,
        "cxx_std": plan.cxx_std,
        **({"build_overlay": list(plan.build_overlay.requirements)} if plan.build_overlay else {}),
        "provenance": PROVENANCE_STAMP,  # cached wheels carry dist-info/mamba_build.json and the torch pin
    }


PROVENANCE_STAMP = 1  # the stamp's schema (mamba_build/dist/provenance.py); a wheel cached before it lacks the stamp


def _is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def _pip_wheel_argv(plan: BuildPlan, tree: Path, out_dir: Path) -> list[str]:
    """The build of one wheel, by the plan's frontend (build/frontend.py): the tree's PEP 517 backend called
    directly, or `pip wheel --no-build-isolation --no-deps` / `uv build --wheel` by the plan's installer."""
    from mamba_build.build import frontend

    return frontend.wheel_argv(plan, tree, out_dir)


def _the_wheel(out_dir: Path, log_path: Path) -> Path:
    wheels = sorted(out_dir.glob("*.whl"))
    if len(wheels) == 1:
        return wheels[0]
    raise BuildError(
        f"the wheel build succeeded but produced {len(wheels)} wheels in {out_dir}", f"inspect the log {log_path}"
    )


def _build_failure(plan: BuildPlan, pkg: PackagePlan, result: runner.CommandResult, log_path: Path) -> Exception:
    cause, fix, evidence = explain_failure(log_path, plan)
    if cause.startswith("[disk-full]"):
        return DiskFullError(
            f"building {pkg.name} ran out of disk space ({cause})",
            f"free space in {plan.build_dir} and {plan.wheel_dir} or use --build-dir on a larger "
            f"disk; full log: {log_path}",
            details=evidence,
        )
    what = "timed out" if result.timed_out else f"failed (exit {result.returncode})"
    return BuildError(
        f"building {pkg.name} {pkg.version or ''} {what}: {cause}".replace("  ", " "),
        (fix + f"; full log: {log_path}") if fix else f"read the full log: {log_path}",
        details=evidence,
    )


def build_wheel(
    plan: BuildPlan, pkg: PackagePlan, tree: Path, out_dir: Path, log_path: Path, show_progress: bool = True
) -> Path:
    """`pip wheel --no-build-isolation --no-deps` in the patched tree; returns the wheel path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with ProgressDisplay(f"{pkg.name}", enabled=show_progress) as display:
        result = runner.stream(
            _pip_wheel_argv(plan, tree, out_dir),
            log_path=log_path,
            timeout=plan.timeout,
            cwd=tree,
            extra_env=plan.env_for(pkg),
            on_line=display.on_line,
        )
    if result.ok:
        return _the_wheel(out_dir, log_path)
    raise _build_failure(plan, pkg, result, log_path)


@dataclass
class PendingBuild:
    """A package fetched, patched and waiting for its build."""

    pkg: PackagePlan
    fetched: FetchedSource
    key: str
    key_parts: dict
    log_path: Path
    out_dir: Path
    recipes: tuple = ()  # (recipe, file, status) of each patch recipe: the wheel's provenance lists them


def build_pool(
    plan: BuildPlan, pending: list[PendingBuild], run_dir: Path, show_progress: bool = True, log=None
) -> list[tuple[Path, float]]:
    """Schedule "pool": every package's `pip wheel` at once, and ONE ninja that compiles the units of all of
    them, the longest first (mamba_build/build/ninja_pool.py). Where the plan paces nvcc's threads (per arch, or
    --split-compile's) with --jobserver, that ninja and nvcc's threads draw from one jobserver of ``plan.jobs``
    slots; otherwise the ninja runs ``-j plan.jobs``. The first failure stops the others. Returns (wheel,
    seconds) per package, in ``pending``'s order."""
    from mamba_build.build.jobserver import JobServer
    from mamba_build.build.ninja_pool import NinjaPool, describe, echo_filter
    from mamba_build.plan.costs import unit_cost_of

    log = log or (lambda _msg: None)
    names = [p.pkg.name for p in pending]
    log_dir = pending[0].log_path.parent
    for p in pending:
        p.out_dir.mkdir(parents=True, exist_ok=True)
    pool = NinjaPool(
        run_dir / "pool",
        names,
        real_ninja=str(plan.ninja),
        python=plan.python,
        jobs=None if plan.nvcc_jobserver else plan.jobs,
        cost_of=unit_cost_of(),
        package_order=plan.pool_order,
    )
    pool.prepare(log_dir)
    ended = {n: threading.Event() for n in names}
    with contextlib.ExitStack() as stack:
        js = stack.enter_context(JobServer(plan.jobs, 1, run_dir)) if plan.nvcc_jobserver else None
        group = stack.enter_context(ProgressGroup(names, enabled=show_progress))
        jobs = []
        for p in pending:
            env = plan.env_for(p.pkg, makeflags=js.makeflags if js else None)
            env.update(pool.env_for(p.pkg.name, env["PATH"]))
            jobs.append(
                runner.StreamJob(
                    _pip_wheel_argv(plan, p.fetched.tree, p.out_dir),
                    p.log_path,
                    cwd=p.fetched.tree,
                    extra_env=env,
                    on_line=echo_filter(group.feed_for(p.pkg.name)),
                    on_exit=ended[p.pkg.name].set,
                )
            )

        def pool_gate(stopping):
            if not pool.wait_requests(lambda n: ended[n].is_set(), stopping):
                return None
            pool.write_build()
            missing = [n for n in names if n not in pool.requests]
            if missing:
                log(f"note    {', '.join(missing)} ended before handing its units to the pool (its log says why)")
            log(f"pool    one ninja for {' + '.join(sorted(pool.requests, key=names.index))}: {describe(pool.ordered)}")
            return pool.environment()

        def pool_line(line: str) -> None:
            pkg, text = pool.on_line(line)
            if pkg is not None:
                group.feed_for(pkg)(text)

        def pool_result(res) -> None:
            rc = res.returncode if isinstance(res, runner.CommandResult) else None
            pool.finish(rc, "" if isinstance(res, runner.CommandResult) else f"{type(res).__name__}: {res}")

        def pool_exit() -> None:
            if js is not None:
                js.client_done()
            if (pool.build_dir / ".ninja_log").is_file():  # the units' times, for benchmarks and the curious
                shutil.copy2(pool.build_dir / ".ninja_log", log_dir / "pool.ninja_log")

        jobs.append(
            runner.StreamJob(
                pool.argv(),
                log_dir / "pool-ninja.log",
                cwd=pool.build_dir,
                on_line=pool_line,
                gate=pool_gate,
                on_result=pool_result,
                on_exit=pool_exit,
            )
        )
        try:
            many = runner.stream_many(jobs, timeout=plan.timeout)
        finally:
            pool.release()  # normally done by finish(); here when the pool never ran
    if many.first_failure is not None:
        i = many.first_failure
        if i == len(pending):  # the pool's ninja: blame the package whose unit failed
            failed = pool.failed_packages()
            p = next((q for q in pending if failed and q.pkg.name == failed[0]), pending[0])
            raise _build_failure(plan, p.pkg, many.results[i], pool.logs.get(p.pkg.name, log_dir / "pool-ninja.log"))
        p = pending[i]
        raise _build_failure(plan, p.pkg, many.results[i], p.log_path)
    return [(_the_wheel(p.out_dir, p.log_path), r.duration) for p, r in zip(pending, many.results, strict=False)]


def check_wheel_extension(pkg: PackagePlan, wheel: Path, log_path: Path | None = None) -> str:
    """The wheel must hold ``pkg.extension_module`` as a top-level shared object (its member name is returned).

    A setup.py that builds no CUDA extension still "succeeds" (mamba's main branch since July 2026 without
    MAMBA_KEEP_CUDA_BUILD=TRUE): that wheel must never pass as a build."""
    import zipfile

    try:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise BuildError(f"{wheel.name} is not a readable wheel ({exc})", f"read the build log {log_path}") from None
    mod = pkg.extension_module
    found = [n for n in names if "/" not in n and n.startswith(mod + ".") and n.endswith(".so")]
    if found:
        return found[0]
    shared = [n for n in names if n.endswith(".so")]
    switches = " / ".join(f"{k}" for k in (pkg.cuda_build_env or {}))
    raise ExtensionMissingError(
        f"{wheel.name} holds no {mod} extension module (its {len(names)} files include "
        + (f"the shared objects {', '.join(shared[:3])}" if shared else "no shared object at all")
        + "): setup.py built no CUDA extension although pip reported success",
        f"the source's setup.py switches the CUDA build off in a way mamba-build's recipes do not force on (known: "
        f"{switches}); check `mamba-build patch DIR --dry-run` on the source and report it with the package "
        f"version; nothing was installed" + (f"; build log: {log_path}" if log_path else ""),
    )


def check_wheel_archs(plan: BuildPlan, wheel: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The archs really inside the wheel's extension must be exactly the plan's."""
    from mamba_build.dist.fatbin import archs_in_wheel

    own = Path(plan.cuda_home) / "bin" / "cuobjdump"  # else binary.find_cuobjdump looks elsewhere
    found = archs_in_wheel(wheel, cuobjdump=own if own.exists() else None)
    want_sass = tuple(sorted({archs_mod.sm_number(a) for a in plan.archs}))
    want_ptx = tuple(sorted({archs_mod.sm_number(a) for a in plan.archs if a.endswith("+PTX")}))
    if tuple(found.sass) != want_sass or tuple(found.ptx) != want_ptx:
        raise BuildError(
            f"{wheel.name} holds SASS {list(found.sass)} / PTX {list(found.ptx)}, but the plan asked for SASS "
            f"{list(want_sass)} / PTX {list(want_ptx)}: the arch patch did not take effect",
            "report this with `mamba-build patch DIR --dry-run` output; the wheel was not installed",
        )
    return tuple(found.sass), tuple(found.ptx)


@contextlib.contextmanager
def torch_map_patch(plan: BuildPlan):
    """--patch-torch inplace: edit torch's cpp_extension.py for the build, restore afterwards (always)."""
    if plan.patch_torch != "inplace" or not plan.compiler_bounds:
        yield
        return
    from mamba_build.build.torch_patch import locate_cpp_extension, patched_torch_compiler_map

    target = locate_cpp_extension(plan.python)
    with patched_torch_compiler_map(plan.compiler_bounds, mode="inplace", target=target):
        yield


def install_wheels(plan: BuildPlan, wheels: list[Path]) -> None:
    install_wheel_files(plan.python, wheels, plan.installer_for())


def install_wheel_files(python: str, wheels: list[Path], installer=None) -> None:
    """The one final install step (`compile` and `install`): these verified wheel files, no dependencies, by
    ``installer`` (mamba_build/plan/installer.py: the target's pip, mamba-build's pip --python, or uv; default: the
    choice for ``python``)."""
    from mamba_build.plan.installer import for_python

    inst = installer or for_python(python)
    res = runner.run(inst.install_argv(wheels, no_deps=True, force_reinstall=True, no_index=True), timeout=1800)
    if not res.ok:
        raise BuildError(
            f"{inst.kind} could not install the wheels (it rolled back what it had started)",
            "install them by hand: " + shlex.join(inst.install_argv(wheels, no_deps=True)),
            details=res.output[-3000:],
        )


def stamp_wheel(plan: BuildPlan, p: PendingBuild, wheel: Path, seconds: float) -> None:
    """mamba_build.json (provenance) into the new wheel's dist-info and ``Requires-Dist: torch==X.Y.*``."""
    from mamba_build.dist import provenance

    recipes = [{"recipe": r, "file": f, "status": s} for r, f, s in p.recipes]
    doc = provenance.of_build(
        plan,
        source_origin=p.fetched.origin,
        source_sha256=p.fetched.sha256,
        recipes=recipes,
        recipes_sha256=p.key_parts.get("recipes"),
        build_seconds=seconds,
    )
    if not p.fetched.sha256:  # a source tree, not an archive: the digest of its files (the cache key's)
        doc["source_tree_digest"] = p.key_parts.get("source_sha256")
    provenance.stamp(wheel, doc)


def _warm_imports(plan: BuildPlan, pending: list[PendingBuild]) -> dict:
    """What the smoke test's pre-started child imports while the wheels build: the third-party modules that
    ``import <package>`` runs, read from the source trees (smoke/import_graph.py), never the packages themselves."""
    from mamba_build.build.smoke import import_graph
    from mamba_build.plan.packages import package_info

    own = sorted({n for pkg in plan.packages for n in (package_info(pkg.name).import_name, pkg.extension_module)})
    trees = [(p.fetched.tree, package_info(p.pkg.name).import_name) for p in pending]
    return {"imports": import_graph.for_packages(trees, own), "own": own}


def known_python_limits(plan: BuildPlan, wheels: list[BuiltWheel], checks) -> dict[str, str]:
    """{check name: note} for a smoke test whose only failures are ``import <package>`` where data/packages.toml
    records that this release's Python code needs a newer torch (``[[torch_requirement]]`` scope
    "python", e.g. causal-conv1d >= 1.5.1 on torch < 2.4) while its extension imported: the build is
    fine, the limit is upstream's. Empty when anything else failed (the smoke test then fails)."""
    from mamba_build.plan.packages import package_info, unmet_torch_requirements

    status = {c.name: c.status for c in checks}
    notes: dict[str, str] = {}
    for w in wheels:
        info = package_info(w.package)
        unmet = [r for r in unmet_torch_requirements(info.name, w.version, plan.torch_version) if r.scope == "python"]
        if (
            unmet
            and status.get(f"import {info.extension_module}") == "ok"
            and status.get(f"import {info.import_name}") == "fail"
        ):
            notes[f"import {info.import_name}"] = (
                f"{info.name} {w.version}: `import {info.import_name}` fails on torch {plan.torch_version} "
                f"(needs torch {unmet[0].torch}: {unmet[0].reason.split(':')[0]}); its extension "
                f"`{info.extension_module}` imports and is what this build provides"
            )
    if not notes or any(c.status == "fail" and c.name not in notes for c in checks):
        return {}
    return notes


def _build_all(
    plan: BuildPlan, pending: list[PendingBuild], run_dir: Path, log_dir: Path, log, show_progress: bool
) -> list[tuple[PendingBuild, Path, float]]:
    if not pending:
        return []
    archs = ", ".join(plan.archs)
    if plan.schedule == "pool":
        names = " + ".join(f"{p.pkg.name} {p.fetched.version}" for p in pending)
        together = " at the same time," if len(pending) > 1 else ","
        slots = f"one jobserver of {plan.jobs} slots" if plan.nvcc_jobserver else f"{plan.jobs} units at a time"
        log(f"build   {names} for {archs}{together} {slots} (logs: {log_dir})")
        start = time.monotonic()
        done = build_pool(plan, pending, run_dir, show_progress, log)
        log(f"built   all in {time.monotonic() - start:.0f}s")
        return [(p, wheel, seconds) for p, (wheel, seconds) in zip(pending, done, strict=False)]
    out = []
    for p in pending:
        log(f"build   {p.pkg.name} {p.fetched.version} for {archs} (log: {p.log_path})")
        start = time.monotonic()
        wheel = build_wheel(plan, p.pkg, p.fetched.tree, p.out_dir, p.log_path, show_progress)
        out.append((p, wheel, time.monotonic() - start))
    return out


def smoke_record(smoke, wheels: list[BuiltWheel]) -> dict:
    """What the cache keeps about a smoke test: the verdict, where, and for exactly which wheel set."""
    return {
        "verdict": smoke.verdict,
        "device": smoke.device,
        "set": sorted(w.cache_key or "" for w in wheels),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "checks": [dataclasses.asdict(c) for c in smoke.checks],
    }


def reused_smoke(plan: BuildPlan, wheels: list[BuiltWheel]):
    """The stored verdict when every wheel is a verified cache hit that was smoke-tested together
    with exactly these other wheels, on this kind of GPU (or import-only, when no GPU is here)."""
    from mamba_build.build.smoke.stage import SmokeCheck, SmokeReport

    if plan.rerun_smoke or not wheels or not all(w.from_cache and w.smoke for w in wheels):
        return None
    keys = sorted(w.cache_key or "" for w in wheels)
    records = [w.smoke for w in wheels if w.smoke]  # all of them (checked above)
    if any(r.get("set") != keys for r in records):
        return None
    rec = records[0]
    if plan.gpus:
        device = rec.get("device")
        if rec.get("verdict") != "pass" or not device or not any(device in g or g in device for g in plan.gpus):
            return None
    elif rec.get("verdict") != "import-only":
        return None
    checks = []
    for c in rec.get("checks") or []:
        try:
            checks.append(SmokeCheck(**c))
        except TypeError:
            return None
    where = f"{rec.get('device') or 'this machine'} on {rec.get('date')}"
    return SmokeReport(passed=True, gpu=rec["verdict"] == "pass", checks=checks, device=rec.get("device"), reused=where)


def execute(plan: BuildPlan, *, log=print, show_progress: bool = True) -> CompileReport:
    from mamba_build.build.patching import apply_patches, raise_for_missing
    from mamba_build.build.smoke.stage import smoke_test_wheels
    from mamba_build.build.sources import fetch

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(plan.build_dir) / f"run-{stamp}"
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    report = CompileReport(log_dir=log_dir)
    clock = _Stopwatch(report.timings)
    wheel_dir = Path(plan.wheel_dir)
    success = False
    warm = None
    triton = None  # smoke.stage.TritonWarmup, while mamba-ssm builds
    try:
        if plan.build_overlay is not None:  # build-only tools (build_tools.py): filled once, checked every run
            from mamba_build.build.build_tools import ensure

            ensure(plan.build_overlay, plan.python, index_url=plan.index_url, find_links=plan.find_links, log=log)
            clock.lap("build tools")
        with contextlib.ExitStack() as stack, torch_map_patch(plan):
            built: dict[str, BuiltWheel] = {}
            pending: list[PendingBuild] = []
            trees: dict[str, Path] = {}
            for pkg in plan.packages:
                fetched = fetch(
                    pkg.name, pkg.version, pkg.source, run_dir / "src", plan.index_url, list(plan.find_links) or None
                )
                trees[pkg.name] = fetched.tree
                log(
                    f"source  {pkg.name} {fetched.version}: {fetched.origin}"
                    + (f" (sha256 {fetched.sha256[:16]}...)" if fetched.sha256 else "")
                )
                key_parts = cache_components(plan, pkg, fetched)
                key = cache.make_key(key_parts)
                hit = cache.lookup(key) if plan.use_cache else None
                if hit is not None:
                    wheel_dir_pkg = run_dir / "wheels" / pkg.name
                    wheel_dir_pkg.mkdir(parents=True, exist_ok=True)
                    wheel = Path(shutil.copy2(hit.wheel, wheel_dir_pkg / hit.wheel.name))
                    check_wheel_extension(pkg, wheel)
                    sass, ptx = check_wheel_archs(plan, wheel)
                    log(f"cached  {wheel.name} (cache key {key[:16]}..., sha256 verified); --no-cache rebuilds")
                    built[pkg.name] = BuiltWheel(
                        pkg.name,
                        fetched.version,
                        wheel,
                        Path(),
                        0.0,
                        fetched.origin,
                        fetched.sha256,
                        sass,
                        ptx,
                        from_cache=True,
                        cache_key=key,
                        cache_components=key_parts,
                        smoke=hit.smoke,
                    )
                    continue
                results = apply_patches(fetched.tree, pkg.name, fetched.version, patch_options(plan))
                raise_for_missing(results, fetched.tree, pkg.name, fetched.version)
                log("patch   " + ", ".join(f"{r.recipe}: {r.status.value}" for r in results))
                report.patches[pkg.name] = [r.as_dict() for r in results]
                pending.append(
                    PendingBuild(
                        pkg,
                        fetched,
                        key,
                        key_parts,
                        log_dir / f"build-{pkg.name}.log",
                        run_dir / "wheels" / pkg.name,
                        tuple((r.recipe, r.file, r.status.value) for r in results),
                    )
                )
            clock.lap("sources+patches")
            from mamba_build.plan.runtime_deps import after_fetch, install_missing

            deps = after_fetch(plan, trees)
            if deps is not None and deps.action == "install":  # before the build and the smoke test's child
                install_missing(plan, deps, run_dir, log)
                clock.lap("runtime deps")
            if pending:  # the smoke test's child imports torch and opens CUDA while the wheels build
                from mamba_build.build.smoke.stage import TritonWarmup, WarmChild

                warm = WarmChild(plan.python, run_dir / "staging", **_warm_imports(plan, pending))
                mamba = next((p for p in pending if p.pkg.name == "mamba-ssm"), None)
                if plan.smoke.triton_warmup and mamba is not None:  # Mamba2's Triton kernels, from the source tree
                    triton = TritonWarmup(
                        plan.python, run_dir / "staging", mamba.fetched.tree, log_path=log_dir / "triton-warmup.log"
                    )
            done = _build_all(plan, pending, run_dir, log_dir, log, show_progress)
            for p, wheel, seconds in done:  # provenance + torch pin in the dist-info, before anything reads it
                stamp_wheel(plan, p, wheel, seconds)
            clock.lap("builds")
            for p, wheel, _seconds in done:  # a wheel without its extension is a failed build, whatever pip said
                check_wheel_extension(p.pkg, wheel, p.log_path)
            # the arch check (cuobjdump) of each new wheel runs while the smoke test does
            archs_pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max(1, len(done))))
            checks = {}
            for p, wheel, seconds in done:
                checks[p.pkg.name] = (archs_pool.submit(check_wheel_archs, plan, wheel), wheel, seconds)
                built[p.pkg.name] = BuiltWheel(
                    p.pkg.name,
                    p.fetched.version,
                    wheel,
                    p.log_path,
                    seconds,
                    p.fetched.origin,
                    p.fetched.sha256,
                    cache_key=p.key,
                    cache_components=p.key_parts,
                )
            report.wheels = [built[pkg.name] for pkg in plan.packages]
            smoke = reused_smoke(plan, report.wheels)
            if smoke is not None:
                log(
                    f"smoke   reused: these exact wheels (sha256 verified) got '{smoke.verdict}' on {smoke.reused}; "
                    "--rerun-smoke runs the test again"
                )
            else:
                if triton is not None:  # what it still compiles, the smoke test would compile itself
                    log("smoke   " + triton.finish(300))
                smoke = smoke_test_wheels(
                    [w.wheel for w in report.wheels],
                    python=plan.python,
                    workdir=run_dir / "staging",
                    timeout=1800,
                    warm=warm,
                    installer=plan.installer_for(),
                    log_path=log_dir / "smoke.log",  # kept with the build logs: staging goes after the run
                )
            for name, (fut, wheel, seconds) in checks.items():  # a wrong arch list fails the build, smoke or not
                sass, ptx = fut.result()
                built[name].sass, built[name].ptx = sass, ptx
                log(
                    f"built   {wheel.name} in {seconds:.0f}s; inside: "
                    + ", ".join([f"sm_{a}" for a in sass] + [f"compute_{a}" for a in ptx])
                )
            limits = {} if smoke.passed else known_python_limits(plan, report.wheels, smoke.checks)
            if limits:  # a known upstream limit, not a bad build: report it as import-only, never as a pass
                smoke = dataclasses.replace(
                    smoke,
                    passed=True,
                    gpu=False,
                    checks=[
                        dataclasses.replace(c, status="skipped", detail="known limit: " + limits[c.name])
                        if c.name in limits
                        else c
                        for c in smoke.checks
                    ],
                )
                for note in limits.values():
                    log(f"note    {note}")
            report.smoke = smoke
            if not smoke.passed:
                cause, fix = smoke_failure_cause(smoke, plan)
                raise SmokeTestError(
                    f"the built wheels failed their smoke test ({cause}); nothing was installed",
                    fix or f"see {log_dir}",
                    details=smoke.failure_details(),
                )
        clock.lap("smoke test+arch check")
        verdict = None if smoke.reused or limits else smoke_record(smoke, report.wheels)
        for w in report.wheels:  # only verified (smoke-tested) wheels enter the cache
            if not w.from_cache and w.cache_key:
                cache.store(w.cache_key, w.wheel, w.cache_components, smoke=verdict)
            elif w.cache_key and verdict is not None:
                cache.record_smoke(w.cache_key, verdict)
        wheel_dir.mkdir(parents=True, exist_ok=True)
        for w in report.wheels:
            final = wheel_dir / w.wheel.name
            shutil.copy2(w.wheel, final.with_suffix(".whl.part"))
            final.with_suffix(".whl.part").replace(final)
            w.wheel = final
        clock.lap("cache+copy")
        if plan.install:
            from mamba_build.dist.already_installed import installed_identical

            same = installed_identical(plan.python, [w.wheel for w in report.wheels])
            if same:
                log(
                    "install already installed: "
                    + ", ".join(w.wheel.name for w in report.wheels)
                    + " (the same files, sha256 checked)"
                )
            else:
                install_wheels(plan, [w.wheel for w in report.wheels])
            report.installed = True
            clock.lap("install")
        log(clock.line())
        success = True
        return report
    except OSError as exc:
        if _is_disk_full(exc):
            raise DiskFullError(
                f"no space left on device while building ({exc.filename or ''})",
                f"free space or point --build-dir / --wheel-dir at a larger disk; logs: {log_dir}",
            ) from exc
        raise
    finally:
        if triton is not None:
            triton.stop()  # before its source tree goes; a no-op once it has finished
        if warm is not None:
            warm.abort()  # a no-op once it has run the checks
        if not plan.keep_build:
            for sub in ("src", "wheels", "staging"):
                shutil.rmtree(run_dir / sub, ignore_errors=True)
        if not success:
            print(f"mamba-build: logs kept in {log_dir}", file=sys.stderr)
