"""`mamba-build verify DIR [--json]`: re-check a wheel directory against its manifest.json."""

from __future__ import annotations

import argparse
import json

from mamba_build.dist.verify import render, verify_dir
from mamba_build.errors import ExitCode

NAME = "verify"
HELP = "re-check the wheels in DIR against DIR/manifest.json: sha256, size, archs read from the binaries"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="directory written by `mamba-build wheels --out DIR`")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-archs", action="store_true", help="skip reading archs from the binaries")
    parser.add_argument("--cuobjdump", metavar="PATH", help="cuobjdump to use (default: CUDA_HOME, PATH, ...)")


def run(args: argparse.Namespace) -> int:
    report = verify_dir(args.dir, check_archs=not args.no_archs, cuobjdump=args.cuobjdump)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(render(report))
    return int(ExitCode.OK if report.ok else ExitCode.CHECK_FAILED)
