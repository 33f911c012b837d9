"""``DIR/manifest.json``: one record per wheel, with what was built, how, and what is really inside.

Archs come from the binaries (:mod:`mamba_build.dist.fatbin`), never from the build request.
``Manifest.add`` merges by file name and never drops an entry. The JSON Schema is
``mamba_build/data/manifest.schema.json``; :func:`validate` checks a document against it with a
small validator for the subset of JSON Schema the schema uses (no extra dependency).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from mamba_build import __version__
from mamba_build.dist.fatbin import archs_in_wheel
from mamba_build.errors import ExitCode, MambaBuildError, UsageError
from mamba_build.hashing import sha256_file

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"


class ManifestError(MambaBuildError):
    """manifest.json is missing, unreadable or does not match the schema."""

    exit_code = ExitCode.CHECK_FAILED
    title = "manifest error"


@dataclass(frozen=True)
class WheelRecord:
    filename: str
    sha256: str
    size: int
    package: str
    version: str
    python_tag: str
    torch_version: str | None
    torch_cuda: str | None
    cxx11_abi: bool | None
    archs_sass: tuple[int, ...]
    archs_ptx: tuple[int, ...]
    toolkit_version: str | None
    host_compiler: str | None
    flags: tuple[str, ...]
    source_sha256: str | None
    source_origin: str | None
    build_seconds: float | None
    mamba_build_version: str
    auditwheel: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["archs_sass"] = list(self.archs_sass)
        out["archs_ptx"] = list(self.archs_ptx)
        out["flags"] = list(self.flags)
        out["auditwheel"] = dict(self.auditwheel)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WheelRecord:
        kwargs = dict(data)
        kwargs["archs_sass"] = tuple(kwargs.get("archs_sass") or ())
        kwargs["archs_ptx"] = tuple(kwargs.get("archs_ptx") or ())
        kwargs["flags"] = tuple(kwargs.get("flags") or ())
        kwargs["auditwheel"] = dict(kwargs.get("auditwheel") or {})
        return cls(**kwargs)


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(WheelRecord))
# Keys of ``build_info`` (what the build pipeline knows); the rest is computed from the wheel.
BUILD_INFO_KEYS: tuple[str, ...] = (
    "torch_version",
    "torch_cuda",
    "cxx11_abi",
    "toolkit_version",
    "host_compiler",
    "flags",
    "source_sha256",
    "source_origin",
    "build_seconds",
    "auditwheel",
    "mamba_build_version",
)


# --- schema and validator --------------------------------------------------------------------


def schema() -> dict[str, Any]:
    text = (resources.files("mamba_build") / "data" / "manifest.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "integer": int,
    "number": (int, float),
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def validate(doc: Any, schema_doc: Mapping[str, Any] | None = None, path: str = "$") -> list[str]:
    """Problems of ``doc`` against ``schema_doc`` (default: the manifest schema); [] when valid.

    Supports: type (one or a list), const, enum, required, properties, additionalProperties (bool),
    items, pattern, minLength, minimum, uniqueItems.
    """
    sch = schema() if schema_doc is None else schema_doc
    errors: list[str] = []
    types = sch.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(doc, t) for t in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(doc).__name__} {doc!r:.60}"]
    if "const" in sch and doc != sch["const"]:
        errors.append(f"{path}: must be {sch['const']!r}, got {doc!r:.60}")
    if "enum" in sch and doc not in sch["enum"]:
        errors.append(f"{path}: must be one of {sch['enum']!r}")
    if isinstance(doc, str):
        if "minLength" in sch and len(doc) < sch["minLength"]:
            errors.append(f"{path}: shorter than {sch['minLength']}")
        if "pattern" in sch and not re.search(sch["pattern"], doc):
            errors.append(f"{path}: {doc!r:.80} does not match {sch['pattern']}")
    if isinstance(doc, (int, float)) and not isinstance(doc, bool):
        if "minimum" in sch and doc < sch["minimum"]:
            errors.append(f"{path}: {doc} is below {sch['minimum']}")
    if isinstance(doc, dict):
        for key in sch.get("required", ()):
            if key not in doc:
                errors.append(f"{path}: missing {key!r}")
        props = sch.get("properties", {})
        for key, value in doc.items():
            if key in props:
                errors.extend(validate(value, props[key], f"{path}.{key}"))
            elif sch.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected key {key!r}")
    if isinstance(doc, list):
        if "items" in sch:
            for i, item in enumerate(doc):
                errors.extend(validate(item, sch["items"], f"{path}[{i}]"))
        if sch.get("uniqueItems"):
            seen = [json.dumps(x, sort_keys=True) for x in doc]
            if len(seen) != len(set(seen)):
                errors.append(f"{path}: items are not unique")
    return errors


# --- the manifest ----------------------------------------------------------------------------


@dataclass
class Manifest:
    """Records keyed by wheel file name, kept sorted by name when saved."""

    records: dict[str, WheelRecord] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @staticmethod
    def path(directory: str | os.PathLike) -> Path:
        return Path(directory) / MANIFEST_NAME

    @classmethod
    def load(cls, directory: str | os.PathLike, *, missing_ok: bool = True) -> Manifest:
        """Read ``DIR/manifest.json`` (an empty manifest when there is none and ``missing_ok``)."""
        target = cls.path(directory)
        if not target.exists():
            if missing_ok:
                return cls()
            raise ManifestError(
                f"{target} does not exist", "build wheels into this directory with `mamba-build wheels --out DIR`"
            )
        try:
            doc = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ManifestError(
                f"cannot read {target}: {exc}", "restore manifest.json from the build artifacts or rebuild the wheels"
            ) from exc
        return cls.from_json(doc, source=str(target))

    @classmethod
    def from_json(cls, doc: Any, source: str = "manifest") -> Manifest:
        problems = validate(doc)
        if problems:
            shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
            raise ManifestError(
                f"{source} does not match the manifest schema: {shown}",
                f"regenerate it with this mamba-build version (schema_version {SCHEMA_VERSION})",
            )
        manifest = cls(schema_version=doc["schema_version"])
        for item in doc["wheels"]:
            manifest.records[item["filename"]] = WheelRecord.from_json(item)
        return manifest

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "generator": f"mamba-build {__version__}",
            "wheels": [self.records[name].to_json() for name in sorted(self.records)],
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``DIR/manifest.json`` atomically (validated first)."""
        doc = self.to_json()
        problems = validate(doc)
        if problems:
            raise ManifestError(
                f"refusing to write an invalid manifest: {'; '.join(problems[:5])}",
                "this is a bug in the caller of Manifest.save; report it",
            )
        target = self.path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, target)
        return target

    def add(self, record: WheelRecord) -> None:
        """Add or replace (same file name: a rebuild) one record; other records are kept."""
        old = self.records.get(record.filename)
        if old is not None and old.sha256 != record.sha256:
            log.info("manifest: %s rebuilt (sha256 %s -> %s)", record.filename, old.sha256[:12], record.sha256[:12])
        self.records[record.filename] = record

    def merge(self, other: Manifest) -> None:
        for record in other.records.values():
            self.add(record)

    def __iter__(self):
        return iter(self.records[name] for name in sorted(self.records))

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, filename: object) -> bool:
        return filename in self.records


