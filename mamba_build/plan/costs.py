"""Which unit grouping and how many nvcc threads build fastest: a plan's build time predicted from measured costs.

``data/build_costs.toml`` holds, per package, the CPU seconds of one core (one arch, sm_90) of the whole build
and of its longest translation unit, with its units whole and split by its ``split_units`` recipe (sources
cited there), and per arch what one more arch costs. A build on ``slots`` job slots takes at least its longest
unit and at least its total work spread over the slots: wall ~ max(longest, total / slots) (the second is the
CPU-work bound). With N archs a unit runs, per arch, nvcc's device passes (preprocessing, cicc, ptxas: the
share ``per_arch`` of its one-arch time, scaled by each arch's factor) and once its host passes; its archs
run ``nvcc --threads`` at a time. Splitting costs CPU (each split unit parses the shared code again) and
shortens the longest unit, so it wins only where the longest unit, not the total, bounds the build: with
few packages on many slots, not with both packages on two (measured: docs/benchmarks.md).

nvcc's threads: ``--threads`` is one flag for every unit of a package. While every slot is busy, each unit's
extra threads only take CPU time from the other units (measured on the H200, 2 archs on 16 slots: --threads 2
built in 372 s, --threads 1 in 271 s), so threads are planned only where slots would otherwise idle: where
the longest unit (after splitting) still outlasts the work per slot (:func:`choose_threads`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mamba_build import tables


@dataclass(frozen=True)
class Cost:
    total: float  # CPU seconds of one core, one arch, the whole build
    longest: float  # the longest translation unit, same units
    total_per_arch: float = 1.0  # the share of ``total`` that recurs per arch (nvcc's device passes)
    longest_per_arch: float = 1.0  # the same for the longest unit

    def at(self, weight: float, lanes: float) -> Cost:
        """This cost with archs of summed factor ``weight``, the longest unit's archs in ``lanes`` rounds."""
        return Cost(
            self.total * ((1 - self.total_per_arch) + self.total_per_arch * weight),
            self.longest * ((1 - self.longest_per_arch) + self.longest_per_arch * lanes),
            1.0,
            1.0,
        )


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


@dataclass(frozen=True)
class ThreadsChoice:
    threads: int
    reason: str
    bound: str  # "work": the total work per slot bounds the build; "unit": one unit does; "" unknown
    longest_s: float | None = None  # predicted, at the chosen threads
    spread_s: float | None = None  # the CPU-work bound: total work / slots


def _cost(d: dict) -> Cost:
    return Cost(
        float(d["total"]),
        float(d["longest"]),
        float(d.get("total_per_arch", 1.0)),
        float(d.get("longest_per_arch", 1.0)),
    )


def package_costs() -> dict[str, PackageCosts]:
    out = {}
    for name, d in tables.load("build_costs")["package"].items():
        split = d.get("split")
        out[name] = PackageCosts(name, str(d["version"]), _cost(d["whole"]), _cost(split) if split else None)
    return out


def arch_factors() -> dict[str, float]:
    """Each arch's device-pass cost relative to sm_90 (data/build_costs.toml ``[arch]``)."""
    return {str(k): float(v) for k, v in (tables.load("build_costs").get("arch") or {}).items()}


def arch_weights(archs) -> list[float]:
    """One factor per arch: an int n is n archs at sm_90's cost; "9.0+PTX" costs as 9.0 (the PTX is cicc's
    output for the same arch, embedded as it is); an arch without a measured factor counts as the mean of those
    measured (1.0 without any)."""
    if isinstance(archs, int):
        return [1.0] * max(1, archs)
    table = arch_factors()
    mean = sum(table.values()) / len(table) if table else 1.0
    out = []
    for a in archs:
        base = str(a).split("+")[0].rstrip("af")
        out.append(table.get(base, mean))
    return out or [1.0]


def lanes(weights: Sequence[float], threads: int) -> float:
    """The most arch weight one of ``threads`` nvcc threads gets (archs dealt largest first to the least loaded):
    the longest unit's device passes take this many sm_90-arch times."""
    t = max(1, min(threads, len(weights)))
    load = [0.0] * t
    for w in sorted(weights, reverse=True):
        load[load.index(min(load))] += w
    return max(load)


def _terms(costs: Sequence[Cost], slots: int, archs, nvcc_threads: int) -> tuple[float, float]:
    """(the longest unit, the total work per slot) of building ``costs`` in one pool: the two bounds of its wall."""
    w = arch_weights(archs)
    scaled = [c.at(sum(w), lanes(w, nvcc_threads)) for c in costs]
    return max(c.longest for c in scaled), sum(c.total for c in scaled) / max(1, slots)


