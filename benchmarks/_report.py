"""Shared helpers for benchmark scripts: machine description, a section writer for docs/benchmarks.md, and
ccache's counters."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import statistics
import subprocess
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    gpu = "no GPU"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            gpu = out.stdout.strip().splitlines()[0].split(" (UUID")[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return f"{platform.node() or 'host'}: {cpus} CPUs, {mem} RAM, {gpu}, Python {platform.python_version()}"


def today() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}s, min {min(values):.2f}s, max {max(values):.2f}s (n={len(values)})"


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` (appended if absent)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")


def ccache_counters(ccache_dir: Path) -> dict[str, int]:
    """ccache's counters (``ccache --print-stats``) of one cache directory; ``hits`` and ``misses`` added."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from mamba_build.plan.launcher import parse_ccache_print_stats

    res = subprocess.run(["ccache", "--print-stats"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, CCACHE_DIR=str(ccache_dir)))
    st = parse_ccache_print_stats(res.stdout)
    return {**st.raw, "hits": st.hits, "misses": st.misses}
