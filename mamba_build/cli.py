"""Command-line entry point: parses options, dispatches, turns typed errors into exit codes."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from mamba_build import __version__
from mamba_build.commands import COMMANDS
from mamba_build.errors import ExitCode, Interrupted, MambaBuildError, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors; keep that, with our wording
        self.print_usage(sys.stderr)
        raise UsageError(message, f"run `{self.prog} --help` for the options")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mamba-build", description="Diagnose, build and verify Mamba's CUDA extensions.")
    parser.add_argument("--version", action="version", version=f"mamba-build {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging verbosity on stderr (commands are always logged to the log dir)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"mamba_build.commands.{name.replace('-', '_')}")
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.register(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(level=getattr(logging, args.log_level), format="%(name)s: %(message)s")
        if not getattr(args, "_run", None):
            parser.print_help()
            return ExitCode.USAGE
        return int(args._run(args))
    except KeyboardInterrupt:
        err = Interrupted(
            "stopped by Ctrl-C; every change made so far was rolled back", "run the same command again when ready"
        )
        print(err.render(), file=sys.stderr)
        return err.exit_code
    except MambaBuildError as err:
        print(err.render(), file=sys.stderr)
        return int(err.exit_code)
    except BrokenPipeError:
        return ExitCode.OK
