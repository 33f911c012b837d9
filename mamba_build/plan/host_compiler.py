"""Host compiler choice rules for nvcc (pure functions; discovery lives elsewhere).

nvcc refuses host compilers newer than its ``include/crt/host_config.h`` allows (``#if __GNUC__
> 11`` -> ``#error -- unsupported GNU version!``), and torch's cpp_extension has its own bounds
(``torch.utils.cpp_extension.CUDA_GCC_VERSIONS``: CUDA X.Y -> (min, max_excl)). The choice is the
newest gcc both accept; clang only when no gcc is acceptable; with ``allow_unsupported`` the
newest compiler found, flagged so the build passes ``-allow-unsupported-compiler``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mamba_build.errors import CompilerError

Version = tuple[int, ...]


@dataclass(frozen=True)
class HostLimits:
    """What a toolkit's host_config.h accepts (None: no such test found)."""

    gcc_max: int | None  # newest accepted gcc major (`__GNUC__ > 11` -> 11)
    clang_max: int | None  # newest accepted clang major (`__clang_major__ >= 15` -> 14)
    clang_min: tuple[int, int] | None  # oldest accepted clang (major, minor): "greater than 3.2" -> (3, 3)


@dataclass(frozen=True)
class CompilerCandidate:
    cc: str
    cxx: str
    kind: str  # "gcc" | "clang"
    version: Version


@dataclass(frozen=True)
class HostCompilerChoice:
    cc: str
    cxx: str
    version: Version
    reason: str
    unsupported_override: bool = False
    kind: str = "gcc"

    @property
    def nvcc_flags(self) -> list[str]:
        return ["-allow-unsupported-compiler"] if self.unsupported_override else []


_GCC_GT = re.compile(r"^\s*#\s*if\s+__GNUC__\s*>\s*(\d+)\s*$", re.M)
_GCC_GE = re.compile(r"^\s*#\s*if\s+__GNUC__\s*>=\s*(\d+)\s*$", re.M)
_CLANG_BLOCK = re.compile(r"^\s*#\s*if\s+defined\(__clang__\)(?P<cond>[^\n]*)$", re.M)
_CLANG_TEST = re.compile(
    r"\(\s*__clang_major__\s*>=\s*(?P<max>\d+)\s*\)\s*\|\|\s*\(\s*__clang_major__\s*<\s*(?P<minmaj>\d+)\s*\)"
    r"(?:\s*\|\|\s*\(\s*\(\s*__clang_major__\s*==\s*(?P<eqmaj>\d+)\s*\)\s*&&\s*\(\s*__clang_minor__\s*<\s*(?P<minmin>\d+)\s*\)\s*\))?"
)


def parse_host_config(text: str) -> HostLimits:
    """Read the gcc and clang version tests of nvcc's ``include/crt/host_config.h``.

    Only the generic Linux clang block counts (``#if defined(__clang__) && ...`` without
    ``__HORIZON__``/``__GRCO_CLANG_COMPILER__`` tests of their own); the first generic block wins.
    """
    gcc_max: int | None = None
    m = _GCC_GT.search(text)
    if m:
        gcc_max = int(m.group(1))
    else:
        m = _GCC_GE.search(text)
        if m:
            gcc_max = int(m.group(1)) - 1
    clang_max: int | None = None
    clang_min: tuple[int, int] | None = None
    for block in _CLANG_BLOCK.finditer(text):
        test = _CLANG_TEST.search(text, block.end())
        if not test:
            continue
        clang_max = int(test.group("max")) - 1
        if test.group("eqmaj") and int(test.group("eqmaj")) == int(test.group("minmaj")):
            clang_min = (int(test.group("minmaj")), int(test.group("minmin")))
        else:
            clang_min = (int(test.group("minmaj")), 0)
        break
    return HostLimits(gcc_max, clang_max, clang_min)


def torch_gcc_bounds(cuda: str, table: dict[str, tuple[Version, Version]]) -> tuple[Version, Version] | None:
    """(min, max_excl) for ``X.Y`` from a CUDA_GCC_VERSIONS-style table, or None."""
    parts = cuda.split(".")
    return table.get(".".join(parts[:2])) if len(parts) >= 2 else None


def _cmp(a: Version, b: Version) -> int:
    n = max(len(a), len(b))
    a2, b2 = tuple(a) + (0,) * (n - len(a)), tuple(b) + (0,) * (n - len(b))
    return (a2 > b2) - (a2 < b2)


def _vstr(v: Version) -> str:
    return ".".join(str(x) for x in v)


