"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.wheel_factory import compile_cuda_so


@pytest.fixture(scope="session")
def cuda_so(tmp_path_factory, cuda_home) -> Path:
    """A real shared object with sm_80 + sm_90 SASS and compute_90 PTX, built with the provisioned toolkit
    (tests/conftest.py::cuda_home; tests using it are marked `toolchain`)."""
    return compile_cuda_so(tmp_path_factory.mktemp("cuda-so"), nvcc=cuda_home / "bin" / "nvcc")
