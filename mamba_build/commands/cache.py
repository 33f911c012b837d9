"""`mamba-build cache list|clear`: the content-addressed cache of verified wheels."""

from __future__ import annotations

import argparse
import datetime as _dt

from mamba_build.build import cache
from mamba_build.errors import ExitCode
from mamba_build.render import dumps

NAME = "cache"
HELP = "list or clear the cache of verified wheels (rebuilds of the same thing are copies)"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "clear"], help="list entries / remove them all")
    p.add_argument("--json", action="store_true", help="list as JSON")


def run(args: argparse.Namespace) -> int:
    if args.action == "clear":
        n = cache.clear()
        print(f"removed {n} cached wheel(s) from {cache.root()}")
        return ExitCode.OK
    items = cache.entries()
    if args.json:
        print(
            dumps({"root": str(cache.root()), "max_bytes": cache.max_bytes(), "entries": [e.to_dict() for e in items]})
        )
        return ExitCode.OK
    total = sum(e.size for e in items)
    print(f"{cache.root()}: {len(items)} wheel(s), {total / 1024**2:.1f} MiB of {cache.max_bytes() / 1024**3:.0f} GiB")
    for e in items:
        used = _dt.datetime.fromtimestamp(e.last_used).strftime("%Y-%m-%d %H:%M")
        print(f"  {e.key[:16]}  {e.size / 1024**2:8.1f} MiB  last used {used}  {e.wheel.name}")
    return ExitCode.OK
