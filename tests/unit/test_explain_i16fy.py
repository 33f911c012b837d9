"""The classes blind batch 13's misses (stream i16y, logs 488-517) revealed, with other paths, packages and versions.

Each class is checked with a snippet that must be answered with its id and a near miss that must not be
(so a pattern written too broadly fails here); the snippets are not the blind logs.
"""

from __future__ import annotations

from mamba_build.diagnose import explain as ex


def _root(text: str, catalog: ex.Catalog | None = None) -> tuple[str, str]:
    expl = ex.explain_text(text, catalog=catalog)
    return (expl.root.id, expl.root.confidence) if expl.root else ("unknown", "")


def test_uvs_wording_of_a_flash_attn_build_on_windows_is_the_platform_weakly():
    win = (
        "  × Failed to build `flash-attn==2.7.0.post2`\n"
        "  ├─▶ The build backend returned an error\n"
        "  ╰─▶ Call to `setuptools.build_meta:__legacy__.build_wheel` failed (exit code: 1)\n"
        "      [stderr]\n"
        "      D:\\envs\\py311\\Lib\\site-packages\\setuptools\\dist.py:476: SetuptoolsDeprecationWarning: Invalid dash-separated options\n"
        "      C:\\Users\\dev\\AppData\\Local\\uv\\cache\\sdists-v6\\.tmpAb12\\setup.py:3: UserWarning: long paths\n"
    )
    assert _root(win) == ("platform-unsupported", "low")
    # the same uv failure on Linux is no platform problem
    linux = (
        "  × Failed to build `flash-attn==2.7.0.post2`\n"
        "  ├─▶ The build backend returned an error\n"
        "  ╰─▶ Call to `setuptools.build_meta:__legacy__.build_wheel` failed (exit code: 1)\n"
        "      [stderr]\n"
        "      /opt/env/lib/python3.11/site-packages/setuptools/dist.py:476: SetuptoolsDeprecationWarning: Invalid options\n"
    )
    assert _root(linux)[0] != "platform-unsupported"
    # nor is another package's uv build on Windows
    assert _root(win.replace("flash-attn==2.7.0.post2", "pycocotools==2.0.8"))[0] != "platform-unsupported"


def test_uvs_failed_get_requires_hook_of_a_torch_extension_is_the_isolated_build_weakly():
    uv = (
        "error: Failed to prepare distributions\n"
        "  Caused by: Failed to fetch wheel: causal-conv1d==1.4.0\n"
        "  Caused by: Build backend failed to determine extra requires with `build_wheel()` with exit status: 1\n"
    )
    assert _root(uv) == ("build-isolation-no-torch", "low")
    # pixi's tree, cut after the word 'extra' (the rest of the line lost in the excerpt)
    cut = "  ├─▶ Failed to build: `mamba-ssm==2.2.4`\n  ╰─▶ Build backend failed to determine extra\n"
    assert _root(cut) == ("build-isolation-no-torch", "low")
    # isolation switched off, another package, or another missing module: not this class
    assert _root(uv + "pixi.toml: no-build-isolation = [\"causal-conv1d\"]\n")[0] != "build-isolation-no-torch"
    assert _root(uv.replace("causal-conv1d", "madmom"))[0] != "build-isolation-no-torch"
    assert _root(uv + "ModuleNotFoundError: No module named 'Cython'\n")[0] != "build-isolation-no-torch"


_ISOLATED = (
    "  × Getting requirements to build wheel did not run successfully.\n"
    "  │ exit code: 1\n"
    "  ╰─> [18 lines of output]\n"
    "      /tmp/pip-build-env-a1b2c3d4/overlay/lib/python3.11/site-packages/torch/_subclasses/functional_tensor.py:295:"
    " UserWarning: Failed to initialize NumPy: No module named 'numpy'\n"
)


