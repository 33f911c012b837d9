"""Failure classes widened after blind batch 3 (stream i16e): each catalog member is written from the
message format of the tool that prints it (host_config.h, torch's c10/util/C++17.h, apex's and DeepSpeed's
setup checks, vLLM's setup.py, CMake, cmd.exe/PowerShell/zsh, CPython's Windows loader, uv, clang, MSVC,
xformers), not from a corpus log. The snippets below are made from those formats with other packages,
paths and versions than any corpus log; each class also has a near-miss that must NOT be taken for it.
"""

from __future__ import annotations

import pytest

from mamba_build.diagnose import explain as ex


def _root(text: str) -> str:
    expl = ex.explain_text(text)
    return expl.root.id if expl.root else "unknown"


def _facts(text: str) -> dict[str, str]:
    return dict(ex.explain_text(text).facts)


# --- the host compiler check, for every compiler host_config.h knows, and torch's own compiler floor


@pytest.mark.parametrize(
    "line",
    [
        "/opt/cuda-12.4/include/crt/host_config.h(157): error: #error -- unsupported clang version! "
        "clang version must be less than 18 and greater than 3.2 .",
        "host_config.h(118): error: #error -- unsupported Grace clang version! The version must be 16.x to 17.x.",
        "crt/host_config.h:132:2: error: #error -- unsupported xlC version! only xlC 13.1 and 16.1 are supported.",
        # the #error line cut off by a pasted excerpt: the override sentence every release prints after it
        "The nvcc flag '-allow-unsupported-compiler' can be used to override this version check; however,",
        "/usr/include/c10/util/C++17.h:17:2: error: #error \"You're trying to build PyTorch with a too old "
        'version of GCC. We need GCC 9 or later."',
        "/usr/include/c++/11/bits/std_function.h:435:145: error: parameter packs not expanded with '...':",
        'cc1plus: error: unrecognized command line option "-std=c++17"',
        "g++: error: unrecognized command-line option '-std=c++20'",
    ],
)
def test_the_host_compiler_class_in_each_tools_wording(line: str) -> None:
    assert _root(line + "\n") == "gcc-unsupported"


def test_a_known_std_flag_is_not_an_old_compiler() -> None:
    assert _root("cc1plus: error: unrecognized command-line option '-mfoo'\n") != "gcc-unsupported"


# --- no toolkit found, in other build systems' and shells' words


@pytest.mark.parametrize(
    "line",
    [
        "RuntimeError: Cannot find CUDA_HOME. CUDA must be available to build the package.",
        "  No CMAKE_CUDA_COMPILER could be found.",
        "  Failed to find nvcc.",
        "-- Could NOT find CUDAToolkit (missing: CUDAToolkit_INCLUDE_DIR CUDA_CUDART)",
        "'nvcc' is not recognized as an internal or external command,",
        "zsh: command not found: nvcc",
    ],
)
def test_no_toolkit_found_in_each_tools_wording(line: str) -> None:
    assert _root(line + "\n") == "cuda-home-missing"


# --- torch's CUDA and the toolkit's differ, as apex and DeepSpeed check it


def test_apex_and_deepspeed_word_the_cuda_mismatch() -> None:
    apex = (
        "RuntimeError: Cuda extensions are being compiled with a version of Cuda that does not match the "
        "version used to compile Pytorch binaries.  Pytorch binaries were compiled with Cuda 12.1.\n"
    )
    assert _root(apex) == "cuda-major-mismatch"
    ds = (
        "deepspeed.ops.op_builder.builder.CUDAMismatchException: >- DeepSpeed Op Builder: Installed CUDA "
        "version 11.7 does not match the version torch was compiled with 12.4, unable to compile cuda/cpp "
        "extensions without a matching cuda version.\n"
    )
    assert _root(ds) == "cuda-major-mismatch"
    # DeepSpeed's minor-version note is not a failure
    ok = (
        "Installed CUDA version 12.6 does not match the version torch was compiled with 12.4 but since the "
        "APIs are compatible, accepting this combination\n"
    )
    assert _root(ok) == "unknown"


