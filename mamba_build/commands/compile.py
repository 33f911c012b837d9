"""`mamba-build compile`: resolve a plan, then fetch, patch, build, smoke-test and install."""

from __future__ import annotations

import argparse
import sys

from mamba_build.errors import ExitCode, UsageError
from mamba_build.plan import ALL_PACKAGES, BuildPlan, CompileOptions

NAME = "compile"
HELP = "build mamba-ssm / causal-conv1d CUDA extensions for this machine, verify and install them"


def add_build_options(p: argparse.ArgumentParser, *, arch_default: str | None = "native") -> None:
    """Options shared by `compile` and `wheels` (what to build, with what)."""
    p.add_argument("--cuda", metavar="X.Y", help="CUDA toolkit version to build with (default: matches torch)")
    p.add_argument(
        "--package",
        action="append",
        metavar="NAME",
        help="mamba-ssm and/or causal-conv1d (repeatable or comma-separated; default: both)",
    )
    p.add_argument(
        "--version",
        dest="versions",
        action="append",
        default=[],
        metavar="PKG==VER",
        help="pin a version, e.g. --version mamba-ssm==2.2.6.post3",
    )
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="[PKG=]SPEC",
        help="pypi (default), git+URL@REF, a local tree, or a .tar.gz/.zip; PKG= when building both",
    )
    p.add_argument(
        "--index-url",
        help="package index for sources and missing runtime requirements (default: pip's configuration / PyPI)",
    )
    p.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR|URL",
        help="extra sdist locations (also searched for the wheels of missing runtime requirements)",
    )
    p.add_argument(
        "--arch",
        default=arch_default,
        help="native (the visible GPUs), all (what the toolkit accepts), or a list: 8.0,9.0+PTX"
        + (f" (default: {arch_default})" if arch_default else ""),
    )
    p.add_argument("--jobs", type=int, help="parallel compile jobs (default: from free memory and CPUs)")
    p.add_argument("--nvcc-threads", type=int, help="nvcc --threads (default: number of archs, at most 4)")
    p.add_argument("--split-compile", type=int, metavar="N", help="nvcc --split-compile N (0: nvcc decides)")
    p.add_argument("--no-split-compile", action="store_true", help="never use --split-compile")
    p.add_argument("--no-ninja", action="store_true", help="build without ninja (slow; for broken ninja setups)")
    p.add_argument(
        "--schedule",
        choices=["pool", "sequential"],
        help="pool: one jobserver shared by both packages' builds, built at the same time (default when "
        "ninja >= 1.13); sequential: one package after the other",
    )
    p.add_argument(
        "--split-units",
        dest="split_units",
        action="store_true",
        default=None,
        help="split the longest unit (causal_conv1d_bwd.cu) into one unit per instantiation (default: on with 4+ jobs)",
    )
    p.add_argument("--no-split-units", dest="split_units", action="store_false", help="never split units")
    p.add_argument(
        "--patch-torch",
        choices=["process", "inplace"],
        default="process",
        help="how torch's compiler map is patched: in the build process only (default) or in the file, "
        "with a backup restored afterwards",
    )
    p.add_argument(
        "--allow-unsupported-compiler",
        action="store_true",
        help="use the newest gcc even if the toolkit rejects it (nvcc -allow-unsupported-compiler); may miscompile",
    )
    p.add_argument(
        "--provision",
        dest="provision",
        action="store_true",
        default=None,
        help="if no usable toolkit of torch's CUDA major (or of --cuda X.Y) is found, assemble one without "
        "root with `toolchain install` before building (the default)",
    )
    p.add_argument(
        "--no-provision",
        dest="provision",
        action="store_false",
        help="never install a toolkit: stop with the fix instead",
    )
    p.add_argument("--python", metavar="PATH", help="the Python environment to build for (default: this one)")
    p.add_argument("--build-dir", help="temporary build directory (default: ~/.cache/mamba-build/builds)")
    p.add_argument("--keep-build", action="store_true", help="keep the source trees and intermediate files")
    p.add_argument("--no-cache", action="store_true", help="rebuild even if an identical wheel is cached")
    p.add_argument(
        "--launcher",
        default="none",
        metavar="{none,ccache,sccache,auto}",
        help="compiler cache in front of nvcc for partial rebuilds: ccache, sccache (local or your "
        "SCCACHE_* remote storage), auto (ccache, else sccache, else none), none (default), or a "
        "path to a ccache/sccache executable",
    )
    p.add_argument("--timeout", type=float, default=3 * 3600.0, help="seconds allowed per package build")
    p.add_argument(
        "--no-deps",
        action="store_true",
        help="do not install the packages' missing runtime requirements (einops, transformers, ...) "
        "before building; fail at plan time with the pip line instead (default: install them, "
        "with everything already installed pinned)",
    )
    p.add_argument(
        "--skip-missing-deps",
        action="store_true",
        help="build even when declared runtime requirements are missing and cannot be installed (an "
        "offline machine): the plan lists them with the pip line, and the smoke test's import "
        "shows whether the packages need them",
    )


