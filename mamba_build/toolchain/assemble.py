"""Laying the fetched wheels and .deb files out as a CUDA_HOME, and checking the result (nvcc --version, the
archs it accepts)."""

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mamba_build import runner
from mamba_build.errors import SourceError, ToolkitError
from mamba_build.toolchain import pins
from mamba_build.toolchain.installed import ToolchainInfo, _rmtree
from mamba_build.toolchain.pins import METADATA_NAME, DebPin, ReleasePins

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
    spec = pins._load_table().get("math_headers", {})
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
    globs = pins._load_table().get("math_headers", {}).get("globs", [])
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
