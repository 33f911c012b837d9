"""Checks judged over constructed environment models: every trap the doctor must see."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mamba_build.diagnose.checks import Status, resolve_target, run_checks
from mamba_build.diagnose.environment import Environment
from mamba_build.diagnose.probes.gpu import Gpu, GpuInfo
from mamba_build.diagnose.probes.python_env import ExtensionInfo
from mamba_build.diagnose.probes.system import PlatformInfo, Resources
from tests.unit.envs import gcc, make_env, toolkit


def judge(env: Environment, cuda=None) -> dict[str, object]:
    checks = run_checks(env, resolve_target(env, cuda))
    return {c.id: c for c in checks}


def test_healthy_machine_has_no_failures(monkeypatch):
    monkeypatch.setattr("mamba_build.diagnose.checks.compilers.default_compiler", lambda env: env.compilers[0])
    checks = judge(make_env())
    failed = [c for c in checks.values() if c.status == Status.FAIL]
    assert failed == []
    assert checks["torch"].status == Status.OK and "C++11 ABI on" in checks["torch"].summary
    assert checks["torch-vs-nvcc"].status == Status.OK
    assert checks["gpu-arch"].status == Status.OK


def test_wrapper_trap_cuda_home_is_flagged_and_names_real_toolkit():
    env = make_env(torch_cuda_home="/usr/local", torch_cuda_home_how="`which nvcc` = /usr/local/bin/nvcc",
                   toolkits=(toolkit("13.0", home="/usr/local/cuda-13.0"),))
    c = judge(env)["cuda-home"]
    assert c.status == Status.FAIL
    assert "CUDA_HOME=/usr/local " in c.summary and "cuda_runtime_api.h" in c.summary
    assert c.fix.startswith("export CUDA_HOME=/usr/local/cuda-13.0")


def test_cpu_only_torch_fails_with_install_command():
    env = make_env()
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cuda=None, version="2.13.0+cpu")))
    c = judge(env)["torch"]
    assert c.status == Status.FAIL and "CPU-only" in c.summary
    assert "pip install" in c.fix and "download.pytorch.org/whl/cu130" in c.fix


def test_rocm_torch_reported_unsupported():
    env = make_env()
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cuda=None, hip="6.2")))
    c = judge(env)["torch"]
    assert c.status == Status.FAIL and "ROCm" in c.summary


def test_major_cuda_mismatch_fails():
    env = make_env(toolkits=(toolkit("12.4"),), torch_cuda_home="/opt/cuda-12.4")
    c = judge(env)["torch-vs-nvcc"]
    assert c.status == Status.FAIL and "major" in c.summary


def test_minor_cuda_mismatch_warns():
    env = make_env(toolkits=(toolkit("12.4"),), torch_cuda_home="/opt/cuda-12.4")
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cuda="12.8")))
    c = judge(env)["torch-vs-nvcc"]
    assert c.status == Status.WARN and "minor" in c.summary


def test_gcc_too_new_for_cuda_118_names_gcc11(monkeypatch):
    monkeypatch.setattr("mamba_build.diagnose.checks.compilers.default_compiler", lambda env: env.compilers[0])
    env = make_env(toolkits=(toolkit("11.8"),), torch_cuda_home="/opt/cuda-11.8",
                   compilers=(gcc((12, 2, 0)), gcc((11, 4, 0), "gcc-11")))
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cuda="11.7")))
    c = judge(env)["host-compiler"]
    assert c.status == Status.FAIL and "too new" in c.summary
    assert "CC=gcc-11 CXX=g++-11" in c.fix


def test_gcc_too_new_without_alternative_gives_install_command(monkeypatch):
    monkeypatch.setattr("mamba_build.diagnose.checks.compilers.default_compiler", lambda env: env.compilers[0])
    env = make_env(toolkits=(toolkit("11.8"),), torch_cuda_home="/opt/cuda-11.8")
    c = judge(env)["host-compiler"]
    assert c.status == Status.FAIL
    assert "apt-get install gcc-11 g++-11" in c.fix and "conda" in c.fix


def test_torch_map_missing_entry_warns(monkeypatch):
    monkeypatch.setattr("mamba_build.diagnose.checks.compilers.default_compiler", lambda env: env.compilers[0])
    env = make_env()
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, gcc_bounds={})))
    c = judge(env)["host-compiler"]
    assert c.status == Status.WARN and "no entry" in c.summary


def test_arch_the_toolkit_cannot_build_fails():
    env = make_env(gpus=GpuInfo("/x/nvidia-smi", "580.1", "13.0", (Gpu(0, "RTX 5090", "12.0", 32000),)),
                   toolkits=(toolkit("11.8", archs=(35, 50, 60, 70, 75, 80, 86, 89, 90)),),
                   torch_cuda_home="/opt/cuda-11.8")
    c = judge(env, cuda="11.8")["gpu-arch"]
    assert c.status == Status.FAIL and "sm_120" in c.summary and "11.8" in c.summary


def test_no_gpu_is_a_warning_not_a_failure():
    c = judge(make_env(gpus=GpuInfo(None, None, None, ())))
    assert c["gpus"].status == Status.WARN and "--arch" in c["gpus"].fix
    assert c["driver"].status == Status.WARN


def test_driver_too_old_and_minor_compat():
    old = judge(make_env(gpus=GpuInfo("/x", "470.82.01", "11.4", (Gpu(0, "A100", "8.0", 40000),))))
    assert old["driver-vs-toolkit"].status == Status.FAIL
    compat = judge(make_env(toolkits=(toolkit("12.8"),), torch_cuda_home="/opt/cuda-12.8",
                            gpus=GpuInfo("/x", "535.104.05", "12.2", (Gpu(0, "A100", "8.0", 40000),))),
                   cuda="12.8")
    assert compat["driver-vs-toolkit"].status == Status.WARN and "minor-version" in compat["driver-vs-toolkit"].summary


def test_no_toolkit_at_all_points_at_toolchain_install():
    c = judge(make_env(toolkits=(), torch_cuda_home=None, torch_cuda_home_how="nothing"))
    assert c["toolkits"].status == Status.FAIL
    assert "mamba-build toolchain install --cuda 13.0" in c["toolkits"].fix


def test_requested_cuda_absent_is_a_failure_with_the_way_to_get_it():
    c = judge(make_env(), cuda="11.8")
    assert c["target"].status == Status.FAIL
    assert "mamba-build toolchain install --cuda 11.8" in c["target"].fix


def test_toolkit_without_cub_fails_when_chosen():
    env = make_env(toolkits=(toolkit("13.0", has_cub=False),))
    checks = run_checks(env, resolve_target(env, None))
    tk = next(c for c in checks if c.id.startswith("toolkit:"))
    assert tk.status == Status.FAIL and "cub" in tk.summary


def test_undefined_symbol_extension_means_other_torch():
    env = make_env()
    ext = ExtensionInfo("selective_scan_cuda", "mamba-ssm", True, False,
                        "ImportError: /x/selective_scan_cuda.so: undefined symbol: _ZN3c104cuda9SetDeviceEi", None)
    env = replace(env, python=replace(env.python, extensions=(ext,), packages={**env.python.packages,
                                                                                "mamba-ssm": "2.3.2.post1"}))
    c = judge(env)["import:selective_scan_cuda"]
    assert c.status == Status.FAIL and "another torch" in c.summary
    assert c.fix == "mamba-build compile --package mamba-ssm --no-cache"


def test_package_without_its_cuda_module():
    env = make_env()
    env = replace(env, python=replace(env.python, packages={**env.python.packages, "causal-conv1d": "1.5.0"}))
    c = judge(env)["installed:causal-conv1d"]
    assert c.status == Status.FAIL and "causal_conv1d_cuda" in c.summary


@pytest.mark.parametrize("machine,system", [("ppc64le", "Linux"), ("x86_64", "Windows"), ("arm64", "Darwin")])
def test_unsupported_platform_refused(machine, system):
    c = judge(make_env(platform=PlatformInfo(system, machine, None, None, None, ())))["platform"]
    assert c.status == Status.FAIL and "not supported" in c.summary


def test_old_glibc_fails_against_torch_wheel_tag():
    c = judge(make_env(platform=PlatformInfo("Linux", "x86_64", "2.17", "centos", "7", ("rhel",))))["glibc"]
    assert c.status == Status.FAIL and "2.28" in c.summary


def test_missing_ninja_is_warn_missing_wheel_is_fail():
    env = make_env()
    pk = {k: v for k, v in env.python.packages.items() if k not in ("ninja", "wheel")}
    checks = judge(replace(env, python=replace(env.python, packages=pk)))
    assert checks["ninja"].status == Status.WARN
    assert checks["wheel"].status == Status.FAIL and "-m pip install wheel" in checks["wheel"].fix


def test_low_memory_limits_jobs_and_warns():
    c = judge(make_env(resources=Resources(16, 8.0, 3.0, 100.0, "/tmp")))["resources"]
    assert c.status == Status.WARN and "MAX_JOBS=1" in c.summary
    full = judge(make_env(resources=Resources(16, 64.0, 60.0, 1.0, "/tmp")))["resources"]
    assert full.status == Status.FAIL


def test_toolkit_without_math_headers_fails_and_points_at_torch_headers():
    env = make_env(toolkits=(toolkit("13.0", missing_math_headers=("cusparse.h", "cublas_v2.h")),))
    env = replace(env, python=replace(env.python, nvidia_include_dirs=("/v/site-packages/nvidia/cu13/include",)))
    c = judge(env)["toolkit-headers"]
    assert c.status == Status.FAIL and "cusparse.h" in c.summary
    assert c.fix.startswith("export CPATH=/v/site-packages/nvidia/cu13/include")
    bare = judge(replace(env, python=replace(env.python, nvidia_include_dirs=())))["toolkit-headers"]
    assert bare.status == Status.FAIL and "cuda-libraries-dev" in bare.fix
    assert judge(make_env())["toolkit-headers"].status == Status.OK


def test_mamba_runtime_dependencies():
    env = make_env()
    c = judge(env)["runtime-deps"]
    assert c.status == Status.WARN and "einops" in c.summary and c.fix.endswith("einops transformers triton")
    full = {**env.python.packages, "einops": "0.8", "transformers": "5.0", "triton": "3.6"}
    assert judge(replace(env, python=replace(env.python, packages=full)))["runtime-deps"].status == Status.OK
