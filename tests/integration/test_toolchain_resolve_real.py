"""Every CUDA 13.x on PyPI: resolved from the real index, and a newer 13.x installed and used for real.

1. Each 13.x release of data/cuda.toml resolves through NVIDIA's cuda-toolkit metapackage on PyPI to a
   wheel set of that release, every file with its sha256 and size (JSON + a 3 KB wheel each: seconds);
   13.0 resolves to exactly the hand-pinned table.
2. CUDA 13.5 (the newest on PyPI as of 2026-12-02), installed with `mamba-build toolchain install --cuda 13.5`
   into the test cache once per machine (~130 MB; tests/conftest.py::provision_toolkit), then
   `doctor --probe --cuda 13.5` compiles the probe with it against torch 2.14.1 (CUDA 13.0: same major) and
   imports it, and `compile --dry-run --cuda 13.5` extends torch's compiler map (which stops at 13.0) to 13.5
   with the bound read from the toolkit's own host_config.h.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from mamba_build import tables
from mamba_build.errors import NetworkError
from mamba_build.plan.host_compiler import parse_host_config
from mamba_build.toolchain import toolkit_index, toolkits
from tests.conftest import provision_toolkit, run_cli
from tests.conftest import tests_cache_root as _test_cache_root

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.toolchain]

NEWER = "13.5"
RELEASES_13 = [v for v in tables.known_cuda_versions() if v.startswith("13.")]


@pytest.fixture(scope="module")
def resolved():
    out = {}
    try:
        for cuda in RELEASES_13:
            out[cuda] = toolkit_index.resolve(cuda)
    except NetworkError as exc:
        pytest.skip(f"PyPI not reachable: {exc.message}")
    return out


def test_every_13x_resolves_to_its_own_wheels(resolved):
    assert RELEASES_13 == ["13.0", "13.1", "13.2", "13.3", "13.4", "13.5"]
    for cuda, (pins, lock) in resolved.items():
        names = {w.name: w for w in pins.wheels}
        assert {"nvidia-cuda-nvcc", "nvidia-cuda-crt", "nvidia-nvvm", "nvidia-cuda-runtime",
                "nvidia-cuda-cccl"} <= set(names), cuda
        assert names["nvidia-cuda-nvcc"].version.startswith(cuda + "."), (cuda, names["nvidia-cuda-nvcc"])
        assert lock["metapackage"]["name"] == "cuda-toolkit" and lock["metapackage"]["version"].startswith(cuda + ".")
        for w in pins.wheels:
            (f,) = w.files
            assert len(f.sha256) == 64 and f.size and w.root == "nvidia/cu13", (cuda, w)
        # cuobjdump: published from 13.2 on
        assert ("nvidia-cuda-cuobjdump" in names) == (tables.version_tuple(cuda) >= (13, 2)), cuda


def test_130_resolves_to_the_pinned_table(resolved):
    pins, _ = resolved["13.0"]
    table = toolkits.release_pins("13.0")
    assert {(w.name, w.version, w.files[0].filename, w.files[0].sha256) for w in pins.wheels} == \
        {(w.name, w.version, w.files[0].filename, w.files[0].sha256) for w in table.wheels}


@pytest.fixture(scope="module")
def newer():
    """(CUDA_HOME, MAMBA_BUILD_CACHE) of 13.5 installed by the CLI (once per machine, see provision_toolkit)."""
    home = provision_toolkit(NEWER)
    return home, _test_cache_root() / "toolkits"


def test_newer_toolkit_installed_from_its_lock(newer):
    home, _ = newer
    info = toolkits.ToolchainInfo.from_dir(home)
    assert info.nvcc_version.startswith(NEWER + ".") and info.origin.startswith("index (cuda-toolkit 13.5.")
    lock = json.loads(info.lock_file.read_text())
    assert lock["source"] == "index" and lock["cuda"] == NEWER and lock["index"]
    assert {w["filename"] for w in lock["wheels"]} == {w["file"] for w in info.wheels}
    assert all(w["sha256"] == next(x["sha256"] for x in info.wheels if x["file"] == w["filename"]) for w in lock["wheels"])
    assert (home / "bin" / "cuobjdump").is_file()
    limits = parse_host_config((home / "include" / "crt" / "host_config.h").read_text())
    rel = tables.cuda_release(NEWER)
    assert (limits.gcc_max, limits.clang_max) == (rel.gcc_max, rel.clang_max) == (16, 22)
    assert tuple(info.archs) == rel.archs


def test_doctor_probe_with_the_newer_toolkit(newer):
    home, cache = newer
    env = {"MAMBA_BUILD_CACHE": str(cache), "CUDA_HOME": "", "PATH": "/usr/bin:/bin:" + os.path.dirname(sys.executable)}
    full = {k: v for k, v in {**os.environ, **env}.items() if v}
    proc = run_cli("doctor", "--probe", "--cuda", NEWER, "--json", env=full, timeout=900)
    doc = json.loads(proc.stdout)
    checks = {c["id"]: c for c in doc["checks"]}
    probe = doc["probe"]
    assert probe["ok"] is True, (probe.get("error"), proc.stderr[-2000:])
    assert probe["toolkit"] == str(home) and probe["cuda"] == NEWER and probe["run"]["imported"] is True
    tk = next(t for t in doc["environment"]["toolkits"] if t["home"] == str(home))
    assert tk["version"] == NEWER and tk["gcc_max"] == 16 and "mamba-build toolchain" in tk["sources"]
    assert checks["torch-vs-nvcc"]["status"] == "warn" and "minor mismatch" in checks["torch-vs-nvcc"]["summary"]
    # torch 2.14.1's CUDA_GCC_VERSIONS stops at 13.0: the doctor says compile adds the entry in the build process
    assert checks["host-compiler"]["status"] == "warn" and "no entry for 13.5" in checks["host-compiler"]["summary"]


def test_compile_extends_torchs_compiler_map_to_the_newer_minor(newer):
    home, cache = newer
    env = {k: v for k, v in {**os.environ, "MAMBA_BUILD_CACHE": str(cache)}.items() if k != "CUDA_HOME"}
    proc = run_cli("compile", "--dry-run", "--json", "--cuda", NEWER, "--package", "causal-conv1d", "--version",
                   "causal-conv1d==1.7.0", "--arch", "9.0", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = json.loads(proc.stdout)
    assert plan["cuda_home"] == str(home) and plan["cuda_version"] == NEWER and plan["provision"] is None
    # lower bound: torch's 13.0 entry (6.0.0); upper: the toolkit's host_config.h (gcc <= 16) -> < 17
    assert plan["compiler_bounds"] == {NEWER: [[6, 0, 0], [17, 0]]}
    assert plan["compiler"]["version"].startswith("12.")
