"""Plan resolution: every choice the compile command makes before anything runs."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from mamba_build.diagnose.probes.gpu import GpuInfo
from mamba_build.diagnose.probes.system import Resources
from mamba_build.errors import CompilerError, EnvironmentProblem, SourceError, ToolkitError, UsageError
from mamba_build.plan import build_plan
from mamba_build.plan.build_plan import CompileOptions, resolve_plan
from tests.unit.envs import gcc, make_env, toolkit

PINNED = {"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}


def opts(**kw) -> CompileOptions:
    kw.setdefault("versions", dict(PINNED))
    return CompileOptions(**kw)


def test_native_arch_from_the_visible_gpu():
    plan = resolve_plan(opts(), make_env())
    assert plan.archs == ("9.0",) and "H100" in plan.archs_reason


def test_native_without_gpu_is_a_clear_usage_error():
    with pytest.raises(UsageError) as err:
        resolve_plan(opts(), make_env(gpus=GpuInfo(None, None, None, ())))
    assert "--arch 8.0,9.0" in err.value.fix


def test_explicit_all_and_rejected_archs():
    env = make_env(gpus=GpuInfo(None, None, None, ()))
    assert resolve_plan(opts(arch="8.0,9.0+PTX"), env).archs == ("8.0", "9.0+PTX")
    assert resolve_plan(opts(arch="all"), env).archs == ("7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0")
    with pytest.raises(UsageError, match="cannot target 7.0"):
        resolve_plan(opts(arch="7.0"), env)
    with pytest.raises(UsageError, match="malformed"):
        resolve_plan(opts(arch="9.0,abc"), env)


def test_gcc11_chosen_over_gcc12_for_cuda_118():
    env = make_env(toolkits=(toolkit("11.8"), toolkit("13.0")), compilers=(gcc((12, 2, 0)), gcc((11, 3, 0), "gcc-11")))
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cuda="11.7", version="2.0.1+cu117")))
    plan = resolve_plan(opts(cuda="11.8", arch="8.0", versions={"causal-conv1d": "1.5.2"}, packages=("causal-conv1d",)),
                        env)
    assert plan.cuda_home == "/opt/cuda-11.8"
    assert plan.compiler.cxx == "/usr/bin/g++-11" and "skipped gcc 12.2.0" in plan.compiler.reason
    assert plan.compiler_bounds == {"11.8": ((6, 0, 0), (12, 0))}
    assert plan.local_version == "cu11torch2.0cxx11abiTRUE"


def test_no_acceptable_compiler_names_the_install_command():
    env = make_env(toolkits=(toolkit("11.8"),))
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cuda="11.7")))
    with pytest.raises(CompilerError) as err:
        resolve_plan(opts(cuda="11.8", arch="8.0"), env)
    assert "apt-get install gcc-11 g++-11" in err.value.fix
    forced = resolve_plan(opts(cuda="11.8", arch="8.0", allow_unsupported_compiler=True), env)
    assert forced.compiler.unsupported_override
    assert forced.env_for(forced.packages[0])["NVCC_APPEND_FLAGS"] == "-allow-unsupported-compiler"


def test_missing_toolkit_and_major_mismatch():
    with pytest.raises(ToolkitError) as err:
        resolve_plan(opts(cuda="12.8", arch="9.0"), make_env())
    assert "mamba-build toolchain install --cuda 12.8" in err.value.fix
    with pytest.raises(ToolkitError, match="differ in major"):
        resolve_plan(opts(arch="9.0"), make_env(toolkits=(toolkit("12.4"),), torch_cuda_home="/opt/cuda-12.4"))


def test_unknown_cuda_version_is_usage_error():
    with pytest.raises(UsageError, match="unknown CUDA version"):
        resolve_plan(opts(cuda="10.0"), make_env())


def test_cpu_torch_refused():
    env = make_env()
    env = replace(env, python=replace(env.python, torch=replace(env.python.torch, cuda=None)))
    with pytest.raises(EnvironmentProblem, match="CPU-only"):
        resolve_plan(opts(), env)


def test_jobs_follow_memory_and_split_compile_follows_cores():
    small = resolve_plan(opts(arch="9.0"), make_env(resources=Resources(16, 16.0, 7.0, 100.0, "/tmp")))
    # memory-bound: one job, and no split-compile (one such job needs 6.1 GB of the 7 free)
    assert small.jobs == 1 and small.split_compile is None and "6.1 GB" in small.split_reason
    two = resolve_plan(opts(arch="9.0"), make_env(resources=Resources(2, 24.0, 22.0, 100.0, "/tmp")))
    assert two.jobs == 2 and two.split_compile is None and "2 CPUs" in two.split_reason
    big = resolve_plan(opts(arch="9.0"), make_env(resources=Resources(16, 128.0, 120.0, 100.0, "/tmp")))
    # both packages, units split: 68 s of work per slot against a 43 s longest unit, so no split-compile
    assert big.split_compile is None and "the total work bounds the build" in big.split_reason
    one = resolve_plan(opts(arch="9.0", packages=("causal-conv1d",), split_units=False),
                       make_env(resources=Resources(16, 128.0, 120.0, 100.0, "/tmp")))
    assert one.split_compile == 0 and "all 16 CPUs" in one.split_reason  # one 276 s unit bounds it
    forced = resolve_plan(opts(arch="9.0", jobs=3, split_compile=-1), make_env())
    assert forced.jobs == 3 and forced.split_compile is None


def test_build_environment_of_a_package():
    env = make_env()
    tk = env.toolkits[0]
    env = replace(env, toolkits=(replace(tk, missing_math_headers=("cusparse.h",)),),
                  python=replace(env.python, nvidia_include_dirs=("/v/nvidia/cu13/include",)))
    plan = resolve_plan(opts(arch="9.0"), env)
    pkg = next(p for p in plan.packages if p.name == "causal-conv1d")
    e = plan.env_for(pkg)
    assert e["CUDA_HOME"] == tk.home and e["PATH"].startswith(tk.home + "/bin")
    assert e["CAUSAL_CONV1D_FORCE_BUILD"] == "TRUE" and e["CAUSAL_CONV1D_SKIP_CUDA_BUILD"] == "FALSE"
    assert e["CAUSAL_CONV1D_FORCE_CXX11_ABI"] == "TRUE"
    assert e["CAUSAL_CONV1D_LOCAL_VERSION"] == "cu13torch2.14cxx11abiTRUE"
    assert e["MAX_JOBS"] == str(plan.jobs) and e["TORCH_CUDA_ARCH_LIST"] == "9.0"
    assert e["CPATH"].split(":")[0] == "/v/nvidia/cu13/include"
    assert e["CXX"] == "/usr/bin/g++"


def test_versions_default_from_index_and_pairs_checked(monkeypatch):
    from mamba_build.build import sources

    monkeypatch.setattr(sources, "available_versions", lambda name, *a, **k: {
        "causal-conv1d": ["1.4.0", "1.5.2", "1.6.2.post1", "1.7.0"],
        "mamba-ssm": ["2.2.4", "2.2.6.post3", "2.3.2.post1"]}[name])
    plan = resolve_plan(opts(arch="9.0", versions={}), make_env())
    assert {p.name: p.version for p in plan.packages} == PINNED
    with pytest.raises(UsageError, match="known not to work together"):
        resolve_plan(opts(arch="9.0", versions={"mamba-ssm": "2.3.2.post1", "causal-conv1d": "1.4.0"}), make_env())
    with pytest.raises(SourceError) as err:
        resolve_plan(opts(arch="9.0", versions={"mamba-ssm": "2.2.4", "causal-conv1d": "1.7.0"}), make_env())
    assert "git" in err.value.fix


def test_plan_is_frozen_and_serialisable():
    plan = resolve_plan(opts(arch="9.0"), make_env())
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.jobs = 99  # type: ignore[misc]
    doc = plan.to_dict()
    assert doc["archs"] == ["9.0"] and doc["compiler"]["cxx"] == "/usr/bin/g++"
    assert build_plan.ALL_PACKAGES == ("causal-conv1d", "mamba-ssm")
