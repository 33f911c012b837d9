"""CUDA 11.8 for real (issue 4): a clean machine builds for torch 2.0.1 with CUDA 11.8.

In order, sharing the expensive steps through session fixtures (tests/integration/conftest.py):
a torch==2.0.1 (CUDA 11.7, PyPI) venv with this mamba-build; `mamba-build toolchain install --cuda 11.8`
by that venv's CLI (compiler from Debian's nvidia-cuda-toolkit .deb through a private, rootless apt-get;
headers and libcudart from NVIDIA's cu11 wheels); the plan of `compile --cuda 11.8 --package causal-conv1d`
without --version (the default must pick the newest release that builds against torch 2.0.1,
data/packages.toml [[torch_requirement]]; gcc-11 chosen over the system gcc 12). The real build with that
toolkit is tests/integration/test_old_stack_real.py's ``old_seed_build`` (both seeds' packages, sm_80, gcc-11);
its causal_conv1d_cuda shows that causal-conv1d 1.7.0's Python needs torch >= 2.4.

Budget on 2 cores: ~1-3 min for the venv on a clean machine (wheels cached after), ~5 s for the toolkit.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from mamba_build.plan import packages

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


def test_compile_plan_for_torch201_picks_gcc11_and_the_newest_release(torch201_venv, cuda118_cli_install, gxx11):
    """The plan of `compile --cuda 11.8 --package causal-conv1d` in the torch 2.0.1 venv (no --version): the
    installed 11.8 toolkit, gcc-11 over the system gcc 12, and the newest release whose extension builds against
    torch 2.0.1 (data/packages.toml [[torch_requirement]]). The real CUDA 11.8 build for torch 2.0.1 is
    test_old_stack_real.py's (old_seed_build: both seeds' packages, sm_80, gcc-11), which replaced the causal-conv1d
    1.7.0 build this test used to run (6-8 min of CI)."""
    env = dict(os.environ, MAMBA_BUILD_CACHE=str(cuda118_cli_install.cache))
    for key in ("CUDA_HOME", "CUDA_PATH", "CC", "CXX", "TORCH_CUDA_ARCH_LIST"):
        env.pop(key, None)
    proc = _run([torch201_venv / "bin" / "mamba-build", "compile", "--cuda", "11.8", "--package", "causal-conv1d",
                 "--arch", "8.0", "--no-install", "--dry-run"], 600, env=env)
    plan = proc.stdout
    assert proc.returncode == 0, proc.stderr[-6000:]
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


def test_causal_conv1d_170_python_needs_torch_24(torch201_venv, old_seed_build, test_cache, tmp_path):
    """data/packages.toml's python-scope requirement, for real: causal-conv1d 1.7.0's Python package (its PyPI
    sdist) with a real causal_conv1d_cuda built for torch 2.0.1 (old_seed_build's, from causal-conv1d 1.5.2's
    CUDA sources) does not import on torch 2.0.1 (torch.library.custom_op), while the extension does."""
    import zipfile

    from tests.pypi_sdists import sdist_tree

    tree = sdist_tree("causal-conv1d", "1.7.0", test_cache / "pypi-sdists", tmp_path / "sdist")
    site = tmp_path / "site"
    shutil.copytree(tree / "causal_conv1d", site / "causal_conv1d")
    (whl,) = old_seed_build.wheel_dir.glob("causal_conv1d-*.whl")
    with zipfile.ZipFile(whl) as zf:
        (so,) = [n for n in zf.namelist() if n.startswith("causal_conv1d_cuda") and n.endswith(".so")]
        zf.extract(so, site)
    py = torch201_venv / "bin" / "python"
    env = dict(os.environ, PYTHONPATH=str(site), CUDA_VISIBLE_DEVICES="")
    ext = _run([py, "-c", "import torch, causal_conv1d_cuda; print('EXT', causal_conv1d_cuda.causal_conv1d_fwd)"],
               300, cwd=tmp_path, env=env)
    assert ext.returncode == 0 and "EXT" in ext.stdout, ext.stderr[-3000:]
    # causal-conv1d >= 1.5.1's Python code needs torch >= 2.4 (torch.library.custom_op): the table says so
    pkg = _run([py, "-c", "import causal_conv1d"], 300, cwd=tmp_path, env=env)
    assert pkg.returncode != 0 and "custom_op" in pkg.stderr, (
        "causal_conv1d now imports on torch 2.0.1: update [[torch_requirement]] in data/packages.toml\n"
        + pkg.stderr[-2000:])
