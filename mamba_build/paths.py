"""Where mamba-build keeps its files. Nothing is created at import time."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """``$MAMBA_BUILD_CACHE``, else ``$XDG_CACHE_HOME/mamba-build``, else ``~/.cache/mamba-build``."""
    explicit = os.environ.get("MAMBA_BUILD_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mamba-build"


def subdir(name: str, create: bool = True) -> Path:
    path = cache_home() / name
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def logs_dir() -> Path:
    return subdir("logs")


def sdists_dir() -> Path:
    return subdir("sdists")


def toolchains_dir(create: bool = False) -> Path:
    return subdir("toolchains", create=create)


def builds_dir() -> Path:
    return subdir("builds")


def wheel_cache_dir() -> Path:
    return subdir("wheels")


def repo_root() -> Path:
    """The source checkout this package runs from (for csrc/ and patches/)."""
    return Path(__file__).resolve().parent.parent


def patches_dir() -> Path:
    return repo_root() / "patches"


def csrc_dir() -> Path:
    return repo_root() / "csrc"
