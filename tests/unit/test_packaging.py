"""mamba-build's own wheel: pyproject.toml lists every package and ships patches/ and csrc/ (the checkout's
top-level folders) as mamba_build.patches / mamba_build.csrc, which mamba_build.paths finds through the
import system. The wheel itself is built and installed for real in tests/integration/test_user_envs_real.py."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from mamba_build import paths

REPO = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _folder_of(package: str) -> Path:
    """Where setuptools takes ``package`` from (package-dir, else its dotted path)."""
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        if head in CONFIG.get("package-dir", {}):
            return REPO / CONFIG["package-dir"][head] / Path(*parts[i:])
    return REPO / Path(*parts)


def _tracked(folder: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", folder], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():  # not a git checkout: every file but caches
        return [p.relative_to(REPO) for p in (REPO / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts]
    return [Path(line) for line in out.stdout.splitlines()]


def test_every_folder_of_the_package_and_of_patches_and_csrc_is_listed():
    listed = set(CONFIG["packages"])
    assert all(_folder_of(p).is_dir() for p in listed), [p for p in listed if not _folder_of(p).is_dir()]
    found = {"mamba_build." + ".".join(d.relative_to(REPO / "mamba_build").parts) if d != REPO / "mamba_build"
             else "mamba_build" for d in [REPO / "mamba_build", *(REPO / "mamba_build").rglob("*")]
             if d.is_dir() and "__pycache__" not in d.parts}
    for top, package in (("patches", "mamba_build.patches"), ("csrc", "mamba_build.csrc")):
        found |= {package + "".join("." + part for part in d.relative_to(REPO / top).parts)
                  for d in [REPO / top, *(REPO / top).rglob("*")] if d.is_dir() and "__pycache__" not in d.parts}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_every_tracked_file_of_patches_and_csrc_ships():
    listed = {_folder_of(p): p for p in CONFIG["packages"]}
    data = CONFIG["package-data"]
    for folder in ("patches", "csrc"):
        for rel in _tracked(folder):
            path = REPO / rel
            package = listed.get(path.parent)
            assert package is not None, f"{rel}: its folder is not a listed package"
            shipped = path.suffix == ".py" or any(fnmatch.fnmatch(path.name, g) for g in data.get(package, []))
            assert shipped, f"{rel} is not in the wheel: add a glob to package-data {package!r}"


def test_paths_find_the_checkouts_folders_through_the_import_system():
    import importlib.util

    if importlib.util.find_spec("mamba_build.csrc") is None:  # e.g. a wheel installed, the checkout's tests run
        pytest.skip("mamba-build is not installed editable from this checkout (pip install -e .): the mapping of "
                    "csrc/ and patches/ into the package is the editable install's; the wheel's own is tested in "
                    "tests/integration/test_user_envs_real.py")
    assert paths.patches_dir() == REPO / "patches" and (paths.patches_dir() / "causal-conv1d.toml").is_file()
    assert paths.csrc_dir() == REPO / "csrc" and (paths.csrc_dir() / "probe" / "probe.cpp").is_file()
    import mamba_build.csrc
    import mamba_build.patches

    assert Path(mamba_build.patches.__file__).parent == REPO / "patches"
    assert Path(mamba_build.csrc.__file__).parent == REPO / "csrc"
