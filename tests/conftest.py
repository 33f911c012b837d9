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


# ---------------------------------------------------------------------------------------------
# The CUDA toolkit of the real-toolchain tests, provisioned by the project itself

TEST_CUDA = "13.0"  # torch 2.14.1 (the venv's) is a CUDA 13.0 build
_TOOLKIT_CODE = ("mamba_build/toolchain.py", "mamba_build/toolkit_index.py", "mamba_build/data/toolchains.toml")


def _toolkit_stamp() -> str:
    import hashlib

    h = hashlib.sha256()
    for rel in _TOOLKIT_CODE:
        h.update((REPO / rel).read_bytes())
    return h.hexdigest()[:16]


def provision_toolkit(cuda: str = TEST_CUDA) -> Path:
    """The CUDA toolkit every real-toolchain test uses: `mamba-build toolchain install --cuda X.Y` (this
    checkout's CLI, run in a child) into ``$MAMBA_BUILD_TEST_CACHE/toolkits`` (its MAMBA_BUILD_CACHE: the
    toolkit and the downloaded wheels stay there). Done once per machine, and again (``--force``) when the code
    that assembles toolkits changed (a stamp of toolchain.py, toolkit_index.py, data/toolchains.toml). Nothing
    of /usr/local/cuda* is used. ``$MAMBA_BUILD_TEST_CUDA_HOME`` overrides it (a toolkit of your own).
    Network failure: skip (an error under CI=true, see pytest_runtest_makereport)."""
    import fcntl

    override = os.environ.get("MAMBA_BUILD_TEST_CUDA_HOME")
    if override:
        return Path(override)
    cache = tests_cache_root() / "toolkits"
    cache.mkdir(parents=True, exist_ok=True)
    home = cache / "toolchains" / f"cuda-{cuda}"
    stamp_file = cache / f"cuda-{cuda}.stamp"
    stamp = _toolkit_stamp()
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time (parallel sessions on one machine)
        current = stamp_file.read_text().strip() if stamp_file.is_file() else None
        if current == stamp and (home / "bin" / "nvcc").is_file():
            return home.resolve()
        argv = ["toolchain", "install", "--cuda", cuda] + (["--force"] if home.exists() else [])
        proc = run_cli(*argv, env={"MAMBA_BUILD_CACHE": str(cache)}, timeout=3600)
        if proc.returncode == 8:  # ExitCode.NETWORK
            pytest.skip(f"cannot provision CUDA {cuda} for the real-toolchain tests (network): {proc.stderr[-400:]}")
        if proc.returncode != 0 or not (home / "bin" / "nvcc").is_file():
            pytest.fail(f"`mamba-build toolchain install --cuda {cuda}` failed ({proc.returncode}):\n"
                        + (proc.stdout + proc.stderr)[-3000:])
        stamp_file.write_text(stamp + "\n")
    return home.resolve()


@pytest.fixture(scope="session")
def cuda_home() -> Path:
    """CUDA_HOME of the real-toolchain tests (see :func:`provision_toolkit`)."""
    return provision_toolkit()


@pytest.fixture(scope="session")
def cuda_env(cuda_home) -> dict:
    """Environment additions that point a `mamba-build` child at the provisioned toolkit."""
    return {"CUDA_HOME": str(cuda_home)}


# ---------------------------------------------------------------------------------------------
# CI=true: a skipped real-toolchain test is an error

ALLOWED_SKIP_MARKERS = ("gpu",)  # `gpu`: depends on whether a GPU is visible (skips where that does not hold)


def pytest_configure(config):
    config.addinivalue_line("markers", "toolchain: uses a real CUDA toolkit (provisioned by the project, see "
                                       "tests/conftest.py); under CI=true its skip is an error")


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true (the CI runner sets it) a skip of a test marked `toolchain` becomes an error/failure: CI must
    run the real-toolchain tests, not skip them because a toolkit, a tool or the network was missing. Allowed:
    tests also marked `gpu` (ALLOWED_SKIP_MARKERS), which skip where a GPU is (not) visible."""
    outcome = yield
    rep = outcome.get_result()
    if not (rep.skipped and _ci()) or hasattr(rep, "wasxfail"):
        return
    if item.get_closest_marker("toolchain") is None:
        return
    if any(item.get_closest_marker(m) is not None for m in ALLOWED_SKIP_MARKERS):
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3 else str(rep.longrepr)
    rep.outcome = "failed"
    rep.longrepr = (f"CI=true: the real-toolchain test {item.nodeid} was skipped ({reason}); in CI it must run. "
                    "Only tests marked `gpu` may skip (tests/conftest.py: ALLOWED_SKIP_MARKERS).")


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
def causal_conv1d_wheels(tmp_path_factory, cuda_env):
    """The real causal-conv1d sdist from PyPI built ONCE per session for sm_90 by `mamba-build wheels`
    (the compile pipeline + manifest) with the provisioned toolkit: about 5-8 minutes on 2 cores.
    Returns (out_dir, process)."""
    out = tmp_path_factory.mktemp("cc-wheels")
    proc = run_cli("wheels", "--out", str(out), "--package", "causal-conv1d", "--arch", "9.0", "--no-ptx",
                   "--no-cache", env=cuda_env, timeout=2400)
    if proc.returncode != 0:
        pytest.fail(f"mamba-build wheels failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return out, proc
