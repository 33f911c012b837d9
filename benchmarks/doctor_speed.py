"""How long `mamba-build doctor` (target: < 3 s) and `doctor --probe` (target: < 2 min) take here.

Usage: python benchmarks/doctor_speed.py [--runs 5] [--probe] [--write]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, summary, today, write_section  # noqa: E402


def timed(args: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mamba_build", *args], capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--probe", action="store_true", help="also time one `doctor --probe`")
    ap.add_argument("--arch", default=None, help="arch for --probe (default: the doctor's choice)")
    ap.add_argument("--write", action="store_true", help="write the result into docs/benchmarks.md")
    ap.add_argument("--section", default="doctor-2core", help="section name in docs/benchmarks.md")
    args = ap.parse_args()
    timed(["doctor", "--json"])  # warm the page cache once
    plain = [timed(["doctor", "--json"])[0] for _ in range(args.runs)]
    lines = [f"- machine: {machine()}", f"- date: {today()}",
             f"- command: `python benchmarks/doctor_speed.py --runs {args.runs}{' --probe' if args.probe else ''}`",
             f"- `mamba-build doctor --json`: {summary(plain)} (target < 3 s)"]
    if args.probe:
        extra = ["--arch", args.arch] if args.arch else []
        seconds, rc = timed(["doctor", "--probe", "--json", *extra])
        lines.append(f"- `mamba-build doctor --probe`: {seconds:.1f}s, exit {rc} (target < 120 s)")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.section, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
