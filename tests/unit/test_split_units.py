"""The split_units patch kind: one translation unit split into one unit per explicit instantiation.

Upstream-shaped synthetic files (written for this test); the real causal-conv1d releases are
checked in tests/integration/test_patch_all_releases.py."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from mamba_build.build import patching
from mamba_build.build.patching import PatchOptions, Status, apply_patches, plan_patches
from mamba_build.errors import PatchError
from tests.unit.test_patching import SYNTHETIC

INSTANTIATIONS = [
    f"template void causal_conv1d{cl}_bwd_cuda<{i}, {w}>(ConvParamsBwd &params, cudaStream_t stream);"
    for cl in ("", "_channellast") for i in ("float", "at::Half") for w in ("float", "at::BFloat16")
]
BWD = textwrap.dedent("""\
    #include "causal_conv1d.h"

    template<typename input_t, typename weight_t>
    void causal_conv1d_bwd_cuda(ConvParamsBwd &params, cudaStream_t stream) { /* plain */ }

    template<typename input_t, typename weight_t>
    void causal_conv1d_channellast_bwd_cuda(ConvParamsBwd &params, cudaStream_t stream) { /* channel last */ }

    """) + "\n".join(INSTANTIATIONS[:4]) + "\n\n" + "\n".join(INSTANTIATIONS[4:]) + "\n"
SETUP = SYNTHETIC.replace('sources=["csrc/demo.cpp", "csrc/demo_kernel.cu"],',
                          'sources=[\n                    "csrc/demo.cpp",\n'
                          '                    "csrc/causal_conv1d_bwd.cu",\n'
                          '                    "csrc/demo_kernel.cu",\n                ],')


@pytest.fixture
def tree(tmp_path) -> Path:
    t = tmp_path / "causal_conv1d-1.7.0"
    (t / "csrc").mkdir(parents=True)
    (t / "setup.py").write_text(SETUP)
    (t / "csrc" / "causal_conv1d_bwd.cu").write_text(BWD)
    return t


ON = PatchOptions(archs=("9.0",), split_units=True)
OFF = PatchOptions(archs=("9.0",))
BWD_FILE = "csrc/causal_conv1d_bwd.cu"


def _units(tree: Path) -> list[Path]:
    return [tree / BWD_FILE, *sorted((tree / "csrc").glob("causal_conv1d_bwd.mbpart*.cu"))]


def _instantiation_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("template void")]


def test_setup_fixture_really_lists_the_unit():
    assert '"csrc/causal_conv1d_bwd.cu",' in SETUP


def test_split_gives_one_unit_per_instantiation_longest_first(tree):
    results = {r.recipe: r for r in apply_patches(tree, "causal-conv1d", "1.7.0", ON)}
    assert results["split-bwd-units"].status is Status.APPLIED and results["split-bwd-units"].matches == 8
    units = _units(tree)
    assert len(units) == 8
    found = [_instantiation_lines(u.read_text()) for u in units]
    assert all(len(f) == 1 for f in found)
    assert sorted(f[0] for f in found) == sorted(INSTANTIATIONS)  # nothing lost, nothing doubled
    assert all("channellast" in f[0] for f in found[:4])  # `first`: the long ones lead
    shared = re.sub(r"^template void .*\n", "", BWD, flags=re.MULTILINE)
    for u in units:
        text = u.read_text()
        assert text.startswith("// mamba-build:split-bwd-units unit ")
        assert re.sub(r"^(//|template void) .*\n", "", text, flags=re.MULTILINE) == shared
    setup = (tree / "setup.py").read_text()
    listed = re.findall(r'"(csrc/causal_conv1d_bwd[^"]*\.cu)"', setup)
    assert listed == [BWD_FILE] + [f"csrc/{u.name}" for u in units[1:]]
    compile(setup, "setup.py", "exec")
    assert (tree / (BWD_FILE + ".mamba-build-orig")).read_text() == BWD


def test_split_is_idempotent_and_reverts_when_switched_off(tree):
    apply_patches(tree, "causal-conv1d", "1.7.0", ON)
    before = {p: p.read_bytes() for p in [*_units(tree), tree / "setup.py"]}
    again = {r.recipe: r.status for r in apply_patches(tree, "causal-conv1d", "1.7.0", ON)}
    assert again["split-bwd-units"] is Status.ALREADY_APPLIED
    assert {p: p.read_bytes() for p in before} == before
    (tree / "csrc" / "causal_conv1d_bwd.mbpart03.cu").unlink()  # a part lost: re-applied, not "already"
    assert {r.recipe: r.status for r in apply_patches(tree, "causal-conv1d", "1.7.0", ON)}["split-bwd-units"] \
        is Status.APPLIED
    off = {r.recipe: r.status for r in apply_patches(tree, "causal-conv1d", "1.7.0", OFF)}
    assert off["split-bwd-units"] is Status.SKIPPED_OPTION
    assert (tree / BWD_FILE).read_text() == BWD and _units(tree) == [tree / BWD_FILE]
    assert "mbpart" not in (tree / "setup.py").read_text()


def test_dry_run_writes_nothing(tree):
    res = {r.recipe: r.status for r in plan_patches(tree, "causal-conv1d", "1.7.0", ON)}
    assert res["split-bwd-units"] is Status.APPLIED
    assert _units(tree) == [tree / BWD_FILE] and (tree / BWD_FILE).read_text() == BWD
    assert not (tree / (BWD_FILE + ".mamba-build-orig")).exists()


def test_missing_instantiations_fail_loudly_before_writing(tree):
    (tree / BWD_FILE).write_text(BWD.replace("template void", "extern template void"))
    with pytest.raises(PatchError, match="split-bwd-units"):
        apply_patches(tree, "causal-conv1d", "1.7.0", ON)
    assert "mamba-build" not in (tree / "setup.py").read_text()
    assert _units(tree) == [tree / BWD_FILE]


def test_missing_sources_line_fails_loudly(tree):
    (tree / "setup.py").write_text(SETUP.replace('"csrc/causal_conv1d_bwd.cu",', '"csrc/other.cu",'))
    with pytest.raises(PatchError, match="split-bwd-units"):
        apply_patches(tree, "causal-conv1d", "1.7.0", ON)
    assert (tree / BWD_FILE).read_text() == BWD


def test_old_releases_are_left_whole(tree):
    res = {r.recipe: r.status for r in apply_patches(tree, "causal-conv1d", "1.4.0", ON)}
    assert res["split-bwd-units"] is Status.SKIPPED_VERSION and _units(tree) == [tree / BWD_FILE]


def test_recipe_validation():
    with pytest.raises(PatchError, match="sources_file"):
        patching._recipe_from_toml({"id": "x", "description": "d", "file": "a.cu", "kind": "split_units",
                                    "anchors": ["^template"]}, "t.toml")
