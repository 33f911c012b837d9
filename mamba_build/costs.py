"""Which unit grouping builds fastest: a plan's build wall time predicted from measured costs.

``data/build_costs.toml`` holds, per package, the CPU seconds of one core (one arch) of the whole build and
of its longest translation unit, with its units whole and split by its ``split_units`` recipe (sources
cited there). A build on ``slots`` job slots takes at least its longest unit and at least its total work
spread over the slots: wall ~ max(longest, total / slots). With N archs every unit compiles N times, its
archs ``nvcc --threads`` at a time. Splitting costs CPU (each split unit parses the shared code again) and
shortens the longest unit, so it wins only where the longest unit, not the total, bounds the build: with
few packages on many slots, not with both packages on two (measured: docs/benchmarks.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from mamba_build import tables


@dataclass(frozen=True)
class Cost:
    total: float  # CPU seconds of one core, one arch, the whole build
    longest: float  # the longest translation unit, same units


@dataclass(frozen=True)
class PackageCosts:
    name: str
    version: str  # the release measured
    whole: Cost
    split: Cost | None  # None: no split_units recipe


@dataclass(frozen=True)
class SplitChoice:
    split: bool
    reason: str
    whole_s: float | None = None  # predicted, in the table's units (None: no prediction)
    split_s: float | None = None


def package_costs() -> dict[str, PackageCosts]:
    out = {}
    for name, d in tables.load("build_costs")["package"].items():
        split = d.get("split")
        out[name] = PackageCosts(name, str(d["version"]), Cost(float(d["whole"]["total"]), float(d["whole"]["longest"])),
                                 Cost(float(split["total"]), float(split["longest"])) if split else None)
    return out


def _terms(costs: Sequence[Cost], slots: int, archs: int, nvcc_threads: int) -> tuple[float, float]:
    """(the longest unit, the total work per slot) of building ``costs`` in one pool: the two bounds of its wall."""
    archs = max(1, archs)
    rounds = math.ceil(archs / max(1, min(nvcc_threads, archs)))  # a unit's archs, nvcc --threads at a time
    return max(c.longest for c in costs) * rounds, sum(c.total for c in costs) * archs / max(1, slots)


def predict(costs: Sequence[Cost], slots: int, archs: int = 1, nvcc_threads: int = 1) -> float:
    """Predicted wall time of building ``costs`` together in one pool of ``slots`` slots."""
    return max(_terms(costs, slots, archs, nvcc_threads)) if costs else 0.0


def choose_split_units(packages: Sequence[str], slots: int, *, pool: bool, archs: int = 1,
                       nvcc_threads: int = 1) -> SplitChoice | None:
    """Split or not, and why; None when a package has no measured costs (the caller falls back)."""
    known = package_costs()
    if any(p not in known for p in packages):
        return None
    if not any(known[p].split for p in packages):
        return SplitChoice(False, "no package here has a unit to split")
    groups = [list(packages)] if pool else [[p] for p in packages]

    def wall(split: bool) -> float:
        return sum(predict([(known[p].split if split and known[p].split else known[p].whole) for p in g],
                           slots, archs, nvcc_threads) for g in groups)

    whole_s, split_s = wall(False), wall(True)
    split = split_s < whole_s
    how = "in one pool" if pool and len(packages) > 1 else ("one after the other" if len(packages) > 1 else "")
    reason = (f"predicted build {split_s:.0f} split vs {whole_s:.0f} whole ({slots} slots, {archs} arch"
              f"{'s' if archs != 1 else ''}{', ' + how if how else ''}; max(longest unit, CPU / slots) from "
              f"the costs measured in data/build_costs.toml, one-core seconds of the 2-core machine): "
              + ("the longest unit bounds the build, so split it" if split
                 else "the total work bounds the build, and splitting only adds to it"))
    return SplitChoice(split, reason, whole_s, split_s)


def pool_order(packages: Sequence[str], split_units: bool) -> tuple[tuple[str, ...], str]:
    """The packages' order in the pool: the one with the longest unit first, packages without measured costs
    last, in the order given. The pool's one ninja starts the units by their own estimated cost (the
    ``units`` tables); this order breaks ties and names which package leads."""
    known = package_costs()

    def longest(p: str) -> float | None:
        c = known.get(p)
        if c is None:
            return None
        return (c.split if split_units and c.split else c.whole).longest

    order = tuple(sorted(packages, key=lambda p: -(longest(p) or 0.0)))
    if len(order) < 2:
        return order, ""
    named = ", then ".join(f"{p} ({longest(p):.0f} s)" if longest(p) is not None else f"{p} (no measured costs)"
                           for p in order)
    return order, (f"{named}, by the longest unit{' (units split)' if split_units else ''} in data/build_costs.toml; "
                   "the pool's one ninja starts every unit longest first (the units tables there), this order breaks ties")


def unit_costs() -> dict[str, tuple[tuple[str, float], ...]]:
    """Per package, the (file-name glob, one-core seconds) rows of data/build_costs.toml's ``units`` tables."""
    out = {}
    for name, d in tables.load("build_costs")["package"].items():
        out[name] = tuple((str(g), float(s)) for g, s in (d.get("units") or {}).items())
    return out


def unit_cost_of() -> Callable[[str, str], float]:
    """cost(package, source path) for the pool's unit order: the first glob of the package's table that matches
    the file name, else 0 (unknown units go last)."""
    import fnmatch
    from pathlib import Path

    table = unit_costs()

    def cost(package: str, source: str) -> float:
        name = Path(source).name
        for pattern, seconds in table.get(package, ()):
            if fnmatch.fnmatch(name, pattern):
                return seconds
        return 0.0
    return cost


def bound(packages: Sequence[str], slots: int, *, split_units: bool, archs: int = 1,
          nvcc_threads: int = 1) -> tuple[float, float] | None:
    """(longest unit, total CPU / slots) of building ``packages`` in one pool, in the table's units; None when a
    package has no measured costs. Where the second is larger the units outnumber the slots: the total work,
    not one unit, bounds the build, and no unit needs nvcc --split-compile's threads."""
    known = package_costs()
    if any(p not in known for p in packages) or not packages:
        return None
    chosen = [(known[p].split if split_units and known[p].split else known[p].whole) for p in packages]
    return _terms(chosen, slots, archs, nvcc_threads)
