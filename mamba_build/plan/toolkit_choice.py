"""Choosing among the toolkits the probes found. Pure functions over the environment model."""

from __future__ import annotations

import os

from packaging.version import InvalidVersion, Version

from mamba_build import tables
from mamba_build.diagnose.probes.toolkits import Toolkit
from mamba_build.errors import UsageError


def _version(tk: Toolkit) -> str:
    assert tk.version is not None  # a usable toolkit has one (Toolkit.usable)
    return tk.version


def validate_cuda_version(text: str) -> str:
    """'11.8' -> '11.8'; anything that is not a known CUDA release is a usage error."""
    try:
        v = Version(text.strip())
    except InvalidVersion:
        v = None
    known = tables.known_cuda_versions()
    if v is None or len(v.release) < 2 or f"{v.major}.{v.minor}" not in known:
        raise UsageError(
            f"unknown CUDA version {text!r}",
            f"use one of {', '.join(known)} (MAJOR.MINOR), e.g. --cuda {known[-1]}",
        )
    return f"{v.major}.{v.minor}"


def _rank(tk: Toolkit) -> tuple:
    v = Version(tk.version) if tk.version else Version("0")
    return (tk.usable, tk.has_cub, not tk.managed, v)


def choose_toolkit(
    toolkits: tuple[Toolkit, ...], *, cuda: str | None, torch_cuda: str | None, torch_pick: str | None
) -> tuple[Toolkit | None, str]:
    """The toolkit a build should use, and why.

    --cuda X.Y: a usable toolkit of exactly X.Y (system before mamba-build-managed). Otherwise: the
    one torch's cpp_extension would pick if it is a usable toolkit of torch's CUDA major, else the
    usable toolkit closest to torch's CUDA version within the same major.
    """
    usable = [t for t in toolkits if t.usable]
    if cuda:
        exact = [t for t in usable if t.version == cuda]
        if exact:
            best = max(exact, key=_rank)
            return best, f"--cuda {cuda}: {best.home} ({', '.join(best.sources)})"
        return None, f"no usable CUDA {cuda} toolkit found"
    picked = None
    if torch_pick:
        real = os.path.realpath(torch_pick)
        picked = next((t for t in usable if os.path.realpath(t.home) == real), None)
        if picked and (not torch_cuda or _version(picked).split(".")[0] == torch_cuda.split(".")[0]):
            return picked, f"the toolkit torch's cpp_extension picks ({torch_pick})"
    if torch_cuda:
        major = torch_cuda.split(".")[0]
        same_major = [t for t in usable if _version(t).split(".")[0] == major]
        if same_major:
            tv = Version(torch_cuda)
            best = min(same_major, key=lambda t: (abs(Version(_version(t)).minor - tv.minor), not t.has_cub, t.managed))
            return best, f"closest to torch's CUDA {torch_cuda}: {best.home}"
        # Nothing of torch's major: judge the toolkit a plain build would use, so the mismatch shows.
        fallback = picked if torch_pick and picked else (max(usable, key=_rank) if usable else None)
        if fallback:
            return fallback, (
                f"no toolkit of torch's CUDA major {major}; {fallback.home} (CUDA "
                f"{fallback.version}) is what a build would use"
            )
        return None, f"no usable toolkit with torch's CUDA major {major}"
    if usable:
        best = max(usable, key=_rank)
        return best, f"newest usable toolkit: {best.home}"
    return None, "no usable CUDA toolkit found"
