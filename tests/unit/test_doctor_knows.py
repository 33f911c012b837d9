"""The doctor sees, before a build, every `explain` id that the machine decides (failures.toml's
`doctor` field), through the checks named there; and it classifies failures with explain's catalog."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from mamba_build import tables
from mamba_build.diagnose import explain
from mamba_build.diagnose.checks import Status, resolve_target, run_checks
from mamba_build.diagnose.probes.python_env import ExtensionInfo
from mamba_build.diagnose.probes.search_paths import (
    IncludeDir,
    LibcudaInfo,
    cudart_version,
    parse_ldconfig,
    probe_include_dirs,
    triton_links_libcuda_so,
)
from tests.unit.envs import make_env

CHECKS_SRC = Path(explain.__file__).parent / "checks"


def judge(env, cuda=None):
    return {c.id: c for c in run_checks(env, resolve_target(env, cuda))}


def emitted_check_ids() -> tuple[set[str], set[str]]:
    """(literal ids, f-string prefixes) of every Check the checks' sources can emit."""
    literals: set[str] = set()
    prefixes: set[str] = set()

    def add(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            literals.add(node.value)
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            prefixes.add(node.values[0].value)

    for py in CHECKS_SRC.glob("*.py"):
        tree = ast.parse(py.read_text())
        loops: dict[str, list[str]] = {}  # `for name, ... in (("pip", ...), ...)`: name -> its values
        for node in ast.walk(tree):
            if isinstance(node, ast.For) and isinstance(node.target, ast.Tuple) and isinstance(node.iter, ast.Tuple):
                first = node.target.elts[0]
                loops.setdefault(getattr(first, "id", ""), []).extend(
                    t.elts[0].value for t in node.iter.elts
                    if isinstance(t, ast.Tuple) and isinstance(t.elts[0], ast.Constant))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("ok", "warn", "fail", "skip") \
                    and node.args:
                add(node.args[0])
                literals.update(loops.get(getattr(node.args[0], "id", None), ()))
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", "").endswith("cid") for t in node.targets):
                add(node.value)
    return literals, prefixes


def test_every_doctor_check_named_in_the_catalog_exists():
    literals, prefixes = emitted_check_ids()
    assert {"torch", "cuda-home", "pkg-resources", "libcuda", "include-path", "cxx-standard"} <= literals
    for entry in explain.load_catalog().entries:
        for cid in entry.doctor:
            ok = cid in literals or any(cid.startswith(p) for p in prefixes if p)
            assert ok, f"{entry.id}: doctor check {cid!r} is emitted by no check in mamba_build/diagnose/checks"


def test_every_id_says_whether_the_doctor_knows_it():
    raw = {f["id"]: f for f in tables.load("failures")["failure"]}
    for fid, f in raw.items():
        assert "doctor" in f, f"{fid}: no doctor field"
        if not f["doctor"]:
            assert f.get("doctor_note"), f"{fid}: doctor = [] needs a doctor_note (why it is not knowable)"


def _with_torch(env, **kw):
    return replace(env, python=replace(env.python, torch=replace(env.python.torch, **kw)))


def _with_packages(env, **pkgs):
    return replace(env, python=replace(env.python, packages={**env.python.packages, **pkgs}))


@pytest.mark.parametrize("setuptools,status", [("82.0.0", Status.FAIL), ("84.1.0", Status.FAIL),
                                               ("70.1.0", Status.FAIL), ("81.0.0", Status.OK),
                                               ("65.5.0", Status.OK)])
def test_pkg_resources_of_torch_20(tmp_path, setuptools, status):
    ext = tmp_path / "cpp_extension.py"
    ext.write_text("import torch\nfrom pkg_resources import packaging  # type: ignore[attr-defined]\n")
    env = _with_packages(_with_torch(make_env(), cpp_extension_path=str(ext), version="2.0.1+cu117",
                                     pkg_resources_import=2),  # what the probe reads from that file
                         setuptools=setuptools)
    c = judge(env)["pkg-resources"]
    assert c.status == status, c
    if status == Status.FAIL:
        assert 'pip install "setuptools<82"' in c.fix


def test_pkg_resources_not_imported_by_newer_torch(tmp_path):
    ext = tmp_path / "cpp_extension.py"
    ext.write_text("from packaging.version import Version\n# pkg_resources is not used\n")
    env = _with_packages(_with_torch(make_env(), cpp_extension_path=str(ext)), setuptools="84.0.0")
    assert judge(env)["pkg-resources"].status == Status.OK


@pytest.mark.parametrize("version,status", [("2.14.1+cu130", Status.OK), ("2.5.0a0+872d972e41.nv24.08", Status.WARN),
                                            ("2.2.0.dev20231010+cu121", Status.WARN), ("2.x-custom", Status.FAIL)])
def test_torch_version(version, status):
    assert judge(_with_torch(make_env(), version=version))["torch-version"].status == status


def test_triton_without_libcuda_is_flagged():
    env = replace(_with_packages(make_env(), triton="3.8.0"),
                  libcuda=LibcudaInfo(None, (), (), None, (), ("/usr/lib/x86_64-linux-gnu",)))
    c = judge(env)["libcuda"]
    assert c.status == Status.WARN and "libcuda.so cannot found" in c.summary
    assert c.fix.startswith("export TRITON_LIBCUDA_PATH=/usr/lib/x86_64-linux-gnu")


def test_triton_linking_lcuda_needs_the_unversioned_library(tmp_path):
    site = tmp_path / "site-packages"
    (site / "triton" / "common").mkdir(parents=True)
    (site / "triton" / "common" / "build.py").write_text('cc_cmd = [cc, src, "-shared", "-fPIC", "-lcuda", "-o", so]\n')
    (site / "torch").mkdir()
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "libcuda.so.1").write_text("")
    env = replace(_with_torch(_with_packages(make_env(), triton="2.1.0"), file=str(site / "torch" / "__init__.py")),
                  libcuda=LibcudaInfo(None, (str(libdir / "libcuda.so.1"),), (), None, ()))
    c = judge(env)["libcuda"]
    assert c.status == Status.WARN and "cannot find -lcuda" in c.summary
    (libdir / "libcuda.so").write_text("")
    env = replace(env, libcuda=replace(env.libcuda, unversioned_dirs=(str(libdir),)))
    assert judge(env)["libcuda"].status == Status.OK


