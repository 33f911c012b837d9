"""CUDA 11.8 for real (issue 4): a clean machine builds causal-conv1d with CUDA 11.8 for torch 2.0.1.

In order, sharing the expensive steps through session fixtures (tests/integration/conftest.py):
a torch==2.0.1 (CUDA 11.7, PyPI) venv with this mamba-build; `mamba-build toolchain install --cuda 11.8`
by that venv's CLI (compiler from Debian's nvidia-cuda-toolkit .deb through a private, rootless apt-get;
headers and libcudart from NVIDIA's cu11 wheels); then ONE real build:
`mamba-build compile --cuda 11.8 --package causal-conv1d --arch 8.0 --no-install --wheel-dir DIR`
without --version (the default must pick the newest release that builds against torch 2.0.1,
data/packages.toml [[torch_requirement]]), whose plan must show gcc-11 chosen over the system gcc 12,
whose wheel must hold exactly sm_80, and whose extension must import under torch 2.0.1.

Budget on 2 cores: ~1-3 min for the venv on a clean machine (wheels cached after), ~5 s for the
toolkit, ~6-8 min for the build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mamba_build import binary, packages

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.toolchain]


def _run(argv, timeout, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def gxx11() -> str:
    gxx = shutil.which("g++-11")
    if gxx is None or shutil.which("gcc-11") is None:
        pytest.skip("gcc-11/g++-11 not installed (make apt-deps; apt-get install gcc-11 g++-11): "
                    "CUDA 11.8 accepts gcc <= 11")
    return gxx


def test_toolchain_install_118(cuda118_cli_install, gxx11, tmp_path):
    info = cuda118_cli_install.toolkit
    assert "CUDA 11.8  nvcc 11.8.89" in cuda118_cli_install.output
    assert "cuBLAS/cuSPARSE/cuSOLVER headers: yes" in cuda118_cli_install.output  # from torch 2.0.1's nvidia-*
    assert info.debs and info.debs[0]["package"] == "nvidia-cuda-toolkit"
    for rel in ("bin/nvcc", "bin/cudafe++", "bin/fatbinary", "bin/nvlink", "bin/ptxas", "bin/bin2c",
                "nvvm/bin/cicc", "nvvm/libdevice/libdevice.10.bc", "include/cuda_runtime.h", "include/cub/cub.cuh",
                "include/thrust/version.h", "include/crt/host_config.h", "include/cublas_v2.h", "include/cublasLt.h",
                "include/cusparse.h", "include/cusolverDn.h", "lib64/libcudart.so"):
        assert (info.path / rel).exists(), rel
    listed = _run([info.nvcc, "--list-gpu-arch"], 60)
    assert listed.returncode == 0 and "compute_80" in listed.stdout.split() and "compute_90" in listed.stdout.split()
    # the 11.8 nvcc with -ccbin g++-11, nothing from a system CUDA (PATH has none)
    src = tmp_path / "tiny.cu"
    src.write_text("#include <cuda_runtime.h>\n#include <cuda_bf16.h>\n#include <cub/cub.cuh>\n"
                   "__global__ void k(float* x) { x[threadIdx.x] *= 2.f; }\n"
                   "int main() { float* d; cudaMalloc(&d, 4); k<<<1, 1>>>(d); return 0; }\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH")}
    env["PATH"] = "/usr/bin:/bin"
    proc = _run([info.nvcc, "-ccbin", gxx11, "-arch=sm_80", "-c", "-o", tmp_path / "tiny.o", src], 300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_compile_causal_conv1d_118_for_torch201(torch201_venv, cuda118_cli_install, gxx11, tmp_path):
    py = torch201_venv / "bin" / "python"
    wheel_dir = tmp_path / "wheels"
    env = dict(os.environ, MAMBA_BUILD_CACHE=str(cuda118_cli_install.cache))
    for key in ("CUDA_HOME", "CUDA_PATH", "CC", "CXX", "TORCH_CUDA_ARCH_LIST"):
        env.pop(key, None)
    start = time.monotonic()
    proc = _run([torch201_venv / "bin" / "mamba-build", "compile", "--cuda", "11.8", "--package", "causal-conv1d",
                 "--arch", "8.0", "--no-install", "--wheel-dir", wheel_dir], 1500, env=env)
    seconds = time.monotonic() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    print(f"causal-conv1d CUDA 11.8 build: {seconds:.0f} s")

    # the plan: the installed 11.8 toolkit, gcc-11 chosen over the system gcc 12
    plan = out[out.index("mamba-build plan"):]
    assert "torch       2.0.1+cu117" in plan
    assert f"CUDA 11.8 at {cuda118_cli_install.toolkit.path}" in plan
    compiler = next(line for line in plan.splitlines() if line.strip().startswith("compiler"))
    assert "g++-11" in compiler and "(gcc 11." in compiler, compiler
    system_gcc = _run(["gcc", "-dumpfullversion"], 30).stdout.strip()
    if system_gcc and int(system_gcc.split(".")[0]) > 11:
        assert f"skipped gcc {system_gcc}" in compiler, compiler

    # the version: picked by default for torch 2.0.1 (newest whose extension builds; its Python needs 2.4)
    expected = "1.7.0"
    assert f"causal-conv1d {expected} from pypi" in plan, plan
    unmet = packages.unmet_torch_requirements("causal-conv1d", expected, "2.0.1")
    assert [r.scope for r in unmet] == ["python"]

    (whl,) = sorted(wheel_dir.glob("causal_conv1d-*.whl"))
    assert whl.name.startswith(f"causal_conv1d-{expected}+cu11torch2.0")
    archs = binary.archs_in_wheel(whl)
    assert list(archs.sass) == [80] and not list(archs.ptx), archs

    # install into the venv, import the extension in a child; leave the venv as it was
    inst = _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall", whl], 600)
    assert inst.returncode == 0, inst.stderr[-3000:]
    try:
        ext = _run([py, "-c", "import torch, causal_conv1d_cuda; print('EXT', causal_conv1d_cuda.causal_conv1d_fwd)"],
                   300, cwd=tmp_path)
        assert ext.returncode == 0 and "EXT" in ext.stdout, ext.stderr[-3000:]
        # causal-conv1d >= 1.5.1's Python code needs torch >= 2.4 (torch.library.custom_op): the table says so
        pkg = _run([py, "-c", "import causal_conv1d"], 300, cwd=tmp_path)
        assert pkg.returncode != 0 and "custom_op" in pkg.stderr, (
            "causal_conv1d now imports on torch 2.0.1: update [[torch_requirement]] in data/packages.toml\n"
            + pkg.stderr[-2000:])
    finally:
        _run([py, "-m", "pip", "uninstall", "-q", "-y", "causal-conv1d"], 300)