def test_no_toolkit_found_by_the_isolated_envs_torch_is_the_missing_toolkit():
    no_nvcc = _ISOLATED + (
        "      <string>:119: UserWarning: causal_conv1d was requested, but nvcc was not found.  Are you sure your"
        " environment has nvcc available?\n"
        "      torch.__version__  = 2.8.0+cu128\n"
    )
    assert _root(no_nvcc)[0] == "cuda-home-missing"
    # the isolated env's torch alone stays the isolated-build class
    assert _root(_ISOLATED + "      torch.__version__  = 2.8.0+cu128\n")[0] == "build-isolation-no-torch"
    # the exclusion cites the log it was written from: grouped cross-validation leaves it out for that log
    held_out = ex.load_catalog(frozenset({"blind:494"}))
    assert _root(no_nvcc, held_out)[0] == "build-isolation-no-torch"


def test_nvccs_host_compiler_check_quoted_without_its_error_head():
    assert _root("unsupported GNU version! gcc versions later than 10 are not supported!\n")[0] == "gcc-unsupported"
    assert _root("unsupported clang version! clang version must be less than 16 and greater than 3.2 .\n")[0] == (
        "gcc-unsupported"
    )
    assert _root("is this an unsupported GNU version? gcc 13 builds it fine here\n")[0] != "gcc-unsupported"


def test_a_mangled_name_set_in_markdown_bold_is_still_the_loaders_undefined_symbol():
    torch_sym = (
        "> ImportError: /env/lib/python3.9/site-packages/xentropy_cuda_lib.cpython-39-x86_64-linux-gnu.so:"
        " undefined symbol: **_ZN3c104cuda9SetDeviceEi**\n"
    )
    assert _root(torch_sym)[0] == "abi-undefined-symbol"
    std_sym = "ImportError: /env/lib/fused.so: undefined symbol: `_ZSt28__throw_bad_array_new_lengthv`\n"
    assert _root(std_sym)[0] == "glibcxx-missing"
    # a C symbol (not a mangled C++ name) in bold is not torch's ABI
    assert _root("ImportError: /env/lib/ext.so: undefined symbol: **cudaLaunchKernelExC**\n")[0] != "abi-undefined-symbol"


def test_a_setup_py_whose_submodule_is_not_in_the_checkout():
    log = (
        "  Running setup.py develop for my_attn\n"
        "  error: pathspec 'third_party/cutlass' did not match any file(s) known to git\n"
        "  torch.__version__  = 2.4.1+cu121\n"
    )
    assert _root(log) == ("sdist-missing-sources", "low")
    # a git checkout of a branch that does not exist is no missing source tree
    branch = "  Running setup.py develop for my_attn\nerror: pathspec 'feature/new-kernels' did not match any file(s) known to git\n"
    assert _root(branch)[0] != "sdist-missing-sources"
    # nor is the same git error outside a package build
    assert _root("$ git checkout csrc/kernels/old.cu\nerror: pathspec 'csrc/kernels/old.cu' did not match any file(s) known to git\n")[
        0
    ] != "sdist-missing-sources"


def test_the_compiler_out_of_memory_inside_a_docker_build_and_in_nvccs_front_end():
    buildkit = (
        "#14 812.4   /usr/local/cuda/bin/nvcc -I/usr/include/python3.11 -c csrc/attn.cu -o build/attn.o --threads 4\n"
        "#14 812.4   Killed\n"
        "#14 1203.3   [5/12] /usr/local/cuda/bin/nvcc -c csrc/norm.cu\n"
    )
    assert _root(buildkit)[0] == "oom-killed"
    assert _root("#14 812.4 Killed 3 stale workers before the build\n")[0] != "oom-killed"
    edg = "/opt/venv/lib/python3.11/site-packages/torch/include/ATen/core/TensorBody.h(247): catastrophic error: out of memory\n"
    assert _root(edg)[0] == "oom-killed"
    other = 'csrc/attn.cu(3): catastrophic error: cannot open source file "cuda_fp8.h"\n'
    assert _root(other)[0] != "oom-killed"
