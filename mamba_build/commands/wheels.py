"""`mamba-build wheels`: build distributable wheels into DIR with a manifest (for an internal index)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from mamba_build.commands.build_options import add_build_options, options_from_args
from mamba_build.errors import ExitCode
from mamba_build.plan.archs import parse_arch_list, sm_number
from mamba_build.plan.resolve import resolve
from mamba_build.render import describe_plan, render_smoke

NAME = "wheels"
HELP = "build wheels for distribution into DIR, with DIR/manifest.json (fat arch list + PTX)"
DEFAULT_ARCHS = "8.0,9.0"


def register(p: argparse.ArgumentParser) -> None:
    add_build_options(p, arch_default=None)
    p.add_argument("--out", required=True, metavar="DIR", help="where the wheels and manifest.json go")
    p.add_argument("--config", metavar="FILE", help="TOML config ([wheels] packages / archs / versions)")
    p.add_argument("--no-ptx", action="store_true", help="do not add PTX for the newest arch")
    p.add_argument(
        "--manylinux",
        action="store_true",
        help="retag with auditwheel, excluding torch and CUDA libraries (libtorch*, libc10*, libcudart*)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    p.add_argument("--json", action="store_true", help="print the manifest records as JSON")


def distribution_archs(text: str, add_ptx: bool = True) -> str:
    """'8.0,9.0' -> '8.0,9.0+PTX': PTX for the newest arch so future GPUs can JIT."""
    archs = list(parse_arch_list(text))
    if add_ptx and not any(a.endswith("+PTX") for a in archs):
        newest = max(range(len(archs)), key=lambda i: sm_number(archs[i]))
        archs[newest] += "+PTX"
    return ",".join(archs)


def run(args: argparse.Namespace) -> int:
    from mamba_build.build.pipeline import execute
    from mamba_build.dist.manifest import finalize_wheel
    from mamba_build.render import dumps

    config = None
    if args.config:
        from mamba_build.dist.matrix import load_config

        config = load_config(args.config)
        if not args.package:
            args.package = list(config.packages)
        for name, version in config.versions.items():
            if not any(v.split("==")[0].replace("_", "-") == name for v in args.versions):
                args.versions.append(f"{name}=={version}")
    arch_text = args.arch or (config.archs[0] if config and config.archs else DEFAULT_ARCHS)
    args.arch = distribution_archs(arch_text, add_ptx=not args.no_ptx)
    out = Path(args.out).resolve()
    opts = replace(options_from_args(args), install=False, wheel_dir=str(out / ".build"))
    plan = resolve(opts)
    if args.dry_run:
        print(dumps(plan.to_dict()) if args.json else describe_plan(plan))
        return ExitCode.OK
    print(describe_plan(plan), file=sys.stderr)
    report = execute(plan, log=lambda msg: print(msg, file=sys.stderr), show_progress=not args.json)
    print(render_smoke(report.smoke), file=sys.stderr)
    records = []
    for built in report.wheels:
        wheel = built.wheel
        if args.manylinux:
            from mamba_build.dist.manylinux import auditwheel_repair

            wheel = auditwheel_repair(wheel, out / ".build" / "manylinux")
        records.append(finalize_wheel(wheel, out))  # the facts: the provenance the build stamped into the wheel
        print(f"wheel: {out / wheel.name}", file=sys.stderr)
    for leftover in sorted((out / ".build").glob("**/*"), reverse=True):
        leftover.unlink() if leftover.is_file() else leftover.rmdir()
    (out / ".build").rmdir() if (out / ".build").exists() else None
    if args.json:
        print(dumps([r.to_json() for r in records]))
    else:
        print(f"{len(records)} wheel(s) and manifest.json in {out}")
    return ExitCode.OK