def register(p: argparse.ArgumentParser) -> None:
    add_build_options(p)
    p.add_argument("--wheel-dir", help="where the built wheels go (default: ./wheelhouse)")
    p.add_argument("--no-install", action="store_true", help="build and smoke-test only")
    p.add_argument(
        "--rerun-smoke",
        action="store_true",
        help="smoke-test verified cache hits again (default: reuse the verdict stored with them)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON; else a JSON report")
    p.add_argument(
        "--upstream-tests",
        nargs="?",
        type=int,
        const=0,
        metavar="N",
        help="then run the tests upstream ships in its source against the built wheels (staged, "
        "like `mamba-build test --wheel`); N: a random sample of N per package (default: all)",
    )


def options_from_args(args: argparse.Namespace) -> CompileOptions:
    from mamba_build.packages import package_info, parse_requirement

    names: list[str] = []
    for item in args.package or []:
        names += [package_info(n.strip()).name for n in item.split(",") if n.strip()]
    # causal-conv1d first (mamba-ssm uses it); other packages (the test fixture) in the order given
    packages = (
        tuple(n for n in ALL_PACKAGES if n in names) + tuple(dict.fromkeys(n for n in names if n not in ALL_PACKAGES))
        if names
        else ALL_PACKAGES
    )
    versions: dict[str, str] = {}
    for pin in args.versions:
        name, version = parse_requirement(pin)
        if version is None:
            raise UsageError(f"--version {pin!r} has no version", "write --version NAME==VERSION")
        versions[name] = version
    sources: dict[str, str] = {}
    for spec in args.source:
        head, sep, rest = spec.partition("=")
        if sep and head.replace("_", "-").lower() in (*ALL_PACKAGES, *packages):
            sources[package_info(head).name] = rest
        elif len(packages) == 1:
            sources[packages[0]] = spec
        else:
            raise UsageError(
                f"--source {spec!r} is ambiguous with two packages",
                "write --source causal-conv1d=SPEC / --source mamba-ssm=SPEC, or add --package NAME",
            )
    for n, v in [(k, v) for k, v in versions.items() if k not in packages]:
        raise UsageError(f"--version {n}=={v} names a package that is not being built", f"add --package {n}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}", "use --jobs 1 or more")
    split = -1 if args.no_split_compile else args.split_compile
    return CompileOptions(
        cuda=args.cuda,
        packages=packages,
        versions=versions,
        sources=sources,
        index_url=args.index_url,
        find_links=tuple(args.find_links),
        arch=args.arch,
        jobs=args.jobs,
        nvcc_threads=args.nvcc_threads,
        split_compile=split,
        use_ninja=not args.no_ninja,
        wheel_dir=getattr(args, "wheel_dir", None),
        install=not getattr(args, "no_install", True),
        patch_torch=args.patch_torch,
        allow_unsupported_compiler=args.allow_unsupported_compiler,
        provision=args.provision is not False,
        python=args.python,
        build_dir=args.build_dir,
        keep_build=args.keep_build,
        use_cache=not args.no_cache,
        timeout=args.timeout,
        schedule=args.schedule,
        split_units=args.split_units,
        rerun_smoke=getattr(args, "rerun_smoke", False),
        launcher=getattr(args, "launcher", None) or "none",
        install_deps=not getattr(args, "no_deps", False),
        skip_missing_deps=getattr(args, "skip_missing_deps", False),
    )


def _jobs_knob(plan) -> str:
    if plan.nvcc_jobserver:
        return "jobserver slots"
    return "ninja -j" if plan.schedule == "pool" else "MAX_JOBS"


