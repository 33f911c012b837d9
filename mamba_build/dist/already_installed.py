"""Is exactly this wheel already installed? (so a warm rebuild does not reinstall the same files)

Compares the wheel's own RECORD with the installed distribution's RECORD in the target Python
(asked in a child process: the target may be another environment), and hashes the installed
extension modules themselves, so a file changed after installation is noticed.
"""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from pathlib import Path

from mamba_build import child
from mamba_build.build.sources import sha256_file


def _wheel_record(wheel: Path) -> tuple[str, str, dict[str, str]]:
    """(distribution name, version, {path: "sha256=..."}) of the payload files (not .dist-info)."""
    parts = wheel.name[:-4].split("-")
    name, version = parts[0], parts[1]
    with zipfile.ZipFile(wheel) as zf:
        record_name = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        text = zf.read(record_name).decode("utf-8")
    entries = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[1] and ".dist-info/" not in row[0]:
            entries[row[0]] = row[1]
    return name, version, entries


def _sha256_record(path: Path) -> str:
    """The file's hash in RECORD's form (urlsafe base64, no padding)."""
    return "sha256=" + base64.urlsafe_b64encode(bytes.fromhex(sha256_file(path))).rstrip(b"=").decode()


def installed_identical(python: str, wheels: list[Path]) -> bool:
    """True when every wheel's files are installed in ``python``'s environment, byte for byte
    (RECORD hashes, and the extension modules re-hashed on disk)."""
    try:
        records = [_wheel_record(Path(w)) for w in wheels]
    except (OSError, zipfile.BadZipFile, StopIteration, IndexError):
        return False
    ran = child.run(python, "installed_files", [r[0] for r in records], timeout=120)
    found = ran.data
    if not ran.result.ok or not isinstance(found, dict):
        return False
    for name, version, entries in records:
        dist = found.get(name)
        if not dist or dist["version"] != version:
            return False
        for path, digest in entries.items():
            have = dist["files"].get(path)
            if have is None or have[0] != digest:
                return False
            if path.endswith((".so", ".pyd")):
                target = Path(have[1])
                if not target.is_file() or _sha256_record(target) != digest:
                    return False
    return True
