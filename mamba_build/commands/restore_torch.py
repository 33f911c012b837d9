"""`mamba-build restore-torch`: put back torch's cpp_extension.py after an interrupted in-place patch."""

from __future__ import annotations

import argparse
from pathlib import Path

from mamba_build.build import torch_patch
from mamba_build.errors import EnvironmentProblem, MambaBuildError

NAME = "restore-torch"
HELP = "restore torch/utils/cpp_extension.py from the backup left by `--patch-torch inplace`"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--python",
        help="also check the torch of this interpreter (default: every journaled "
        "backup, plus this interpreter's torch when installed)",
    )
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)  # a cpp_extension.py path (tests)


def run(args: argparse.Namespace) -> int:
    targets: list[Path] = []
    if args.file:
        targets.append(args.file)
    else:
        try:
            targets.append(torch_patch.locate_cpp_extension(args.python))
        except MambaBuildError:
            if args.python:
                raise
    outcomes = torch_patch.restore_all(targets)
    stale = [o for o in outcomes if o.status == "stale backup"]
    for o in outcomes:
        print(f"{o.target}: {o.status}" + (f" ({o.detail})" if o.detail else ""))
    if not outcomes:
        print("nothing to restore")
    if stale:
        raise EnvironmentProblem(
            stale[0].detail, f"if torch was reinstalled, delete {torch_patch.backup_path(stale[0].target)}"
        )
    return 0