# --- records from wheels -----------------------------------------------------------------------


def parse_wheel_name(filename: str) -> tuple[str, str, str]:
    """(normalized project name, version, python tag) of a wheel file name.

    The python tag joins the interpreter tags of the file name with '.' (``cp311``, ``py2.py3``).
    """
    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise UsageError(
            f"{filename} is not a valid wheel file name: {exc}",
            "wheels must be named NAME-VERSION(-BUILD)?-PY-ABI-PLATFORM.whl (PEP 427)",
        ) from exc
    interpreters = sorted({t.interpreter for t in tags})
    return str(name), str(version), ".".join(interpreters)


def build_info_of(whl_path: str | os.PathLike) -> dict[str, Any]:
    """What the wheel's own provenance (dist-info/mamba_build.json) says, as ``build_info``; {} without one."""
    from mamba_build.dist import provenance

    prov = provenance.read_wheel(whl_path)
    return provenance.manifest_facts(prov) if prov else {}


def record_for_wheel(
    whl_path: str | os.PathLike,
    build_info: Mapping[str, Any] | None = None,
    *,
    cuobjdump: str | os.PathLike | None = None,
) -> WheelRecord:
    """Record for one wheel: hash, size and name parts from the file, archs from its binaries,
    the rest from ``build_info`` (keys: :data:`BUILD_INFO_KEYS`; missing ones are null/empty), by default
    from the provenance the build stamped into the wheel (:func:`build_info_of`)."""
    path = Path(whl_path)
    if build_info is None:
        build_info = build_info_of(path)
    unknown = sorted(set(build_info) - set(BUILD_INFO_KEYS))
    if unknown:
        raise ValueError(f"record_for_wheel: unknown build_info keys {unknown}; allowed: {BUILD_INFO_KEYS}")
    package, version, python_tag = parse_wheel_name(path.name)
    archs = archs_in_wheel(path, cuobjdump)
    info = dict(build_info)
    auditwheel = info.get("auditwheel")
    build_seconds = info.get("build_seconds")
    return WheelRecord(
        filename=path.name,
        sha256=sha256_file(path),
        size=path.stat().st_size,
        package=package,
        version=version,
        python_tag=python_tag,
        torch_version=info.get("torch_version"),
        torch_cuda=info.get("torch_cuda"),
        cxx11_abi=info.get("cxx11_abi"),
        archs_sass=tuple(archs.sass),
        archs_ptx=tuple(archs.ptx),
        toolkit_version=info.get("toolkit_version"),
        host_compiler=info.get("host_compiler"),
        flags=tuple(str(f) for f in (info.get("flags") or ())),
        source_sha256=info.get("source_sha256"),
        source_origin=info.get("source_origin"),
        build_seconds=None if build_seconds is None else round(float(build_seconds), 3),
        mamba_build_version=info.get("mamba_build_version") or __version__,
        auditwheel=dict(auditwheel) if auditwheel else {"available": False, "note": "not checked"},
    )


