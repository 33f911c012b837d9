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
