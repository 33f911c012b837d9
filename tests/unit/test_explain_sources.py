"""Failure classes widened from the SOURCE of the CUDA-extension ecosystem's packages (issue 16, stream
i16o), before the next blind batch met the catalog: each catalog member cites the package's own message
format (`from = ["src:<repo>@<commit> <path> <function> ..."]`), read in that package's code, not in any
log. The lines below are made from those formats with other op names, paths and versions; where a class
has a tempting neighbour, a near-miss must get another answer.
"""

from __future__ import annotations

import pytest

from mamba_build.diagnose import explain as ex


def _root(text: str) -> str:
    expl = ex.explain_text(text)
    return expl.root.id if expl.root else "unknown"


# --- no toolkit found, in TransformerEngine's, gsplat's and DeepSpeed's words


@pytest.mark.parametrize(
    "text",
    [
        # TransformerEngine build_tools/utils.py nvcc_path(): nothing in CUDA_HOME, no nvcc on PATH, none at its fallback
        "  File \"/tmp/pip-req-build-x1/build_tools/utils.py\", line 222, in nvcc_path\n"
        "    raise FileNotFoundError(f\"Could not find NVCC at {nvcc_bin}\")\n"
        "  FileNotFoundError: Could not find NVCC at /usr/local/cuda/bin/nvcc\n",
        "RuntimeError: Could neither find NVCC executable nor CUDA runtime Python package.\n",
        # gsplat's JIT loader without a toolkit
        ">>> import gsplat\ngsplat: No CUDA toolkit found. gsplat will be disabled.\n",
        # DeepSpeed's warning per op (weak alone)
        " [WARNING]  fused_lamb cuda is missing or is incompatible with installed torch, only cpu ops can be compiled!\n",
    ],
)
def test_no_toolkit_in_each_packages_own_words(text: str) -> None:
    assert _root(text) == "cuda-home-missing"


def test_transformer_engine_with_a_cuda_home_that_is_no_toolkit_is_the_wrong_cuda_home() -> None:
    assert _root("FileNotFoundError: Could not find NVCC at /opt/cuda-runtime-only/bin/nvcc\n") == "cuda-home-wrong"
    # DeepSpeed's weak per-op warning does not outweigh a real error of its own
    text = (" [WARNING]  cpu_adam cuda is missing or is incompatible with installed torch, only cpu ops can be compiled!\n"
            "/usr/include/c++/12/bits/std_function.h:435:145: error: parameter packs not expanded with '...':\n")
    assert _root(text) == "gcc-unsupported"
