"""`mamba-build install --index-url URL`: install the index's wheels built for exactly this environment."""

from __future__ import annotations

import argparse
import sys

from mamba_build.errors import ExitCode

NAME = "install"
HELP = (
    "install from an index written by `mamba-build index` the wheels built for exactly this environment "
    "(Python, torch X.Y, CUDA major, C++ ABI, GPU archs), verified and smoke-tested; builds what none fits"
)


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index-url",
        required=True,
        metavar="URL",
        help="the root `mamba-build index --out DIR` wrote (file://, https:// or a path): the folder "
        "holding manifest.json and simple/",
    )
    p.add_argument("--python", metavar="PATH", help="the Python environment to install into (default: this one)")
    p.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="NAME",
        help="what to install (repeatable or comma-separated; default: causal-conv1d and mamba-ssm "
        "where the index has them, else everything in it)",
    )
    p.add_argument(
        "--arch",
        metavar="X.Y[,X.Y]",
        help="GPU archs the wheels must run on (default: the visible GPUs; none visible: not checked)",
    )
    p.add_argument(
        "--no-build",
        action="store_true",
        help="never build: fail (exit 3) when no wheel fits, saying why for every candidate",
    )
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="[PKG=]SPEC",
        help="where a fallback build gets the source (as `compile --source`; default: PyPI)",
    )
    p.add_argument("--cuda", metavar="X.Y", help="toolkit of a fallback build (as `compile --cuda`)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (what would be installed or built) and stop")
    p.add_argument("--keep", action="store_true", help="keep the downloaded wheels and the staging directory")
    p.add_argument("--json", action="store_true", help="print the plan (and the result) as JSON")


def _sources(specs: list[str]) -> tuple[dict[str, str], list[str]]:
    """({package: spec} of the PKG=SPEC ones, the bare SPECs)."""
    from mamba_build.plan.packages import package_info

    named, bare = {}, []
    for spec in specs:
        head, sep, rest = spec.partition("=")
        if sep and "/" not in head and ":" not in head:
            named[package_info(head).name] = rest
        else:
            bare.append(spec)
    return named, bare


def _with_bare_source(plan, bare: list[str]):
    """A bare --source SPEC belongs to the one package that will be built (ambiguous otherwise)."""
    from dataclasses import replace

    from mamba_build.errors import UsageError
    from mamba_build.plan.packages import package_info

    if not bare or not plan.to_build:
        return plan
    if len(bare) > 1 or len(plan.to_build) > 1:
        raise UsageError(
            f"--source {bare[0]!r} is ambiguous: {len(plan.to_build)} package(s) would be built "
            f"({', '.join(c.package for c in plan.to_build)})",
            "write --source PKG=SPEC for each",
        )
    return replace(plan, sources={**plan.sources, package_info(plan.to_build[0].package).name: bare[0]})


def run(args: argparse.Namespace) -> int:
    from mamba_build.dist.install import execute_install, render_plan, resolve_install
    from mamba_build.render import dumps

    packages = [p.strip() for item in args.package for p in item.split(",") if p.strip()]
    named, bare = _sources(args.source)
    plan = resolve_install(
        args.index_url,
        python=args.python,
        packages=packages,
        arch=args.arch,
        no_build=args.no_build,
        sources=named,
        cuda=args.cuda,
    )
    plan = _with_bare_source(plan, bare)
    if args.dry_run:
        print(dumps(plan.to_dict()) if args.json else render_plan(plan))
        return ExitCode.OK
    print(render_plan(plan), file=sys.stderr)
    report = execute_install(plan, log=lambda msg: print(msg, file=sys.stderr), keep=args.keep)
    if args.json:
        print(
            dumps(
                {
                    "plan": plan.to_dict(),
                    "installed": [w.name for w in report.installed],
                    "already_installed": report.already,
                    "smoke": None if report.smoke is None else report.smoke.verdict,
                    "built": None if report.built is None else [w.wheel.name for w in report.built.wheels],
                }
            )
        )
    else:
        for w in report.installed:
            print(f"installed {w.name}" + (" (already there)" if report.already else ""))
        if report.built is not None:
            for w in report.built.wheels:
                print(f"built and installed {w.wheel.name}")
    return ExitCode.OK