def finalize_wheel(
    whl_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    build_info: Mapping[str, Any] | None = None,
    *,
    run_auditwheel: bool = True,
    cuobjdump: str | os.PathLike | None = None,
) -> WheelRecord:
    """Copy a built wheel into ``out_dir`` and add its record to ``out_dir/manifest.json``.

    ``build_info`` defaults to the wheel's own provenance (:func:`build_info_of`). Runs ``auditwheel
    show`` for the manifest unless ``build_info`` already has an ``auditwheel`` summary (records
    ``available: false`` when auditwheel is not installed).
    """
    from mamba_build.dist import manylinux

    src = Path(whl_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / src.name
    if src.resolve() != dest.resolve():
        tmp = dest.with_name(f".{dest.name}.partial")
        shutil.copy2(src, tmp)
        os.replace(tmp, dest)
    info = dict(build_info) if build_info is not None else build_info_of(dest)
    if "auditwheel" not in info:
        if run_auditwheel:
            shown = manylinux.auditwheel_show(dest)
            info["auditwheel"] = shown if shown is not None else manylinux.not_available()
        else:
            info["auditwheel"] = manylinux.not_available("auditwheel not run")
    record = record_for_wheel(dest, info, cuobjdump=cuobjdump)
    manifest = Manifest.load(out)
    manifest.add(record)
    manifest.save(out)
    return record


def wheels_in(directory: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.whl") if p.is_file())


def records_by_name(records: Iterable[WheelRecord]) -> dict[str, WheelRecord]:
    return {r.filename: r for r in records}
