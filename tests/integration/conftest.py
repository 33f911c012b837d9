"""Shared real-toolchain fixtures (session-scoped; downloads cached in the ``test_cache`` dir).

``toolkit_130``: a CUDA 13.0 toolkit assembled by ``mamba_build.toolchain.install`` from the pinned
PyPI wheels (~105 MB download, once per machine) into a private cache for this test session.
``toolkit_118`` / ``toolkit_12x``: the same for 11.8 and 12.4; they SKIP with the reason while PyPI's
cu11/cu12 nvcc wheels carry no compiler driver (see data/toolchains.toml), and start working by
themselves if the pin table ever marks those releases complete.
``toolchain_cache``: the MAMBA_BUILD_CACHE those toolkits live in (set it to let the CLI find them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mamba_build import toolchain
from mamba_build.errors import MambaBuildError, NetworkError


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
        return toolchain.install(cuda, wheels_dir=wheels)
    except NetworkError as exc:
        pytest.skip(f"PyPI not reachable: {exc.message}")
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
