"""Where mamba-build keeps its files. Nothing is created at import time."""

from __future__ import annotations

import importlib
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
    """The source checkout this package runs from (meaningful only when running from one)."""
    return Path(__file__).resolve().parent.parent


def shipped_dir(package: str, folder: str) -> Path:
    """A top-level folder of the checkout (``patches/``, ``csrc/``) that the wheel ships as ``package``
    (pyproject.toml's package-dir). Found through the import system, so the same way installed from the
    wheel or editable (setuptools' editable finder maps the package to the checkout's folder); only a
    checkout run without any install (PYTHONPATH) falls back to ``repo_root() / folder``."""
    try:
        module = importlib.import_module(package)
    except ImportError:
        module = None
    where = getattr(module, "__file__", None)
    if where:
        return Path(where).resolve().parent
    return repo_root() / folder


def patches_dir() -> Path:
    """The patch recipes (the checkout's ``patches/``, ``mamba_build/patches`` in the wheel)."""
    return shipped_dir("mamba_build.patches", "patches")


def csrc_dir() -> Path:
    """mamba-build's own C++/CUDA sources (the checkout's ``csrc/``, ``mamba_build/csrc`` in the wheel)."""
    return shipped_dir("mamba_build.csrc", "csrc")
