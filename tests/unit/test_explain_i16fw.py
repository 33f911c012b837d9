"""The classes blind batch 13's misses (stream i16w, logs 428-457) revealed, with other paths, packages and
versions than the logs: each class answered with its id, and a near miss that must not be."""

from __future__ import annotations

from mamba_build.diagnose import explain as ex


def _root(text: str) -> str:
    expl = ex.explain_text(text)
    return expl.root.id if expl.root else "unknown"


def test_torch_arch_refusal_with_its_start_cut():
    # torch's ValueError cut by a terminal: only its tail and the raise line of _get_cuda_arch_flags are left
    cut = (
        "user@box:~/src/xformers$ ages/torch/utils/cpp_extension.py\", line 1987, in _get_cuda_arch_flags\n"
        "user@box:~/src/xformers$ ch ({arch}) or GPU not supported\")\n"
        "user@box:~/src/xformers$ 9.0a) or GPU not supported\n"
    )
    assert _root(cut) == "arch-unsupported"
    # the same words without torch's arch function: not torch's refusal
    assert _root("Error: CUDA (driver 470) or GPU not supported by this build of the app\n") != "arch-unsupported"


def test_nvcc_failing_inside_the_host_gccs_own_intrinsic_headers():
    gcc = (
        "/usr/lib/gcc/aarch64-linux-gnu/7/include/arm_neon.h(212): error: identifier \"__builtin_aarch64_x\" is undefined\n"
        "/usr/lib/gcc/aarch64-linux-gnu/7/include/arm_neon.h(230): error: identifier \"__builtin_aarch64_y\" is undefined\n"
    )
    expl = ex.explain_text(gcc)
    assert expl.root is not None and expl.root.id == "gcc-unsupported"
    # the project's own source fails as well: its code, not the compiler's headers
    own = gcc + "csrc/ops/fused_kernel.cu(41): error: no instance of overloaded function \"atomicAdd\" matches\n"
    assert _root(own) != "gcc-unsupported"
    # gcc's own format (file:line:col) in those headers: gcc compiling with flags it lacks, no nvcc involved
    assert _root("/usr/lib/gcc/x86_64-linux-gnu/9/include/avx2intrin.h:52:1: error: inlining failed\n") != "gcc-unsupported"


def test_vllm_on_macos_builds_its_cpu_target_so_its_build_dir_is_no_platform_error():
    mac = (
        "      copying vllm/config.py -> build/lib.macosx-14.2-arm64-cpython-311/vllm\n"
        "      VLLM_TARGET_DEVICE automatically set to `cpu` due to macOS\n"
        "      CMake Error at CMakeLists.txt:20 (project):\n"
    )
    assert _root(mac) != "platform-unsupported"
    # a package without a macOS target still gets the platform class from its macOS build dir
    other = "      copying causal_conv1d/x.py -> build/lib.macosx-14.2-arm64-cpython-311/causal_conv1d\n"
    assert _root(other) == "platform-unsupported"


def test_windows_setup_py_cannot_start_nvcc_under_cuda_home():
    win = (
        "  File \"setup.py\", line 120, in <module>\n"
        "    _, bare_metal_version = get_cuda_bare_metal_version(CUDA_HOME)\n"
        "  File \"setup.py\", line 30, in get_cuda_bare_metal_version\n"
        "    raw_output = subprocess.check_output([cuda_dir + \"/bin/nvcc\", \"-V\"], universal_newlines=True)\n"
        "  File \"C:\\Python311\\Lib\\subprocess.py\", line 1538, in _execute_child\n"
        "FileNotFoundError: [WinError 2] The system cannot find the file specified\n"
    )
    expl = ex.explain_text(win)
    assert expl.root is not None and expl.root.id == "cuda-home-missing" and expl.root.confidence == "low"
    # WinError 2 for another program (MSVC's cl.exe): not the toolkit
    cl = "C:\\env\\lib\\site-packages\\torch\\utils\\cpp_extension.py:380: UserWarning: Error checking compiler version for cl: [WinError 2] The system cannot find the file specified\n"
    assert _root(cl) != "cuda-home-missing"
    assert _root("FileNotFoundError: [WinError 2] The system cannot find the file specified: 'model.ckpt'\n") != "cuda-home-missing"
