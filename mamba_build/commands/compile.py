"""`mamba-build compile`: resolve a plan, then fetch, patch, build, smoke-test and install."""

from __future__ import annotations

import argparse
import sys

from mamba_build.commands.build_options import add_build_options, options_from_args
from mamba_build.errors import ExitCode
from mamba_build.plan.build_plan import ALL_PACKAGES, BuildPlan
from mamba_build.plan.resolve import resolve
from mamba_build.render import describe_plan, render_smoke

NAME = "compile"
HELP = "build mamba-ssm / causal-conv1d CUDA extensions for this machine, verify and install them"


def register(p: argparse.ArgumentParser) -> None:
    add_build_options(p)
    p.add_argument("--wheel-dir", help="where the built wheels go (default: ./wheelhouse)")
    p.add_argument("--no-install", action="store_true", help="build and smoke-test only")
    p.add_argument(
        "--rerun-smoke",
        action="store_true",
        help="smoke-test verified cache hits again (default: reuse the verdict stored with them)",
    )
    p.add_argument(
        "--no-triton-warmup",
        action="store_true",
        help="do not run mamba-ssm's Mamba2 block from its source tree while the wheels build (by default it "
        "fills Triton's cache for the smoke test's Mamba2 check: ~100 s on a machine whose cache is empty)",
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


def run(args: argparse.Namespace) -> int:
    from mamba_build.build.pipeline import execute
    from mamba_build.diagnose.environment import to_jsonable
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
    from mamba_build.plan.launcher import stats, stats_env

    now = stats(plan.launcher, plan.launcher_path, stats_env(plan.launcher_env))
    if before is None or now is None:
        return now
    return now.minus(before)
