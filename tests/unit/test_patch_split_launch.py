"""split_units with ``expand``, a glob ``file`` and ``requires`` (the split-bwd-launch recipe of mamba-ssm), on a
small tree shaped like mamba-ssm's. The real sdists: tests/integration/test_patch_all_releases.py (every release) and
test_split_launch_real.py (the real nvcc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mamba_build.build import patching
from mamba_build.build.patching import PatchOptions, Status, apply_patches
from mamba_build.errors import PatchError

ON = PatchOptions(archs=("9.0",), split_units=True)
SHAPES = [("128", "32, 4"), ("256", "32, 8"), ("512", "32, 16"), ("1024", "64, 16")]
HEADER = ("template<int kNThreads, int kNItems, typename input_t, typename weight_t>\n"
          "void selective_scan_bwd_launch(SSMParamsBwd &params, cudaStream_t stream) { }\n"
          "    if (params.seqlen <= 128) {\n"
          + "".join(f"        selective_scan_bwd_launch<{s}, input_t, weight_t>(params, stream);\n"
                    f"    }} else if (params.seqlen <= {SHAPES[k + 1][0]}) {{\n" for k, (_, s) in enumerate(SHAPES[:-1]))
          + "        selective_scan_bwd_launch<64, 16, input_t, weight_t>(params, stream);\n"
          "    } else {\n        selective_scan_bwd_launch<128, 16, input_t, weight_t>(params, stream);\n    }\n")
TYPES = {"fp32_real": "float, float", "bf16_complex": "at::BFloat16, complex_t"}


def _recipe():
    return [r for r in patching.load_recipes("mamba-ssm") if r.id == "split-bwd-launch"]


def _tree(root: Path, header: str = HEADER) -> Path:
    d = root / "csrc" / "selective_scan"
    d.mkdir(parents=True)
    (d / "selective_scan_bwd_kernel.cuh").write_text(header)
    listing = ""
    for name, types in TYPES.items():
        (d / f"selective_scan_bwd_{name}.cu").write_text(
            '#include "selective_scan_bwd_kernel.cuh"\n\n'
            f"template void selective_scan_bwd_cuda<{types}>(SSMParamsBwd &params, cudaStream_t stream);")
        listing += f'        "csrc/selective_scan/selective_scan_bwd_{name}.cu",\n'
    (root / "setup.py").write_text(f"sources = [\n{listing}]\n")
    return root


def test_each_file_becomes_two_units_and_setup_py_lists_both(tmp_path):
    tree = _tree(tmp_path)
    (res,) = apply_patches(tree, "mamba-ssm", "2.3.2.post1", ON, recipes=_recipe())
    assert res.status is Status.APPLIED and res.matches == 4 and "2 files, 4 units" in res.detail
    d = tree / "csrc" / "selective_scan"
    for name, types in TYPES.items():
        first, second = (d / f"selective_scan_bwd_{name}.cu").read_text(), (d / f"selective_scan_bwd_{name}.mbpart01.cu").read_text()
        for shape in ("32, 16", "64, 16"):
            decl = f"selective_scan_bwd_launch<{shape}, {types}>(SSMParamsBwd &params, cudaStream_t stream);"
            assert f"extern template void {decl}" in first and f"\ntemplate void {decl}" in second
        # the dispatcher stays in the first unit only, after the extern declarations
        dispatch = f"template void selective_scan_bwd_cuda<{types}>"
        assert first.index("extern template") < first.index(dispatch) and dispatch not in second
        assert '#include "selective_scan_bwd_kernel.cuh"' in second
    setup = (tree / "setup.py").read_text()
    assert setup.count(".mbpart01.cu") == 2 and compile(setup, "setup.py", "exec")
    again = apply_patches(tree, "mamba-ssm", "2.3.2.post1", ON, recipes=_recipe())
    assert again[0].status is Status.ALREADY_APPLIED and (tree / "setup.py").read_text() == setup
    off = apply_patches(tree, "mamba-ssm", "2.3.2.post1", PatchOptions(archs=("9.0",)), recipes=_recipe())
    assert off[0].status is Status.SKIPPED_OPTION and not list(d.glob("*.mbpart*"))  # unsplit: parts removed
    assert "extern" not in (d / "selective_scan_bwd_fp32_real.cu").read_text()


def test_a_changed_dispatcher_fails_loudly_and_writes_nothing(tmp_path):
    tree = _tree(tmp_path, HEADER.replace("selective_scan_bwd_launch<64, 16,", "selective_scan_bwd_launch<64, 8,"))
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    with pytest.raises(PatchError) as err:
        apply_patches(tree, "mamba-ssm", "2.3.2.post1", ON, recipes=_recipe())
    assert "split-bwd-launch" in str(err.value) and "selective_scan_bwd_kernel.cuh no longer has" in str(err.value)
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before


def test_no_file_matching_the_glob_is_an_error(tmp_path):
    (tmp_path / "setup.py").write_text("sources = []\n")
    with pytest.raises(PatchError, match="no file matches"):
        apply_patches(tmp_path, "mamba-ssm", "2.3.2.post1", ON, recipes=_recipe())
