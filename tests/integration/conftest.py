"""Shared real-toolchain fixtures (session-scoped; downloads cached in the ``test_cache`` dir).

``toolkit_130``: a CUDA 13.0 toolkit assembled by ``mamba_build.toolchain.install`` from the pinned
PyPI wheels (~105 MB download, once per machine) into a private cache for this test session.
``toolkit_118``: the same for 11.8 (compiler from Debian's nvidia-cuda-toolkit .deb via a private
apt-get, headers/cudart from the cu11 wheels; ~107 MB). ``toolkit_12x``: 12.4; it SKIPs with the reason
while PyPI's cu12 nvcc wheels carry no compiler driver (see data/toolchains.toml).
``toolchain_cache``: the MAMBA_BUILD_CACHE those toolkits live in (set it to let the CLI find them).

CUDA 11.8 against torch 2.0.1 (tests/integration/test_cuda118_real.py):
``torch201_venv``: a venv with torch==2.0.1 (CUDA 11.7 build from PyPI) and this checkout of
mamba-build installed editable; kept in ``$MAMBA_BUILD_TEST_CACHE/venv-torch201`` (its wheels in
``wheels-torch201``) and rebuilt when it does not import torch 2.0.1.
``cuda118_cli_install``: ``mamba-build toolchain install --cuda 11.8`` run by that venv's CLI into a
fresh MAMBA_BUILD_CACHE (so the install path runs every session); the downloaded .deb and wheels are
kept in ``$MAMBA_BUILD_TEST_CACHE/cuda118-files`` and passed with --find-links on later runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mamba_build import toolchain
from mamba_build.errors import ExitCode, MambaBuildError, NetworkError


@pytest.fixture(scope="session")
def nvidia_wheel_cache(test_cache) -> Path:
    """Where downloaded NVIDIA wheels are kept between runs (``$MAMBA_BUILD_TEST_CACHE/nvidia-wheels``)."""
    path = test_cache / "nvidia-wheels"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def toolchain_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("toolchain-cache")


def _install(cuda: str, cache: Path, wheels: Path) -> toolchain.ToolchainInfo:
    old = os.environ.get("MAMBA_BUILD_CACHE")
    os.environ["MAMBA_BUILD_CACHE"] = str(cache)
    try:
        pins = toolchain.release_pins(cuda)
        if not pins.complete:
            pytest.skip(f"CUDA {cuda} cannot be assembled from PyPI: its nvcc wheel lacks "
                        f"{', '.join(pins.missing)} (data/toolchains.toml)")
        if pins.debs and not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
            pytest.skip(f"CUDA {cuda} comes from Debian packages: needs apt-get and dpkg-deb")
        return toolchain.install(cuda, wheels_dir=wheels, debs_dir=wheels.parent / "debs")
    except NetworkError as exc:
        pytest.skip(f"PyPI / the Debian archive not reachable: {exc.message}")
    except MambaBuildError as exc:  # anything else is a real failure of install()
        pytest.fail(exc.render())
    finally:
        if old is None:
            os.environ.pop("MAMBA_BUILD_CACHE", None)
        else:
            os.environ["MAMBA_BUILD_CACHE"] = old


@pytest.fixture(scope="session")
def toolkit_130(toolchain_cache, nvidia_wheel_cache) -> toolchain.ToolchainInfo:
    return _install("13.0", toolchain_cache, nvidia_wheel_cache)


@pytest.fixture(scope="session")
def toolkit_118(toolchain_cache, nvidia_wheel_cache) -> toolchain.ToolchainInfo:
    return _install("11.8", toolchain_cache, nvidia_wheel_cache)


@pytest.fixture(scope="session")
def toolkit_12x(toolchain_cache, nvidia_wheel_cache) -> toolchain.ToolchainInfo:
    return _install("12.4", toolchain_cache, nvidia_wheel_cache)


# ---------------------------------------------------------------------------------------------
# CUDA 11.8 + torch 2.0.1 (test_cuda118_real.py)

TORCH201_REQUIREMENTS = ["torch==2.0.1", "numpy<2", "ninja", "packaging", "wheel", "setuptools", "rich", "requests"]
REPO = Path(__file__).resolve().parents[2]


def _run(argv, timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)


def _torch201_ok(python: Path) -> bool:
    if not python.exists():
        return False
    probe = _run([python, "-c", "import torch, numpy, ninja, rich, requests; print(torch.__version__)"], 300)
    return probe.returncode == 0 and probe.stdout.strip() == "2.0.1+cu117"


@pytest.fixture(scope="session")
def torch201_venv(test_cache) -> Path:
    """venv with torch 2.0.1+cu117 and this checkout's mamba-build (editable); returns the venv folder."""
    if sys.version_info[:2] > (3, 11):
        pytest.skip("torch 2.0.1 has wheels for CPython <= 3.11 only")
    wheels = test_cache / "wheels-torch201"
    venv = test_cache / "venv-torch201"
    py = venv / "bin" / "python"
    if not _torch201_ok(py):
        shutil.rmtree(venv, ignore_errors=True)
        made = _run([sys.executable, "-m", "venv", venv], 300)
        assert made.returncode == 0, made.stderr
        wheels.mkdir(parents=True, exist_ok=True)
        # keep the wheels (torch 2.0.1 + its nvidia-*-cu11 dependencies: ~2.3 GB) for the next run
        got = _run([py, "-m", "pip", "download", "-q", "-d", wheels, "--find-links", wheels, *TORCH201_REQUIREMENTS], 1800)
        if got.returncode != 0:
            if any(m in got.stderr for m in ("NewConnectionError", "Temporary failure", "Network is unreachable")):
                pytest.skip("PyPI not reachable to download torch 2.0.1")
            pytest.fail("pip download torch==2.0.1 failed:\n" + got.stderr[-3000:])
        inst = _run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels, *TORCH201_REQUIREMENTS], 1800)
        assert inst.returncode == 0, inst.stderr[-3000:]
        assert _torch201_ok(py), "torch 2.0.1 does not import in the new venv"
    # this checkout, every session (cheap): the CLI under test must be the code under test
    mb = _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", REPO], 600)
    assert mb.returncode == 0, mb.stderr[-3000:]
    return venv


