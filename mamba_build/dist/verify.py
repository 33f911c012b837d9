"""Re-check a wheel directory against its manifest: hashes, sizes, archs read from the binaries, the
provenance each wheel carries (dist-info/mamba_build.json and its torch pin), that every wheel in the
directory is listed, and, for an index root, that every channel page lists each wheel in its own channel
with the right sha256 and core metadata."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from mamba_build.dist import provenance
from mamba_build.dist.fatbin import archs_in_wheel
from mamba_build.errors import MambaBuildError
from mamba_build.hashing import sha256_file
from mamba_build.dist.index import SIMPLE
from mamba_build.dist.manifest import Manifest, ManifestError, wheels_in


@dataclass
class WheelCheck:
    filename: str
    problems: list[str] = field(default_factory=list)
    archs_sass: tuple[int, ...] | None = None
    archs_ptx: tuple[int, ...] | None = None
    notes: list[str] = field(default_factory=list)  # worth saying, not a failure

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {
            "filename": self.filename,
            "ok": self.ok,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "archs_sass": None if self.archs_sass is None else list(self.archs_sass),
            "archs_ptx": None if self.archs_ptx is None else list(self.archs_ptx),
        }


@dataclass
class VerifyReport:
    directory: Path
    checks: list[WheelCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # about the directory / manifest as a whole

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.checks)

    def to_json(self) -> dict:
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "problems": list(self.problems),
            "wheels": [c.to_json() for c in self.checks],
        }


def _fmt(archs) -> str:
    return ",".join(f"sm_{a}" for a in archs) or "none"


def verify_dir(
    directory: str | os.PathLike, *, check_archs: bool = True, cuobjdump: str | os.PathLike | None = None
) -> VerifyReport:
    """Check every manifest entry of ``directory`` and every ``.whl`` in it; never raises for a
    failed check (the report says what failed)."""
    root = Path(directory)
    report = VerifyReport(root)
    if not root.is_dir():
        report.problems.append(f"{root} is not a directory")
        return report
    try:
        manifest = Manifest.load(root, missing_ok=False)
    except ManifestError as err:
        report.problems.append(err.message)
        return report
    for record in manifest:
        check = WheelCheck(record.filename)
        report.checks.append(check)
        path = root / record.filename
        if not path.is_file():
            check.problems.append("listed in manifest.json but the file is missing")
            continue
        size = path.stat().st_size
        if size != record.size:
            check.problems.append(f"size is {size} bytes, manifest says {record.size}")
        digest = sha256_file(path)
        if digest != record.sha256:
            check.problems.append(f"sha256 is {digest}, manifest says {record.sha256} (file changed or tampered)")
        if check_archs:
            try:
                archs = archs_in_wheel(path, cuobjdump)
            except MambaBuildError as err:
                check.problems.append(f"cannot read archs: {err.message}")
            except Exception as exc:  # a corrupt zip, a truncated ELF: report, keep checking the rest
                check.problems.append(f"cannot read archs: {type(exc).__name__}: {exc}")
            else:
                check.archs_sass, check.archs_ptx = archs.sass, archs.ptx
                if tuple(archs.sass) != tuple(record.archs_sass):
                    check.problems.append(
                        f"SASS archs in the binary are {_fmt(archs.sass)}, manifest says {_fmt(record.archs_sass)}"
                    )
                if tuple(archs.ptx) != tuple(record.archs_ptx):
                    check.problems.append(
                        f"PTX archs in the binary are {_fmt(archs.ptx)}, manifest says {_fmt(record.archs_ptx)}"
                    )
        if path.is_file():
            check_provenance(path, record, check)
    for whl in wheels_in(root):
        if whl.name not in manifest:
            check = WheelCheck(whl.name, ["in the directory but not in manifest.json (unknown provenance)"])
            report.checks.append(check)
    if (root / SIMPLE).is_dir():
        check_index_pages(root, manifest, report)
    return report


_COMPARED = (
    "torch_version",
    "torch_cuda",
    "cxx11_abi",
    "toolkit_version",
    "host_compiler",
    "source_sha256",
    "source_origin",
    "mamba_build_version",
)


def check_provenance(path: Path, record, check: WheelCheck) -> None:
    """The wheel's own dist-info/mamba_build.json agrees with its manifest record, and METADATA pins torch."""
    prov = provenance.read_wheel(path)
    if prov is None:
        check.notes.append(
            f"no dist-info/{provenance.FILE_NAME} (built before provenance stamps): only the "
            "manifest says what it was built against, and its METADATA does not pin torch"
        )
        return
    for key in _COMPARED:
        if prov.get(key) != getattr(record, key):
            check.problems.append(
                f"{key}: the wheel's {provenance.FILE_NAME} says {prov.get(key)!r}, "
                f"manifest.json says {getattr(record, key)!r}"
            )
    for key in ("archs_sass", "archs_ptx"):
        if tuple(prov.get(key) or ()) != tuple(getattr(record, key)):
            check.problems.append(
                f"{key}: the wheel's {provenance.FILE_NAME} says {prov.get(key)}, the binary "
                f"(manifest.json) {list(getattr(record, key))}"
            )
    channel = provenance.channel_of(prov)
    meta = provenance.wheel_metadata(path)
    pins = provenance.torch_requirements(meta.decode("utf-8", "replace")) if meta else []
    if channel is not None and not any(channel.torch_requirement in p for p in pins):
        check.problems.append(
            f"METADATA requires {pins or 'no torch'}, not {channel.torch_requirement}: a resolver "
            "could pair it with another torch"
        )


