"""The toolkits mamba-build installed: where they live, what they are, removing them."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mamba_build import paths, tables
from mamba_build.errors import UsageError
from mamba_build.toolchain.pins import METADATA_NAME, _normalize_cuda

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


def _rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)
