"""Typed access to the data files in ``mamba_build/data`` (sources are cited in each file)."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@functools.cache
def load(name: str) -> dict[str, Any]:
    """Parse ``mamba_build/data/<name>.toml`` once."""
    text = (resources.files("mamba_build") / "data" / f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True)
class CudaRelease:
    version: str
    min_driver: str | None  # None: not recorded (the release notes' driver table was not read for it)
    archs: tuple[int, ...]
    gcc_max: int
    clang_max: int


def cuda_releases() -> dict[str, CudaRelease]:
    data = load("cuda")["release"]
    return {
        v: CudaRelease(v, d.get("min_driver"), tuple(d["archs"]), d["gcc_max"], d["clang_max"]) for v, d in data.items()
    }


def cuda_release(version: str) -> CudaRelease | None:
    """Facts for ``X.Y``; None for a release we have no data on."""
    return cuda_releases().get(major_minor(version))


def known_cuda_versions() -> list[str]:
    return sorted(cuda_releases(), key=Version)


def minor_compat_driver(cuda_major: int) -> str | None:
    return load("cuda")["minor_compat_driver"].get(str(cuda_major))


def torch_pypi_cuda(torch_version: str) -> str | None:
    """CUDA version of the default PyPI wheel of a torch release (None if unknown)."""
    return load("torch")["pypi_default_cuda"].get(major_minor(torch_version))


def pkg_resources_verdict(setuptools_version: str) -> str | None:
    """Why `from pkg_resources import packaging` (torch 2.0.x's cpp_extension) fails with this
    setuptools, or None when it works (data/setuptools.toml)."""
    data = load("setuptools")["pkg_resources"]
    have = version_tuple(setuptools_version)
    if have >= version_tuple(data["removed_in"]):
        return f"setuptools {setuptools_version} has no pkg_resources (removed in {data['removed_in']})"
    for lo, hi in data["no_packaging"]:
        if version_tuple(lo) <= have < version_tuple(hi):
            return f"setuptools {setuptools_version}'s pkg_resources has no `packaging` ({lo} <= version < {hi})"
    return None


def pkg_resources_pin() -> str:
    """The setuptools requirement that still has pkg_resources.packaging ("setuptools<82")."""
    return load("setuptools")["pkg_resources"]["pin"]


def major_minor(version: str) -> str:
    v = Version(version.split("+")[0])
    return f"{v.major}.{v.minor}"


def version_tuple(text: str) -> tuple[int, ...]:
    """'580.65.06' -> (580, 65, 6); non-numeric parts end the tuple."""
    out: list[int] = []
    for part in text.strip().split("."):
        digits = ""
        for ch in part:
            if ch.isdigit():
                digits += ch
            else:
                break
        if not digits:
            break
        out.append(int(digits))
        if len(digits) != len(part):
            break
    return tuple(out)
