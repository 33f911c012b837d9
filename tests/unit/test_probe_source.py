"""Fast checks of the probe's sources and of the pure logic in mamba_build.diagnose.toolchain_probe (no compiler)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mamba_build import child
from mamba_build.diagnose import toolchain_probe
from mamba_build.errors import ToolkitError, UsageError


def _src(name: str) -> str:
    return (toolchain_probe.source_dir() / name).read_text(encoding="utf-8")


def test_sources_exist_where_build_probe_looks():
    assert toolchain_probe.source_dir() == toolchain_probe.paths.csrc_dir() / "probe"
    for name in toolchain_probe.SOURCES:
        assert (toolchain_probe.source_dir() / name).is_file(), name


def test_kernel_uses_the_mamba_ingredients():
    cu = _src("probe_kernel.cu")
    # dispatch over fp32/fp16/bf16 (the macro adds fp64) into a kernel templated on the type
    assert re.search(r"AT_DISPATCH_FLOATING_TYPES_AND2\(\s*at::ScalarType::Half,\s*at::ScalarType::BFloat16", cu)
    assert re.search(r"template\s*<\s*typename scalar_t", cu)
    assert "cub::BlockScan" in cu and "#include <cub/block/block_scan.cuh>" in cu
    assert "at::cuda::getCurrentCUDAStream()" in cu
    assert "<<<" in cu and ", stream>>>" in cu  # launched on torch's stream, not the legacy default one
    # the header that pulls in cusparse.h & co. in the Mamba kernels too (what a partial toolkit lacks)
    assert "#include <ATen/cuda/CUDAContext.h>" in cu
    assert "__CUDACC_VER_MAJOR__" in cu and "__CUDA_ARCH_LIST__" in cu


def test_binding_exports_what_run_probe_calls():
    cpp = _src("probe.cpp")
    assert "PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)" in cpp
    for fn in ("inclusive_scan", "device_arch", "probe_info"):
        assert f'm.def("{fn}"' in cpp
        assert f'mod.{fn}(' in child.script("probe_run").read_text(encoding="utf-8")
    assert "_GLIBCXX_USE_CXX11_ABI" in cpp


@pytest.mark.parametrize("arch,flags", [
    ("8.0", ("-gencode", "arch=compute_80,code=sm_80")),
    ("9.0", ("-gencode", "arch=compute_90,code=sm_90")),
    ("9.0a", ("-gencode", "arch=compute_90a,code=sm_90a")),
    ("sm_90", ("-gencode", "arch=compute_90,code=sm_90")),
    ("12.0", ("-gencode", "arch=compute_120,code=sm_120")),
    ("8.6+PTX", ("-gencode", "arch=compute_86,code=sm_86", "-gencode", "arch=compute_86,code=compute_86")),
])
def test_arch_gencode(arch, flags):
    assert toolchain_probe.arch_gencode(arch) == flags


@pytest.mark.parametrize("bad", ["", "90", "9", "9.x", "sm90a!", "8.0;9.0", "compute_90"])
def test_arch_gencode_rejects_malformed(bad):
    if bad == "90":  # "90" is read as 9.0 (sm_90 without the prefix): allowed
        assert toolchain_probe.arch_gencode(bad) == ("-gencode", "arch=compute_90,code=sm_90")
        return
    with pytest.raises(UsageError):
        toolchain_probe.arch_gencode(bad)


def test_build_probe_without_nvcc_raises_toolkit_error(tmp_path):
    with pytest.raises(ToolkitError) as info:
        toolchain_probe.build_probe(cuda_home=tmp_path / "nope", cc="gcc", cxx="g++", arch="8.0", workdir=tmp_path / "w")
    assert info.value.fix and "nvcc" in info.value.message


def test_missing_library_headers(tmp_path):
    (tmp_path / "include").mkdir()
    assert toolchain_probe.missing_library_headers(tmp_path) == list(toolchain_probe.LIBRARY_HEADERS)
    for h in toolchain_probe.LIBRARY_HEADERS:
        (tmp_path / "include" / h).write_text("")
    assert toolchain_probe.missing_library_headers(tmp_path) == []


def test_error_excerpt_and_diagnosis_of_wrong_cuda_home(shared_dir):
    log = shared_dir / "failure-logs" / "02-cuda-home-wrong.log"
    if not log.is_file():
        pytest.skip("shared failure logs not available")
    text = log.read_text(encoding="utf-8", errors="replace")
    excerpt = toolchain_probe.error_excerpt(text)
    assert excerpt and "cuda_runtime_api.h: No such file" in excerpt
    fix = toolchain_probe.diagnose(text, cuda_home=Path("/usr/local"), python="python")
    assert fix and "CUDA_HOME" in fix


def test_diagnosis_of_unsupported_arch(shared_dir):
    log = shared_dir / "failure-logs" / "05-arch-unsupported.log"
    if not log.is_file():
        pytest.skip("shared failure logs not available")
    fix = toolchain_probe.diagnose(log.read_text(encoding="utf-8", errors="replace"), cuda_home=Path("/x"), python="python")
    assert fix and "compute_70" in fix


def test_child_results_come_from_the_result_file_not_stdout(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"a": 1}\n{"a": 2}\n{"a": 3', encoding="utf-8")  # the child was killed mid-line
    assert child.read_records(out) == [{"a": 1}, {"a": 2}]
    assert child.read_records(tmp_path / "none.jsonl") == []


def test_probe_run_never_reports_import_only_as_pass():
    run = toolchain_probe.ProbeRun(imported=True, ran_on_gpu=False, passed=None)
    assert run.status == "import-only" and run.passed is None
    assert toolchain_probe.ProbeRun(imported=False, ran_on_gpu=False, passed=None).status == "import-failed"
    assert toolchain_probe.ProbeRun(imported=True, ran_on_gpu=True, passed=True).status == "gpu-pass"
    assert toolchain_probe.ProbeRun(imported=True, ran_on_gpu=True, passed=False).status == "gpu-fail"


@pytest.mark.parametrize("text,fix", [
    ("ModuleNotFoundError: No module named 'torch'", "install torch into the environment of py"),
    ("RuntimeError: Ninja is required to load C++ extensions", "install ninja into the environment of py (py -m pip install ninja)"),
    ("#error -- unsupported GNU version! gcc versions later than 15", "the host compiler is newer than this CUDA release accepts"),
    ("nvcc fatal   : Unsupported gpu architecture 'compute_70'", "this CUDA toolkit cannot compile for compute_70: "),
    ("No CUDA runtime is found, using CUDA_HOME=/usr/local, not the toolkit", "set CUDA_HOME explicitly"),
    ("ld: cannot find -lcudart", "the link step failed"),
    ("fatal error: cuda_runtime_api.h: No such file or directory", "/x is not a complete CUDA toolkit (no cuda_runtime_api.h)"),
])
def test_diagnose_reads_the_probe_rules_of_the_catalog(text, fix):
    got = toolchain_probe.diagnose(text + "\nmore output", cuda_home=Path("/x"), python="py")
    assert got is not None and got.startswith(fix), got
    assert toolchain_probe.diagnose("all fine", cuda_home=Path("/x"), python="py") is None


def test_probe_rules_name_catalog_failures():
    from mamba_build.diagnose import explain

    rules = explain.probe_rules()
    names = [r.name for r in rules]
    assert len(names) == len(set(names)) >= 7 and "header-missing" in names
    ids = set(explain.load_catalog().ids)
    assert all(r.failure in ids for r in rules if r.failure), [r.failure for r in rules]
