"""GPU architecture lists: parsing what users type, and turning them into nvcc flags."""

from __future__ import annotations

import re

from mamba_build.errors import UsageError

_ITEM = re.compile(r"^(?:sm_|compute_)?(\d{1,2})\.?(\d)([af]?)(\+ptx)?$", re.I)
KEYWORDS = ("native", "all")


def parse_arch_list(text: str, *, allow_keywords: bool = False) -> tuple[str, ...]:
    """'8.0,9.0+PTX' / 'sm_80 sm_90' / '90' -> ('8.0', '9.0+PTX'); malformed -> UsageError (exit 2)."""
    if text is None or not str(text).strip():
        raise UsageError("empty arch list", "give compute capabilities like --arch 8.0,9.0 (or native / all)")
    raw = [t for t in re.split(r"[,;\s]+", str(text).strip()) if t]
    if allow_keywords and len(raw) == 1 and raw[0].lower() in KEYWORDS:
        return (raw[0].lower(),)
    out: list[str] = []
    for item in raw:
        m = _ITEM.match(item)
        if not m:
            raise UsageError(
                f"malformed arch {item!r} in {text!r}",
                "use compute capabilities X.Y separated by commas, e.g. --arch 8.0,9.0 (append +PTX to "
                "also embed PTX: 9.0+PTX)" + ("; or the words native / all" if allow_keywords else ""),
            )
        major, minor, suffix, ptx = m.groups()
        norm = f"{int(major)}.{minor}{suffix.lower()}" + ("+PTX" if ptx else "")
        if norm not in out:
            out.append(norm)
    return tuple(out)


def sm_number(arch: str) -> int:
    """'9.0' / '9.0+PTX' / '9.0a' -> 90."""
    base = arch.split("+")[0].rstrip("af")
    major, minor = base.split(".")
    return int(major) * 10 + int(minor)


def gencode_flags(archs: tuple[str, ...]) -> list[str]:
    """Exactly the requested archs: SASS for each, plus PTX where '+PTX' is given."""
    flags: list[str] = []
    for arch in archs:
        base = arch.split("+")[0]
        suffix = base[-1] if base[-1] in "af" else ""
        num = f"{sm_number(arch)}{suffix}"
        codes = [f"sm_{num}"] + ([f"compute_{num}"] if arch.endswith("+PTX") else [])
        code = codes[0] if len(codes) == 1 else "[" + ",".join(codes) + "]"
        flags += ["-gencode", f"arch=compute_{num},code={code}"]
    return flags


def torch_arch_list(archs: tuple[str, ...]) -> str:
    """Value for TORCH_CUDA_ARCH_LIST ('8.0;9.0+PTX')."""
    return ";".join(archs)