def describe_plan(plan: BuildPlan) -> str:
    c = plan.compiler
    lines = [
        "mamba-build plan",
        f"  python      {plan.python}",
        f"  torch       {plan.torch_version} (CUDA {plan.torch_cuda}, C++11 ABI {'on' if plan.cxx11_abi else 'off'})",
        f"  toolkit     CUDA {plan.cuda_version} at {plan.cuda_home}  [{plan.toolkit_reason}]",
        f"  compiler    {c.cxx} (gcc {c.version})  [{c.reason}]"
        + ("  ** -allow-unsupported-compiler: may miscompile **" if c.unsupported_override else ""),
        f"  archs       {', '.join(plan.archs)}  [{plan.archs_reason}]",
        f"  jobs        {_jobs_knob(plan)}={plan.jobs}  [{plan.jobs_reason}]",
        f"  schedule    {plan.schedule}  [{plan.schedule_reason}]",
        f"  split units {'on' if plan.split_units else 'off'}  [{plan.split_units_reason}]",
        *([f"  order       {', then '.join(plan.pool_order)}  [{plan.pool_order_reason}]"] if plan.pool_order else []),
        "  c++ std     "
        + (
            f"c++{plan.cxx_std} (setup.py's c++17 raised)  [{plan.cxx_std_reason}]"
            if plan.cxx_std
            else "as setup.py says"
        ),
        f"  nvcc        --threads {plan.nvcc_threads}"
        + (f"  [{plan.nvcc_threads_reason}]" if plan.nvcc_threads_reason else ""),
        "              split-compile "
        + (f"{plan.split_compile}" if plan.split_compile is not None else "off")
        + f"  [{plan.split_reason}]",
        "  predicted   "
        + (
            f"build ~{plan.predicted_build_s:.0f} s, CPU-work bound {plan.cpu_bound_s:.0f} s  "
            f"[{plan.prediction_reason}]"
            if plan.predicted_build_s is not None
            else plan.prediction_reason or "no prediction"
        ),
        f"  ninja       {'on' if plan.use_ninja else 'off'}"
        + (f" ({plan.ninja})" if plan.use_ninja and plan.ninja else ""),
        f"  headers     CPATH += {', '.join(plan.include_dirs)}  [headers torch's cpp_extension does not add: the "
        "toolkit's own outside $CUDA_HOME/include (conda), the CUDA math headers it lacks]"
        if plan.include_dirs
        else "  headers     the toolkit's own",
        f"  torch map   {plan.patch_torch}: "
        + ", ".join(
            f"CUDA {k}: gcc >= {'.'.join(map(str, v[0]))}, < {'.'.join(map(str, v[1]))}"
            for k, v in plan.compiler_bounds.items()
        ),
        launcher_line(plan),
        overlay_line(plan),
        f"  wheels      {plan.wheel_dir} (local version +{plan.local_version})",
        f"  builds by   {plan.installer_for().describe()}  [{plan.installer_for().reason}]",
        *([f"  run deps    {plan.runtime_deps.summary()}"] if plan.runtime_deps is not None else []),
        f"  install     {'yes, after the smoke test passes' if plan.install else 'no'}",
        "  packages",
    ]
    for pkg in plan.packages:
        lines.append(
            f"    {pkg.name} {pkg.version or '(from source tree)'} from {pkg.source}  [CUDA build on: "
            + ", ".join(f"{k}={v}" for k, v in (pkg.cuda_build_env or {}).items())
            + "; the recipe skip-cuda-build-off or keep-cuda-build-on forces whichever switch setup.py has]"
        )
    return "\n".join(lines)


def overlay_line(plan: BuildPlan) -> str:
    """The build-only overlay (mamba_build/build_tools.py): which tools, where, and why; or none."""
    o = plan.build_overlay
    if o is None:
        return "  build tools the environment's own (setuptools, packaging, wheel, ninja)"
    return (
        f"  build tools {', '.join(o.requirements)} from a build-only overlay on the build's PYTHONPATH"
        + (" and PATH" if o.bin_dir else "")
        + f" ({o.path}; your environment is not changed)  [{o.describe()}]"
    )


def launcher_line(plan: BuildPlan) -> str:
    from mamba_build.launcher import describe

    return describe(plan)


def resolve(opts: CompileOptions, *, dry_run: bool = False) -> BuildPlan:
    """Gather the environment and resolve the plan. Without a usable toolkit of torch's CUDA major (or of
    --cuda X.Y) one is provisioned first (mamba_build/provision.py) unless --no-provision; with ``dry_run``
    the plan shows the toolkit-to-be and nothing is installed."""
    from dataclasses import replace

    from mamba_build import provision
    from mamba_build.environment import gather
    from mamba_build.plan import resolve_plan
    from mamba_build.select import validate_cuda_version

    env = gather(opts.python, extensions=False)
    cuda = validate_cuda_version(opts.cuda) if opts.cuda else None
    need = provision.decide(env, cuda) if opts.provision else None
    if need is not None and dry_run:
        env = provision.with_planned(env, need)
    elif need is not None:
        provision.provision(need, env, log=lambda msg: print(msg, file=sys.stderr))
        env = gather(opts.python, extensions=False)
    from mamba_build.launcher import with_launcher
    from mamba_build.runtime_deps import with_runtime_deps

    plan = with_runtime_deps(with_launcher(resolve_plan(opts, env), opts.launcher, env), opts)
    if need is not None:
        plan = replace(
            plan,
            provision=need.to_dict(),
            toolkit_reason=(
                f"{'will be provisioned' if dry_run else 'provisioned'}: {need.to_dict()['command']} ({need.how}); "
                f"{need.reason}"
            ),
        )
    return plan


