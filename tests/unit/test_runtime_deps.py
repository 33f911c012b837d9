"""The packages' runtime requirements (mamba_build/plan/runtime_deps.py): read from an sdist / a tree, judged
against a target's distributions and markers, planned (install or --no-deps refusal). The real install
before a real build is in tests/integration/test_user_envs_real.py."""

from __future__ import annotations

import io
import sys
import tarfile
from types import SimpleNamespace

import pytest

from mamba_build.errors import EnvironmentProblem
from mamba_build.plan import installer, runtime_deps
from mamba_build.plan.runtime_deps import TargetDists

PKG_INFO = """Metadata-Version: 2.4
Name: demo
Version: 1.0
Requires-Dist: torch
Requires-Dist: einops
Requires-Dist: transformers>=4
Requires-Dist: triton>=3.5.0
Requires-Dist: causal-conv1d>=1.2.0; extra == "causal-conv1d"
Requires-Dist: pywin32; sys_platform == "win32"

long description
"""

MARKERS = {"implementation_name": "cpython", "implementation_version": "3.11.7", "os_name": "posix",
           "platform_machine": "x86_64", "platform_release": "6.1", "platform_system": "Linux",
           "platform_version": "#1", "python_full_version": "3.11.7", "platform_python_implementation": "CPython",
           "python_version": "3.11", "sys_platform": "linux"}


def _sdist(tmp_path, files: dict[str, str]):
    path = tmp_path / "demo-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"demo-1.0/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _target(**dists) -> TargetDists:
    return TargetDists({k: (k, v) for k, v in dists.items()}, MARKERS)


def test_requirements_come_from_the_sdists_pkg_info(tmp_path):
    reqs, where = runtime_deps.declared_in_archive(_sdist(tmp_path, {"PKG-INFO": PKG_INFO, "setup.py": "x = 1"}))
    assert reqs[:4] == ["torch", "einops", "transformers>=4", "triton>=3.5.0"] and len(reqs) == 6
    assert where == "Requires-Dist of demo-1.0.tar.gz/PKG-INFO"


def test_a_tree_without_requires_dist_falls_back_to_a_literal_install_requires(tmp_path):
    (tmp_path / "setup.py").write_text('from setuptools import setup\nsetup(name="x", install_requires=["torch", '
                                       '"einops"])\n')
    assert runtime_deps.declared_in_tree(tmp_path) == (["torch", "einops"], f"install_requires of {tmp_path}/setup.py")
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='x', install_requires=REQS)\n")
    assert runtime_deps.declared_in_tree(tmp_path)[0] == []


def test_missing_and_mismatched_leave_torch_the_built_packages_extras_and_other_platforms_alone():
    reqs = runtime_deps._from_pkg_info(PKG_INFO) + ["mamba-ssm", "torch>=9"]
    missing, mismatched = runtime_deps.unmet(reqs, _target(torch="2.14.1", triton="3.4.0"), skip=["mamba-ssm"])
    assert missing == ["einops", "transformers>=4"]
    assert mismatched == ["triton>=3.5.0 (3.4.0 installed)"]


def _plan_deps(install_deps, target, tmp_path, skip_missing_deps=False):
    tree = tmp_path / "tree"
    tree.mkdir(parents=True)
    (tree / "PKG-INFO").write_text(PKG_INFO)
    opts = SimpleNamespace(index_url=None, find_links=(), install_deps=install_deps,
                           skip_missing_deps=skip_missing_deps)
    pkg = SimpleNamespace(name="demo", version=None, source=str(tree))
    inst = installer.Installer(installer.OWN_PIP, "/v/bin/python", ("/v/bin/python", "-m", "pip"), "26", "own")
    return runtime_deps.resolve_runtime_deps(opts, [pkg], inst, target=target)


def test_missing_requirements_are_installed_first_with_everything_there_pinned(tmp_path):
    deps = _plan_deps(True, _target(torch="2.14.1+cu130", triton="3.6.0", numpy="2.3.0"), tmp_path)
    assert deps.action == "install" and deps.missing == ("einops", "transformers>=4")
    assert deps.pins == ("numpy==2.3.0", "torch==2.14.1+cu130", "triton==3.6.0")
    assert deps.command == "/v/bin/python -m pip install einops 'transformers>=4' torch==2.14.1+cu130"
    assert "installed before the build" in deps.summary()


def test_no_deps_refuses_at_plan_time_with_the_exact_pip_line(tmp_path):
    with pytest.raises(EnvironmentProblem) as err:
        _plan_deps(False, _target(torch="2.14.1+cu130", triton="3.6.0"), tmp_path)
    assert "--no-deps" in err.value.message and "einops" in err.value.message
    assert "`/v/bin/python -m pip install einops 'transformers>=4' torch==2.14.1+cu130`" in err.value.fix


def test_skip_missing_deps_builds_anyway_and_lists_the_pip_line(tmp_path):
    # an offline machine (the GPU lease): neither install nor refuse; the plan says what is missing and how
    for install_deps in (True, False):
        deps = _plan_deps(install_deps, _target(torch="2.14.1+cu130", triton="3.6.0"), tmp_path / str(install_deps),
                          skip_missing_deps=True)
        assert deps.action == "skip" and deps.missing == ("einops", "transformers>=4")
        assert "--skip-missing-deps" in deps.summary()
        assert "/v/bin/python -m pip install einops 'transformers>=4' torch==2.14.1+cu130" in deps.summary()


def test_nothing_missing_needs_nothing(tmp_path):
    deps = _plan_deps(False, _target(torch="2.14.1", triton="3.6.0", einops="0.8", transformers="5.0"), tmp_path)
    assert deps.action == "none" and deps.missing == () and deps.pins == () and deps.command == ""


def test_the_target_is_asked_in_a_child_process():
    got = runtime_deps.target_dists(sys.executable)
    assert "packaging" in got.dists and got.markers["python_version"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