def _gcc_ok(c: CompilerCandidate, limits: HostLimits, bounds: tuple[Version, Version] | None) -> str | None:
    """None if accepted, else why not."""
    if limits.gcc_max is not None and c.version[0] > limits.gcc_max:
        return f"nvcc accepts gcc <= {limits.gcc_max}"
    if bounds is not None:
        lo, hi = bounds
        if _cmp(c.version, lo) < 0:
            return f"torch needs gcc >= {_vstr(lo)}"
        if _cmp(c.version, hi) >= 0:
            return f"torch needs gcc < {_vstr(hi)}"
    return None


def _clang_ok(c: CompilerCandidate, limits: HostLimits) -> str | None:
    if limits.clang_max is not None and c.version[0] > limits.clang_max:
        return f"nvcc accepts clang <= {limits.clang_max}"
    if limits.clang_min is not None and _cmp(c.version[:2], limits.clang_min) < 0:
        return f"nvcc needs clang >= {_vstr(limits.clang_min)}"
    return None


def wanted_gcc_major(limits: HostLimits, bounds: tuple[Version, Version] | None) -> int | None:
    """The newest gcc major both nvcc and torch accept (what to tell the user to install)."""
    candidates = []
    if limits.gcc_max is not None:
        candidates.append(limits.gcc_max)
    if bounds is not None:
        hi = tuple(bounds[1])
        candidates.append(hi[0] - 1 if all(x == 0 for x in hi[1:]) else hi[0])
    return min(candidates) if candidates else None


def install_hint(major: int | None) -> str:
    if major is None:
        return "install a gcc that this CUDA release supports"
    return (
        f"install gcc {major}: on Debian/Ubuntu `sudo apt-get install gcc-{major} g++-{major}`; "
        f"without root `conda install -c conda-forge gxx_linux-64={major}` "
        f"(then CC/CXX point at the x86_64-conda-linux-gnu-gcc/g++ it installs)"
    )


def choose_host_compiler(
    candidates: Sequence[CompilerCandidate],
    limits: HostLimits,
    torch_bounds: tuple[Version, Version] | None = None,
    *,
    cuda: str = "",
    allow_unsupported: bool = False,
) -> HostCompilerChoice:
    """Pick the host compiler for nvcc; CompilerError (exit 3) with an install hint if none fits."""
    label = f"CUDA {cuda}" if cuda else "this CUDA toolkit"
    gccs = sorted((c for c in candidates if c.kind == "gcc"), key=lambda c: tuple(c.version), reverse=True)
    clangs = sorted((c for c in candidates if c.kind == "clang"), key=lambda c: tuple(c.version), reverse=True)
    rejected: list[str] = []
    for c in gccs:
        why = _gcc_ok(c, limits, torch_bounds)
        if why is None:
            newer = [r for r in gccs if tuple(r.version) > tuple(c.version)]
            reason = f"gcc {_vstr(c.version)} is the newest gcc {label} accepts"
            if newer:
                reason += f" (skipped gcc {', '.join(_vstr(r.version) for r in newer)})"
            return HostCompilerChoice(c.cc, c.cxx, tuple(c.version), reason, False, "gcc")
        rejected.append(f"gcc {_vstr(c.version)} ({c.cxx}): {why}")
    for c in clangs:
        why = _clang_ok(c, limits)
        if why is None:
            return HostCompilerChoice(
                c.cc,
                c.cxx,
                tuple(c.version),
                f"no acceptable gcc; clang {_vstr(c.version)} is accepted by {label}",
                False,
                "clang",
            )
        rejected.append(f"clang {_vstr(c.version)} ({c.cxx}): {why}")
    major = wanted_gcc_major(limits, torch_bounds)
    if allow_unsupported and (gccs or clangs):
        pick = gccs[0] if gccs else clangs[0]
        return HostCompilerChoice(
            pick.cc,
            pick.cxx,
            tuple(pick.version),
            f"{pick.kind} {_vstr(pick.version)} is NOT supported by {label} (overridden with "
            f"-allow-unsupported-compiler): the build may fail or, worse, miscompile; "
            f"{install_hint(major)} to be safe",
            True,
            pick.kind,
        )
    found = "; ".join(rejected) if rejected else "no gcc or clang was found"
    raise CompilerError(
        f"no host compiler that {label} accepts: {found}",
        install_hint(major) + ", then rerun; or pass --allow-unsupported-compiler to try the newest "
        "one anyway (it may miscompile)",
    )
