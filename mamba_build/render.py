"""Rendering: checks as a rich table for people and JSON for machines (both from the same objects); the build plan
and the smoke verdict as text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mamba_build.diagnose.checks.base import Check, Status

if TYPE_CHECKING:
    from mamba_build.plan.build_plan import BuildPlan

STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def checks_table(checks: Iterable[Check], *, verbose: bool = False, title: str | None = None):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, expand=False, pad_edge=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("finding / fix", overflow="fold")
    for c in checks:
        body = Text(c.summary)
        if c.fix and c.status in (Status.WARN, Status.FAIL):
            body.append("\nfix: ", style="bold")
            body.append(c.fix, style="cyan")
        if verbose and c.details:
            body.append("\n" + c.details, style="dim")
        table.add_row(Text(c.status.value, style=STYLE[c.status]), c.id, body)
    return table


def print_checks(checks: list[Check], *, verbose: bool = False, title: str | None = None, console=None) -> None:
    from rich.console import Console

    console = console or Console(soft_wrap=False)
    console.print(checks_table(checks, verbose=verbose, title=title))
    counts = {s: sum(1 for c in checks if c.status == s) for s in Status}
    console.print(
        f"{counts[Status.OK]} ok, {counts[Status.WARN]} warn, {counts[Status.FAIL]} fail, {counts[Status.SKIP]} skipped"
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str)


# --- the build plan and the smoke verdict, as text ---------------------------------------------------------


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
        f"  frontend    {plan.build_frontend}  [{plan.build_frontend_reason}]",
        f"  {'builds by' if plan.build_frontend == 'installer' else 'installs by'} "
        f"{plan.installer_for().describe()}  [{plan.installer_for().reason}]",
        *([f"  run deps    {plan.runtime_deps.summary()}"] if plan.runtime_deps is not None else []),
        f"  install     {'yes, after the smoke test passes' if plan.install else 'no'}",
        *([f"  triton      {plan.triton_warmup_reason}"] if plan.triton_warmup_reason else []),
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
    """The build-only overlay (mamba_build/build/build_tools.py): which tools, where, and why; or none."""
    o = plan.build_overlay
    if o is None:
        return "  build tools the environment's own (setuptools, packaging, wheel, ninja)"
    return (
        f"  build tools {', '.join(o.requirements)} from a build-only overlay on the build's PYTHONPATH"
        + (" and PATH" if o.bin_dir else "")
        + f" ({o.path}; your environment is not changed)  [{o.describe()}]"
    )


def launcher_line(plan: BuildPlan) -> str:
    from mamba_build.plan.launcher import describe

    return describe(plan)


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
