"""A conda environment's CUDA toolkit, for real, as far as it can be had here.

No conda channel is reachable from this machine, so the prefix is assembled from NVIDIA's real CUDA 13.0
files (the pinned PyPI wheels the provisioned toolkit was made from: the same binaries NVIDIA's redist
archives hold, which conda-forge repackages) in exactly the layout conda-forge's CUDA 13 packages install,
read from their recipes (conda-forge/cuda-nvcc-impl-feedstock recipe/build.sh and nvcc.profile.patch,
cuda-cudart-feedstock and cuda-cccl-feedstock recipe/build.sh, as of CUDA 13.2):

    bin/{nvcc,ptxas,cudafe++,fatbinary,nvlink,bin2c,crt/}   bin/nvcc.profile with TOP = $(_HERE_)/../$(_TARGET_DIR_)
    nvvm/{bin/cicc,libdevice,lib64}                         targets/x86_64-linux/nvvm -> $PREFIX/nvvm
    targets/x86_64-linux/include/ (runtime, crt/, cccl/)     targets/x86_64-linux/bin/nvcc -> $PREFIX/bin/nvcc
    targets/x86_64-linux/lib/libcudart.so*                  lib/libcudart.so* -> targets/x86_64-linux/lib/...
    targets/x86_64-linux/lib64 -> lib                       conda-meta/ (what makes a prefix a conda environment)

What is NOT conda's own here: the compiler. conda's gxx_linux-64 installs a real gcc named
x86_64-conda-linux-gnu-g++; here that name is a wrapper script around the system g++ 12, so the test proves
that the name is found and chosen (and the build runs through it), not conda's gcc itself. docs/conda.md
says what was and was not tested.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from mamba_build.toolchain import toolkits

pytestmark = [pytest.mark.slow, pytest.mark.toolchain]

TARGET = "targets/x86_64-linux"
# conda-forge's bin/nvcc.profile for CUDA 13 (NVIDIA's profile with nvcc.profile.patch of cuda-nvcc-impl-feedstock applied)
CONDA_NVCC_PROFILE = """
TOP              = $(_HERE_)/../$(_TARGET_DIR_)

CICC_PATH        = $(TOP)/nvvm/bin
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice

LD_LIBRARY_PATH += $(TOP)/lib:
PATH            += $(TOP)/bin:$(CICC_PATH):$(TOP)/../../bin:$(TOP)/../../$(_NVVM_BRANCH_)/bin:

INCLUDES        +=  "-I$(TOP)/include" $(_SPACE_)
SYSTEM_INCLUDES +=  "-isystem" "$(TOP)/include/cccl" $(_SPACE_)

LIBRARIES        =+ $(_SPACE_) "-L$(TOP)/lib/stubs" "-L$(TOP)/lib"

