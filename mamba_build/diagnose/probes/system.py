"""Platform, glibc and machine resources. Returns data only."""

from __future__ import annotations

import os
import platform
import re
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PlatformInfo:
    system: str  # "Linux", "Darwin", "Windows"
    machine: str  # "x86_64", "aarch64"
    glibc: str | None  # "2.36", None when not glibc (musl, macOS)
    distro_id: str | None  # "debian", "ubuntu", ...
    distro_version: str | None
    distro_like: tuple[str, ...]


@dataclass(frozen=True)
class Resources:
    cpus: int
    mem_total_gb: float | None
    mem_available_gb: float | None
    disk_free_gb: float | None
    disk_path: str


def probe_platform(os_release: Path = Path("/etc/os-release")) -> PlatformInfo:
    glibc = None
    try:
        conf = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
        if conf and conf.startswith("glibc"):
            glibc = conf.split()[1]
    except (AttributeError, ValueError, OSError, IndexError):
        lib, ver = platform.libc_ver()
        glibc = ver if lib == "glibc" and ver else None
    fields: dict[str, str] = {}
    try:
        for line in os_release.read_text(encoding="utf-8", errors="replace").splitlines():
            if "=" in line:
                key, _, value = line.partition("=")
                fields[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return PlatformInfo(
        system=platform.system(),
        machine=platform.machine(),
        glibc=glibc,
        distro_id=fields.get("ID"),
        distro_version=fields.get("VERSION_ID"),
        distro_like=tuple(fields.get("ID_LIKE", "").split()),
    )


def _cgroup_cpu_limit() -> float | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    return None


def _meminfo() -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            m = re.match(r"(\w+):\s+(\d+)\s*kB", line)
            if m:
                out[m.group(1)] = int(m.group(2)) / (1024 * 1024)
    except OSError:
        pass
    return out


def _cgroup_mem_limit_gb() -> float | None:
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if text != "max":
            return int(text) / 1024**3
    except (OSError, ValueError):
        pass
    return None


def probe_resources(build_dir: str | os.PathLike[str] = ".") -> Resources:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit:
        cpus = max(1, min(cpus, int(limit)))
    mem = _meminfo()
    total = mem.get("MemTotal")
    avail = mem.get("MemAvailable")
    cg = _cgroup_mem_limit_gb()
    if cg is not None:
        total = min(total, cg) if total else cg
        avail = min(avail, cg) if avail else cg
    path = Path(build_dir)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = shutil.disk_usage(path).free / 1024**3
    except OSError:
        free = None
    return Resources(cpus=cpus, mem_total_gb=total, mem_available_gb=avail, disk_free_gb=free, disk_path=str(path))


_GLIBC_SYM = re.compile(rb"GLIBC_(2\.\d+(?:\.\d+)?)\x00")
_GLIBCXX_SYM = re.compile(rb"GLIBCXX_(3\.4(?:\.\d+)?)\x00")


def required_glibc(binary: Path, max_bytes: int = 64 * 1024 * 1024) -> tuple[str | None, str | None]:
    """Highest GLIBC_x.y and GLIBCXX_3.4.z version tags a shared object references.

    Version-need strings sit in .dynstr near the start of the file, so reading the first
    ``max_bytes`` is enough for real extension modules and bounded for huge ones.
    """
    try:
        with open(binary, "rb") as fh:
            data = fh.read(max_bytes)
    except OSError:
        return None, None

    def newest(pattern: re.Pattern[bytes]) -> str | None:
        found = {m.group(1).decode() for m in pattern.finditer(data)}
        if not found:
            return None
        return max(found, key=lambda v: tuple(int(p) for p in v.split(".")))

    return newest(_GLIBC_SYM), newest(_GLIBCXX_SYM)


def manylinux_glibc(tag: str) -> str | None:
    """'cp311-cp311-manylinux_2_28_x86_64' -> '2.28'; legacy aliases mapped per PEP 600."""
    legacy = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}
    m = re.search(r"manylinux_(\d+)_(\d+)_", tag)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    for name, ver in legacy.items():
        if f"{name}_" in tag:
            return ver
    return None
