"""GPU architecture lists: the one parser of what users type, and the nvcc flags they become.

Grammar: compute capabilities ``MAJOR.MINOR`` with an optional ``a``/``f`` suffix (arch-specific /
family features) and ``+PTX`` (also embed PTX so newer GPUs can JIT), separated by commas, semicolons
or spaces: ``8.0,9.0+PTX``, ``9.0a``. The compile command also takes the words ``native``/``all``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from mamba_build.errors import UsageError

ARCH_RE = re.compile(r"^(?P<major>\d{1,2})\.(?P<minor>\d)(?P<suffix>[af]?)(?P<ptx>\+PTX)?$")
KEYWORDS = ("native", "all")
# What tools print and users paste: "sm_90", "sm_90a", "90", "9.0", "9.0A", "8.6+PTX".
LOOSE_ARCH_RE = re.compile(
    r"^(?:sm_)?(?P<major>\d{1,2})\.?(?P<minor>\d)(?P<suffix>[af]?)(?P<ptx>\+PTX)?$", re.IGNORECASE
)


def parse_arch(arch: str) -> re.Match:
    m = ARCH_RE.match(arch.strip())
    if not m:
        raise UsageError(
            f"malformed CUDA architecture {arch!r}",
            "write compute capabilities as MAJOR.MINOR, optionally with a/f and +PTX: --arch 8.0,9.0 or --arch 9.0+PTX",
        )
    return m


def parse_loose_arch(text: str) -> str | None:
    """'sm_90a' / '90' / '9.0A' / '8.6+ptx' -> '9.0a' / '9.0' / '9.0a' / '8.6+PTX' (the --arch form); None when the
    text is not one arch."""
    m = LOOSE_ARCH_RE.match(text.strip())
    if not m:
        return None
    return f"{int(m['major'])}.{m['minor']}{m['suffix'].lower()}{'+PTX' if m['ptx'] else ''}"


def parse_arch_list(text: str | Iterable[str], *, allow_keywords: bool = False) -> tuple[str, ...]:
    """'9.0,8.0' / '8.0 9.0+PTX' / ['9.0'] -> ('9.0', '8.0'); malformed -> UsageError (exit 2)."""
    if text is None:
        text = ""
    items = re.split(r"[,;\s]+", text.strip()) if isinstance(text, str) else [str(t).strip() for t in text]
    items = [i for i in items if i]
    if not items:
        raise UsageError(
            "empty CUDA architecture list", "pass e.g. --arch 9.0" + (" (or native / all)" if allow_keywords else "")
        )
    if allow_keywords and len(items) == 1 and items[0].lower() in KEYWORDS:
        return (items[0].lower(),)
    seen: list[str] = []
    for item in items:
        parse_arch(item)
        if item not in seen:
            seen.append(item)
    return tuple(seen)


def sm_number(arch: str) -> int:
    """'9.0' / '9.0+PTX' / '9.0a' -> 90."""
    m = parse_arch(arch)
    return int(m["major"]) * 10 + int(m["minor"])


def gencode_flags(archs: Sequence[str]) -> list[str]:
    """nvcc flags for exactly these archs: '9.0+PTX' -> sm_90 SASS and compute_90 PTX."""
    flags: list[str] = []
    for arch in archs:
        m = parse_arch(arch)
        num = f"{m['major']}{m['minor']}{m['suffix']}"
        flags += ["-gencode", f"arch=compute_{num},code=sm_{num}"]
        if m["ptx"]:
            flags += ["-gencode", f"arch=compute_{num},code=compute_{num}"]
    return flags


def torch_arch_list(archs: Sequence[str]) -> str:
    """Value for TORCH_CUDA_ARCH_LIST ('8.0;9.0+PTX')."""
    return ";".join(archs)


def sass_and_ptx(archs: Sequence[str]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """('8.0', '9.0+PTX') -> ((80, 90), (90,)): the SASS and PTX a build of these archs holds."""
    sass = tuple(sorted({sm_number(a) for a in archs}))
    ptx = tuple(sorted({sm_number(a) for a in archs if a.endswith("+PTX")}))
    return sass, ptx


def runs_on(sass: Iterable[int], ptx: Iterable[int], sm: int) -> bool:
    """Does a binary holding this SASS/PTX run on a GPU of compute capability ``sm`` (86 = 8.6)?

    SASS runs on the same major with a minor >= the built one; PTX is JIT-compiled onto any newer GPU.
    """
    return any(a // 10 == sm // 10 and a <= sm for a in sass) or any(p <= sm for p in ptx)
