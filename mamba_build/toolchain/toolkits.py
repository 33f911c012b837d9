"""CUDA toolkits assembled without root, kept under ``paths.toolchains_dir()``.

``install("13.0")`` downloads the pinned wheels (``data/toolchains.toml``) with pip, checks each
file's sha256 against the pins, unzips them into a staging folder next to the target and lays
them out as a normal CUDA_HOME::

    cuda-13.0/bin/nvcc (+ nvcc.profile, cudafe++, fatbinary, nvlink, ptxas)
    cuda-13.0/nvvm/bin/cicc, nvvm/libdevice
    cuda-13.0/include/ (runtime, crt/, cccl/, + cuBLAS/cuSPARSE/cuSOLVER headers when found)
    cuda-13.0/lib64/libcudart.so -> libcudart.so.13   (lib -> lib64)
    cuda-13.0/mamba-build-toolchain.json, mamba-build-toolchain.lock.json

CUDA 13.x releases the pin table does not list (13.1 and later) are resolved from the package index
at install time through NVIDIA's ``cuda-toolkit`` metapackage (:mod:`mamba_build.toolchain.toolkit_index`, the
``[resolve]`` table) and installed the same way; every install writes the wheel set it used (files,
sha256) to ``mamba-build-toolchain.lock.json`` next to the toolkit, and ``install(lock=...)`` installs
exactly such a set again.

``bin/nvcc --version`` is run in the staging folder; only then is it renamed into place, so a
failure or Ctrl-C leaves nothing half-made. Releases whose PyPI wheels lack the compiler driver
(every 11.x and 12.x: their nvcc wheels hold only ptxas, libnvvm and headers) are pinned but
refused with an explanation; see the comments in ``data/toolchains.toml``.

``source = "debian"`` releases (11.8 from Debian 12 bookworm, 12.4 from Debian 13 trixie) take the
compiler (nvcc, cicc, ptxas, cudafe++, fatbinary, nvlink, bin2c, libdevice) from a pinned Debian
``.deb`` instead: apt's own client downloads it
without root through a private configuration (its own sources list, state and cache folders under
the cache; the system's apt state is never read or written; the archive signature is checked with
the system's Debian keyring), its sha256 is checked against the pin, ``dpkg-deb -x`` unpacks it
into the staging folder, the pin table's ``map`` moves the files into the CUDA_HOME layout and
``bin/nvcc.profile`` is written from the pin table (Debian's points at /usr/lib/nvidia-cuda-toolkit
and relies on /usr/include). Headers and libcudart still come from the pinned PyPI wheels. The archive,
the ``map`` and the profile are shared by those releases (``[debian]`` in the pin table); an entry
names its suite and its pinned .deb files.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fnmatch
import json
import os
import re
import shutil
import stat
import sys
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamba_build import paths, runner, tables
from mamba_build.errors import DiskFullError, NetworkError, SourceError, ToolkitError, UsageError
from mamba_build.hashing import sha256_file

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


# --------------------------------------------------------------------------------------------
# installed toolkits


@dataclass
class ToolchainInfo:
    cuda: str
    path: Path
    nvcc_version: str = ""  # "13.0.88"
    nvcc_version_text: str = ""  # full `nvcc --version` output
    archs: list[int] = field(default_factory=list)  # from `nvcc --list-gpu-arch`
    wheels: list[dict[str, Any]] = field(default_factory=list)
    debs: list[dict[str, Any]] = field(default_factory=list)  # source = "debian" releases
    created: str = ""
    layout: dict[str, str] = field(default_factory=dict)
    math_headers: dict[str, Any] | None = None  # {"source": dir, "files": [...]}, or None
    origin: str = ""  # "pin table", "index (cuda-toolkit 13.5.0)" or "lock <file>"

    @property
    def lock_file(self) -> Path:
        """The wheel set (names, versions, files, sha256) this toolkit was assembled from."""
        from mamba_build.toolchain.toolkit_index import LOCK_NAME

        return self.path / LOCK_NAME

    @property
    def cuda_home(self) -> Path:
        return self.path

    @property
    def nvcc(self) -> Path:
        return self.path / "bin" / "nvcc"

    @property
    def host_config(self) -> Path:
        return self.path / "include" / "crt" / "host_config.h"

    @property
    def has_math_headers(self) -> bool:
        return bool(self.math_headers) and (self.path / "include" / "cublas_v2.h").is_file()

    def env(self) -> dict[str, str]:
        """Environment additions that make nvcc and torch's cpp_extension use this toolkit."""
        return {
            "CUDA_HOME": str(self.path),
            "CUDA_PATH": str(self.path),
            "PATH": f"{self.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "cuda": self.cuda,
            "nvcc_version": self.nvcc_version,
            "nvcc_version_text": self.nvcc_version_text,
            "archs": self.archs,
            "wheels": self.wheels,
            "debs": self.debs,
            "created": self.created,
            "layout": self.layout,
            "math_headers": self.math_headers,
            "origin": self.origin,
        }

    @classmethod
    def from_dir(cls, path: Path) -> ToolchainInfo | None:
        try:
            data = json.loads((path / METADATA_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or "cuda" not in data:
            return None
        return cls(
            cuda=str(data["cuda"]),
            path=path,
            nvcc_version=data.get("nvcc_version", ""),
            nvcc_version_text=data.get("nvcc_version_text", ""),
            archs=list(data.get("archs", [])),
            wheels=list(data.get("wheels", [])),
            debs=list(data.get("debs", [])),
            created=data.get("created", ""),
            layout=dict(data.get("layout", {})),
            math_headers=data.get("math_headers"),
            origin=data.get("origin", ""),
        )


def toolkit_dir(cuda: str) -> Path:
    return paths.toolchains_dir() / f"cuda-{_normalize_cuda(cuda)}"


def list_installed() -> list[ToolchainInfo]:
    """Toolkits installed by ``install`` (staging leftovers and foreign folders are ignored)."""
    root = paths.toolchains_dir()
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.is_dir() and re.fullmatch(r"cuda-\d+\.\d+", child.name):
            info = ToolchainInfo.from_dir(child)
            if info is not None:
                found.append(info)
    return sorted(found, key=lambda i: tables.version_tuple(i.cuda))


def find(cuda: str) -> ToolchainInfo | None:
    """The installed toolkit for ``X.Y`` (a patch level is ignored), or None."""
    try:
        version = _normalize_cuda(cuda)
    except UsageError:
        return None
    info = ToolchainInfo.from_dir(paths.toolchains_dir() / f"cuda-{version}")
    if info is None or not info.nvcc.exists():
        return None
    return info


def remove(cuda: str) -> Path:
    """Delete the installed toolkit for ``X.Y``; returns the path removed."""
    version = _normalize_cuda(cuda)
    target = paths.toolchains_dir() / f"cuda-{version}"
    if not target.exists():
        installed = ", ".join(i.cuda for i in list_installed()) or "none"
        raise UsageError(
            f"no toolkit for CUDA {version} is installed (installed: {installed})",
            "run `mamba-build toolchain list` to see what is installed",
        )
    doomed = target.with_name(f"{target.name}.rm-{os.getpid()}")
    os.rename(target, doomed)  # atomic: a half-deleted toolkit is never visible under its name
    shutil.rmtree(doomed, ignore_errors=True)
    return target


# --------------------------------------------------------------------------------------------
# install


def release_for_install(
    cuda: str, *, index_url: str | None = None, find_links: Path | str | None = None, lock: Path | None = None
) -> tuple[ReleasePins, str, dict[str, Any] | None]:
    """(pins, origin, resolved lock or None) of what ``install`` assembles for ``cuda``: the ``lock`` file when
    given, else the pin table's entry, else (a ``[resolve]`` major) the wheel set resolved from the index."""
    from mamba_build.toolchain import toolkit_index

    version = _normalize_cuda(cuda)
    if lock is not None:
        pins, data = toolkit_index.pins_from_lock(Path(lock), version)
        return pins, f"lock {lock}", data
    if version in pinned_releases() or not toolkit_index.resolvable(version):
        return release_pins(version), "pin table", None
    if find_links and not index_url:
        raise UsageError(
            f"CUDA {version} is resolved from the package index at install time, and --find-links without "
            "--index-url works offline",
            f"install it once where the index is reachable and pass its {toolkit_index.LOCK_NAME} here with "
            "--lock FILE --find-links DIR (the wheels it names in DIR); or add --index-url",
        )
    pins, data = toolkit_index.resolve(version, index_url=index_url)
    meta = data["metapackage"]
    return pins, f"index ({meta['name']} {meta['version']})", data


def install(
    cuda: str,
    *,
    wheels_dir: Path | None = None,
    index_url: str | None = None,
    find_links: Path | str | None = None,
    math_headers_from: Path | Sequence[Path] | None = None,
    force: bool = False,
    timeout: float = 1800.0,
    debs_dir: Path | None = None,
    debian_mirror: str | None = None,
    lock: Path | None = None,
) -> ToolchainInfo:
    """Assemble the toolkit for CUDA ``cuda`` from pinned PyPI wheels; see the module docstring.

    Releases the pin table does not list are resolved from the index at install time (majors of its
    ``[resolve]`` table; :mod:`mamba_build.toolchain.toolkit_index`); ``lock``: install exactly the wheel set of a
    lock file instead. Either way the wheel set is written next to the toolkit as its lock file.

    ``wheels_dir``: where downloaded wheels are kept (default: the cache's ``wheels/nvidia``);
    files already there with the pinned sha256 are not downloaded again. ``find_links``: a folder
    of wheels downloaded elsewhere (offline installs); used first, and pip is then run with
    ``--no-index`` unless ``index_url`` is also given. ``math_headers_from``: an include folder (or
    a site-packages) holding cublas_v2.h / cusparse.h / cusolverDn.h; default: the site-packages
    of this Python. An existing toolkit is returned as is unless ``force``.

    For ``source = "debian"`` releases also: ``debs_dir``, where downloaded .deb files are kept
    (default: the cache's ``debs``; apt's private lists live in its ``apt/`` subfolder);
    ``find_links`` is searched for the pinned .deb files too; ``debian_mirror`` replaces the
    archive URI of the pin table (e.g. a local mirror).
    """
    target = paths.toolchains_dir() / f"cuda-{_normalize_cuda(cuda)}"
    if target.exists() and not force:
        existing = ToolchainInfo.from_dir(target)
        if existing is not None and existing.nvcc.exists():
            return existing
    pins, origin, resolved = release_for_install(cuda, index_url=index_url, find_links=find_links, lock=lock)
    if not pins.complete:
        raise ToolkitError(
            f"NVIDIA's PyPI wheels for CUDA {pins.cuda} do not contain a compiler: "
            f"{pins.wheels[0].requirement if pins.wheels else 'the nvcc wheel'} holds only ptxas, "
            f"libnvvm and headers ({', '.join(pins.missing)} are missing), so no CUDA {pins.cuda} "
            "toolkit can be assembled from PyPI",
            f"install the CUDA {pins.cuda} toolkit without root with NVIDIA's runfile "
            f"(sh cuda_{pins.cuda}.*_linux.run --silent --toolkit --toolkitpath=$HOME/cuda-{pins.cuda}) "
            f"or with conda (conda install -c nvidia/label/cuda-{pins.cuda}.0 cuda-nvcc cuda-cudart-dev "
            f"libcublas-dev libcusparse-dev libcusolver-dev) and set CUDA_HOME to it; or build with "
            f"a release that PyPI does provide: {installable_text()}",
        )
    target = paths.toolchains_dir(create=True) / f"cuda-{pins.cuda}"

    wheel_store = Path(wheels_dir) if wheels_dir else paths.wheel_cache_dir() / "nvidia"
    files = fetch_wheels(pins, wheel_store, index_url=index_url, find_links=find_links, timeout=timeout)
    debs: dict[str, Path] = {}
    if pins.debs:
        deb_store = Path(debs_dir) if debs_dir else paths.cache_home() / "debs"
        debs = fetch_debs(pins, deb_store, find_links=find_links, mirror=debian_mirror, timeout=timeout)

    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    _rmtree(staging)
    try:
        layout = assemble(pins, files, staging, debs=debs)
        headers = _add_math_headers(staging, pins.cuda, math_headers_from)
        info = _validate(staging, pins, files, layout, headers, debs, origin=origin)
        from mamba_build.toolchain.toolkit_index import lock_data

        info.lock_file.write_text(json.dumps(lock_data(pins, origin, resolved), indent=2) + "\n", encoding="utf-8")
        _commit(staging, target)
        info.path = target
        return info
    except OSError as exc:
        _rmtree(staging)
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"no space left while assembling {staging}",
                f"free at least {2 * pins.download_bytes // 2**20 + 200} MB under "
                f"{paths.cache_home()} (or set MAMBA_BUILD_CACHE to a larger disk) and rerun",
            ) from exc
        raise
    except BaseException:
        _rmtree(staging)
        raise


def _commit(staging: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f"{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        _rmtree(old)


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def _pinned_file_in(pin: WheelPin, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        for f in pin.files:
            candidate = folder / f.filename
            if candidate.is_file() and sha256_file(candidate) == f.sha256:
                return candidate
    return None


def fetch_wheels(
    pins: ReleasePins,
    store: Path,
    *,
    index_url: str | None = None,
    find_links: Path | str | None = None,
    timeout: float = 1800.0,
) -> dict[str, Path]:
    """Pinned wheel files of ``pins`` (name -> path), verified; downloads only what is missing."""
    store.mkdir(parents=True, exist_ok=True)
    local_dirs = [store] + ([Path(find_links)] if find_links and Path(find_links).is_dir() else [])
    found: dict[str, Path] = {}
    todo: list[WheelPin] = []
    for pin in pins.wheels:
        hit = _pinned_file_in(pin, local_dirs)
        if hit is not None:
            found[pin.name] = hit
        else:
            todo.append(pin)
    if todo:
        _pip_download(todo, store, index_url=index_url, find_links=find_links, timeout=timeout)
        for pin in todo:
            found[pin.name] = _verify_downloaded(pin, store)
    return found


def _pip_download(
    pins: Sequence[WheelPin], dest: Path, *, index_url: str | None, find_links: Path | str | None, timeout: float
) -> None:
    argv: list[str] = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
    ]
    if index_url:
        argv += ["--index-url", index_url]
    if find_links:
        argv += ["--find-links", str(find_links)]
        if not index_url:
            argv.append("--no-index")
    argv += [p.requirement for p in pins]
    result = runner.run(argv, timeout=timeout)
    if result.ok:
        return
    out = result.output
    tail = "\n".join(out.strip().splitlines()[-15:])
    if result.timed_out or any(m in out for m in _NETWORK_MARKERS):
        raise NetworkError(
            "pip could not reach the package index to download " + ", ".join(p.requirement for p in pins),
            "download the wheels on a machine with internet (pip download --no-deps -d wheels "
            + " ".join(p.requirement for p in pins)
            + "), copy the folder here and rerun with "
            "--find-links <that folder>; or pass --index-url for a reachable mirror",
            details=tail,
        )
    if result.missing:
        raise ToolkitError(
            f"could not run pip with {sys.executable}",
            f"install pip into this Python ({sys.executable} -m ensurepip) and rerun",
            details=result.stderr,
        )
    raise SourceError(
        "pip download failed for " + ", ".join(p.requirement for p in pins),
        "check that the index (or --find-links folder) has these exact versions for this platform; "
        "the full pip output is in the command log under " + str(paths.logs_dir()),
        details=tail,
    )


def _verify_downloaded(pin: WheelPin, store: Path) -> Path:
    stem = pin.name.replace("-", "_") + "-" + pin.version + "-"
    candidates = sorted(p for p in store.glob("*.whl") if p.name.lower().startswith(stem.lower()))
    if not candidates:
        raise SourceError(
            f"pip reported success but no {pin.requirement} wheel is in {store}",
            "rerun; if it persists, pass --find-links with the pinned wheel files",
        )
    for path in candidates:
        expected = pin.matching_file(path.name)
        if expected is None:
            continue
        actual = sha256_file(path)
        if actual == expected.sha256:
            return path
        bad = path.with_name(path.name + ".bad-sha256")
        os.replace(path, bad)
        raise SourceError(
            f"sha256 of {path.name} is {actual}, the pin says {expected.sha256}",
            f"the file was moved to {bad.name}; rerun to download it again. If it differs again, "
            "your index or mirror serves a different file: use --index-url https://pypi.org/simple "
            "or --find-links with the wheel downloaded from PyPI",
        )
    names = ", ".join(p.name for p in candidates)
    raise SourceError(
        f"pip downloaded {names} for {pin.requirement}, a file that is not pinned "
        f"(pinned: {', '.join(f.filename for f in pin.files)})",
        "pinned toolkits exist for manylinux x86_64 only; on another platform install the CUDA "
        "toolkit yourself and set CUDA_HOME",
    )


# --------------------------------------------------------------------------------------------
# Debian packages (source = "debian"): apt's own client, run without root and without the system's
# apt state


_APT_NETWORK_MARKERS = (
    "Could not resolve",
    "Temporary failure resolving",
    "Failed to fetch",
    "Could not connect",
    "Connection failed",
    "Connection timed out",
    "Unable to connect",
    "Network is unreachable",
    "No route to host",
)
_APT_SIGNATURE_MARKERS = (
    "NO_PUBKEY",
    "is not signed",
    "EXPKEYSIG",
    "BADSIG",
    "The following signatures couldn't be verified",
    "Signed-By",
    "signed-by",
)


def _pinned_deb_in(pin: DebPin, folders: Sequence[Path]) -> Path | None:
    for folder in folders:
        candidate = folder / pin.filename
        if candidate.is_file() and sha256_file(candidate) == pin.sha256:
            return candidate
    return None


def fetch_debs(
    pins: ReleasePins,
    store: Path,
    *,
    find_links: Path | str | None = None,
    mirror: str | None = None,
    timeout: float = 1800.0,
) -> dict[str, Path]:
    """Pinned .deb files of ``pins`` (package -> path), sha256-verified; downloads only what is missing."""
    store.mkdir(parents=True, exist_ok=True)
    local_dirs = [store] + ([Path(find_links)] if find_links and Path(find_links).is_dir() else [])
    found: dict[str, Path] = {}
    todo: list[DebPin] = []
    for pin in pins.debs:
        hit = _pinned_deb_in(pin, local_dirs)
        if hit is not None:
            found[pin.package] = hit
        else:
            todo.append(pin)
    if todo:
        assert pins.apt is not None
        _apt_download(pins.apt, todo, store, mirror=mirror, timeout=timeout)
        for pin in todo:
            found[pin.package] = _verify_deb(pin, store)
    return found


def apt_options(source: AptSource, root: Path, mirror: str | None = None) -> list[str]:
    """``-o`` options that make apt-get use only a private sources list, state and cache under ``root``.

    Nothing of the system's apt state is read or written: the sources list, the lists, the
    package cache and the (empty) dpkg status are ours, locking is off (no root needed), and the
    system's preferences (pinning) are ignored. apt.conf(.d) still applies, so a configured proxy
    is honoured. The archive signature is checked against ``source.keyring`` (Signed-By).
    """
    state, cache = root / "state", root / "cache"
    for d in (state / "lists" / "partial", cache / "archives" / "partial"):
        d.mkdir(parents=True, exist_ok=True)
    sources = root / "sources.list"
    sources.write_text(source.line(mirror) + "\n", encoding="utf-8")
    status = state / "status"
    if not status.exists():
        status.write_text("", encoding="utf-8")
    opts = {
        "Dir::Etc::SourceList": str(sources),
        "Dir::Etc::SourceParts": "/dev/null",
        "Dir::Etc::Preferences": "/dev/null",
        "Dir::Etc::PreferencesParts": "/dev/null",
        "Dir::State": str(state),
        "Dir::State::status": str(status),
        "Dir::Cache": str(cache),
        "Debug::NoLocking": "1",
        "APT::Architecture": source.arch,
        "APT::Architectures": source.arch,
        "Acquire::Languages": "none",
    }
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # as root apt hands downloads to the `_apt` user, who cannot write into a user's cache
        opts["APT::Sandbox::User"] = "root"
    out: list[str] = []
    for key, value in opts.items():
        out += ["-o", f"{key}={value}"]
    return out


def _manual_deb_hint(source: AptSource, pins: Sequence[DebPin], mirror: str | None) -> str:
    base = (mirror or source.uri).rstrip("/")
    urls = " ".join(f"{base}/{p.pool}" for p in pins)
    sums = ", ".join(f"{p.filename}: {p.sha256}" for p in pins)
    return (
        f"download {urls} (or the same files from https://snapshot.debian.org) on any machine, check "
        f"their sha256 ({sums}), copy them into a folder here and rerun with --find-links <that folder>"
    )


def _apt_download(source: AptSource, pins: Sequence[DebPin], dest: Path, *, mirror: str | None, timeout: float) -> None:
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise ToolkitError(
            "apt-get is not available, so the Debian packages "
            + ", ".join(p.requirement for p in pins)
            + " cannot be downloaded here",
            _manual_deb_hint(source, pins, mirror),
        )
    if not Path(source.keyring).is_file():
        raise ToolkitError(
            f"the Debian archive keyring {source.keyring} is missing, so apt cannot check the archive's signature",
            "install it (apt-get install debian-archive-keyring), or " + _manual_deb_hint(source, pins, mirror),
        )
    opts = apt_options(source, dest / "apt", mirror)
    update = runner.run([apt_get, *opts, "update"], timeout=timeout)
    out = update.output
    if update.timed_out or (not update.ok and any(m in out for m in _APT_NETWORK_MARKERS)):
        raise NetworkError(
            f"apt-get could not reach the Debian archive {mirror or source.uri}",
            "check the connection or proxy (apt honours Acquire::http::Proxy in apt.conf), pass "
            "--debian-mirror URL for a reachable mirror, or " + _manual_deb_hint(source, pins, mirror),
            details="\n".join(out.strip().splitlines()[-10:]),
        )
    if any(m in out for m in _APT_SIGNATURE_MARKERS) and not update.ok:
        raise SourceError(
            f"apt-get could not verify the signature of {mirror or source.uri} {source.suite} with {source.keyring}",
            "update debian-archive-keyring, or " + _manual_deb_hint(source, pins, mirror),
            details="\n".join(out.strip().splitlines()[-10:]),
        )
    if not update.ok:
        raise SourceError(
            f"apt-get update failed for {source.line(mirror)}",
            "the full output is in the command log under " + str(paths.logs_dir()),
            details="\n".join(out.strip().splitlines()[-10:]),
        )
    download = runner.run([apt_get, *opts, "download", *[p.requirement for p in pins]], cwd=dest, timeout=timeout)
    if download.ok:
        return
    out = download.output
    tail = "\n".join(out.strip().splitlines()[-10:])
    if download.timed_out or any(m in out for m in _APT_NETWORK_MARKERS):
        raise NetworkError(
            "apt-get could not download " + ", ".join(p.requirement for p in pins),
            "rerun; or " + _manual_deb_hint(source, pins, mirror),
            details=tail,
        )
    raise SourceError(
        "apt-get download failed for "
        + ", ".join(p.requirement for p in pins)
        + f" from {mirror or source.uri} {source.suite} ({' '.join(source.components)})",
        "the pinned version may have been replaced by a newer Debian point release; "
        + _manual_deb_hint(source, pins, mirror),
        details=tail,
    )


def _verify_deb(pin: DebPin, store: Path) -> Path:
    path = store / pin.filename
    if not path.is_file():
        raise SourceError(
            f"apt-get reported success but {pin.filename} is not in {store}",
            "rerun; if it persists, pass --find-links with the pinned .deb files",
        )
    actual = sha256_file(path)
    if actual == pin.sha256:
        return path
    bad = path.with_name(path.name + ".bad-sha256")
    os.replace(path, bad)
    raise SourceError(
        f"sha256 of {path.name} is {actual}, the pin says {pin.sha256}",
        f"the file was moved to {bad.name}; rerun to download it again. If it differs again, the archive "
        "serves a different build of the package: download the pinned file from "
        f"https://snapshot.debian.org and pass --find-links",
    )


# --------------------------------------------------------------------------------------------
# assembly


def _extract(zip_path: Path, root: str, dest: Path, members: Sequence[str] = ()) -> list[str]:
    """Extract the members under ``root/`` of a wheel into ``dest`` (``root/`` stripped).

    Executable bits are restored from the zip's external attributes (zipfile drops them).
    ``__init__.py`` files and the ``.metadata`` folder (NVIDIA's build scans) are skipped.
    """
    written: list[str] = []
    prefix = root.strip("/") + "/"
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise SourceError(
            f"{zip_path.name} is not a valid wheel (zip): {exc}", f"delete {zip_path} and rerun to download it again"
        ) from exc
    with zf:
        for info in zf.infolist():
            name = info.filename
            if not name.startswith(prefix) or name.endswith("/"):
                continue
            rel = name[len(prefix) :]
            parts = rel.split("/")
            if any(p in ("", ".", "..") for p in parts) or rel.startswith("/"):
                raise SourceError(
                    f"{zip_path.name} has an unsafe member path {name!r}",
                    "delete the file and download it again from PyPI",
                )
            if parts[-1] == "__init__.py" or parts[0] == ".metadata":
                continue
            if members and not any(rel.startswith(m) for m in members):
                continue
            out = dest.joinpath(*parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise SourceError(
                    f"{zip_path.name} is corrupt ({name}: {exc})", f"delete {zip_path} and rerun to download it again"
                ) from exc
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(out, mode | stat.S_IRUSR | stat.S_IWUSR)
            written.append(rel)
    return written


def _safe_rel(rel: str) -> list[str]:
    parts = rel.strip("/").split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ToolkitError(f"the pin table maps an unsafe path {rel!r}", "report this as a bug")
    return parts


def _extract_deb(deb: Path, pin: DebPin, dest: Path) -> list[str]:
    """``dpkg-deb -x`` the package into a folder inside ``dest``, then move ``pin.map`` into place."""
    unpacked = dest / f".deb-{pin.package}"
    _rmtree(unpacked)
    unpacked.mkdir(parents=True)
    result = runner.run(["dpkg-deb", "-x", deb, unpacked], timeout=600)
    if result.missing:
        raise ToolkitError(
            "dpkg-deb is not available to unpack " + deb.name,
            "install dpkg (on Debian/Ubuntu it is always there; elsewhere: your distribution's "
            "`dpkg` package) and rerun",
        )
    if not result.ok:
        if "No space left" in result.output:
            raise OSError(errno.ENOSPC, "No space left on device", str(unpacked))
        raise SourceError(
            f"{deb.name} could not be unpacked: {result.output.strip()[-300:]}",
            f"delete {deb} and rerun to download it again",
        )
    moved: list[str] = []
    for src_rel, dst_rel in pin.map:
        src = unpacked.joinpath(*_safe_rel(src_rel))
        dst = dest.joinpath(*_safe_rel(dst_rel))
        if not os.path.lexists(src):
            raise SourceError(
                f"{deb.name} has no {src_rel}", "the pin table's `map` does not match the package; report this as a bug"
            )
        dst.parent.mkdir(parents=True, exist_ok=True)
        _rmtree(dst)
        os.rename(src, dst)
        moved.append(dst_rel)
    _rmtree(unpacked)
    return moved


def assemble(
    pins: ReleasePins, files: dict[str, Path], dest: Path, debs: dict[str, Path] | None = None
) -> dict[str, str]:
    """Unpack ``files`` (wheel name -> path) and ``debs`` (package -> path) into ``dest`` as a CUDA_HOME."""
    dest.mkdir(parents=True)
    for pin in pins.wheels:
        written = _extract(files[pin.name], pin.root, dest, pin.members)
        if not written:
            raise SourceError(
                f"{files[pin.name].name} has nothing under {pin.root}/"
                + (f" ({', '.join(pin.members)})" if pin.members else ""),
                "the pin table's `root` does not match the wheel; report this as a bug",
            )
    layout: dict[str, str] = {}
    for deb_pin in pins.debs:
        if debs is None or deb_pin.package not in debs:
            raise ToolkitError(f"no .deb file was given for {deb_pin.requirement}", "report this as a bug")
        for rel in _extract_deb(debs[deb_pin.package], deb_pin, dest):
            layout[rel] = f"from {deb_pin.package} {deb_pin.version}"
    if pins.nvcc_profile is not None:
        profile = dest / "bin" / "nvcc.profile"
        profile.parent.mkdir(parents=True, exist_ok=True)
        _rmtree(profile)
        profile.write_text(pins.nvcc_profile.lstrip("\n"), encoding="utf-8")
        layout["bin/nvcc.profile"] = "written from the pin table ($(TOP) = the toolkit folder)"
    lib, lib64 = dest / "lib", dest / "lib64"
    if lib.is_dir() and not lib.is_symlink() and not lib64.exists():
        os.rename(lib, lib64)
        os.symlink("lib64", lib)
        layout["lib"] = "symlink to lib64"
    elif lib.is_dir() and lib64.is_dir():
        for item in lib.iterdir():
            if not (lib64 / item.name).exists():
                os.rename(item, lib64 / item.name)
        shutil.rmtree(lib)
        os.symlink("lib64", lib)
        layout["lib"] = "merged into lib64, symlink"
    lib64.mkdir(exist_ok=True)
    for base in ("libcudart.so", "libnvvm.so"):
        unversioned = lib64 / base
        versioned = sorted(p.name for p in lib64.glob(base + ".*") if p.is_file())
        if not unversioned.exists() and versioned:
            os.symlink(versioned[0], unversioned)
            layout[f"lib64/{base}"] = f"symlink to {versioned[0]}"
    # nvcc.profile points CICC_PATH at $(TOP)/nvvm/bin and adds -I$(TOP)/include: check them
    for needed in (
        "bin/nvcc",
        "nvvm/bin/cicc",
        "include/cuda_runtime.h",
        "include/crt/host_config.h",
        "lib64/libcudart.so",
    ):
        if not (dest / needed).exists():
            raise ToolkitError(
                f"the assembled toolkit lacks {needed}", "the pinned wheel set is incomplete; report this as a bug"
            )
    layout.update(
        {
            "bin": "bin/nvcc",
            "cicc": "nvvm/bin/cicc",
            "include": "include",
            "cccl": "include/cccl" if (dest / "include" / "cccl").is_dir() else "include",
        }
    )
    return layout


def _math_header_dirs(cuda: str, source: Path | Sequence[Path] | None) -> list[Path]:
    spec = _load_table().get("math_headers", {})
    rels = spec.get(cuda.split(".")[0], [])
    if source is not None and not isinstance(source, (str, os.PathLike)):
        return [Path(s) for s in source]  # include folders as given (e.g. the target environment's)
    if source is not None:
        source = Path(source)
        return [source] + [source / r for r in rels]
    dirs = []
    for entry in sys.path:
        if entry and os.path.basename(entry) in ("site-packages", "dist-packages"):
            dirs += [Path(entry) / r for r in rels]
    return dirs


def _add_math_headers(dest: Path, cuda: str, source: Path | Sequence[Path] | None) -> dict[str, Any] | None:
    """Copy cuBLAS/cuSPARSE/cuSOLVER headers (torch's CUDA headers include them) into include/."""
    globs = _load_table().get("math_headers", {}).get("globs", [])
    include = dest / "include"
    copied: list[str] = []
    sources: list[str] = []
    for folder in _math_header_dirs(cuda, source):
        if not folder.is_dir():
            continue
        hits = [p for p in sorted(folder.iterdir()) if p.is_file() and any(fnmatch.fnmatch(p.name, g) for g in globs)]
        for p in hits:
            if not (include / p.name).exists():
                shutil.copy2(p, include / p.name)
                copied.append(p.name)
        if hits:
            sources.append(str(folder))
    if source is not None and not copied:
        raise ToolkitError(
            f"no cuBLAS/cuSPARSE/cuSOLVER headers ({', '.join(globs)}) in {source}",
            "pass --math-headers-from an include folder that holds cublas_v2.h",
        )
    if not copied:
        return None
    return {"sources": sources, "files": sorted(copied)}


_RELEASE_RE = re.compile(r"release (\d+\.\d+), V(\d+\.\d+\.\d+)")


def parse_nvcc_version(text: str) -> tuple[str, str] | None:
    """``nvcc --version`` output -> ("13.0", "13.0.88")."""
    m = _RELEASE_RE.search(text)
    return (m.group(1), m.group(2)) if m else None


def parse_gpu_archs(text: str) -> list[int]:
    """``nvcc --list-gpu-arch`` output -> [75, 80, ...]."""
    return sorted({int(m) for m in re.findall(r"compute_(\d+)", text)})


def _validate(
    staging: Path,
    pins: ReleasePins,
    files: dict[str, Path],
    layout: dict[str, str],
    math_headers: dict[str, Any] | None,
    debs: dict[str, Path] | None = None,
    origin: str = "pin table",
) -> ToolchainInfo:
    nvcc = staging / "bin" / "nvcc"
    result = runner.run([nvcc, "--version"], timeout=60)
    parsed = parse_nvcc_version(result.stdout) if result.ok else None
    if parsed is None:
        raise ToolkitError(
            f"the assembled nvcc does not run: {result.output.strip()[:300] or 'no output'}",
            "this host may be too old for the wheels (glibc >= 2.17 is needed) or the "
            "cache is on a noexec mount; set MAMBA_BUILD_CACHE to another disk and rerun",
        )
    if parsed[0] != pins.cuda:
        raise ToolkitError(
            f"the assembled nvcc reports CUDA {parsed[0]}, expected {pins.cuda}",
            "the pin table is wrong; report this as a bug",
        )
    archs_result = runner.run([nvcc, "--list-gpu-arch"], timeout=60)
    info = ToolchainInfo(
        cuda=pins.cuda,
        path=staging,
        nvcc_version=parsed[1],
        nvcc_version_text=result.stdout.strip(),
        archs=parse_gpu_archs(archs_result.stdout) if archs_result.ok else [],
        wheels=[
            {
                "name": p.name,
                "version": p.version,
                "file": files[p.name].name,
                "sha256": p.matching_file(files[p.name].name).sha256,  # type: ignore[union-attr]  # _validate checked it
            }
            for p in pins.wheels
        ],
        debs=[
            {
                "package": d.package,
                "version": d.version,
                "file": d.filename,
                "sha256": d.sha256,
                "archive": f"{pins.apt.uri} {pins.apt.suite}" if pins.apt else "",
            }
            for d in pins.debs
        ],
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        layout=layout,
        math_headers=math_headers,
        origin=origin,
    )
    (staging / METADATA_NAME).write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    return info
