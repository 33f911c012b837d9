"""`mamba-build matrix --config FILE [--format github|gitlab]`: the CI build matrix."""

from __future__ import annotations

import argparse
import json
import sys

from mamba_build.dist.matrix import expand, github_matrix, load_config, render_gitlab

NAME = "matrix"
HELP = "print the CI job matrix of a config: JSON for GitHub Actions fromJSON, YAML parallel:matrix for GitLab"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="TOML config (see docs/ci/README.md)")
    parser.add_argument(
        "--format",
        choices=["github", "gitlab"],
        default="github",
        help='github: {"include": [...]} on one line (default); gitlab: a hidden job with '
        "parallel:matrix for a build job to extend",
    )
    parser.add_argument("--explain", action="store_true", help="also list on stderr the combinations left out, and why")


def run(args: argparse.Namespace) -> int:
    expansion = expand(load_config(args.config))
    if args.explain:
        for line in expansion.skipped:
            print(f"skipped: {line}", file=sys.stderr)
        print(f"{len(expansion.jobs)} job(s)", file=sys.stderr)
    if args.format == "gitlab":
        sys.stdout.write(render_gitlab(expansion.jobs))
    else:
        print(json.dumps(github_matrix(expansion.jobs), separators=(",", ":")))
    return 0
