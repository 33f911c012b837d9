"""Rendering of checks: a rich table for people, JSON for machines. Both from the same objects."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mamba_build.checks.base import Check, Status

STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def checks_table(checks: Iterable[Check], *, verbose: bool = False, title: str | None = None):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, expand=False, pad_edge=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("finding / fix", overflow="fold")
    for c in checks:
        body = Text(c.summary)
        if c.fix and c.status in (Status.WARN, Status.FAIL):
            body.append("\nfix: ", style="bold")
            body.append(c.fix, style="cyan")
        if verbose and c.details:
            body.append("\n" + c.details, style="dim")
        table.add_row(Text(c.status.value, style=STYLE[c.status]), c.id, body)
    return table


def print_checks(checks: list[Check], *, verbose: bool = False, title: str | None = None, console=None) -> None:
    from rich.console import Console

    console = console or Console(soft_wrap=False)
    console.print(checks_table(checks, verbose=verbose, title=title))
    counts = {s: sum(1 for c in checks if c.status == s) for s in Status}
    console.print(
        f"{counts[Status.OK]} ok, {counts[Status.WARN]} warn, {counts[Status.FAIL]} fail, {counts[Status.SKIP]} skipped"
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str)
