"""The pin table (data/toolchains.toml): which wheels and .deb files make each CUDA release, and their
sha256."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mamba_build import tables
from mamba_build.errors import ToolkitError, UsageError

METADATA_NAME = "mamba-build-toolchain.json"
_NETWORK_MARKERS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "Connection refused",
    "No route to host",
    "SSLError",
    "ConnectionError",
)


# --------------------------------------------------------------------------------------------
# pin table


@dataclass(frozen=True)
class WheelFile:
    filename: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class WheelPin:
    name: str
    version: str
    root: str
    files: tuple[WheelFile, ...]
    members: tuple[str, ...] = ()  # only these prefixes (relative to root) are used; () = all

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def matching_file(self, filename: str) -> WheelFile | None:
        for f in self.files:
            if f.filename == filename:
                return f
        return None


@dataclass(frozen=True)
class DebPin:
    """One pinned Debian package; ``map`` moves paths of the unpacked .deb into the toolkit."""

    package: str
    version: str
    arch: str
    filename: str
    sha256: str
    size: int | None
    pool: str  # the file's path under the archive URI (for a manual download)
    map: tuple[tuple[str, str], ...]

    @property
    def requirement(self) -> str:
        return f"{self.package}={self.version}"


@dataclass(frozen=True)
class AptSource:
    uri: str
    suite: str
    components: tuple[str, ...]
    keyring: str
    arch: str = "amd64"

    def line(self, uri: str | None = None) -> str:
        return (
            f"deb [signed-by={self.keyring} arch={self.arch}] {(uri or self.uri).rstrip('/')} "
            f"{self.suite} {' '.join(self.components)}"
        )


@dataclass(frozen=True)
class ReleasePins:
    cuda: str
    wheels: tuple[WheelPin, ...]
    complete: bool = True
    missing: tuple[str, ...] = ()
    debs: tuple[DebPin, ...] = ()
    apt: AptSource | None = None
    nvcc_profile: str | None = None  # written to bin/nvcc.profile when set

    @property
    def source(self) -> str:
        return "debian" if self.debs else "pypi"

    @property
    def download_bytes(self) -> int:
        return sum(max((f.size or 0) for f in w.files) for w in self.wheels) + sum(d.size or 0 for d in self.debs)


def _load_table() -> dict[str, Any]:
    """The raw ``toolchains.toml`` (tests monkeypatch this to use a fake wheel set)."""
    return tables.load("toolchains")


def _parse_release(cuda: str, data: dict[str, Any], debian: dict[str, Any] | None = None) -> ReleasePins:
    """One ``[release."X.Y"]`` entry; ``debian`` is the table's shared ``[debian]`` section.

    For ``source = "debian"`` releases the entry names only what differs per release (the suite, the
    pinned .deb files); the archive (uri, components, keyring, arch) and, per Debian package, the
    ``map`` and ``nvcc_profile`` come from ``[debian]`` unless the entry sets them itself.
    """
    debian = debian or {}
    shared_pkgs: dict[str, Any] = debian.get("package", {})
    wheels = tuple(
        WheelPin(
            w["name"],
            str(w["version"]),
            w["root"].strip("/"),
            tuple(WheelFile(f["filename"], f["sha256"].lower(), f.get("size")) for f in w["files"]),
            tuple(m.strip("/") + "/" for m in w.get("members", ())),
        )
        for w in data.get("wheel", [])
    )

    def deb_map(d: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        pairs = d.get("map", shared_pkgs.get(d["package"], {}).get("map"))
        if not pairs:
            raise ToolkitError(
                f"the pin table's CUDA {cuda} entry has no `map` for {d['package']} "
                "(neither in [[deb]] nor in [debian.package])",
                "report this as a bug",
            )
        return tuple((str(a), str(b)) for a, b in pairs)

    debs = tuple(
        DebPin(
            d["package"],
            str(d["version"]),
            d.get("arch", "amd64"),
            d["filename"],
            d["sha256"].lower(),
            d.get("size"),
            d.get("pool", ""),
            deb_map(d),
        )
        for d in data.get("deb", [])
    )
    source = data.get("source", "debian" if debs else "pypi")
    apt = None
    if source == "debian" or "apt" in data:
        apt = {k: v for k, v in debian.items() if k != "package"} | dict(data.get("apt", {}))
    if source == "debian" and (
        not debs or not apt or any(k not in apt for k in ("uri", "suite", "components", "keyring"))
    ):
        raise ToolkitError(
            f"the pin table's CUDA {cuda} entry says source = debian but has no [[deb]] or no "
            "complete [apt] (uri, suite, components, keyring; shared keys in [debian])",
            "report this as a bug",
        )
    profile = data.get("nvcc_profile")
    if profile is None:
        profile = next(
            (shared_pkgs[d.package]["nvcc_profile"] for d in debs if "nvcc_profile" in shared_pkgs.get(d.package, {})),
            None,
        )
    return ReleasePins(
        cuda,
        wheels,
        bool(data.get("complete", True)),
        tuple(data.get("missing", ())),
        debs,
        AptSource(apt["uri"], apt["suite"], tuple(apt["components"]), apt["keyring"], apt.get("arch", "amd64"))
        if apt
        else None,
        profile,
    )


def pinned_releases() -> dict[str, ReleasePins]:
    """Every CUDA release in the pin table, complete or not, keyed ``"X.Y"``."""
    table = _load_table()
    return {v: _parse_release(v, d, table.get("debian")) for v, d in table.get("release", {}).items()}


def installable_releases() -> list[str]:
    """Releases ``install`` can assemble (from PyPI, or PyPI + Debian), oldest first."""
    return _sorted([v for v, p in pinned_releases().items() if p.complete])


def _sorted(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=lambda v: tables.version_tuple(v))


def _normalize_cuda(cuda: str) -> str:
    text = str(cuda).strip()
    if not re.fullmatch(r"\d+\.\d+(\.\d+)*", text):
        raise UsageError(
            f"{cuda!r} is not a CUDA version", f"pass --cuda X.Y, one of {', '.join(installable_releases()) or 'none'}"
        )
    major, minor = text.split(".")[:2]
    return f"{int(major)}.{int(minor)}"


def installable_text() -> str:
    """What ``install`` can assemble, for messages: the pinned releases and the majors resolved from the index."""
    from mamba_build.toolchain.toolkit_index import rules

    pinned = ", ".join(installable_releases()) or "none"
    resolved = ", ".join(f"any {m}.x" for m in sorted(rules()))
    return pinned + (
        f"; {resolved} NVIDIA publishes on the package index (resolved at install time)" if resolved else ""
    )


def release_pins(cuda: str) -> ReleasePins:
    """Pins for ``cuda`` (``"12.4"`` or ``"12.4.1"``) from the pin table; UsageError (exit 2) for a release not
    pinned. ``install`` resolves the releases of ``[resolve]`` majors from the index instead (toolkit_index)."""
    version = _normalize_cuda(cuda)
    releases = pinned_releases()
    if version not in releases:
        ok = installable_releases()
        raise UsageError(
            f"CUDA {cuda} is not a release mamba-build can install (installable: "
            f"{installable_text()}; pinned but incomplete on PyPI: "
            f"{', '.join(_sorted(v for v, p in releases.items() if not p.complete)) or 'none'})",
            f"use --cuda {ok[-1] if ok else 'X.Y'}, or install the CUDA {version} toolkit yourself "
            "(NVIDIA's runfile installs without root: sh cuda_<ver>_linux.run --silent --toolkit "
            "--toolkitpath=$HOME/cuda-<ver>) and point CUDA_HOME at it",
        )
    return releases[version]
