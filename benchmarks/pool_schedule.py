"""How much of a pool build's wall time the unit order could win: replay a `.ninja_log` on N slots.

For each log (the pool's one ninja, `cold.pool.ninja_log` in the benchmark folders): the pool's wall (first start to
last end), the units' summed durations and the CPU-work bound (sum / slots), and two replays of the *measured*
durations on N slots: in the order the units started (checks the replay: it should give the measured wall) and
longest first (LPT, the best simple order with the durations known in advance). If LPT is not clearly shorter than
the measured wall, the order (the costs table in mamba_build/data/build_costs.toml) is not what leaves slack.

    python benchmarks/pool_schedule.py docs/gpu/h200-2026-12-02-warmup/lease*/n*/cold.pool.ninja_log --slots 16
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Unit:
    name: str
    start: float  # seconds from the pool's start
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Replay:
    log: str
    units: int
    slots: int
    wall: float  # measured: first start to last end
    work: float  # sum of the units' durations
    bound: float  # work / slots
    replay_measured_order: float
    replay_longest_first: float
    longest_unit: float


def read_ninja_log(path: Path) -> list[Unit]:
    """Units of a ninja log (format v5+: start_ms, end_ms, mtime, output, hash); the last entry of an output wins."""
    units: dict[str, Unit] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        start, end, _mtime, output, *_ = line.split("\t")
        units[output] = Unit(output.rsplit("/", 1)[-1], int(start) / 1000, int(end) / 1000)
    return list(units.values())


def replay(durations: list[float], slots: int) -> float:
    """Wall time of running ``durations`` in this order, each on the first free of ``slots``."""
    if slots < 1:
        raise ValueError(f"slots must be >= 1, not {slots}")
    free = [0.0] * slots
    end = 0.0
    for d in durations:
        t = heapq.heappop(free) + d
        end = max(end, t)
        heapq.heappush(free, t)
    return end


def analyse(path: Path, slots: int) -> Replay:
    units = read_ninja_log(path)
    if not units:
        raise ValueError(f"{path}: no units in this ninja log")
    t0 = min(u.start for u in units)
    by_start = sorted(units, key=lambda u: u.start)
    work = sum(u.seconds for u in units)
    return Replay(
        log=str(path),
        units=len(units),
        slots=slots,
        wall=round(max(u.end for u in units) - t0, 1),
        work=round(work, 1),
        bound=round(work / slots, 1),
        replay_measured_order=round(replay([u.seconds for u in by_start], slots), 1),
        replay_longest_first=round(replay(sorted((u.seconds for u in units), reverse=True), slots), 1),
        longest_unit=round(max(u.seconds for u in units), 1),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="+", type=Path)
    ap.add_argument("--slots", type=int, default=16, help="the pool's job count (the plan's `jobs`)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = [analyse(p, a.slots) for p in a.logs]
    if a.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
        return 0
    print("| log | units | wall | work | bound (work / slots) | replay, measured order | replay, longest first | longest unit |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.log} | {r.units} | {r.wall} s | {r.work} s | {r.bound} s | {r.replay_measured_order} s "
            f"| {r.replay_longest_first} s | {r.longest_unit} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
