"""The real doctor: a real nvcc 13.0 behind a wrapper script on PATH (the trap of a /usr/local/bin/nvcc that
execs /usr/local/cuda-13.0/bin/nvcc, rebuilt here around the toolkit the tests provision with `mamba-build
toolchain install`, tests/conftest.py::cuda_home), real torch 2.14.1. Nothing of /usr/local/cuda* is needed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mamba_build import tables
from tests.conftest import run_cli

pytestmark = pytest.mark.toolchain


@pytest.fixture(scope="module")
def wrapper_bin(tmp_path_factory, cuda_home) -> Path:
    """A bin folder whose nvcc is `exec <toolkit>/bin/nvcc "$@"`: torch's cpp_extension then guesses
    CUDA_HOME = the folder above it, which is no toolkit."""
    root = tmp_path_factory.mktemp("wrapper") / "local"
    (root / "bin").mkdir(parents=True)
    nvcc = root / "bin" / "nvcc"
    nvcc.write_text(f'#!/bin/sh\nexec {cuda_home}/bin/nvcc "$@"\n')
    nvcc.chmod(0o755)
    return root / "bin"


@pytest.fixture(scope="module")
def plain_env(wrapper_bin) -> dict:
    """The environment of a user of such a machine: no CUDA_HOME, the wrapper nvcc first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH", "CC", "CXX")}
    env["PATH"] = str(wrapper_bin) + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="module")
def doctor_json(plain_env):
    proc = run_cli("doctor", "--json", env=plain_env, timeout=120)
    doc = json.loads(proc.stdout)
    return proc, doc


def by_id(doc):
    return {c["id"]: c for c in doc["checks"]}


def test_schema_and_exit_code(doctor_json):
    proc, doc = doctor_json
    assert set(doc) >= {"version", "environment", "checks"}
    for c in doc["checks"]:
        assert set(c) >= {"id", "status", "summary", "fix"} and c["status"] in ("ok", "warn", "fail", "skip")
    failed = [c for c in doc["checks"] if c["status"] == "fail"]
    assert proc.returncode == (1 if failed else 0)


def test_wrapper_trap_flagged(doctor_json, plain_env, wrapper_bin, cuda_home):
    _, doc = doctor_json
    assert shutil.which("nvcc", path=plain_env["PATH"]) == str(wrapper_bin / "nvcc")
    checks = by_id(doc)
    home = checks["cuda-home"]
    assert home["status"] == "fail"
    assert f"CUDA_HOME={wrapper_bin.parent} " in home["summary"]
    assert home["fix"].startswith(f"export CUDA_HOME={cuda_home}")
    assert "wrapper script" in checks["nvcc-on-path"]["summary"]
    assert f"{cuda_home}/bin/nvcc" in checks["nvcc-on-path"]["summary"]


def test_real_toolkit_described_from_the_toolkit_itself(doctor_json, cuda_home):
    _, doc = doctor_json
    tk = next(t for t in doc["environment"]["toolkits"] if t["home"] == str(cuda_home))
    assert tk["version"] == "13.0" and tk["version_full"].startswith("13.0.")
    assert tk["has_runtime_headers"] and tk["has_cub"]
    assert tk["archs_source"] == "nvcc --list-gpu-arch"
    assert 90 in tk["archs"] and 70 not in tk["archs"]  # CUDA 13 dropped sm_70
    assert tk["gcc_max"] == 15  # read from include/crt/host_config.h
    # The data table agrees with the toolkit in hand.
    rel = tables.cuda_release("13.0")
    assert tuple(tk["archs"]) == rel.archs and tk["gcc_max"] == rel.gcc_max and tk["clang_max"] == rel.clang_max


def test_torch_facts(doctor_json):
    _, doc = doctor_json
    torch = doc["environment"]["python"]["torch"]
    assert torch["version"].startswith("2.14.1") and torch["cuda"] == "13.0" and torch["cxx11_abi"] is True
    assert torch["gcc_bounds"]["13.0"] == [[6, 0, 0], [16, 0]]
    checks = by_id(doc)
    assert checks["torch"]["status"] == "ok"
    assert checks["torch-vs-nvcc"]["status"] == "ok"
    assert checks["host-compiler"]["status"] == "ok"  # gcc 12 <= 15 and < 16


@pytest.mark.gpu  # depends on the absence of a GPU: skips where one is visible
def test_no_gpu_here_is_a_warning(doctor_json):
    _, doc = doctor_json
    checks = by_id(doc)
    if doc["environment"]["gpus"]["gpus"]:
        pytest.skip("a GPU is visible")
    assert checks["gpus"]["status"] == "warn"


def test_with_cuda_home_set_the_trap_is_gone(plain_env, cuda_home):
    env = dict(plain_env)
    env["CUDA_HOME"] = str(cuda_home)
    proc = run_cli("doctor", "--json", env=env, timeout=120)
    checks = by_id(json.loads(proc.stdout))
    assert checks["cuda-home"]["status"] == "ok"


def test_unknown_cuda_is_usage_error():
    proc = run_cli("doctor", "--cuda", "10.0", timeout=60)
    assert proc.returncode == 2
    assert "unknown CUDA version '10.0'" in proc.stderr and "--cuda" in proc.stderr


def test_human_table_renders(tmp_path, plain_env):
    proc = run_cli("doctor", env={**plain_env, "COLUMNS": "160"}, timeout=120)
    assert "cuda-home" in proc.stdout and "fix:" in proc.stdout
    assert proc.returncode in (0, 1)


@pytest.mark.slow
def test_doctor_probe_compiles_and_imports_the_probe(plain_env, cuda_home):
    """`doctor --probe --cuda 13.0`: the real toolkit (through the wrapper trap), real torch, no GPU."""
    proc = run_cli("doctor", "--probe", "--cuda", "13.0", "--json", env=plain_env, timeout=600)
    doc = json.loads(proc.stdout)
    probe = doc["probe"]
    check = by_id(doc)["probe"]
    assert probe["ok"] is True, probe.get("error")
    assert probe["toolkit"] == str(cuda_home) and probe["arch"] == "8.0" and probe["cuda"] == "13.0"
    assert probe["run"]["imported"] is True
    if not doc["environment"]["gpus"]["gpus"]:
        assert probe["run"]["ran_on_gpu"] is False and probe["run"]["passed"] is None
        assert check["status"] == "warn" and "import only" in check["summary"]
    else:
        assert check["status"] == "ok" and probe["run"]["passed"] is True