def run(args: argparse.Namespace) -> int:
    from mamba_build.environment import to_jsonable
    from mamba_build.pipeline import execute
    from mamba_build.render import dumps

    plan = resolve(options_from_args(args), dry_run=args.dry_run)
    if args.dry_run:
        print(dumps(plan.to_dict()) if args.json else describe_plan(plan))
        return ExitCode.OK
    print(describe_plan(plan), file=sys.stderr)
    before = _launcher_stats(plan)
    report = execute(plan, log=lambda msg: print(msg, file=sys.stderr), show_progress=not args.json)
    used = _launcher_stats(plan, before)
    if used is not None:
        print(f"launcher: {used.summary()} (this build)", file=sys.stderr)
    upstream = _upstream_tests(plan, report, args.upstream_tests) if args.upstream_tests is not None else None
    if args.json:
        print(
            dumps(
                {
                    "plan": plan.to_dict(),
                    "wheels": to_jsonable(report.wheels),
                    "smoke": to_jsonable(report.smoke),
                    "installed": report.installed,
                    "patches": report.patches,
                    "timings_s": {k: round(v, 2) for k, v in report.timings.items()},
                    "launcher_stats": None
                    if used is None
                    else {
                        "name": used.name,
                        "hits": used.hits,
                        "misses": used.misses,
                        "uncacheable": used.uncacheable,
                        "errors": used.errors,
                        "by_language": used.by_language,
                    },
                    **({"upstream_tests": [r.to_json() for r in upstream]} if upstream is not None else {}),
                }
            )
        )
    else:
        print(render_smoke(report.smoke))
        for w in report.wheels:
            print(f"wheel: {w.wheel}")
        print("installed" if report.installed else "not installed (--no-install)")
    if upstream is not None and any(r.failed for r in upstream):
        return (
            ExitCode.CHECK_FAILED
        )  # the wheels passed the smoke test (and are installed if asked); upstream's tests did not
    return ExitCode.OK


def _upstream_tests(plan: BuildPlan, report, sample: int):
    """compile --upstream-tests: the built wheels, staged, against the tests of the very sources they were built
    from."""
    import tempfile
    from pathlib import Path

    from mamba_build.commands.test import render, run_tests

    names = [w.package for w in report.wheels if w.package in ALL_PACKAGES]
    sources = {p.name: str(p.source) for p in plan.packages if str(p.source) != "pypi"}
    with tempfile.TemporaryDirectory(prefix="mamba-build-upstream-tests-") as tmp:
        runs = run_tests(
            names,
            python=plan.python,
            wheels=[str(w.wheel) for w in report.wheels],
            sample=sample or None,
            seed=0,
            time_budget=None,
            sources=sources,
            workdir=Path(tmp),
            timeout=plan.timeout,
            index_url=plan.index_url,
            find_links=list(plan.find_links),
        )
        print(render(runs), file=sys.stderr)
    return runs


def _launcher_stats(plan: BuildPlan, before=None):
    """The launcher's counters (``before`` given: the difference, i.e. this build's); None without one."""
    if plan.launcher == "none" or not plan.launcher_path:
        return None
    from mamba_build.launcher import stats, stats_env

    now = stats(plan.launcher, plan.launcher_path, stats_env(plan.launcher_env))
    if before is None or now is None:
        return now
    return now.minus(before)


def _smoke_verdict(smoke) -> str:
    if not smoke.passed:
        return "FAILED"
    return "passed on the GPU" if smoke.gpu else "IMPORT ONLY (no GPU): not a pass"


def render_smoke(smoke) -> str:
    if smoke is None:
        return "smoke test: not run"
    lines = [
        f"smoke test: {_smoke_verdict(smoke)}"
        + (
            f" (verdict stored with these exact wheels: {smoke.reused}; --rerun-smoke runs it again)"
            if getattr(smoke, "reused", None)
            else ""
        )
    ]
    for c in smoke.checks:
        num = ""
        if getattr(c, "max_abs_err", None) is not None:
            num = (
                f"  max|err|={c.max_abs_err:.3g} (tol {c.tol:.3g})"
                if c.tol is not None
                else f"  max|err|={c.max_abs_err:.3g}"
            )
        lines.append(f"  {c.status:11s} {c.name}{num}  {c.detail or ''}".rstrip())
    return "\n".join(lines)
