"""Provenance inside every wheel mamba-build builds: ``<dist-info>/mamba_build.json``.

Written once, by the build (:func:`stamp`, called by the pipeline right after ``pip wheel``), so the
facts travel with the binary wherever it is copied or installed: what it was built against (torch
version, torch's CUDA, C++ ABI: its :class:`~mamba_build.dist.channels.Channel`), with what (toolkit, host
compiler, flags, archs), from what (source origin and sha256, patch recipes applied) and by which
mamba-build. ``manifest.json`` copies these facts from the wheel (:func:`manifest_facts`); ``index``
places a wheel in its channel by them; ``verify``, ``install`` and ``doctor`` read them back.

The same stamp pins torch in the wheel's METADATA (``Requires-Dist: torch==X.Y.*``, the channel's
release line), so a resolver (pip, uv) cannot pair the wheel with another torch release without saying
so. CUDA major and ABI have no place in a version specifier (``==2.5.*`` matches every local label):
``mamba-build install`` checks those, and the undefined torch symbols of the binary.

The wheel is rewritten without recompressing its members (:func:`_rewrite`): the extension modules,
hundreds of MB for fat arch lists, are copied as they are; only METADATA, mamba_build.json and RECORD
are new.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from mamba_build import __version__
from mamba_build.dist.channels import Channel
from mamba_build.dist.manifest import BUILD_INFO_KEYS

FILE_NAME = "mamba_build.json"
SCHEMA_VERSION = 1
# The facts manifest.json repeats for every wheel (manifest.BUILD_INFO_KEYS, less what the manifest measures).
MANIFEST_KEYS = tuple(k for k in BUILD_INFO_KEYS if k != "auditwheel")


# --- what a build knows ------------------------------------------------------------------------


def build_flags(plan) -> list[str]:
    """The build settings that shaped the binary, as the user would type them."""
    flags = [f"--arch {','.join(plan.archs)}", f"MAX_JOBS={plan.jobs}", f"nvcc --threads {plan.nvcc_threads}"]
    if plan.split_compile is not None:
        flags.append(f"--split-compile {plan.split_compile}")
    if plan.split_units:
        flags.append("--split-units")
    if plan.cxx_std:
        flags.append(f"-std=c++{plan.cxx_std}")
    if plan.compiler.unsupported_override:
        flags.append("-allow-unsupported-compiler")
    return flags


def of_build(
    plan,
    *,
    source_origin: str,
    source_sha256: str | None,
    recipes: Iterable[Mapping[str, str]] = (),
    recipes_sha256: str | None = None,
    build_seconds: float | None = None,
) -> dict[str, Any]:
    """The provenance document of a wheel built by ``plan`` (a :class:`~mamba_build.plan.build_plan.BuildPlan`)."""
    from mamba_build.plan.archs import sass_and_ptx

    channel = Channel.of(plan.torch_version, plan.torch_cuda, plan.cxx11_abi)
    sass, ptx = sass_and_ptx(plan.archs)
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"mamba-build {__version__}",
        "channel": channel.name if channel else None,
        "torch_requirement": channel.torch_requirement if channel else None,
        "torch_version": plan.torch_version,
        "torch_cuda": plan.torch_cuda,
        "cxx11_abi": bool(plan.cxx11_abi),
        "toolkit_version": plan.cuda_version,
        "toolkit_home": plan.cuda_home,
        "host_compiler": f"{Path(plan.compiler.cxx).name} {plan.compiler.version}",
        "flags": build_flags(plan),
        "archs": list(plan.archs),
        "archs_sass": list(sass),
        "archs_ptx": list(ptx),
        "source_origin": source_origin,
        "source_sha256": source_sha256,
        "recipes": [dict(r) for r in recipes],
        "recipes_sha256": recipes_sha256,
        "build_seconds": None if build_seconds is None else round(float(build_seconds), 1),
        "mamba_build_version": __version__,
    }


def channel_of(prov: Mapping[str, Any] | None) -> Channel | None:
    if not prov:
        return None
    return Channel.of(prov.get("torch_version"), prov.get("torch_cuda"), prov.get("cxx11_abi"))


def manifest_facts(prov: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of a provenance document that manifest.json records (``record_for_wheel``'s build_info)."""
    return {k: prov.get(k) for k in MANIFEST_KEYS if prov.get(k) is not None}


def describe(prov: Mapping[str, Any]) -> str:
    """One line for people: against what, with what, from what."""
    archs = (
        ", ".join(
            [f"sm_{a}" for a in prov.get("archs_sass") or []]
            + [f"compute_{a} (PTX)" for a in prov.get("archs_ptx") or []]
        )
        or "no archs recorded"
    )
    src = prov.get("source_origin") or "unknown source"
    sha = prov.get("source_sha256")
    return (
        f"built by {prov.get('generator') or 'mamba-build'} against torch {prov.get('torch_version')} "
        f"(CUDA {prov.get('torch_cuda')}, C++11 ABI {'on' if prov.get('cxx11_abi') else 'off'}) with CUDA "
        f"{prov.get('toolkit_version')} and {prov.get('host_compiler')}; {archs}; from {src}"
        + (f" (sha256 {sha[:16]}...)" if sha else "")
    )


