"""The Triton warm-up (mamba_build/build/smoke/triton_warmup.py) on mamba-ssm's real source tree (its PyPI sdist),
without the extensions being built: the bare-package import and the causal-conv1d stand-in must give the smoke
test's Mamba2 block, and the child must answer through the protocol. The GPU part (Triton compiling into its
cache while the wheels build) is measured on the H200: docs/benchmarks.md, "Triton warm-up"."""

from __future__ import annotations

import sys

import pytest

from mamba_build.build.smoke import checks, triton_warmup
from mamba_build.build.smoke.stage import TritonWarmup
from tests.conftest import has_gpu


def _purge(names=("mamba_ssm", "causal_conv1d")) -> None:
    for mod in [m for m in sys.modules if m.split(".")[0] in names]:
        del sys.modules[mod]


def test_mamba2_imports_from_the_source_tree_without_any_extension(mamba_main_source):
    """mamba-ssm's own __init__ imports selective_scan_cuda, which does not exist while the wheels build: the bare
    package skips it, and the smoke test's Mamba2 block (its configuration) builds from the source tree's code."""
    torch = pytest.importorskip("torch")
    refs = checks._load_references()
    saved = {m: sys.modules[m] for m in list(sys.modules) if m.split(".")[0] in ("mamba_ssm", "causal_conv1d")}
    _purge()
    try:
        triton_warmup.install_stand_ins(mamba_main_source, torch, refs.causal_conv1d_ref)
        from mamba_ssm.modules.mamba2 import Mamba2  # type: ignore[import-not-found]

        assert "selective_scan_cuda" not in sys.modules and "causal_conv1d_cuda" not in sys.modules
        assert Mamba2.__module__ == "mamba_ssm.modules.mamba2"
        assert sys.modules["mamba_ssm.modules.mamba2"].__file__.startswith(str(mamba_main_source))
        block = Mamba2(**checks.MAMBA2_CONFIG)
        assert sum(p.numel() for p in block.parameters()) == checks.MAMBA2_PARAMS
        # the fused path's conv is the stand-in's (ssd_combined imported it by name)
        ssd = sys.modules["mamba_ssm.ops.triton.ssd_combined"]
        assert ssd.causal_conv1d_fwd_function is sys.modules["causal_conv1d.cpp_functions"].causal_conv1d_fwd_function
    finally:
        _purge()
        sys.modules.update(saved)


def test_the_warmup_child_answers_through_the_protocol(mamba_main_source, tmp_path):
    """The child, run as compile runs it: on a machine without a GPU it says it skipped (and why); on a GPU it
    must run the block ("done")."""
    w = TritonWarmup(sys.executable, tmp_path / "staging", mamba_main_source, timeout=600)
    line = w.finish(600)
    rec = [r for r in w.result.records if "warmup" in r]
    assert len(rec) == 1, (w.result.records, w.log_path.read_text())
    if has_gpu():
        assert rec[0]["warmup"] == "done", line
    else:
        assert rec[0]["warmup"] == "skipped" and "no GPU" in rec[0]["detail"], line
    assert line.startswith(f"triton warm-up: {rec[0]['warmup']} in ")
    assert w.log_path.is_file()


def test_a_source_tree_without_mamba2_is_skipped_not_failed(tmp_path):
    (tmp_path / "src" / "mamba_ssm").mkdir(parents=True)
    w = TritonWarmup(sys.executable, tmp_path / "staging", tmp_path / "src", timeout=300)
    line = w.finish(300)
    assert "triton warm-up: skipped" in line and "no mamba_ssm/modules/mamba2.py" in line, line


def test_a_mamba_ssm_whose_api_differs_fails_the_warmup_and_says_the_smoke_test_compiles_itself(tmp_path):
    """An older or newer mamba-ssm whose Mamba2 cannot run this way: the warm-up fails (never the build) and the
    line says what that means."""
    src = tmp_path / "src" / "mamba_ssm" / "modules"
    src.mkdir(parents=True)
    (src / "mamba2.py").write_text("raise ImportError('this mamba-ssm has another layout')\n")
    w = TritonWarmup(sys.executable, tmp_path / "staging", tmp_path / "src", timeout=300)
    line = w.finish(300)
    if has_gpu():
        assert "failed" in line and "the smoke test compiles Mamba2's kernels itself" in line, line
        assert "another layout" in line, line
    else:  # without a GPU the child stops before importing anything of mamba-ssm
        assert "skipped" in line and "no GPU" in line, line


def test_the_pre_started_child_imports_what_import_mamba_ssm_imports(mamba_main_source):
    """The import graph of mamba-ssm's real source (smoke/import_graph.py): `import mamba_ssm` reaches
    transformers.generation (mamba_ssm/utils/generation.py: seconds of torch dynamo/distributed imports), which the
    smoke test's pre-started child now imports while the wheels build; never causal_conv1d or an extension module,
    which must come from the staged wheels."""
    from mamba_build.build.smoke.import_graph import external_imports

    own = {"causal_conv1d", "causal_conv1d_cuda", "selective_scan_cuda"}
    got = external_imports(mamba_main_source, "mamba_ssm", own)
    modules = [m for m, _names in got]
    assert any(m == "transformers.generation" and "TextStreamer" in names for m, names in got), got
    assert {"torch", "einops", "triton", "huggingface_hub"} <= set(modules)
    assert not {m.split(".")[0] for m in modules} & (own | {"mamba_ssm"})
