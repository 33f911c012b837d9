"""`mamba-build test`: run the tests upstream ships in its source against the staged or installed wheels."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mamba_build.errors import ExitCode, UsageError

NAME = "test"
HELP = (
    "run upstream's own tests (the tests/ its source ships) against the installed packages or the given "
    "wheels; --sample N for a time budget"
)


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--package",
        action="append",
        metavar="NAME",
        help="causal-conv1d and/or mamba-ssm (repeatable or comma-separated; default: those installed, "
        "or those the --wheel files hold)",
    )
    p.add_argument("--python", metavar="PATH", help="the Python environment to test in (default: this one)")
    p.add_argument(
        "--wheel",
        action="append",
        default=[],
        metavar="FILE",
        help="test these wheels, staged with pip --target (never installed), instead of what is installed",
    )
    p.add_argument("--sample", type=int, metavar="N", help="run a seeded random sample of N tests per package")
    p.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    p.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="start no test after this many seconds per package (the rest count as not run)",
    )
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="[PKG=]SPEC",
        help="where the test files come from: pypi (default: the sdist of the version under test), "
        "a local tree or a .tar.gz",
    )
    p.add_argument("--index-url", help="package index for the sdists")
    p.add_argument("--find-links", action="append", default=[], metavar="DIR|URL", help="extra sdist locations")
    p.add_argument("--work-dir", metavar="DIR", help="keep the test files, logs and results here")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per package")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def _sources(specs: list[str], packages: list[str]) -> dict[str, str]:
    from mamba_build.plan.packages import package_info

    out: dict[str, str] = {}
    for spec in specs:
        head, sep, rest = spec.partition("=")
        if sep and head.replace("_", "-").lower() in ("causal-conv1d", "mamba-ssm"):
            out[package_info(head).name] = rest
        elif len(packages) == 1:
            out[packages[0]] = spec
        else:
            raise UsageError(f"--source {spec!r} is ambiguous with two packages", "write --source PKG=SPEC")
    return out


def render(runs) -> str:
    lines = []
    for r in runs:
        lines.append(r.summary())
        lines.append(
            f"  against {r.against} in {r.python}; tests from {r.source}" + (f"; log {r.log}" if r.log else "")
        )
        for test, why in sorted(r.network_skipped.items()):
            lines.append(f"  skipped  {test}: {why}")
        for test, text in r.failures[:10]:
            last = next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), "")
            lines.append(f"  FAILED   {test}: {last[:200]}")
        if len(r.failures) > 10:
            lines.append(f"  ... and {len(r.failures) - 10} more failures (see the log)")
    return "\n".join(lines)


def run_tests(
    packages: list[str] | None,
    *,
    python: str,
    wheels: list[str],
    sample: int | None,
    seed: int,
    time_budget: float | None,
    sources: dict[str, str],
    workdir: Path,
    timeout: float,
    index_url: str | None = None,
    find_links: list[str] | None = None,
    explicit: bool = True,
):
    """Stage ``wheels`` (if any), then run each package's upstream tests; returns the runs."""
    from mamba_build.build.smoke.stage import stage_wheels, staged_packages
    from mamba_build.build.upstream_tests import has_cuda, installed_version, run_upstream_tests
    from mamba_build.plan.packages import package_info

    staging = None
    if wheels:
        staging = workdir / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        missing = [w for w in wheels if not Path(w).is_file()]
        if missing:
            raise UsageError(f"wheel(s) not found: {', '.join(missing)}", "pass existing .whl files to --wheel")
        from mamba_build.plan.installer import for_python

        res = stage_wheels([Path(w) for w in wheels], python, staging, installer=for_python(python))
        if not res.ok:
            raise UsageError(
                "pip could not stage the wheels", f"check them with pip install --target; {res.output[-300:]}"
            )
        held = [package_info(p).name for p in staged_packages(staging)]
        packages = packages or held
    names = packages or ["causal-conv1d", "mamba-ssm"]
    if not packages:  # the default: those this Python has
        names = [n for n in names if installed_version(python, n, staging)]
        if not names:
            raise UsageError(
                f"neither causal-conv1d nor mamba-ssm is installed in {python}",
                "install them (mamba-build compile) or pass their wheels with --wheel",
            )
    gpu = has_cuda(python, staging)
    return [
        run_upstream_tests(
            n,
            python=python,
            workdir=workdir / n,
            staging=staging,
            source=sources.get(n),
            sample=sample,
            seed=seed,
            time_budget=time_budget,
            timeout=timeout,
            index_url=index_url,
            find_links=find_links,
            gpu=gpu,
        )
        for n in names
    ]


def exit_code(runs) -> int:
    if any(r.failed for r in runs):
        return int(ExitCode.CHECK_FAILED)
    if not any(r.ran for r in runs):
        return int(ExitCode.NOT_RUN)
    return int(ExitCode.OK)


def run(args: argparse.Namespace) -> int:
    from mamba_build.plan.packages import package_info
    from mamba_build.render import dumps

    if args.sample is not None and args.sample < 1:
        raise UsageError(f"--sample {args.sample}", "use --sample 1 or more (or leave it out for every test)")
    packages = [package_info(n.strip()).name for item in args.package or [] for n in item.split(",") if n.strip()]
    python = args.python or sys.executable
    with tempfile.TemporaryDirectory(prefix="mamba-build-test-") as tmp:
        workdir = Path(args.work_dir).resolve() if args.work_dir else Path(tmp)
        runs = run_tests(
            packages,
            python=python,
            wheels=args.wheel,
            sample=args.sample,
            seed=args.seed,
            time_budget=args.time_budget,
            sources=_sources(args.source, packages),
            workdir=workdir,
            timeout=args.timeout,
            index_url=args.index_url,
            find_links=args.find_links,
        )
        if args.json:
            print(dumps([r.to_json() for r in runs]))
        else:
            print(render(runs))
    return exit_code(runs)
