"""The build-only overlay (mamba_build/build/build_tools.py), the doctor's pkg-resources check, the CUDA-build switch
of both setup.py generations in the plan, and the wheel's extension check: decisions from constructed facts.
The real thing (a torch 2.0.1 venv with setuptools 84, a real build through the overlay) is
tests/integration/test_old_stack_real.py."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from mamba_build.build import build_tools
from mamba_build.build.pipeline import check_wheel_extension
from mamba_build.diagnose.checks.base import Status
from mamba_build.diagnose.checks.build_tools import check_pkg_resources
from mamba_build.diagnose.probes.python_env import module_level_import
from mamba_build.errors import ExitCode, ExtensionMissingError
from mamba_build.plan.build_plan import CompileOptions, PackagePlan, resolve_plan
from tests.unit.envs import gcc, make_env, toolkit

TORCH201_CPP_EXT_HEAD = '''import copy
import setuptools
import torch
from typing import Dict
from setuptools.command.build_ext import build_ext
from pkg_resources import packaging  # type: ignore[attr-defined]
'''


def torch201_env(setuptools: str | None = "84.2.1", pkg_resources: str | None = None, **packages):
    """make_env's Python, as torch 2.0.1 with the given setuptools (and where pkg_resources is found)."""
    env = make_env(toolkits=(toolkit("11.8"),), compilers=(gcc((12, 2, 0)), gcc((11, 3, 0), "gcc-11")),
                   torch_cuda_home="/opt/cuda-11.8")
    torch = replace(env.python.torch, version="2.0.1+cu117", cuda="11.7", cxx11_abi=False,
                    cpp_extension_path="/v/torch/utils/cpp_extension.py", pkg_resources_import=25)
    pk = dict(env.python.packages, setuptools=setuptools, torch="2.0.1")
    pk.update(packages)
    return replace(env, python=replace(env.python, torch=torch, packages=pk,
                                       module_origins={"pkg_resources": pkg_resources}))


def test_module_level_import_reads_the_file_without_importing(tmp_path):
    f = tmp_path / "cpp_extension.py"
    f.write_text(TORCH201_CPP_EXT_HEAD)
    assert module_level_import(f, "pkg_resources") == 6
    f.write_text("import os\ntry:\n    from pkg_resources import packaging\nexcept ImportError:\n    packaging = None\n")
    assert module_level_import(f, "pkg_resources") is None  # guarded: cannot break the import
    f.write_text("def f():\n    import pkg_resources\n")
    assert module_level_import(f, "pkg_resources") is None
    f.write_text("import os, pkg_resources.extern\n")
    assert module_level_import(f, "pkg_resources") == 1
    f.write_text("from pkg_resources_other import x\nimport pkg_resourcesX\n")
    assert module_level_import(f, "pkg_resources") is None
    assert module_level_import(tmp_path / "missing.py", "pkg_resources") is None
    f.write_text("def broken(:\n")
    assert module_level_import(f, "pkg_resources") is None


def test_the_pin_is_the_last_setuptools_with_pkg_resources():
    pins = build_tools.pins()
    assert set(pins) == set(build_tools.ORDER)
    st = pins["setuptools"]
    assert st.version == "81.0.0" and build_tools.pkg_resources_removed_in() == "82.0.0"
    assert "pkg_resources" in st.verify
    assert build_tools.pkg_resources_fix("/v/bin/python") == '/v/bin/python -m pip install "setuptools<82"'
    for p in pins.values():
        assert p.requirement == f"{p.name}=={p.version}" and p.why


def test_trap_needs_the_import_and_a_setuptools_without_it():
    assert "setuptools 84.2.1 has no pkg_resources (removed in 82.0.0)" in build_tools.pkg_resources_trap(
        torch201_env().python)
    assert "line 25" in build_tools.pkg_resources_trap(torch201_env().python)
    # 70.x: pkg_resources is there but has no `packaging` (data/setuptools.toml)
    assert "has no `packaging`" in build_tools.pkg_resources_trap(torch201_env("70.1.0", "/v/pkg_resources").python)
    # the version says fine but the Python does not find it (a damaged install)
    assert "finds no pkg_resources" in build_tools.pkg_resources_trap(torch201_env("81.0.0", None).python)
    # pkg_resources found: no trap (setuptools 65.5.0, the torch201 fixture venv)
    assert build_tools.pkg_resources_trap(torch201_env("65.5.0", "/v/pkg_resources/__init__.py").python) is None
    # a torch that does not import it (2.14): no trap whatever setuptools says
    env = torch201_env()
    py = replace(env.python, torch=replace(env.python.torch, pkg_resources_import=None))
    assert build_tools.pkg_resources_trap(py) is None
    # the child was not asked (an old probe): the versions decide
    assert build_tools.pkg_resources_trap(replace(env.python, module_origins={})) is not None
    assert build_tools.pkg_resources_trap(replace(torch201_env("65.5.0").python, module_origins={})) is None
    # no setuptools at all
    assert "setuptools is not installed" in build_tools.pkg_resources_trap(torch201_env(None).python)


