"""Re-check a wheel directory against its manifest: hashes, sizes, archs read from the binaries,
and that every wheel in the directory is listed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mamba_build.binary import archs_in_wheel
from mamba_build.errors import MambaBuildError
from mamba_build.manifest import Manifest, ManifestError, sha256_file, wheels_in


@dataclass
class WheelCheck:
    filename: str
    problems: list[str] = field(default_factory=list)
    archs_sass: tuple[int, ...] | None = None
    archs_ptx: tuple[int, ...] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"filename": self.filename, "ok": self.ok, "problems": list(self.problems),
                "archs_sass": None if self.archs_sass is None else list(self.archs_sass),
                "archs_ptx": None if self.archs_ptx is None else list(self.archs_ptx)}


@dataclass
class VerifyReport:
    directory: Path
    checks: list[WheelCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # about the directory / manifest as a whole

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.checks)

    def to_json(self) -> dict:
        return {"directory": str(self.directory), "ok": self.ok, "problems": list(self.problems),
                "wheels": [c.to_json() for c in self.checks]}


def _fmt(archs) -> str:
    return ",".join(f"sm_{a}" for a in archs) or "none"


def verify_dir(directory: str | os.PathLike, *, check_archs: bool = True,
               cuobjdump: str | os.PathLike | None = None) -> VerifyReport:
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
                    check.problems.append(f"SASS archs in the binary are {_fmt(archs.sass)}, "
                                          f"manifest says {_fmt(record.archs_sass)}")
                if tuple(archs.ptx) != tuple(record.archs_ptx):
                    check.problems.append(f"PTX archs in the binary are {_fmt(archs.ptx)}, "
                                          f"manifest says {_fmt(record.archs_ptx)}")
    for whl in wheels_in(root):
        if whl.name not in manifest:
            check = WheelCheck(whl.name, ["in the directory but not in manifest.json (unknown provenance)"])
            report.checks.append(check)
    return report


def render(report: VerifyReport) -> str:
    lines = [f"mamba-build verify {report.directory}"]
    for problem in report.problems:
        lines.append(f"  FAIL  {problem}")
    for check in report.checks:
        if check.ok:
            archs = ""
            if check.archs_sass is not None:
                archs = f"  (sass {_fmt(check.archs_sass)}; ptx {_fmt(check.archs_ptx)})"
            lines.append(f"  ok    {check.filename}{archs}")
        else:
            lines.append(f"  FAIL  {check.filename}")
            lines.extend(f"          - {p}" for p in check.problems)
    failed = sum(1 for c in report.checks if not c.ok)
    if report.ok:
        lines.append(f"{len(report.checks)} wheel(s) verified, all ok")
    else:
        lines.append(f"{failed} of {len(report.checks)} wheel(s) failed"
                     + (f"; {len(report.problems)} directory problem(s)" if report.problems else ""))
    return "\n".join(lines)