def check_index_pages(root: Path, manifest: Manifest, report: VerifyReport) -> None:
    """Every channel page entry of a wheel in ROOT: right channel, right sha256, right core metadata;
    every wheel of the manifest listed in its channel."""
    from mamba_build.dist.channels import Channel
    from mamba_build.dist.index import METADATA_SUFFIX, read_index

    channels, legacy = read_index(root)
    for project in legacy:
        report.problems.append(
            f"simple/{project}/ is a page of the old layout that serves every torch at once: "
            "re-run `mamba-build index` to move it into channels"
        )
    checks = {c.filename: c for c in report.checks}
    listed: dict[str, str] = {}
    for channel, projects in channels.items():
        for project, entries in projects.items():
            for fn, entry in entries.items():
                listed[fn] = channel
                check = checks.get(fn)
                path = root / fn
                rec = manifest.records.get(fn)
                if check is None or rec is None or not path.is_file():
                    continue  # a kept entry whose wheel lives elsewhere, or one already failed (not in the manifest)
                built = Channel.of(rec.torch_version, rec.torch_cuda, rec.cxx11_abi)
                if built is None or built.name != channel:
                    check.problems.append(
                        f"listed in channel {channel}, but built for {built.name if built else 'an unknown torch'}"
                    )
                if entry.sha256 != rec.sha256:
                    check.problems.append(
                        f"simple/{channel}/{project}/ gives sha256 {entry.sha256}, the file has {rec.sha256}"
                    )
                meta_file = root / (fn + METADATA_SUFFIX)
                if entry.core_metadata_sha256:
                    have = sha256_file(meta_file) if meta_file.is_file() else None
                    inside = provenance.wheel_metadata(path)
                    if have != entry.core_metadata_sha256:
                        check.problems.append(
                            f"{meta_file.name} (PEP 658) is missing or does not match the page's core-metadata hash"
                        )
                    elif inside is None or hashlib.sha256(inside).hexdigest() != have:
                        check.problems.append(f"{meta_file.name} differs from the wheel's own METADATA")
    for rec in manifest:
        if (root / rec.filename).is_file() and rec.filename not in listed:
            checks[rec.filename].problems.append("not listed on any channel page (re-run `mamba-build index`)")


def render(report: VerifyReport) -> str:
    lines = [f"mamba-build verify {report.directory}"]
    for problem in report.problems:
        lines.append(f"  FAIL  {problem}")
    for check in report.checks:
        notes = [f"          note: {n}" for n in check.notes]
        if check.ok:
            archs = ""
            if check.archs_sass is not None:
                archs = f"  (sass {_fmt(check.archs_sass)}; ptx {_fmt(check.archs_ptx)})"
            lines.append(f"  ok    {check.filename}{archs}")
        else:
            lines.append(f"  FAIL  {check.filename}")
            lines.extend(f"          - {p}" for p in check.problems)
        lines.extend(notes)
    failed = sum(1 for c in report.checks if not c.ok)
    if report.ok:
        lines.append(f"{len(report.checks)} wheel(s) verified, all ok")
    else:
        lines.append(
            f"{failed} of {len(report.checks)} wheel(s) failed"
            + (f"; {len(report.problems)} directory problem(s)" if report.problems else "")
        )
    return "\n".join(lines)