def test_stray_cub_on_cpath_is_flagged():
    env = replace(make_env(), include_dirs=(IncludeDir("CPATH", "/home/u/cub-1.8.0", True, False, None),))
    c = judge(env)["include-path"]
    assert c.status == Status.WARN and "CPATH adds /home/u/cub-1.8.0" in c.summary and "CUB" in c.summary


def test_other_cuda_runtime_headers_on_cpath_are_flagged_own_toolkit_is_not():
    env = replace(make_env(), include_dirs=(IncludeDir("CPLUS_INCLUDE_PATH", "/usr/local/cuda-12.4/include", True,
                                                       True, "12.4"),))
    assert judge(env)["include-path"].status == Status.WARN
    env = replace(make_env(), include_dirs=(IncludeDir("CPATH", "/opt/cuda-13.0/include", True, True, "13.0"),))
    assert judge(env)["include-path"].status == Status.OK


@pytest.mark.parametrize("guard,status", [("202002L", Status.WARN), ("201703L", Status.OK)])
def test_cxx_standard_read_from_torch_headers(tmp_path, guard, status):
    (tmp_path / "include" / "ATen").mkdir(parents=True)
    (tmp_path / "include" / "ATen" / "ATen.h").write_text(
        f"#if !defined(_MSC_VER) && __cplusplus < {guard}\n#error C++ or later compatible compiler is required\n#endif\n")
    c = judge(_with_torch(make_env(), file=str(tmp_path / "__init__.py")))["cxx-standard"]
    assert c.status == status


def test_import_failure_of_an_installed_module_is_classified_by_explain():
    err = "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory"
    ext = ExtensionInfo("causal_conv1d_cuda", "causal-conv1d", True, False, err, None)
    env = replace(make_env(), python=replace(make_env().python, extensions=(ext,),
                                             packages={**make_env().python.packages, "causal-conv1d": "1.5.2"}))
    c = judge(env)["import:causal_conv1d_cuda"]
    assert c.status == Status.FAIL and "[cuda-runtime-missing]" in c.summary
    assert c.fix == explain.diagnose_text(err).root.fix


def test_search_path_probes(tmp_path):
    assert parse_ldconfig("\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1\n"
                          "\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda/lib/libcudart.so.13\n") == \
        ("/usr/lib/x86_64-linux-gnu/libcuda.so.1",)
    inc = tmp_path / "inc"
    (inc / "cub").mkdir(parents=True)
    (inc / "cub" / "cub.cuh").write_text("")
    (inc / "cuda_runtime_api.h").write_text("#define CUDART_VERSION 12040\n")
    assert cudart_version(inc / "cuda_runtime_api.h") == "12.4"
    (d,) = probe_include_dirs({"CPATH": f"{inc}:/nonexistent"})
    assert (d.var, d.path, d.cub, d.thrust, d.cudart_version) == ("CPATH", str(inc), True, False, "12.4")
    assert triton_links_libcuda_so(tmp_path) is None
