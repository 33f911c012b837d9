"""`mamba-build index DIR [DIR ...] [--out ROOT]`: a PEP 503 + PEP 691 static index of wheels."""

from __future__ import annotations

import argparse
import json

from mamba_build.index import build_index

NAME = "index"
HELP = "write a static package index (PEP 503 HTML + PEP 691 JSON) under ROOT/simple; merges, never drops"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", metavar="DIR", nargs="+",
                        help="wheel directories (from `mamba-build wheels --out`); the first is ROOT unless --out")
    parser.add_argument("--out", metavar="ROOT",
                        help="index root: wheels of every DIR are copied here and their manifest records merged "
                             "into ROOT/manifest.json; the index goes to ROOT/simple (default: the first DIR)")
    parser.add_argument("--json", action="store_true", help="print what was indexed as JSON")


def run(args: argparse.Namespace) -> int:
    result = build_index(args.dirs, args.out)
    if args.json:
        print(json.dumps({
            "root": str(result.root), "simple": str(result.simple_dir),
            "projects": {name: sorted(entries) for name, entries in sorted(result.projects.items())},
            "added": result.added, "kept": result.kept, "copied": result.copied,
        }, indent=2))
        return 0
    print(f"index: {result.simple_dir} ({result.file_count} file(s), {len(result.projects)} project(s))")
    for name in sorted(result.projects):
        print(f"  {name}: {len(result.projects[name])} file(s)")
    if result.copied:
        print(f"  copied into {result.root}: {len(result.copied)} wheel(s)")
    if result.added:
        print(f"  new: {', '.join(result.added)}")
    if result.kept:
        print(f"  kept from the previous index (wheel not in {result.root}): {', '.join(result.kept)}")
    print(f"install: pip install --index-url {result.simple_dir.resolve().as_uri()} "
          + " ".join(sorted(result.projects)))
    return 0
