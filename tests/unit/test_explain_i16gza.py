"""The classes blind batch 14's misses in 548-577 revealed, with other paths, packages and versions than the
logs that revealed them: each class answered with its id, and a near miss that must not be (so a pattern written
too broadly fails here); the snippets are not the blind logs."""

from __future__ import annotations

from mamba_build.diagnose import explain as ex


def _found(text: str) -> tuple[str, str]:
    """(root id, confidence) of a log, ("unknown", "") when explain names nothing."""
    expl = ex.explain_text(text)
    return (expl.root.id, expl.root.confidence) if expl.root else ("unknown", "")


def _root(text: str) -> str:
    return _found(text)[0]


def test_glibc_version_quoted_without_its_opening_backquote():
    # GitHub's Markdown ate the loader's opening backquote: "version GLIBC_2.34' not found (required by ...)"
    md = (
        "ImportError: /lib64/libc.so.6: version GLIBC_2.34' not found "
        "(required by /home/u/venv/lib/python3.11/site-packages/selective_scan_cuda.cpython-311-x86_64-linux-gnu.so)\n"
    )
    assert _found(md) == ("glibc-too-old", "high")
    # the C++ runtime's version, written the same way, is the libstdc++ class
    assert _root(md.replace("GLIBC_2.34", "GLIBCXX_3.4.32")) != "glibc-too-old"
    # a version of something else "not found" is no loader message
    assert _root("ERROR: version GLIBC_PRIVATE of the docs not built\n") != "glibc-too-old"


def test_transformers_remote_code_import_check_names_the_missing_package():
    msg = (
        '  File "/srv/app/.venv/lib/python3.12/site-packages/transformers/dynamic_module_utils.py", line 182, in check_imports\n'
        "    raise ImportError(\n"
        "ImportError: This modeling file requires the following packages that were not found in your environment: "
        "einops, timm. Run `pip install einops timm`\n"
    )
    expl = ex.explain_text(msg)
    assert expl.root is not None and expl.root.id == "dependency-missing"
    assert "einops" in expl.root.cause
    # transformers' other wording (a warning of diffusers' copy: 'might require') is no failure
    warn = "WARNING: This modeling file might require the following packages that were not found in your environment: xformers\n"
    assert _root(warn) != "dependency-missing"


def test_transformers_flash_attention_2_check_finds_no_package():
    old = (
        "ImportError: FlashAttention2 has been toggled on, but it cannot be used due to the following error: "
        "the package flash_attn seems to be not installed. Please refer to the documentation of "
        "https://huggingface.co/docs/transformers/perf_infer_gpu_one#flashattention-2 to install Flash Attention 2.\n"
    )
    assert _found(old) == ("dependency-missing", "high")
    new = (
        "ImportError: FlashAttention3 has been toggled on, but it cannot be used due to the following error: "
        "the package for FlashAttention3 doesn't seem to be installed.\n"
    )
    assert _root(new) == "dependency-missing"
    # the same check failing on a device, not on a missing package
    dev = (
        "ImportError: FlashAttention2 has been toggled on, but it cannot be used due to the following error: "
        "FlashAttention2 is not available on CPU. Please make sure you are on any of the supported devices: ('cuda',).\n"
    )
    assert _root(dev) != "dependency-missing"


def test_a_missing_module_whose_install_stopped_at_a_cuda_version_check_is_not_a_plain_missing_dependency():
    missing = "ModuleNotFoundError: No module named 'flash_attn'\n"
    assert _root(missing) == "dependency-missing"
    refused = missing + (
        "      RuntimeError: FlashAttention is only supported on CUDA 11.7 and above.  "
        "Note: make sure nvcc has a supported version by running nvcc -V.\n"
        "      torch.__version__  = 1.10.1+cu102\n"
    )
    assert _root(refused) != "dependency-missing"


def test_pybind11_argument_mismatch_in_a_translated_wording():
    tr = (
        "TypeError: selective_scan_fwd(): function parameter incompatibility. The following parameter types are supported\n"
        "    1. (arg0: torch.Tensor, arg1: torch.Tensor, arg2: bool) -> list\n"
    )
    assert _found(tr) == ("package-version-mismatch", "high")
    # prose about parameters, no function called
    assert _root("The following parameter types are supported by this tool: int, float\n") != "package-version-mismatch"
