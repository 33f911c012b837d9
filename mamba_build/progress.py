"""Build progress fed by ninja's `[k/n]` lines (or the compiler command lines without ninja)."""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

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
        if (" -c " in line or line.lstrip().startswith(("/", "gcc", "g++", "c++"))) and (
            "nvcc" in line or "++" in line
        ):
            src = _SOURCE.search(line)
            if src:
                self.current = src.group(1).rsplit("/", 1)[-1]
                return True
        return False


class ProgressGroup:
    """Progress of one or more builds running at the same time: one rich bar per build on a
    terminal, a plain labelled line per step elsewhere (CI logs)."""

    def __init__(self, labels, console=None, enabled: bool = True):
        self.labels = list(labels)
        self.states = {label: BuildProgress(started=time.monotonic()) for label in self.labels}
        self.enabled = enabled
        self._console = console
        self._progress: Any = None  # a rich Progress on a terminal
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self):
        if self.enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[current]}"),
                console=self._console,
                transient=False,
            )
            self._progress.__enter__()
            for label in self.labels:
                self._tasks[label] = self._progress.add_task(label, total=None, current="starting")
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
        return False

    def feed_for(self, label: str):
        """The line callback of one build."""

        def feed(line: str) -> None:
            state = self.states[label]
            with self._lock:
                if not state.feed(line):
                    return
                if self._progress is not None:
                    self._progress.update(
                        self._tasks[label], completed=state.done, total=state.total, current=state.current
                    )
                elif self.enabled:
                    elapsed = time.monotonic() - state.started
                    count = f"[{state.done}/{state.total}]" if state.total else "[...]"
                    print(f"  {label} {count} {elapsed:6.0f}s {state.current}", file=sys.stderr, flush=True)

        return feed


class ProgressDisplay(ProgressGroup):
    """One build's progress (see :class:`ProgressGroup`)."""

    def __init__(self, label: str, console=None, enabled: bool = True):
        super().__init__([label], console=console, enabled=enabled)
        self.label = label
        self.state = self.states[label]
        self.on_line = self.feed_for(label)
