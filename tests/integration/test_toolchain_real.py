"""Real toolkits assembled from NVIDIA's PyPI wheels (downloads cached; see conftest.py here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from mamba_build import tables
from mamba_build.errors import NetworkError
from mamba_build.plan.host_compiler import parse_host_config
from mamba_build.toolchain import toolkits

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.toolchain]

TINY_CU = textwrap.dedent("""\
    #include <cuda_runtime.h>
    #include <cuda_fp16.h>
    #include <cuda_bf16.h>
    #include <cub/cub.cuh>
    __global__ void twice(float* x) { x[threadIdx.x] *= 2.f; }
    int main() { float* d = nullptr; cudaMalloc(&d, 4); twice<<<1, 1>>>(d); return 0; }
    """)


def _compile(info: toolkits.ToolchainInfo, workdir: Path, extra: list[str] | None = None):
    src = workdir / "tiny.cu"
    src.write_text(TINY_CU)
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH", "NVCC_PREPEND_FLAGS",
                                                           "NVCC_APPEND_FLAGS")}
    env["PATH"] = "/usr/bin:/bin"  # no system CUDA on PATH: everything must come from the toolkit
    return subprocess.run([str(info.nvcc), "-arch=sm_80", *(extra or []), "-o", str(workdir / "tiny"), str(src)],
                          capture_output=True, text=True, env=env, timeout=300)


# what NVIDIA's cu11/cu12 nvcc wheels lack (11.8 and 12.4 list none any more: their compiler comes from Debian)
NO_COMPILER = ["bin/nvcc", "bin/nvcc.profile", "nvvm/bin/cicc", "bin/cudafe++", "bin/fatbinary", "bin/nvlink"]


@pytest.mark.parametrize("cuda", ["11.8", "12.4", "12.8"])
def test_pypi_cu11_cu12_nvcc_wheels_have_no_compiler(cuda, nvidia_wheel_cache):
    """The evidence behind `complete = false` (12.8) and `source = "debian"` (11.8, 12.4): the pinned nvcc
    wheel has ptxas but no nvcc/cicc."""
    pins = toolkits.release_pins(cuda)
    nvcc_pin = next(w for w in pins.wheels if "nvcc" in w.name)
    only = toolkits.ReleasePins(cuda, (nvcc_pin,))
    try:
        files = toolkits.fetch_wheels(only, nvidia_wheel_cache)  # sha256-verified against the pins
    except NetworkError as exc:
        pytest.skip(f"PyPI not reachable: {exc.message}")
    names = set(zipfile.ZipFile(files[nvcc_pin.name]).namelist())
    assert f"{nvcc_pin.root}/bin/ptxas" in names
    assert f"{nvcc_pin.root}/include/crt/host_config.h" in names
    for missing in pins.missing or NO_COMPILER:
        assert f"{nvcc_pin.root}/{missing}" not in names
    if cuda in ("11.8", "12.4"):
        assert pins.complete and pins.source == "debian"
    else:
        assert not pins.complete


def test_install_130_layout_and_nvcc(toolkit_130, tmp_path):
    info = toolkit_130
    assert info.nvcc_version.startswith("13.0.") and toolkits.parse_nvcc_version(info.nvcc_version_text)
    assert 80 in info.archs and 90 in info.archs
    home = info.path
    for rel in ("bin/nvcc", "bin/nvcc.profile", "bin/cudafe++", "bin/fatbinary", "bin/nvlink", "bin/ptxas",
                "nvvm/bin/cicc", "nvvm/libdevice/libdevice.10.bc", "include/cuda_runtime.h",
                "include/cuda_bf16.h", "include/crt/host_config.h", "lib64/libcudart.so"):
        assert (home / rel).exists(), rel
    listed = subprocess.run([str(info.nvcc), "--list-gpu-arch"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "compute_80" in listed.stdout.split()
    limits = parse_host_config(info.host_config.read_text())
    release = tables.cuda_release("13.0")
    assert (limits.gcc_max, limits.clang_max) == (release.gcc_max, release.clang_max)
    proc = _compile(info, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "tiny").exists()


def test_cli_lists_and_finds_it(toolkit_130, toolchain_cache, monkeypatch):
    from tests.conftest import run_cli
    proc = run_cli("toolchain", "list", env={"MAMBA_BUILD_CACHE": str(toolchain_cache)}, timeout=60)
    assert proc.returncode == 0 and "CUDA 13.0" in proc.stdout and "sm_80" in proc.stdout
    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(toolchain_cache))
    assert toolkits.find("13.0").path == toolkit_130.path


def test_install_118_and_compile_with_gcc11(toolkit_118, tmp_path):
    gxx = shutil.which("g++-11")
    if gxx is None:
        pytest.skip("g++-11 not installed (apt-get install gcc-11 g++-11); nvcc 11.8 rejects newer gcc")
    listed = subprocess.run([str(toolkit_118.nvcc), "--list-gpu-arch"], capture_output=True, text=True, timeout=60)
    assert "compute_80" in listed.stdout.split()
    assert toolkit_118.nvcc_version == "11.8.89" and toolkit_118.debs[0]["package"] == "nvidia-cuda-toolkit"
    profile = (toolkit_118.path / "bin" / "nvcc.profile").read_text()
    assert "/usr/lib/nvidia-cuda-toolkit" not in profile
    # -c: the assembled 11.8 toolkit has no libcudart_static.a / libcudadevrt.a (they are only in Debian's
    # 774 MB nvidia-cuda-dev), so nvcc does not link executables itself; g++ links with libcudart.so
    proc = _compile(toolkit_118, tmp_path, ["-ccbin", gxx, "-c"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    link = subprocess.run([gxx, "-o", str(tmp_path / "tiny-exe"), str(tmp_path / "tiny"),
                           f"-L{toolkit_118.path / 'lib64'}", "-lcudart"], capture_output=True, text=True, timeout=120)
    assert link.returncode == 0, link.stderr[-3000:]
    limits = parse_host_config(toolkit_118.host_config.read_text())
    assert limits.gcc_max == tables.cuda_release("11.8").gcc_max


def test_install_12x_and_compile(toolkit_12x, tmp_path):
    listed = subprocess.run([str(toolkit_12x.nvcc), "--list-gpu-arch"], capture_output=True, text=True, timeout=60)
    assert "compute_80" in listed.stdout.split()
    assert toolkit_12x.nvcc_version == "12.4.131" and toolkit_12x.debs[0]["package"] == "nvidia-cuda-toolkit"
    limits = parse_host_config(toolkit_12x.host_config.read_text())
    assert limits.gcc_max == tables.cuda_release("12.4").gcc_max
    # -c and a g++ link, as for 11.8: no libcudart_static.a / libcudadevrt.a (only in Debian's nvidia-cuda-dev)
    proc = _compile(toolkit_12x, tmp_path, ["-c"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    link = subprocess.run(["g++", "-o", str(tmp_path / "tiny-exe"), str(tmp_path / "tiny"),
                           f"-L{toolkit_12x.path / 'lib64'}", "-lcudart"], capture_output=True, text=True, timeout=120)
    assert link.returncode == 0, link.stderr[-3000:]


# Two units as in the Mamba packages: the kernel's unit includes CUDAContext.h (which pulls in the cuBLAS/cuSPARSE/
# cuSOLVER headers the toolkit must provide), the binding is a host unit. One .cu with <torch/extension.h> took 116 s
# of CI here (nvcc parses libtorch's whole C++ API twice); these two ~20 s each, side by side.
EXT_CU = textwrap.dedent("""\
    #include <ATen/core/Tensor.h>
    #include <ATen/cuda/CUDAContext.h>
    #include <cub/cub.cuh>
    #include <cuda_bf16.h>
    __global__ void twice(float* x, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) x[i] *= 2.f; }
    void twice_cuda(at::Tensor& y) {
      twice<<<(y.numel() + 255) / 256, 256, 0, at::cuda::getCurrentCUDAStream()>>>(y.data_ptr<float>(), y.numel());
    }
    """)

EXT_CPP = textwrap.dedent("""\
    #include <ATen/core/Tensor.h>
    #include <torch/csrc/utils/pybind.h>
    void twice_cuda(at::Tensor& y);
    at::Tensor run(const at::Tensor& x) { auto y = x.clone(); twice_cuda(y); return y; }
    PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }
    """)

BUILD_PY = textwrap.dedent("""\
    import sys
    from torch.utils import cpp_extension as ce
    assert ce.CUDA_HOME == sys.argv[2], (ce.CUDA_HOME, sys.argv[2])
    ce.load("mbtcext", [sys.argv[1] + "/ext.cpp", sys.argv[1] + "/ext.cu"], build_directory=sys.argv[1] + "/build",
            verbose=True, extra_cuda_cflags=["-gencode=arch=compute_80,code=sm_80"])
    print("BUILT")
    """)


def test_torch_extension_builds_against_130(toolkit_130, tmp_path):
    """A real torch CUDA extension (ATen/cuda/CUDAContext.h -> cublas/cusparse/cusolver headers)."""
    torch = pytest.importorskip("torch")
    if not (torch.version.cuda or "").startswith("13."):
        pytest.skip(f"torch {torch.__version__} is built for CUDA {torch.version.cuda}, not 13.x")
    if not toolkit_130.has_math_headers:
        pytest.skip("no cuBLAS/cuSPARSE/cuSOLVER headers were found next to torch to copy into the toolkit")
    (tmp_path / "ext.cu").write_text(EXT_CU)
    (tmp_path / "ext.cpp").write_text(EXT_CPP)
    (tmp_path / "build").mkdir()
    (tmp_path / "build.py").write_text(BUILD_PY)
    env = dict(os.environ, CUDA_HOME=str(toolkit_130.path), TORCH_CUDA_ARCH_LIST="8.0",
               MAX_JOBS=str(os.cpu_count() or 2))
    env["PATH"] = "/usr/bin:/bin"
    env.pop("CUDA_PATH", None)
    proc = subprocess.run([sys.executable, str(tmp_path / "build.py"), str(tmp_path), str(toolkit_130.path)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0 and "BUILT" in proc.stdout, (proc.stdout + proc.stderr)[-4000:]
    assert f"-L{toolkit_130.path}/lib64" in proc.stdout
