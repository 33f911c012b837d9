"""Issue 17, the Python axis: the same (package, torch, CUDA, archs) built for two Python versions reuses the
device code. The fixture package is built for sm_80 with ``--launcher ccache`` and one fresh CCACHE_DIR, first
for this venv's Python (3.11), then for a Python 3.12 venv of the same torch release (``--python``); the second
build's nvcc unit must be a ccache hit (torch's headers sit at one path per content: mamba_build/build/torch_headers.py),
and the two wheels (cp311, cp312) must hold byte-identical kernels (every cubin, ``cuobjdump -xelf all``).

Cost: the fixture cold (~50 s) and again from the cache (~20 s) on 2 cores; the Python 3.12 venv is made once per
machine and kept in the test cache (PyPI's torch wheel for cp312, ~900 MB; its CUDA libraries are shared with
this venv's, see benchmarks/torch_venv.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from mamba_build.dist.fatbin import find_cuobjdump
from tests.conftest import REPO, run_cli
from tests.integration.test_launcher_real import nvcc_results

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/local/cuda-13.0/bin/nvcc").exists(), reason="needs CUDA 13.0"),
              pytest.mark.skipif(shutil.which("ccache") is None,
                                 reason="ccache is not installed (`make apt-deps` or `apt-get install ccache`)")]

OTHER = "3.12"


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


torch_venv = _benchmark("torch_venv")  # a venv of this torch for another Python
python_axis = _benchmark("python_axis")  # cubins(): every cubin of a wheel, hashed


@pytest.fixture(scope="module")
def other_python(test_cache) -> str:
    """A venv of this venv's torch release for Python 3.12 (made once, kept in the test cache)."""
    import torch

    if sys.version_info[:2] == (3, 12):
        pytest.skip("this venv is Python 3.12 already")
    if torch_venv.find_python(OTHER) is None:
        msg = f"python{OTHER} is not installed (pyenv install {OTHER})"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    version = torch.__version__.split("+")[0]
    key = f"torch{version.replace('.', '')}-py{OTHER.replace('.', '')}"
    return str(torch_venv.make(OTHER, version, test_cache / f"venv-{key}", test_cache / f"wheels-{key}",
                               Path(sys.prefix)))


@pytest.fixture(scope="module")
def two_pythons(tmp_path_factory, other_python):
    root = tmp_path_factory.mktemp("python-axis")
    env = {"CCACHE_DIR": str(root / "ccache"), "CCACHE_LOGFILE": str(root / "ccache.log"),
           "MAMBA_BUILD_CACHE": str(root / "mb-cache")}
    runs = []
    for i, py in enumerate((sys.executable, other_python)):
        out = root / f"wheels{i}"
        proc = run_cli("compile", "--package", "mb-fixture", "--source", str(REPO / "csrc" / "fixture"),
                       "--arch", "8.0", "--python", py, "--no-install", "--no-cache", "--launcher", "ccache",
                       "--wheel-dir", str(out), "--json", env=env, timeout=1200)
        assert proc.returncode == 0, proc.stderr[-3000:]
        log = Path(env["CCACHE_LOGFILE"])
        wheels = list(out.glob("*.whl"))
        assert len(wheels) == 1
        runs.append((json.loads(proc.stdout), wheels[0], nvcc_results(log), proc.stderr))
        log.rename(root / f"ccache-{i}.log")
    return root, runs


def test_the_other_python_takes_the_nvcc_unit_from_the_cache(two_pythons):
    _, ((first, w1, nvcc1, _), (second, w2, nvcc2, stderr)) = two_pythons
    assert "cp311" in w1.name and "cp312" in w2.name  # two Pythons' wheels
    assert first["plan"]["python"] != second["plan"]["python"]
    assert "hit across Python versions" in second["plan"]["launcher_reason"]
    assert nvcc1 == ["cache_miss"]  # a fresh CCACHE_DIR
    assert nvcc2 and all(r.endswith("_cache_hit") for r in nvcc2), nvcc2  # the device code is reused
    assert second["launcher_stats"]["hits"] >= 1


def test_two_pythons_wheels_hold_byte_identical_kernels(two_pythons):
    _, ((_, w1, _, _), (_, w2, _, _)) = two_pythons
    tool = str(find_cuobjdump())
    a, b = python_axis.cubins(w1, tool), python_axis.cubins(w2, tool)
    assert a and any(".sm_80." in n for n in a)
    assert a == b