@dataclass
class CliInstall:
    cache: Path            # MAMBA_BUILD_CACHE used by the CLI calls
    toolkit: toolchain.ToolchainInfo
    output: str            # what `toolchain install` printed
    seconds: float


@pytest.fixture(scope="session")
def cuda118_cli_install(torch201_venv, test_cache, tmp_path_factory) -> CliInstall:
    """`mamba-build toolchain install --cuda 11.8` by the torch 2.0.1 venv's CLI, into a fresh cache."""
    import time
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed for the Debian-provided CUDA 11.8 compiler")
    files = test_cache / "cuda118-files"
    files.mkdir(parents=True, exist_ok=True)
    pins = toolchain.release_pins("11.8")
    have = {f.name for f in files.iterdir()}
    local = all(d.filename in have for d in pins.debs) and all(
        any(f.filename in have for f in w.files) for w in pins.wheels)
    cache = tmp_path_factory.mktemp("mb-cache-118")
    env = dict(os.environ, MAMBA_BUILD_CACHE=str(cache))
    argv = [torch201_venv / "bin" / "mamba-build", "toolchain", "install", "--cuda", "11.8"]
    if local:
        argv += ["--find-links", files]
    start = time.monotonic()
    proc = _run(argv, 1800, env=env)
    seconds = time.monotonic() - start
    if proc.returncode == ExitCode.NETWORK:
        pytest.skip("the Debian archive or PyPI is not reachable: " + proc.stderr[-500:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if not local:  # keep what was downloaded (sha256-checked by install) for the next run
        for found in list((cache / "debs").glob("*.deb")) + list((cache / "wheels" / "nvidia").glob("*.whl")):
            shutil.copy2(found, files / found.name)
    old = os.environ.get("MAMBA_BUILD_CACHE")
    os.environ["MAMBA_BUILD_CACHE"] = str(cache)
    try:
        info = toolchain.find("11.8")
    finally:
        if old is None:
            os.environ.pop("MAMBA_BUILD_CACHE", None)
        else:
            os.environ["MAMBA_BUILD_CACHE"] = old
    assert info is not None, f"toolchain install succeeded but no toolkit is under {cache}"
    return CliInstall(cache, info, proc.stdout + proc.stderr, seconds)
