"""CUDA toolkits resolved from the package index at install time, and the lock file that records them.

Releases that ``data/toolchains.toml`` does not pin (every CUDA 13.x after 13.0) are resolved when
``toolchain install --cuda 13.X`` runs. NVIDIA publishes a metapackage, ``cuda-toolkit``, whose release
13.X.Z pins each component of CUDA 13.X update Z exactly, one extra per component::

    Requires-Dist: nvidia-cuda-nvcc==13.4.92.*; ... and extra == "nvcc"
    Requires-Dist: nvidia-cuda-cccl==13.3.4.3.1.*; ... and extra == "cccl"   (CCCL's own numbering)

:func:`resolve` lists the metapackage on the index (pip's index: ``--index-url``, ``PIP_INDEX_URL``,
pip's configuration, else PyPI), takes its newest final 13.X release, downloads that wheel (3 KB; its
sha256 checked against the index) and reads the requirements of the extras named in the
``[resolve."13"]`` table (the optional ones where the release has them: ``cuobjdump`` exists from 13.2
on). Each requirement is then resolved to the newest version it allows that has a wheel for this
platform, with the filename, size and sha256 the index gives. The result installs exactly like a
pinned release (pip downloads, the sha256 is checked, the toolkit is assembled and validated), and
:func:`lock_data` is written next to the toolkit as ``mamba-build-toolchain.lock.json``;
``toolchain install --lock FILE`` installs that wheel set again (offline with ``--find-links``).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from mamba_build import tables
from mamba_build.errors import SourceError, ToolkitError, UsageError

LOCK_NAME = "mamba-build-toolchain.lock.json"
LOCK_FORMAT = 1


def rules() -> dict[str, dict[str, Any]]:
    """``[resolve."<major>"]`` of data/toolchains.toml: which majors are resolved from the index, and how."""
    return dict(tables.load("toolchains").get("resolve", {}))


def resolvable(cuda: str) -> bool:
    return cuda.split(".")[0] in rules()


def _platform_wheel(filename: str) -> bool:
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return not tags.isdisjoint(_supported_tags())


_TAGS: frozenset | None = None


def _supported_tags() -> frozenset:
    global _TAGS
    if _TAGS is None:
        _TAGS = frozenset(sys_tags())
    return _TAGS


def _wheel_version(filename: str) -> Version | None:
    try:
        return parse_wheel_filename(filename)[1]
    except InvalidWheelFilename:
        return None


def pick_metapackage(files: Iterable, cuda: str) -> Any:
    """The newest final (no pre-release), not yanked release ``cuda``.* among the index's files."""
    major, minor = (int(x) for x in cuda.split(".")[:2])
    best = None
    for f in files:
        v = _wheel_version(f.filename)
        if v is None or f.yanked or v.is_prerelease or v.release[:2] != (major, minor):
            continue
        if best is None or v > best[0]:
            best = (v, f)
    return best[1] if best else None


