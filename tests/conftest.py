"""Shared test fixtures.

Expensive real things (downloads, builds) are session-scoped and cached on disk so that each is
done once per run (and once per machine for downloads).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def tests_cache_root() -> Path:
    """Persistent cache for test downloads (PyPI sdists, NVIDIA wheels): reused across runs."""
    root = Path(os.environ.get("MAMBA_BUILD_TEST_CACHE", Path.home() / ".cache" / "mamba-build-tests"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def test_cache() -> Path:
    return tests_cache_root()


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A private MAMBA_BUILD_CACHE so tests never touch the user's cache."""
    path = tmp_path / "mb-cache"
    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


def has_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_cli(*args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None):
    """Run the real `mamba-build` CLI in a child process (as a user would)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "mamba_build", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd or REPO)


@pytest.fixture(scope="session")
def causal_conv1d_wheels(tmp_path_factory):
    """The real causal-conv1d sdist from PyPI built ONCE per session for sm_90 by `mamba-build wheels`
    (the compile pipeline + manifest): about 5-8 minutes on 2 cores. Returns (out_dir, process)."""
    out = tmp_path_factory.mktemp("cc-wheels")
    proc = run_cli("wheels", "--out", str(out), "--package", "causal-conv1d", "--arch", "9.0", "--no-ptx",
                   "--no-cache", timeout=2400)
    if proc.returncode != 0:
        pytest.fail(f"mamba-build wheels failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return out, proc


# mamba's next release as far as it can be had here (issue 15): the newest sdist with upstream main's setup.py
MAMBA_MAIN_BASE = "2.3.2.post1"


@pytest.fixture(scope="session")
def mamba_main_source(test_cache, shared_dir, tmp_path_factory) -> Path:
    """mamba-ssm 2.3.2.post1's sdist from PyPI with upstream main's setup.py put over its own
    (``../shared/upstream/mamba-main-setup.py``: since July 2026 it builds selective_scan_cuda ONLY with
    MAMBA_KEEP_CUDA_BUILD=TRUE, and MAMBA_SKIP_CUDA_BUILD is gone). Returns the tree, for ``--source``.
    Nothing else is changed: main's setup.py builds the same csrc/ list as 2.3.2.post1's."""
    from tests.pypi_sdists import sdist_tree

    upstream = shared_dir / "upstream" / "mamba-main-setup.py"
    if not upstream.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{upstream} is missing: CI must have ../shared/ beside the clone")
        pytest.skip(f"{upstream} is not here (../shared/ beside the checkout)")
    try:
        tree = sdist_tree("mamba-ssm", MAMBA_MAIN_BASE, test_cache / "pypi-sdists", tmp_path_factory.mktemp("mamba-main"))
    except OSError as exc:  # requests' ConnectionError is an OSError
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PyPI not reachable for mamba-ssm {MAMBA_MAIN_BASE}'s sdist: {exc}")
    (tree / "setup.py").write_bytes(upstream.read_bytes())
    return tree


@pytest.fixture(scope="session")
def mamba_main_wheels(mamba_main_source, tmp_path_factory) -> Path:
    """``mamba_main_source`` built ONCE per session for sm_90 by `mamba-build wheels` (the compile pipeline: the
    keep-cuda-build-on recipe, the wheel's extension check, the arch check, the smoke test in staging). About
    6 minutes on 2 cores. Returns the folder holding the wheels (mamba_ssm-*.whl) and manifest.json.
    (The pool build of both packages can take this over: point its mamba-ssm source at mamba_main_source.)"""
    out = tmp_path_factory.mktemp("mamba-main-wheels")
    proc = run_cli("wheels", "--out", str(out), "--package", "mamba-ssm", "--source", str(mamba_main_source),
                   "--arch", "9.0", "--no-ptx", "--no-cache", timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"mamba-build wheels of mamba-ssm with main's setup.py failed ({proc.returncode}):\n"
                    f"{proc.stderr[-6000:]}")
    return out
