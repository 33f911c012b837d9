"""Constructed environment models for unit tests of checks and plans (no probing involved)."""

from __future__ import annotations

from mamba_build.diagnose.environment import Environment
from mamba_build.diagnose.probes.compilers import Compiler
from mamba_build.diagnose.probes.gpu import Gpu, GpuInfo
from mamba_build.diagnose.probes.python_env import ExtensionInfo, PythonEnv, TorchInfo
from mamba_build.diagnose.probes.system import PlatformInfo, Resources
from mamba_build.diagnose.probes.toolkits import NvccOnPath, Toolkit

GCC_MAP = {"11.8": ((6, 0, 0), (12, 0)), "12.4": ((6, 0, 0), (14, 0)), "13.0": ((6, 0, 0), (16, 0))}


def toolkit(version="13.0", home=None, **kw) -> Toolkit:
    base = dict(home=home or f"/opt/cuda-{version}", sources=("/opt/cuda-*",), nvcc=f"/opt/cuda-{version}/bin/nvcc",
                version=version, version_full=f"{version}.0", nvcc_error=None, has_runtime_headers=True,
                has_cub=True, archs=(75, 80, 86, 89, 90, 100, 120) if version >= "13" else (50, 60, 70, 75, 80, 86, 89, 90),
                archs_source="nvcc --list-gpu-arch", gcc_max=15 if version >= "13" else 11, clang_max=20,
                host_config=f"/opt/cuda-{version}/include/crt/host_config.h", managed=False)
    base.update(kw)
    return Toolkit(**base)


def gcc(version: tuple[int, ...], name="gcc") -> Compiler:
    suffix = name[3:]
    return Compiler("gcc", f"/usr/bin/{name}", f"/usr/bin/g++{suffix}", version, f"/usr/bin/{name}")


def make_env(**kw) -> Environment:
    torch = TorchInfo(importable=True, version="2.14.1+cu130", cuda="13.0", cxx11_abi=True, file="/v/torch/__init__.py",
                      wheel_tags=("cp311-cp311-manylinux_2_28_x86_64",), gcc_bounds=GCC_MAP)
    py = PythonEnv(executable="/v/bin/python", version="3.11.7",
                   packages={"pip": "25.0", "setuptools": "80.0", "wheel": "0.45", "packaging": "25.0",
                             "ninja": "1.13", "torch": "2.14.1+cu130"},
                   torch=torch, extensions=(
                       ExtensionInfo("causal_conv1d_cuda", "causal-conv1d", False, None, None, None),
                       ExtensionInfo("selective_scan_cuda", "mamba-ssm", False, None, None, None)))
    tk = toolkit("13.0")
    base = dict(
        platform=PlatformInfo("Linux", "x86_64", "2.36", "debian", "12", ()),
        resources=Resources(16, 128.0, 120.0, 500.0, "/tmp"),
        python=py,
        gpus=GpuInfo("/usr/bin/nvidia-smi", "580.159.04", "13.0", (Gpu(0, "NVIDIA H100 80GB HBM3", "9.0", 81559),)),
        toolkits=(tk,),
        nvcc_on_path=NvccOnPath(f"{tk.home}/bin/nvcc", tk.nvcc, (tk.nvcc,), False),
        torch_cuda_home=tk.home, torch_cuda_home_how="$CUDA_HOME",
        compilers=(gcc((12, 2, 0)),),
        probe_seconds=0.1,
    )
    base.update(kw)
    return Environment(**base)