# --- macOS: the facts only macOS prints, and the toolkit classes' messages there are the platform


@pytest.mark.parametrize(
    "line",
    [
        "  /opt/homebrew/bin/python3.12 -m pip install causal-conv1d",
        "ld: warning: ignoring file /usr/local/lib/libomp.dylib, building for macOS-arm64",
        "clang: error: unsupported option '-fopenmp'",
        "Target: arm64-apple-darwin23.4.0",
        "Apple clang version 15.0.0 (clang-1500.3.9.4)",
    ],
)
def test_what_only_macos_prints_is_a_platform_fact(line: str) -> None:
    assert _facts(line + "\n").get("platform") == "macos"


def test_no_toolkit_on_macos_is_the_platform_for_any_cuda_extension() -> None:
    msg = (
        "Target: arm64-apple-darwin23.4.0\n"
        "RuntimeError: Cannot find CUDA_HOME. CUDA must be available to build the package.\n"
    )
    assert _root(msg) == "platform-unsupported"
    assert _root(msg.replace("arm64-apple-darwin23.4.0", "x86_64-pc-linux-gnu")) == "cuda-home-missing"
    cpu = "  /opt/homebrew/lib/python3.11/site-packages\nAssertionError: Torch not compiled with CUDA enabled\n"
    assert _root(cpu) == "platform-unsupported"
    # clang's wording of a missing header (Linux clang users too)
    assert _root("x.cu:1:10: fatal error: 'cusparse.h' file not found\n") == "headers-missing"


# --- Windows: the loader, MSVC's resource errors, the disk


def test_windows_dll_load_failures_of_a_cuda_module() -> None:
    missing = (
        "ImportError: DLL load failed while importing selective_scan_cuda: The specified module could not be found.\n"
    )
    expl = ex.explain_text(missing)
    assert expl.root is not None and expl.root.id == "cuda-runtime-missing"
    assert expl.root.confidence == "low"  # the loader names no DLL
    assert dict(expl.facts).get("platform") == "windows"
    proc = (
        "ImportError: DLL load failed while importing causal_conv1d_cuda: The specified procedure could not be found.\n"
    )
    assert _root(proc) == "abi-undefined-symbol"
    # torch's own _C failing is a broken torch install, not an extension's CUDA runtime
    assert (
        _root("ImportError: DLL load failed while importing _C: The specified module could not be found.\n")
        == "unknown"
    )


def test_msvc_heap_and_include_errors_and_windows_disk_full() -> None:
    assert _root("csrc\\x.cu(12): fatal error C1060: compiler is out of heap space\n") == "oom-killed"
    assert (
        _root("x.cpp(3): fatal error C1083: Cannot open include file: 'cuda_runtime.h': No such file or directory\n")
        == "headers-missing"
    )
    assert _root("OSError: [WinError 112] There is not enough space on the disk\n") == "disk-full"


def test_other_cuda_runtime_libraries_carry_the_major() -> None:
    expl = ex.explain_text("ImportError: libcublas.so.11: cannot open shared object file: No such file or directory\n")
    assert expl.root is not None and expl.root.id == "cuda-runtime-missing"
    # the cause names the library (its soname carries the major); the fix names the wheel of that major
    assert "libcublas.so.11" in expl.root.cause and "nvidia-cuda-runtime-cu11" in expl.root.fix
    # the math libraries' sonames are not the CUDA major (CUDA 13.0: libcufft.so.12, libcurand.so.10): no major claimed
    other = ex.explain_text("ImportError: libcufft.so.11: cannot open shared object file: No such file or directory\n")
    assert other.root is not None and other.root.id == "cuda-runtime-missing"
    assert "cu11" not in other.root.fix


# --- uv: the wheel it cannot use, and its open build line