def predict(costs: Sequence[Cost], slots: int, archs=1, nvcc_threads: int = 1) -> float:
    """Predicted wall time of building ``costs`` together in one pool of ``slots`` slots."""
    return max(_terms(costs, slots, archs, nvcc_threads)) if costs else 0.0


def choose_split_units(
    packages: Sequence[str], slots: int, *, pool: bool, archs=1, nvcc_threads: int = 1
) -> SplitChoice | None:
    """Split or not, and why; None when a package has no measured costs (the caller falls back)."""
    known = package_costs()
    if any(p not in known for p in packages):
        return None
    if not any(known[p].split for p in packages):
        return SplitChoice(False, "no package here has a unit to split")
    groups = [list(packages)] if pool else [[p] for p in packages]

    def wall(split: bool) -> float:
        return sum(
            predict(
                [(known[p].split or known[p].whole) if split else known[p].whole for p in g],
                slots,
                archs,
                nvcc_threads,
            )
            for g in groups
        )

    whole_s, split_s = wall(False), wall(True)
    split = split_s < whole_s
    how = "in one pool" if pool and len(packages) > 1 else ("one after the other" if len(packages) > 1 else "")
    n = len(arch_weights(archs))
    reason = (
        f"predicted build {split_s:.0f} split vs {whole_s:.0f} whole ({slots} slots, {n} arch"
        f"{'s' if n != 1 else ''}{', ' + how if how else ''}; max(longest unit, CPU / slots) from "
        f"the costs measured in data/build_costs.toml, one-core seconds of the 2-core machine): "
        + (
            "the longest unit bounds the build, so split it"
            if split
            else "the total work bounds the build, and splitting only adds to it"
        )
    )
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
    named = ", then ".join(
        f"{p} ({longest(p):.0f} s)" if longest(p) is not None else f"{p} (no measured costs)" for p in order
    )
    return order, (
        f"{named}, by the longest unit{' (units split)' if split_units else ''} in data/build_costs.toml; "
        "the pool's one ninja starts every unit longest first (the units tables there), this order breaks ties"
    )


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


def bound(
    packages: Sequence[str], slots: int, *, split_units: bool, archs=1, nvcc_threads: int = 1
) -> tuple[float, float] | None:
    """(longest unit, total CPU / slots) of building ``packages`` in one pool, in the table's units; None when a
    package has no measured costs. Where the second is larger the units outnumber the slots: the total work,
    not one unit, bounds the build, and no unit needs nvcc --split-compile's threads."""
    known = package_costs()
    if any(p not in known for p in packages) or not packages:
        return None
    chosen = [(known[p].split or known[p].whole) if split_units else known[p].whole for p in packages]
    return _terms(chosen, slots, archs, nvcc_threads)


def work(packages: Sequence[str], *, split_units: bool, archs=1) -> float | None:
    """The CPU seconds of one core (the table's units) of building ``packages`` for ``archs``; None when unknown."""
    b = bound(packages, 1, split_units=split_units, archs=archs)
    return None if b is None else b[1]


def choose_threads(packages: Sequence[str], slots: int, *, split_units: bool, archs) -> ThreadsChoice | None:
    """nvcc --threads: 1 unless the longest unit, run one arch at a time, outlasts the work per slot (then slots
    idle at the end, and its archs are what can fill them): the fewest threads that bring it down to the work
    per slot, or one per arch. None when a package has no measured costs (the caller falls back)."""
    n = len(arch_weights(archs))
    one = bound(packages, slots, split_units=split_units, archs=archs, nvcc_threads=1)
    if one is None:
        return None
    longest1, spread = one
    where = (
        f"predicted with {slots} slots: the CPU work {spread:.0f} s per slot, the longest unit {longest1:.0f} s "
        "one arch at a time; one-core seconds of data/build_costs.toml"
    )
    if n == 1:
        return ThreadsChoice(1, "1: one arch, nothing for nvcc's threads to run side by side", "", longest1, spread)
    if spread >= longest1:
        return ThreadsChoice(
            1,
            f"1: the total work bounds the build, not one unit ({where}), so every slot is busy "
            "with a whole unit and more threads would only oversubscribe the CPUs",
            "work",
            longest1,
            spread,
        )

    def longest(t: int) -> float:
        b = bound(packages, slots, split_units=split_units, archs=archs, nvcc_threads=t)
        assert b is not None  # the same packages had a bound with one thread
        return b[0]

    threads = n
    for t in range(2, n + 1):
        if longest(t) <= spread:
            threads = t
            break
    longest_t = longest(threads)
    return ThreadsChoice(
        threads,
        f"{threads}: the longest unit bounds the build, not the total work ({where}), so "
        f"slots would idle at its end; {threads} archs at a time bring it to "
        f"{longest_t:.0f} s",
        "unit",
        longest_t,
        spread,
    )
