"""Build progress fed by ninja's `[k/n]` lines (or the compiler command lines without ninja)."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass

_STEP = re.compile(r"^\s*\[(\d+)/(\d+)\]\s+(.*)$")
_SOURCE = re.compile(r"(?:^|\s)(?:-c\s+)?(\S+\.(?:cu|cpp|cc|c))(?:\s|$)")


@dataclass
class BuildProgress:
    done: int = 0
    total: int | None = None
    current: str = ""
    started: float = 0.0

    def feed(self, line: str) -> bool:
        """Update from one output line; True when something visible changed."""
        m = _STEP.match(line)
        if m:
            self.done, self.total = int(m.group(1)), int(m.group(2))
            src = _SOURCE.search(m.group(3))
            self.current = src.group(1).rsplit("/", 1)[-1] if src else m.group(3)[:60]
            return True
        if (" -c " in line or line.lstrip().startswith(("/", "gcc", "g++", "c++"))) and ("nvcc" in line or "++" in line):
            src = _SOURCE.search(line)
            if src:
                self.current = src.group(1).rsplit("/", 1)[-1]
                return True
        return False


class ProgressDisplay:
    """A rich progress bar on a terminal; a plain line per step elsewhere (CI logs)."""

    def __init__(self, label: str, console=None, enabled: bool = True):
        self.label = label
        self.state = BuildProgress(started=time.monotonic())
        self.enabled = enabled
        self._console = console
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.fields[current]}"),
                                      console=self._console, transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=None, current="starting")
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False

    def on_line(self, line: str) -> None:
        if not self.state.feed(line):
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=self.state.done, total=self.state.total,
                                  current=self.state.current)
        elif self.enabled:
            elapsed = time.monotonic() - self.state.started
            count = f"[{self.state.done}/{self.state.total}]" if self.state.total else "[...]"
            print(f"  {self.label} {count} {elapsed:6.0f}s {self.state.current}", file=sys.stderr, flush=True)
