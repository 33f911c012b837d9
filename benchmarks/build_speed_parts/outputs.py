"""What the commands leave behind: `compile`'s printed timings, the wheels in a directory, their archs."""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from .common import run_text

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BUILT = re.compile(r"^built\s+(\S+\.whl)\s+in\s+([0-9.]+)\s*s\b(?:.*?inside:\s*(.*))?")
BUILT_ALL = re.compile(r"^built\s+all\s+in\s+([0-9.]+)\s*s\b")
CACHED = re.compile(r"^cached\s+(\S+\.whl)")
TIMING = re.compile(r"^timing\s+(.*)$")
STAGE = re.compile(r"([a-z+ ]+?) ([0-9.]+)s(?:,|$)")


def wheel_package(filename: str) -> str:
    return filename.split("-", 1)[0].replace("_", "-").lower()


def parse_compile_output(text: str) -> dict:
    """What `compile` printed: per-package build seconds (`built   <wheel> in <N>s; inside: ...`), the pool's
    `built   all in <N>s`, and the verified cache hits (`cached  <wheel> ...`). Unknown lines are ignored."""
    built: dict[str, dict] = {}
    cached: list[str] = []
    built_all = None
    stages: dict[str, float] = {}
    for raw in re.split(r"[\r\n]+", ANSI.sub("", text)):
        line = raw.strip()
        if m := TIMING.match(line):
            stages = {k.strip(): float(v) for k, v in STAGE.findall(m.group(1))}
        elif m := BUILT_ALL.match(line):
            built_all = float(m.group(1))
        elif m := BUILT.match(line):
            archs = [a.strip() for a in (m.group(3) or "").split(",") if a.strip()]
            built[wheel_package(m.group(1))] = {"wheel": m.group(1), "seconds": float(m.group(2)), "archs": archs}
        elif m := CACHED.match(line):
            cached.append(m.group(1))
    return {"built": built, "built_all_s": built_all, "cached": cached, "stages_s": stages}


def wheels_in(directory: Path) -> dict[str, dict]:
    """{package: {file, bytes}} for the wheels in a directory."""
    out = {}
    for whl in sorted(Path(directory).glob("*.whl")) if Path(directory).is_dir() else []:
        out[wheel_package(whl.name)] = {"file": whl.name, "bytes": whl.stat().st_size}
    return out


def cuobjdump_archs(wheel: Path, cuda_home: str | None) -> dict | None:
    """{"sass": [...], "ptx": [...]} of every .so in the wheel, read with CUDA_HOME/bin/cuobjdump; None
    when cuobjdump is not available."""
    tool = Path(cuda_home or "/nonexistent") / "bin" / "cuobjdump"
    if not tool.exists():
        found = shutil.which("cuobjdump")
        if not found:
            return None
        tool = Path(found)
    sass, ptx = set(), set()
    with tempfile.TemporaryDirectory(prefix="bs-objdump-") as tmp, zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if not member.endswith(".so"):
                continue
            so = Path(zf.extract(member, tmp))
            for flag, into, pat in (("--list-elf", sass, r"\bsm_(\d+[a-z]?)\b"), ("--list-ptx", ptx, r"\bsm_(\d+[a-z]?)\b")):
                text = run_text([str(tool), flag, str(so)], timeout=600) or ""
                into.update(re.findall(pat, text))
    key = lambda a: (int(re.sub(r"\D", "", a) or 0), a)  # noqa: E731
    return {"sass": [f"sm_{a}" for a in sorted(sass, key=key)], "ptx": [f"compute_{a}" for a in sorted(ptx, key=key)]}
