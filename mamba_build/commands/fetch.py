"""`mamba-build fetch PKG[==VER] --dest DIR`: get and verify a source tree (plumbing)."""

from __future__ import annotations

import argparse
import json

from mamba_build.build import sources
from mamba_build.plan import packages

NAME = "fetch"
HELP = "download/unpack the source of mamba-ssm or causal-conv1d and check it has its CUDA sources"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", metavar="PKG[==VER]", help="mamba-ssm or causal-conv1d, optionally ==VERSION")
    parser.add_argument("--dest", required=True, help="directory to unpack into (DEST/<name>-<version>/)")
    parser.add_argument(
        "--source", default="pypi", help="pypi (default), git+URL@REF, a local directory, or a .tar.gz/.zip file or URL"
    )
    parser.add_argument("--index-url", help="package index (default: $PIP_INDEX_URL, pip config, PyPI)")
    parser.add_argument(
        "--find-links",
        action="append",
        metavar="DIR_OR_URL",
        help="also look for sdists here (repeatable; default: $PIP_FIND_LINKS)",
    )
    parser.add_argument("--no-verify", action="store_true", help="do not check the tree for its csrc/ files")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    name, version = packages.parse_requirement(args.package)
    result = sources.fetch(
        name,
        version,
        args.source,
        args.dest,
        index_url=args.index_url,
        find_links=args.find_links,
        verify=not args.no_verify,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"{result.package} {result.version}: {result.tree}")
        print(f"  from   {result.origin}{' (cached)' if result.from_cache else ''}")
        if result.sha256:
            print(f"  sha256 {result.sha256}")
        if result.archive:
            print(f"  cached {result.archive}")
    return 0
