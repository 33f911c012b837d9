"""`mamba-build index DIR [DIR ...] [--out ROOT] [--base-url URL]`: a static index, one channel per torch line."""

from __future__ import annotations

import argparse
import json

from mamba_build.dist.channels import Channel
from mamba_build.dist.index import build_index

NAME = "index"
HELP = (
    "write a static package index under ROOT/simple: one PEP 503 + PEP 691 channel per (CUDA major, torch X.Y, "
    "C++ ABI), with PEP 658 core metadata; prints each channel's pip and uv lines; merges, never drops"
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dirs",
        metavar="DIR",
        nargs="+",
        help="wheel directories (from `mamba-build wheels --out`); the first is ROOT unless --out",
    )
    parser.add_argument(
        "--out",
        metavar="ROOT",
        help="index root: wheels of every DIR are copied here and their manifest records merged "
        "into ROOT/manifest.json; the index goes to ROOT/simple (default: the first DIR)",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="where ROOT will be served (https://...), for the printed install lines (default: ROOT as a file:// URL)",
    )
    parser.add_argument("--json", action="store_true", help="print what was indexed as JSON")


def run(args: argparse.Namespace) -> int:
    result = build_index(args.dirs, args.out, args.base_url)
    base = args.base_url.rstrip("/") if args.base_url else result.root.resolve().as_uri()
    if args.json:
        print(
            json.dumps(
                {
                    "root": str(result.root),
                    "simple": str(result.simple_dir),
                    "projects": {name: sorted(entries) for name, entries in sorted(result.projects.items())},
                    "channels": {
                        c: {
                            "url": result.lines[c].url,
                            "built_against": _describe(c),
                            "projects": {n: sorted(e) for n, e in sorted(projects.items())},
                            "requirements": list(result.lines[c].requirements),
                            "pip": result.lines[c].pip,
                            "uv": result.lines[c].uv,
                        }
                        for c, projects in sorted(result.channels.items())
                    },
                    "install": f"mamba-build install --index-url {base}",
                    "added": result.added,
                    "kept": result.kept,
                    "copied": result.copied,
                    "migrated": result.migrated,
                    "dropped": result.dropped,
                    "unplaced": result.unplaced,
                },
                indent=2,
            )
        )
        return 0
    print(f"index: {result.simple_dir} ({result.file_count} file(s), {len(result.channels)} channel(s))")
    if result.copied:
        print(f"  copied into {result.root}: {len(result.copied)} wheel(s)")
    if result.added:
        print(f"  new: {', '.join(result.added)}")
    if result.kept:
        print(f"  kept from the previous index (wheel not in {result.root}): {', '.join(result.kept)}")
    if result.migrated:
        print(f"  moved from the old one-page-for-every-torch layout into channels: {', '.join(result.migrated)}")
    if result.dropped:
        print(f"  no longer served (old layout, build unknown: no manifest record): {', '.join(result.dropped)}")
    if result.unplaced:
        print(
            f"  NOT indexed (no dist-info/mamba_build.json and no manifest record say what they were built "
            f"against): {', '.join(result.unplaced)}"
        )
    print(
        f"install into any environment (picks the channel of its torch, checks, smoke-tests):\n"
        f"  mamba-build install --index-url {base}"
    )
    for c in sorted(result.channels):
        lines = result.lines[c]
        projects = result.channels[c]
        print(
            f"channel {c} ({_describe(c)}): " + ", ".join(f"{n} ({len(projects[n])} file(s))" for n in sorted(projects))
        )
        print(f"  pip: {lines.pip}")
        print(f"  uv:  {lines.uv}")
    return 0


def _describe(channel: str) -> str:
    parsed = Channel.parse(channel)
    assert parsed is not None  # the index writes only channel names it parsed
    return parsed.describe()