def test_uvs_wordings_of_a_wheel_for_another_platform() -> None:
    line = (
        "error: Distribution `flash-attn==2.7.4 @ registry+https://pypi.org/simple` can't be installed "
        "because it doesn't have a source distribution or wheel for the current platform\n"
    )
    assert _root(line) == "wheel-tag-mismatch"
    res = (
        "  ╰─▶ Because torch==2.0.1 has no wheels with a matching Python ABI tag (e.g., `cp313`) and you "
        "require torch==2.0.1, we can conclude that your requirements are unsatisfiable.\n"
    )
    assert _root(res) == "wheel-tag-mismatch"


def test_uvs_open_build_line_is_a_build_still_running() -> None:
    text = "Resolved 12 packages in 1.2s\n   Building mamba-ssm==2.2.4\n"
    assert _root(text) == "build-too-slow"
    assert _root(text + "      Built mamba-ssm==2.2.4\nInstalled 1 package in 3ms\n") == "unknown"
    assert _root(text + "It has been two hours, is this normal?\n") == "build-too-slow"


# --- xformers' own check of the torch it was built for


def test_xformers_built_for_another_torch() -> None:
    warn = (
        "WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:\n"
        "    PyTorch 2.3.0+cu121 with CUDA 1201 (you have 2.4.1+cu121)\n"
        "    Python  3.10.14 (you have 3.10.14)\n"
    )
    assert _root(warn) == "abi-undefined-symbol"
    # the same torch: the warning has another reason
    assert _root(warn.replace("2.4.1+cu121", "2.3.0+cu121")) == "unknown"
    # a CPU torch is its own class
    assert _root(warn.replace("2.4.1+cu121", "2.4.1+cpu")) != "abi-undefined-symbol"


# --- reading: the Markdown/HTML that wraps a log pasted into an issue is not the log's last line


def test_a_code_fence_after_the_log_does_not_hide_an_open_build_line() -> None:
    # pip's verbose form ('...: started'), recognised only as the log's last line
    text = "```\nBuilding wheels for collected packages: causal-conv1d\n  Building wheel for causal-conv1d (setup.py): started\n"
    assert _root(text) == "build-too-slow"
    assert _root(text + "```\n") == "build-too-slow"
    assert _root(text + "```\n</details>\n") == "build-too-slow"
    assert (
        _root(text + "  Building wheel for causal-conv1d (setup.py): finished with status 'done'\n```\n") == "unknown"
    )


# --- the compiled modules of the neighbouring packages, and their git submodules


@pytest.mark.parametrize("module", ["flash_attn_2_cuda", "amp_C", "fused_layer_norm_cuda"])
def test_a_packages_own_compiled_module_is_not_a_dependency_to_pip_install(module: str) -> None:
    assert _root(f"ModuleNotFoundError: No module named '{module}'\n") == "extension-not-built"


def test_cutlass_headers_missing_is_a_checkout_without_submodules() -> None:
    line = "csrc/flash_attn/src/kernel_traits.h:8:10: fatal error: cute/algorithm/copy.hpp: No such file or directory\n"
    assert _root(line) == "sdist-missing-sources"
    # DeepSpeed's evoformer op asks for a CUTLASS checkout of the user's own
    assert _root(
        " [WARNING]  Please specify the CUTLASS repo directory as environment variable $CUTLASS_PATH\n" + line
    ) == ("headers-missing")


def test_an_msvc_compile_error_is_the_platform_only_for_packages_without_a_windows_build() -> None:
    err = "{pkg}\\csrc\\kernel.cu(41): error C2872: 'std': ambiguous symbol\n"
    assert _root("Building wheel for flash-attn (setup.py) ... error\n" + err.format(pkg="flash_attn")) != (
        "platform-unsupported"
    )
    assert _root("Building wheel for mamba-ssm (setup.py) ... error\n" + err.format(pkg="mamba_ssm")) == (
        "platform-unsupported"
    )