def requirements_of(
    metadata: str, extras: Iterable[str], optional: Iterable[str] = ()
) -> tuple[list[Requirement], list[str]]:
    """The requirements the named extras add (markers evaluated for Linux on this machine), one per project.

    Returns (requirements, extras actually present). A required extra the metadata lacks is an error.
    """
    provided = {line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Provides-Extra:")}
    wanted = list(extras)
    missing = [e for e in wanted if e not in provided]
    if missing:
        raise SourceError(
            f"the cuda-toolkit metadata has no extra {', '.join(missing)}",
            "NVIDIA changed the metapackage; install with --lock FILE, or report this as a bug",
        )
    wanted += [e for e in optional if e in provided]
    found: dict[str, Requirement] = {}
    import platform

    base = {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": platform.machine(),
        "os_name": "posix",
    }
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        try:
            req = Requirement(line.split(":", 1)[1].strip())
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({**base, "extra": ""}):
            continue  # not tied to an extra
        if any(req.marker.evaluate({**base, "extra": e}) for e in wanted):
            found.setdefault(canonicalize_name(req.name), req)
    return list(found.values()), wanted


def pick_component(files: Iterable, req: Requirement) -> Any:
    """The newest file of ``req``'s project that the pin allows, for this platform, not yanked."""
    best = None
    for f in files:
        v = _wheel_version(f.filename)
        if v is None or f.yanked or not _platform_wheel(f.filename):
            continue
        if not req.specifier.contains(v, prereleases=True):
            continue
        if best is None or v > best[0]:
            best = (v, f)
    return best[1] if best else None


def resolve(cuda: str, *, index_url: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(ReleasePins, lock data) for CUDA ``X.Y`` from the index; see the module docstring."""
    from mamba_build.build import sources
    from mamba_build.toolchain.toolkits import ReleasePins, WheelFile, WheelPin

    rule = rules().get(cuda.split(".")[0])
    if rule is None:
        raise UsageError(
            f"CUDA {cuda} is not resolved from the package index (only {', '.join(sorted(rules()))}.x are)",
            "use a release of the pin table (mamba-build toolchain list shows what is installed)",
        )
    meta_name = rule["metapackage"]
    index_url = sources.resolve_index(index_url, ())[0]  # once: pip's configuration is asked only here
    meta_files = sources.list_project_files(meta_name, index_url)
    meta = pick_metapackage(meta_files, cuda)
    if meta is None:
        have = sorted({str(v) for v in (_wheel_version(f.filename) for f in meta_files) if v is not None}, key=Version)
        raise UsageError(
            f"the package index has no final {meta_name} release {cuda}.* (it has: {', '.join(have[-8:])})",
            f"pick a CUDA release it has, e.g. --cuda {'.'.join(have[-1].split('.')[:2]) if have else '13.0'}",
        )
    if not meta.sha256:
        raise SourceError(
            f"the index lists {meta.filename} without a sha256", "use an index that gives hashes (PyPI does)"
        )
    data = sources.download_bytes(meta.url, f"reading {meta.filename}", meta.sha256)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = zf.read(name).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, StopIteration) as exc:
        raise SourceError(
            f"{meta.filename} is not a wheel with METADATA ({exc})", "rerun; report it if it persists"
        ) from None
    reqs, extras = requirements_of(metadata, rule["extras"], rule.get("optional_extras", ()))
    wheels: list[WheelPin] = []
    locked: list[dict[str, Any]] = []
    for req in reqs:
        comp = pick_component(sources.list_project_files(req.name, index_url), req)
        if comp is None:
            raise SourceError(
                f"no wheel of {req} for this platform is on the index",
                "NVIDIA publishes linux x86_64 and aarch64 wheels; on another platform install the "
                "CUDA toolkit yourself and set CUDA_HOME",
            )
        if not comp.sha256:
            raise SourceError(f"the index lists {comp.filename} without a sha256", "use an index that gives hashes")
        version = str(_wheel_version(comp.filename))
        wheels.append(
            WheelPin(
                canonicalize_name(req.name),
                version,
                rule["root"],
                (WheelFile(comp.filename, comp.sha256.lower(), comp.size),),
            )
        )
        locked.append(
            {
                "name": canonicalize_name(req.name),
                "version": version,
                "requirement": str(req),
                "root": rule["root"],
                "filename": comp.filename,
                "sha256": comp.sha256.lower(),
                "size": comp.size,
                "url": comp.url,
            }
        )
    pins = ReleasePins(cuda, tuple(wheels))
    lock = {
        "format": LOCK_FORMAT,
        "cuda": cuda,
        "source": "index",
        "resolved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "index": index_url,
        "metapackage": {
            "name": meta_name,
            "version": str(_wheel_version(meta.filename)),
            "filename": meta.filename,
            "sha256": meta.sha256.lower(),
            "url": meta.url,
            "extras": extras,
        },
        "wheels": locked,
    }
    return pins, lock


def lock_data(pins: Any, source: str, lock: dict[str, Any] | None = None) -> dict[str, Any]:
    """The lock written next to an installed toolkit: ``lock`` as resolved, or the pins of the pin table."""
    if lock is not None:
        return lock
    return {
        "format": LOCK_FORMAT,
        "cuda": pins.cuda,
        "source": source,
        "resolved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "index": None,
        "metapackage": None,
        "wheels": [
            {
                "name": w.name,
                "version": w.version,
                "requirement": w.requirement,
                "root": w.root,
                "files": [{"filename": f.filename, "sha256": f.sha256, "size": f.size} for f in w.files],
                **({"members": list(w.members)} if w.members else {}),
            }
            for w in pins.wheels
        ],
        "debs": [
            {"package": d.package, "version": d.version, "filename": d.filename, "sha256": d.sha256} for d in pins.debs
        ],
    }


def pins_from_lock(path: Path, cuda: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(ReleasePins, lock data) read back from a lock file (a wheel set only: Debian releases use the pin table)."""
    from mamba_build.toolchain.toolkits import ReleasePins, WheelFile, WheelPin

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"cannot read the lock file {path}: {exc}", f"pass the {LOCK_NAME} written next to an installed toolkit"
        ) from None
    if not isinstance(data, dict) or data.get("format") != LOCK_FORMAT or not data.get("wheels"):
        raise UsageError(
            f"{path} is not a mamba-build toolchain lock (format {LOCK_FORMAT})",
            f"pass the {LOCK_NAME} written next to an installed toolkit",
        )
    if cuda and str(data.get("cuda")) != cuda:
        raise UsageError(f"{path} locks CUDA {data.get('cuda')}, not {cuda}", f"use --cuda {data.get('cuda')}")
    if data.get("debs"):
        raise ToolkitError(
            f"{path} locks Debian packages; those releases are installed from the pin table",
            f"run mamba-build toolchain install --cuda {data.get('cuda')} without --lock",
        )
    wheels = []
    for w in data["wheels"]:
        files = w.get("files") or [{"filename": w["filename"], "sha256": w["sha256"], "size": w.get("size")}]
        wheels.append(
            WheelPin(
                w["name"],
                str(w["version"]),
                w["root"].strip("/"),
                tuple(WheelFile(f["filename"], f["sha256"].lower(), f.get("size")) for f in files),
                tuple(m.strip("/") + "/" for m in w.get("members", ())),
            )
        )
    return ReleasePins(str(data["cuda"]), tuple(wheels)), data
