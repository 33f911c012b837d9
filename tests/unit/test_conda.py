"""Conda environments, detection logic on fake prefixes (the real one: tests/integration/test_conda_prefix_real.py).

Layouts follow conda-forge's CUDA recipes: the compiler in $PREFIX/bin, headers and libraries under
$PREFIX/targets/x86_64-linux/{include,lib}; conda's `cudatoolkit` package: the runtime libraries only.
"""

from __future__ import annotations

import pytest

from mamba_build.diagnose.checks import resolve_target
from mamba_build.diagnose.checks.base import Status
from mamba_build.diagnose.checks.cuda import build_include_dirs, check_toolkits
from mamba_build.diagnose.probes import compilers, toolkits
from tests.unit import fakes
from tests.unit.envs import make_env, toolkit


def conda_toolkit(prefix, version="13.0"):
    """A conda-shaped prefix: bin/nvcc, the headers only under targets/x86_64-linux/include."""
    fakes.make_toolkit(prefix, version)
    tgt = prefix / "targets" / "x86_64-linux"
    tgt.mkdir(parents=True)
    (prefix / "include").rename(tgt / "include")
    (prefix / "include").mkdir()  # conda's own include/: no CUDA header
    (prefix / "conda-meta").mkdir()
    return prefix


def test_conda_prefix_is_a_toolkit_with_its_targets_include(tmp_path, monkeypatch, isolated_cache):
    prefix = conda_toolkit(tmp_path / "env")
    found, _ = toolkits.candidate_homes({"CONDA_PREFIX": str(prefix), "PATH": ""}, extra_site_dirs=[])
    assert found[str(prefix)] == ["$CONDA_PREFIX"]
    tk = toolkits.describe(str(prefix), ["$CONDA_PREFIX"])
    assert tk.usable and tk.has_cub and tk.gcc_max == 15
    assert tk.include_dirs == (str(prefix / "targets" / "x86_64-linux" / "include"),)
    env = make_env(toolkits=(tk,), torch_cuda_home=str(prefix))
    target = resolve_target(env, None)
    # torch adds $CUDA_HOME/include only: the targets include must be added, before the math headers
    assert build_include_dirs(env, target.toolkit)[0] == str(prefix / "targets" / "x86_64-linux" / "include")


def test_nvidia_layout_needs_no_extra_include(tmp_path, isolated_cache):
    home = fakes.make_toolkit(tmp_path / "cuda-13.0", "13.0")
    tk = toolkits.describe(str(home), ["/opt/cuda-*"])
    assert tk.include_dirs == (str(home / "include"),)
    assert build_include_dirs(make_env(), toolkit("13.0", include_dirs=(str(home / "include"),), home=str(home))) == []


def test_conda_environment_of_the_target_python_is_searched(tmp_path, isolated_cache):
    prefix = conda_toolkit(tmp_path / "env")
    python = fakes.write_exe(prefix / "bin" / "python", "#!/bin/sh\n")
    assert toolkits.conda_prefix_of(str(python)) == str(prefix)
    assert toolkits.conda_prefix_of(str(tmp_path / "venv" / "bin" / "python")) is None
    found, _ = toolkits.candidate_homes({"PATH": ""}, extra_site_dirs=[], python=str(python))
    assert found[str(prefix)] == ["conda environment of --python"]


def test_conda_compiler_is_a_candidate_and_wins_a_tie(tmp_path):
    system = tmp_path / "usr-bin"
    fakes.make_gcc(system, "12.2.0", names=("gcc-12", "g++-12"))
    conda_bin = tmp_path / "env" / "bin"
    fakes.make_gcc(conda_bin, "12.2.0", names=("x86_64-conda-linux-gnu-gcc", "x86_64-conda-linux-gnu-g++"))
    # the environment's bin is searched even when it is not on PATH (a --python that is not activated)
    found = compilers.probe_compilers(path=fakes.path_with(system), conda_prefixes=(str(tmp_path / "env"),))
    gccs = [c for c in found if c.kind == "gcc"]
    assert [c.cxx for c in gccs][0] == str(conda_bin / "x86_64-conda-linux-gnu-g++")
    assert {c.version for c in gccs} == {(12, 2, 0)}
    from mamba_build.diagnose.checks.compilers import host_compiler_choice

    env = make_env(compilers=tuple(found))
    choice = host_compiler_choice(env, resolve_target(env, None))
    assert choice.cxx == str(conda_bin / "x86_64-conda-linux-gnu-g++")


def test_newer_system_gcc_still_wins_over_an_older_conda_one(tmp_path):
    system = tmp_path / "usr-bin"
    fakes.make_gcc(system, "12.2.0", names=("gcc-12", "g++-12"))
    conda_bin = tmp_path / "env" / "bin"
    fakes.make_gcc(conda_bin, "11.4.0", names=("x86_64-conda-linux-gnu-gcc", "x86_64-conda-linux-gnu-g++"))
    found = compilers.probe_compilers(path=fakes.path_with(system, conda_bin))
    from mamba_build.diagnose.checks.compilers import host_compiler_choice

    env = make_env(compilers=tuple(found))
    assert host_compiler_choice(env, resolve_target(env, None)).cxx == str(system / "g++-12")
    # CUDA 11.8 accepts gcc <= 11: conda's gxx 11 is the way out without root
    env118 = make_env(compilers=tuple(found), toolkits=(toolkit("11.8"),), torch_cuda_home="/opt/cuda-11.8")
    assert host_compiler_choice(env118, resolve_target(env118, "11.8")).cxx == str(conda_bin / "x86_64-conda-linux-gnu-g++")


@pytest.mark.parametrize("where", ["lib", "targets/x86_64-linux/lib"])
def test_cudatoolkit_without_nvcc_gets_the_conda_fix(tmp_path, where):
    """The seed route `conda install cudatoolkit==11.8 -c nvidia`: runtime libraries, no compiler."""
    prefix = tmp_path / "env"
    (prefix / where).mkdir(parents=True)
    (prefix / where / "libcudart.so.11.0").write_text("ELF")
    env = make_env(toolkits=(), nvcc_on_path=None, torch_cuda_home=None, conda_prefixes=(str(prefix),))
    (check,) = check_toolkits(env, resolve_target(env, None))
    assert check.status == Status.FAIL and "no nvcc" in check.summary and str(prefix) in check.summary
    assert check.fix.startswith("conda install -c nvidia cuda-nvcc=13.0 cuda-cudart-dev=13.0 cuda-cccl=13.0")
    assert "mamba-build toolchain install --cuda 13.0" in check.fix