# --- METADATA -------------------------------------------------------------------------------


def pin_torch(metadata: str, requirement: str) -> str:
    """METADATA text with every ``Requires-Dist: torch...`` narrowed to ``requirement`` (e.g. ``torch==2.5.*``,
    markers and other specifiers kept), or one such line added when torch is not required at all."""
    pin = Requirement(requirement)
    head, sep, body = metadata.partition("\n\n")
    trail = ""
    if not sep:  # headers only: keep the final newline(s) after the added line
        trail = head[len(head.rstrip("\n")) :]
        head = head.rstrip("\n")
    lines = head.split("\n")
    out: list[str] = []
    pinned = False
    for line in lines:
        m = re.match(r"(?i)^Requires-Dist:\s*(.+)$", line)
        if m:
            try:
                req = Requirement(m.group(1).strip())
            except InvalidRequirement:
                req = None
            if req is not None and canonicalize_name(req.name) == canonicalize_name(pin.name):
                spec = SpecifierSet(str(req.specifier)) & pin.specifier
                extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
                marker = f"; {req.marker}" if req.marker else ""
                line = f"Requires-Dist: {pin.name}{extras}{spec}{marker}"
                pinned = True
        out.append(line)
    if not pinned:
        at = max((i for i, ln in enumerate(out) if ln.lower().startswith("requires-dist:")), default=len(out) - 1)
        out.insert(at + 1, f"Requires-Dist: {requirement}")
    return "\n".join(out) + trail + sep + body


def torch_requirements(metadata: str) -> list[str]:
    """The ``Requires-Dist`` values that name torch."""
    found = []
    for m in re.finditer(r"(?im)^Requires-Dist:\s*(.+)$", metadata.partition("\n\n")[0]):
        try:
            if canonicalize_name(Requirement(m.group(1).strip()).name) == "torch":
                found.append(m.group(1).strip())
        except InvalidRequirement:
            continue
    return found


# --- reading ---------------------------------------------------------------------------------


def dist_info_dir(names: Iterable[str]) -> str | None:
    """The wheel's top-level ``*.dist-info`` directory (the one holding METADATA)."""
    for name in names:
        parts = name.split("/")
        if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
            return parts[0]
    return None