CUDAFE_FLAGS    +=
PTXAS_FLAGS     +=
"""


def _members(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if name.startswith("nvidia/cu13/") and not name.endswith("/") and not name.endswith("__init__.py") \
                    and "/.metadata/" not in name:
                yield info, name[len("nvidia/cu13/"):], zf


def _put(zf, info, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
    mode = (info.external_attr >> 16) & 0o777
    os.chmod(dest, mode or 0o644)


def make_conda_prefix(prefix: Path, wheels: dict[str, Path]) -> Path:
    """The conda layout above, from the 13.0 wheel files."""
    tgt = prefix / TARGET
    for name, wheel in wheels.items():
        for info, rel, zf in _members(wheel):
            top, _, rest = rel.partition("/")
            if top == "bin":
                _put(zf, info, prefix / "bin" / rest)  # cuda-nvcc-tools: $PREFIX/bin
            elif top == "nvvm":
                _put(zf, info, prefix / "nvvm" / rest)  # cuda-nvvm-tools: $PREFIX/nvvm
            elif top == "include" and name == "nvidia-nvvm":
                _put(zf, info, prefix / "nvvm" / "include" / rest)  # cuda-nvvm-impl: nvvm/include
            elif top == "lib" and name == "nvidia-nvvm":
                _put(zf, info, prefix / "nvvm" / "lib64" / rest)  # cuda-nvvm-impl: nvvm/lib64
            elif top == "include":
                _put(zf, info, tgt / "include" / rest)  # cuda-cudart-dev / cuda-crt-dev / cuda-cccl: targets/
            elif top == "lib":
                _put(zf, info, tgt / "lib" / rest)
            else:
                raise AssertionError(f"unexpected member {rel} in {wheel.name}")
    (prefix / "bin" / "nvcc.profile").write_text(CONDA_NVCC_PROFILE)
    (tgt / "bin").mkdir(parents=True, exist_ok=True)
    os.symlink(prefix / "bin" / "nvcc", tgt / "bin" / "nvcc")
    os.symlink(prefix / "nvvm", tgt / "nvvm")
    os.symlink(tgt / "lib", tgt / "lib64")
    (prefix / "lib").mkdir(exist_ok=True)
    (prefix / "include").mkdir(exist_ok=True)  # conda's own include/ (no CUDA header in it)
    cudart = sorted((tgt / "lib").glob("libcudart.so.*"))
    assert cudart, "the runtime wheel has no libcudart"
    os.symlink(cudart[0].name, tgt / "lib" / "libcudart.so")  # cuda-cudart-dev's dev symlink
    for lib in sorted((tgt / "lib").glob("*.so*")):
        os.symlink(lib, prefix / "lib" / lib.name)  # cuda-cudart: $PREFIX/lib -> targets/.../lib
    for name, real in (("x86_64-conda-linux-gnu-gcc", "gcc-12"), ("x86_64-conda-linux-gnu-g++", "g++-12")):
        target = shutil.which(real) or shutil.which(real.split("-")[0])
        path = prefix / "bin" / name
        path.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        path.chmod(0o755)
    (prefix / "conda-meta").mkdir()
    (prefix / "conda-meta" / "history").write_text("==> 2026-12-02 (assembled by mamba-build's tests) <==\n")
    return prefix


@pytest.fixture(scope="module")
def conda_prefix(cuda_home, test_cache, tmp_path_factory) -> Path:
    """The prefix, from the wheels the provisioned 13.0 toolkit was made from (no download: they are cached)."""
    pins = toolkits.release_pins("13.0")
    files = toolkits.fetch_wheels(pins, test_cache / "toolkits" / "wheels" / "nvidia")
    return make_conda_prefix(tmp_path_factory.mktemp("conda") / "env", files)


def conda_env(prefix: Path) -> dict:
    """An activated conda environment: $CONDA_PREFIX, its bin first on PATH, no other CUDA anywhere on PATH."""
    path = os.pathsep.join([str(prefix / "bin"), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    env = {"CONDA_PREFIX": str(prefix), "PATH": path, "CUDA_HOME": "", "CUDA_PATH": "", "CC": "", "CXX": ""}
    return env


def _run(*args, prefix: Path, timeout: float = 600):
    env = conda_env(prefix)
    full = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH", "CC", "CXX")}
    full.update({k: v for k, v in env.items() if v})
    import subprocess

    return subprocess.run([sys.executable, "-m", "mamba_build", *args], capture_output=True, text=True, env=full,
                          timeout=timeout, cwd=Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def doctor_probe(conda_prefix):
    proc = _run("doctor", "--probe", "--json", prefix=conda_prefix)
    return proc, json.loads(proc.stdout)


def test_the_prefix_is_conda_shaped(conda_prefix):
    tgt = conda_prefix / TARGET
    assert (conda_prefix / "bin" / "nvcc").is_file() and (tgt / "bin" / "nvcc").is_symlink()
    assert (tgt / "include" / "cuda_runtime_api.h").is_file() and not (conda_prefix / "include" / "cuda_runtime_api.h").exists()
    assert (tgt / "include" / "cccl" / "cub" / "cub.cuh").is_file() and (tgt / "include" / "crt" / "host_config.h").is_file()
    assert (conda_prefix / "lib" / "libcudart.so").exists() and (conda_prefix / "nvvm" / "bin" / "cicc").is_file()


def test_doctor_finds_the_conda_toolkit_and_compiler(doctor_probe, conda_prefix):
    proc, doc = doctor_probe
    tks = {t["home"]: t for t in doc["environment"]["toolkits"]}
    tk = tks[str(conda_prefix)]
    assert "$CONDA_PREFIX" in tk["sources"] and tk["version"] == "13.0" and tk["version_full"] == "13.0.88"
    assert tk["has_runtime_headers"] and tk["has_cub"]
    assert tk["gcc_max"] == 15 and tk["host_config"] == str(conda_prefix / TARGET / "include" / "crt" / "host_config.h")
    assert tk["include_dirs"] == [str(conda_prefix / TARGET / "include")]
    assert tk["archs_source"] == "nvcc --list-gpu-arch" and 80 in tk["archs"]
    conda_gxx = str(conda_prefix / "bin" / "x86_64-conda-linux-gnu-g++")
    assert any(c["cxx"] == conda_gxx and c["kind"] == "gcc" and c["version"][0] >= 9
               for c in doc["environment"]["compilers"]), doc["environment"]["compilers"]
    assert doc["environment"]["target"]["toolkit"] == str(conda_prefix)  # what torch picks: nvcc on PATH


def test_doctor_probe_compiles_through_the_conda_prefix(doctor_probe, conda_prefix):
    """The probe's host unit includes c10/cuda/CUDAGuard.h (cuda_runtime_api.h): it builds only because the
    prefix's targets/x86_64-linux/include is added (torch adds $CUDA_HOME/include only)."""
    proc, doc = doctor_probe
    probe = doc["probe"]
    assert probe["ok"] is True, (probe.get("error"), proc.stderr[-2000:])
    assert probe["toolkit"] == str(conda_prefix) and probe["cxx"] == str(conda_prefix / "bin" / "x86_64-conda-linux-gnu-g++")
    assert probe["run"]["imported"] is True
    log = Path(probe["log"]).read_text(errors="replace")
    assert f"-I{conda_prefix / TARGET / 'include'}" in log and "x86_64-conda-linux-gnu-g++" in log


def test_compile_plan_uses_the_conda_toolkit(conda_prefix):
    proc = _run("compile", "--dry-run", "--json", "--no-provision", "--package", "causal-conv1d", "--version",
                "causal-conv1d==1.7.0", "--arch", "8.0", prefix=conda_prefix, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = json.loads(proc.stdout)
    assert plan["cuda_home"] == str(conda_prefix) and plan["provision"] is None
    assert plan["include_dirs"][0] == str(conda_prefix / TARGET / "include")
    assert plan["compiler"]["cxx"] == str(conda_prefix / "bin" / "x86_64-conda-linux-gnu-g++")
