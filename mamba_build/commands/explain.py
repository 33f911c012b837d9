"""`mamba-build explain [FILE|-] [--json]`: name the root cause of a failed build/import log.

Exit codes: 0 a known cause was found; 1 no known cause (an unknown or a clean log);
2 usage error (unreadable, binary or missing file).
"""

from __future__ import annotations

import argparse
import json
import sys

from mamba_build.diagnose import explain as engine
from mamba_build.errors import ExitCode, UsageError

NAME = "explain"
HELP = (
    "Explain a failed build or import log (pip, setup.py, ninja output, a traceback): "
    "the root cause, the lines that show it, and the fix."
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="the log file; `-` (the default) reads standard input"
    )
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")
    parser.add_argument(
        "--here",
        action="store_true",
        help="the log was made on this machine: fill the fix with its facts "
        "(CUDA toolkits found, torch's CUDA version)",
    )


def run(args: argparse.Namespace) -> int:
    if args.file == "-" and sys.stdin is not None and sys.stdin.isatty():
        raise UsageError(
            "no log given and standard input is a terminal",
            "pass a file (`mamba-build explain build.log`) or pipe one in "
            "(`pip install ... 2>&1 | mamba-build explain -`)",
        )
    context = engine.probe_context() if getattr(args, "here", False) else None
    expl = engine.explain_file(args.file, context)
    if args.json:
        json.dump(expl.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(engine.render_text(expl, here=context is not None))
    return int(ExitCode.OK if expl.findings else ExitCode.CHECK_FAILED)