def read_wheel(wheel: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance document inside a wheel; None when it has none (or it is unreadable)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            top = dist_info_dir(zf.namelist())
            if top is None or f"{top}/{FILE_NAME}" not in zf.namelist():
                return None
            doc = json.loads(zf.read(f"{top}/{FILE_NAME}").decode("utf-8"))
    except (OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def wheel_metadata(wheel: str | os.PathLike) -> bytes | None:
    """The raw METADATA file of a wheel (PEP 658 serves exactly these bytes)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            top = dist_info_dir(zf.namelist())
            return zf.read(f"{top}/METADATA") if top else None
    except (OSError, zipfile.BadZipFile, KeyError):
        return None


def installed_dist_info(site_dir: str | os.PathLike, package: str) -> Path | None:
    """The ``*.dist-info`` directory of ``package`` in ``site_dir`` (names compared PEP 503-normalized)."""
    want = canonicalize_name(package)
    try:
        entries = sorted(Path(site_dir).glob("*.dist-info"))
    except OSError:
        return None
    for d in entries:
        name = d.name[: -len(".dist-info")].rsplit("-", 1)[0]
        if canonicalize_name(name) == want and d.is_dir():
            return d
    return None


def read_installed(site_dir: str | os.PathLike, package: str) -> tuple[dict[str, Any] | None, Path | None]:
    """(provenance, dist-info dir) of an installed package; (None, dir) when it was not built by mamba-build."""
    d = installed_dist_info(site_dir, package)
    if d is None:
        return None, None
    try:
        doc = json.loads((d / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, d
    return (doc if isinstance(doc, dict) else None), d


# --- writing -----------------------------------------------------------------------------------


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def stamp(wheel: str | os.PathLike, prov: Mapping[str, Any]) -> None:
    """Write ``prov`` into the wheel's dist-info, pin torch in its METADATA and update RECORD (in place,
    atomically). Stamping again replaces the previous stamp."""
    path = Path(wheel)
    channel = channel_of(prov)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        top = dist_info_dir(names)
        if top is None:
            raise ValueError(f"{path.name} has no *.dist-info/METADATA")
        metadata = zf.read(f"{top}/METADATA").decode("utf-8")
        record = zf.read(f"{top}/RECORD").decode("utf-8") if f"{top}/RECORD" in names else ""
    if channel is not None:
        metadata = pin_torch(metadata, channel.torch_requirement)
    new = {
        f"{top}/METADATA": metadata.encode("utf-8"),
        f"{top}/{FILE_NAME}": (json.dumps(dict(prov), indent=2, sort_keys=True) + "\n").encode("utf-8"),
    }
    rows = [r for r in csv.reader(io.StringIO(record)) if r and r[0] not in (*new, f"{top}/RECORD")]
    rows += [[name, _record_hash(data), str(len(data))] for name, data in new.items()]
    rows.append([f"{top}/RECORD", "", ""])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    new[f"{top}/RECORD"] = buf.getvalue().encode("utf-8")
    _rewrite(path, new)


_LOCAL = struct.Struct("<4s5H3L2H")  # local file header
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # central directory file header
_END = struct.Struct("<4s4H2LH")  # end of central directory


def _rewrite(path: Path, replace: Mapping[str, bytes]) -> None:
    """Copy the zip at ``path`` with the members in ``replace`` new (added or replaced, deflated, in that
    order at the end), every other member copied raw (not recompressed); then replace ``path``."""
    tmp = path.with_name(f".{path.name}.stamp")
    with zipfile.ZipFile(path) as zf, open(path, "rb") as src, open(tmp, "wb") as out:
        central: list[bytes] = []
        members = [i for i in zf.infolist() if i.filename not in replace]
        if len(members) + len(replace) > 0xFFFF:
            raise ValueError(f"{path.name}: too many members for a zip without ZIP64")

        def put(
            info_name: str,
            method: int,
            dostime: int,
            dosdate: int,
            crc: int,
            csize: int,
            usize: int,
            payload_reader,
            create_version: int,
            create_system: int,
            extract_version: int,
            internal: int,
            external: int,
            flags: int,
        ) -> None:
            name = info_name.encode("utf-8")
            flags = (flags & ~0x08) | (0x800 if not info_name.isascii() else 0)
            offset = out.tell()
            if offset > 0xFFFFFFFF or csize > 0xFFFFFFFF or usize > 0xFFFFFFFF:
                raise ValueError(f"{path.name}: over 4 GiB, needs ZIP64")
            out.write(
                _LOCAL.pack(
                    b"PK\x03\x04", extract_version, flags, method, dostime, dosdate, crc, csize, usize, len(name), 0
                )
            )
            out.write(name)
            payload_reader(out)
            central.append(
                _CENTRAL.pack(
                    b"PK\x01\x02",
                    create_version | (create_system << 8),
                    extract_version,
                    flags,
                    method,
                    dostime,
                    dosdate,
                    crc,
                    csize,
                    usize,
                    len(name),
                    0,
                    0,
                    0,
                    internal,
                    external,
                    offset,
                )
                + name
            )

        for info in members:
            if info.file_size > 0xFFFFFFFF or info.compress_size > 0xFFFFFFFF or info.header_offset > 0xFFFFFFFF:
                raise ValueError(f"{path.name}: over 4 GiB, needs ZIP64")
            src.seek(info.header_offset)
            head = src.read(_LOCAL.size)
            sig, *_rest, name_len, extra_len = _LOCAL.unpack(head)
            if sig != b"PK\x03\x04":
                raise ValueError(f"{path.name}: bad local header for {info.filename}")
            data_at = info.header_offset + _LOCAL.size + name_len + extra_len

            def copy(dst, start=data_at, size=info.compress_size):
                src.seek(start)
                left = size
                while left:
                    block = src.read(min(left, 1 << 20))
                    if not block:
                        raise ValueError(f"{path.name}: truncated member")
                    dst.write(block)
                    left -= len(block)

            y, mo, d, h, mi, s = info.date_time
            put(
                info.filename,
                info.compress_type,
                (h << 11) | (mi << 5) | (s // 2),
                ((y - 1980) << 9) | (mo << 5) | d,
                info.CRC,
                info.compress_size,
                info.file_size,
                copy,
                info.create_version,
                info.create_system,
                info.extract_version,
                info.internal_attr,
                info.external_attr,
                info.flag_bits,
            )
        stamp_time = members[0].date_time if members else (1980, 1, 1, 0, 0, 0)
        y, mo, d, h, mi, s = stamp_time
        for name, data in replace.items():
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            packed = comp.compress(data) + comp.flush()
            put(
                name,
                zipfile.ZIP_DEFLATED,
                (h << 11) | (mi << 5) | (s // 2),
                ((y - 1980) << 9) | (mo << 5) | d,
                zlib.crc32(data),
                len(packed),
                len(data),
                lambda dst, p=packed: dst.write(p),
                20,
                3,
                20,
                0,
                0o644 << 16,
                0,
            )
        start = out.tell()
        for entry in central:
            out.write(entry)
        out.write(_END.pack(b"PK\x05\x06", 0, 0, len(central), len(central), out.tell() - start, start, 0))
    with zipfile.ZipFile(tmp) as check:  # never replace a good wheel with a bad one
        bad = check.testzip()
    if bad is not None:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"rewriting {path.name} corrupted {bad}")
    os.replace(tmp, path)
