"""`compile` without a usable toolkit: what is provisioned, and what --dry-run / --no-provision say.

Environments are constructed (tests/unit/envs.py); the real bare machine (a mount namespace without
/usr/local/cuda*) is tests/integration/test_bare_machine.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mamba_build.commands import compile as compile_cmd
from mamba_build.commands.build_options import options_from_args
from mamba_build.diagnose.probes.python_env import TorchInfo
from mamba_build.errors import ToolkitError
from mamba_build.plan.resolve import resolve
from mamba_build.toolchain import provision, toolkits
from tests.unit.envs import make_env, toolkit

PINNED = ["--version", "causal-conv1d==1.7.0", "--version", "mamba-ssm==2.3.2.post1"]


@pytest.fixture(autouse=True)
def _no_runtime_deps(monkeypatch):
    """The fake environments here have no real Python to ask for its distributions (runtime_deps is tested in
    test_runtime_deps.py): the plan's runtime requirements are left unresolved."""
    import mamba_build.plan.runtime_deps as runtime_deps

    monkeypatch.setattr(runtime_deps, "with_runtime_deps", lambda plan, opts: plan)


def bare(**kw):
    """No toolkit anywhere (the wrapper nvcc and /usr/local/cuda-13.0 gone), torch 2.14.1+cu130."""
    return make_env(toolkits=(), nvcc_on_path=None, torch_cuda_home=None, torch_cuda_home_how="no nvcc", **kw)


def with_torch_cuda(env, cuda):
    return replace(env, python=replace(env.python, torch=replace(env.python.torch, cuda=cuda)))


def test_nothing_to_provision_with_a_usable_toolkit():
    assert provision.decide(make_env(), None) is None
    # another minor of torch's major is fine (cpp_extension accepts a minor mismatch)
    assert provision.decide(make_env(toolkits=(toolkit("13.4"),), torch_cuda_home="/opt/cuda-13.4"), None) is None


def test_bare_machine_provisions_torchs_cuda(isolated_cache):
    need = provision.decide(bare(), None)
    assert need.cuda == "13.0" and need.home == str(toolkits.toolkit_dir("13.0"))
    assert "no usable toolkit of torch's CUDA major 13 found (found: none)" in need.reason
    assert need.to_dict()["command"] == "mamba-build toolchain install --cuda 13.0"


def test_other_major_only_provisions_torchs_major(isolated_cache):
    env = make_env(toolkits=(toolkit("12.4"),), torch_cuda_home="/opt/cuda-12.4")
    need = provision.decide(env, None)
    assert need.cuda == "13.0" and "found: 12.4 at /opt/cuda-12.4" in need.reason


def test_cuda_flag_provisions_that_release(isolated_cache):
    need = provision.decide(make_env(), "13.4")  # 13.0 present, 13.4 asked for: resolved from the index
    assert need.cuda == "13.4" and "index" in need.how
    assert provision.decide(make_env(), "13.0") is None
    assert provision.decide(make_env(), "12.8") is None  # not installable: the plan's own error explains


@pytest.mark.parametrize("torch_cuda,release", [("13.0", "13.0"), ("12.4", "12.4"), ("12.1", "12.4"),
                                                ("12.8", "12.4"), ("11.7", "11.8"), ("11.8", "11.8")])
def test_release_for_torchs_cuda(torch_cuda, release):
    assert provision.release_for(torch_cuda)[0] == release


def test_dry_run_plan_shows_the_toolkit_to_be(monkeypatch, isolated_cache, capsys):
    """compile --dry-run --json on a bare machine: the plan is resolved against the toolkit-to-be and says it
    will be provisioned; nothing is installed."""
    import mamba_build.diagnose.environment as environment

    monkeypatch.setattr(environment, "gather", lambda *a, **k: bare())
    monkeypatch.setattr(toolkits, "install", lambda *a, **k: pytest.fail("--dry-run must not install"))
    args = _args("--dry-run", "--json", "--arch", "9.0", "--package", "causal-conv1d", *PINNED[:2])
    assert compile_cmd.run(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["provision"]["cuda"] == "13.0" and plan["provision"]["command"] == "mamba-build toolchain install --cuda 13.0"
    assert plan["cuda_home"] == str(toolkits.toolkit_dir("13.0")) and plan["cuda_version"] == "13.0"
    assert plan["toolkit_reason"].startswith("will be provisioned: mamba-build toolchain install --cuda 13.0")
    assert plan["compiler_bounds"] == {"13.0": [[6, 0, 0], [16, 0]]}  # gcc_max 15 from data/cuda.toml
    text_args = _args("--dry-run", "--arch", "9.0", "--package", "causal-conv1d", *PINNED[:2])
    assert compile_cmd.run(text_args) == 0
    assert "[will be provisioned: mamba-build toolchain install --cuda 13.0" in capsys.readouterr().out


def test_no_provision_stops_with_the_fix(monkeypatch, isolated_cache):
    import mamba_build.diagnose.environment as environment

    monkeypatch.setattr(environment, "gather", lambda *a, **k: bare())
    monkeypatch.setattr(toolkits, "install", lambda *a, **k: pytest.fail("--no-provision must not install"))
    with pytest.raises(ToolkitError) as err:
        compile_cmd.run(_args("--dry-run", "--no-provision", "--arch", "9.0", "--package", "causal-conv1d", *PINNED[:2]))
    assert "no usable CUDA 13.0 toolkit found" in err.value.message
    assert "mamba-build toolchain install --cuda 13.0" in err.value.fix


def test_real_run_installs_then_plans_with_it(monkeypatch, isolated_cache, tmp_path):
    """Without --dry-run: install (into the cache), gather again, plan with the installed toolkit."""
    import mamba_build.diagnose.environment as environment

    installed = toolkit("13.0", home=str(toolkits.toolkit_dir("13.0")), managed=True)
    calls = []
    monkeypatch.setattr(environment, "gather", lambda *a, **k: make_env(toolkits=(installed,), nvcc_on_path=None,
                                                                        torch_cuda_home=None) if calls else bare())
    monkeypatch.setattr(toolkits, "install", lambda cuda, **k: calls.append((cuda, k)))
    opts = options_from_args(_args("--arch", "9.0", "--package", "causal-conv1d", *PINNED[:2]))
    plan = resolve(opts)
    assert calls and calls[0][0] == "13.0"
    assert plan.cuda_home == installed.home and plan.provision["cuda"] == "13.0"
    assert plan.toolkit_reason.startswith("provisioned: mamba-build toolchain install --cuda 13.0")


def test_cpu_torch_is_not_provisioned_for():
    env = bare()
    env = replace(env, python=replace(env.python, torch=TorchInfo(importable=True, version="2.14.1+cpu", cuda=None,
                                                                  cxx11_abi=True, file="/v/torch/__init__.py")))
    assert provision.decide(env, None) is None


def _args(*argv):
    import argparse

    p = argparse.ArgumentParser()
    compile_cmd.register(p)
    return p.parse_args(list(argv))