def test_needed_tools_and_their_reasons():
    tools = build_tools.needed(torch201_env().python)
    assert [(t.name, t.version) for t in tools] == [("setuptools", "81.0.0")]
    assert "pkg_resources" in tools[0].reason
    assert build_tools.needed(torch201_env("65.5.0", "/v/pkg_resources/__init__.py").python) == ()
    bare = torch201_env(None, None, packaging=None, wheel=None).python
    got = build_tools.needed(bare, ninja_missing=True)
    assert [t.name for t in got] == ["setuptools", "packaging", "wheel", "ninja"]
    assert all(t.reason for t in got) and "not installed" in got[1].reason and "ninja" in got[3].reason


def test_overlay_folder_env_and_path(isolated_cache, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/user/pp")
    o = build_tools.plan_overlay(torch201_env().python)
    assert o.path == str(isolated_cache / "overlays" / "setuptools-81.0.0")
    assert o.requirements == ("setuptools==81.0.0",) and o.bin_dir is None and o.ninja is None
    assert o.env("/usr/bin") == {"PYTHONPATH": f"{o.path}:/user/pp"}
    both = build_tools.plan_overlay(torch201_env(None, None, wheel=None).python, ninja_missing=True)
    assert Path(both.path).name == "setuptools-81.0.0+wheel-0.45.1+ninja-1.13.2"
    e = both.env("/usr/bin")
    assert e["PATH"] == f"{both.path}/bin:/usr/bin" and both.ninja == f"{both.path}/bin/ninja"
    assert build_tools.plan_overlay(torch201_env("65.5.0", "/v/pkg_resources/__init__.py").python) is None


def test_plan_records_the_overlay_and_the_build_env_uses_it(isolated_cache):
    env = torch201_env()
    plan = resolve_plan(CompileOptions(cuda="11.8", arch="8.0", packages=("causal-conv1d",),
                                       versions={"causal-conv1d": "1.7.0"}), env)
    assert plan.build_overlay is not None and plan.build_overlay.requirements == ("setuptools==81.0.0",)
    assert plan.to_dict()["build_overlay"]["tools"][0]["reason"].startswith("torch 2.0.1+cu117's cpp_extension.py")
    e = plan.env_for(plan.packages[0])
    assert e["PYTHONPATH"].split(":")[0] == plan.build_overlay.path
    # the same torch with a setuptools that has pkg_resources: no overlay, PYTHONPATH untouched
    ok = resolve_plan(CompileOptions(cuda="11.8", arch="8.0", packages=("causal-conv1d",),
                                     versions={"causal-conv1d": "1.7.0"}),
                      torch201_env("65.5.0", "/v/pkg_resources/__init__.py"))
    assert ok.build_overlay is None and "PYTHONPATH" not in ok.env_for(ok.packages[0])


def test_missing_ninja_comes_from_the_overlay_and_keeps_the_pool(isolated_cache, monkeypatch):
    from mamba_build.build import jobserver

    monkeypatch.setattr(jobserver, "find_ninja", lambda python, path_env=None: jobserver.NinjaInfo(None, None, "not found"))
    env = torch201_env("65.5.0", "/v/pkg_resources/__init__.py", ninja=None)
    plan = resolve_plan(CompileOptions(cuda="11.8", arch="8.0", versions={"causal-conv1d": "1.1.1", "mamba-ssm": "1.1.3.post1"},
                                       sources={"causal-conv1d": "/x/cc.tar.gz", "mamba-ssm": "/x/ms.tar.gz"}), env)
    assert plan.build_overlay.requirements == ("ninja==1.13.2",)
    assert plan.ninja == plan.build_overlay.ninja and plan.schedule == "pool"
    assert plan.env_for(plan.packages[0])["PATH"].startswith(plan.build_overlay.bin_dir + ":")
    no_ninja = resolve_plan(CompileOptions(cuda="11.8", arch="8.0", use_ninja=False,
                                           versions={"causal-conv1d": "1.1.1", "mamba-ssm": "1.1.3.post1"},
                                           sources={"causal-conv1d": "/x/cc.tar.gz", "mamba-ssm": "/x/ms.tar.gz"}), env)
    assert no_ninja.build_overlay is None  # --no-ninja: nothing to provide


def test_both_cuda_switches_are_in_the_plan_and_the_build_env():
    pkg = PackagePlan("mamba-ssm", "2.3.2.post1", "pypi", "selective_scan_cuda", "MAMBA_")
    assert pkg.cuda_build_env == {"MAMBA_SKIP_CUDA_BUILD": "FALSE", "MAMBA_KEEP_CUDA_BUILD": "TRUE"}
    plan = resolve_plan(CompileOptions(arch="9.0", versions={"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}),
                        make_env())
    ms = next(p for p in plan.packages if p.name == "mamba-ssm")
    e = plan.env_for(ms)
    assert e["MAMBA_SKIP_CUDA_BUILD"] == "FALSE" and e["MAMBA_KEEP_CUDA_BUILD"] == "TRUE"
    assert plan.to_dict()["packages"][1]["cuda_build_env"]["MAMBA_KEEP_CUDA_BUILD"] == "TRUE"
    from mamba_build.render import describe_plan

    text = describe_plan(plan)
    assert "MAMBA_SKIP_CUDA_BUILD=FALSE, MAMBA_KEEP_CUDA_BUILD=TRUE" in text and "keep-cuda-build-on" in text


def test_doctor_predicts_the_pkg_resources_trap():
    c = check_pkg_resources(torch201_env())
    assert c.status is Status.FAIL and c.id == "pkg-resources"
    assert "No module named 'pkg_resources'" in c.summary and "removed in 82.0.0" in c.summary
    assert c.fix == '/v/bin/python -m pip install "setuptools<82"'
    assert "setuptools==81.0.0" in c.details and "build-only overlay" in c.details
    good = check_pkg_resources(torch201_env("65.5.0", "/v/pkg_resources/__init__.py"))
    assert good.status is Status.OK and "setuptools 65.5.0 still has it" in good.summary
    env = make_env()
    new_torch = replace(env, python=replace(env.python, torch=replace(env.python.torch,
                                                                      cpp_extension_path="/v/torch/utils/cpp_extension.py")))
    assert check_pkg_resources(new_torch).status is Status.OK
    assert check_pkg_resources(env).status is Status.SKIP  # no cpp_extension.py found


def _wheel(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for n in names:
            zf.writestr(n, b"x")
    return path


def test_a_wheel_without_its_extension_fails_loudly(tmp_path):
    pkg = PackagePlan("mamba-ssm", "2.3.2.post1", "pypi", "selective_scan_cuda", "MAMBA_")
    good = _wheel(tmp_path / "mamba_ssm-2.3.2.post1-cp311-cp311-linux_x86_64.whl",
                  ["mamba_ssm/__init__.py", "selective_scan_cuda.cpython-311-x86_64-linux-gnu.so"])
    assert check_wheel_extension(pkg, good) == "selective_scan_cuda.cpython-311-x86_64-linux-gnu.so"
    bad = _wheel(tmp_path / "mamba_ssm-2.3.2.post1-py3-none-any.whl",
                 ["mamba_ssm/__init__.py", "mamba_ssm-2.3.2.post1.dist-info/WHEEL"])
    with pytest.raises(ExtensionMissingError) as info:
        check_wheel_extension(pkg, bad, Path("/logs/build-mamba-ssm.log"))
    err = info.value
    assert err.exit_code == ExitCode.BUILD
    assert "holds no selective_scan_cuda extension module" in err.message and "no shared object" in err.message
    assert "MAMBA_KEEP_CUDA_BUILD" in err.fix and "/logs/build-mamba-ssm.log" in err.fix
    # another package's module, or one in a subfolder, is not the extension
    other = _wheel(tmp_path / "x.whl", ["pkg/selective_scan_cuda.cpython-311-x86_64-linux-gnu.so",
                                        "causal_conv1d_cuda.cpython-311-x86_64-linux-gnu.so"])
    with pytest.raises(ExtensionMissingError, match="causal_conv1d_cuda"):
        check_wheel_extension(pkg, other)


def test_overlay_refuses_a_python_older_than_the_pin(isolated_cache, monkeypatch):
    from mamba_build.errors import EnvironmentProblem

    o = build_tools.plan_overlay(torch201_env().python)
    monkeypatch.setattr(build_tools, "_python_version", lambda python: "3.8")
    with pytest.raises(EnvironmentProblem, match="Python 3.8 is older than >=3.9"):
        build_tools.ensure(o, "/v/bin/python")
    assert not Path(o.path).exists()


def test_doctor_runs_the_check():
    from mamba_build.diagnose.checks import resolve_target, run_checks

    env = torch201_env()
    ids = [c.id for c in run_checks(env, resolve_target(env, "11.8"))]
    assert ids.index("pkg-resources") == ids.index("ninja") + 1
