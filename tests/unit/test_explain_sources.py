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


# --- a compiled module built against another torch, in the words of the packages that check it themselves


@pytest.mark.parametrize(
    "text",
    [
        "RuntimeError: PyTorch version mismatch! DeepSpeed ops were compiled and installed with a different version "
        "than what is being used at runtime. Please re-install DeepSpeed or switch torch versions. Install torch "
        "version=2.2, Runtime torch version=2.4\n",
        # the same check for the CUDA build of torch, wrapped by a terminal at 80 columns
        "RuntimeError: CUDA version mismatch! DeepSpeed ops were compiled and installed with a different version than\n"
        "what is being used at runtime. Please re-install DeepSpeed or switch torch versions.\n",
        "RuntimeError: Detected that PyTorch and torch_cluster were compiled with different CUDA versions. PyTorch has "
        "CUDA version 12.4 and torch_cluster has CUDA version 11.7. Please reinstall the torch_cluster that matches "
        "your PyTorch install.\n",
        "WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for a different version of "
        "PyTorch or Python.\n  Please reinstall xformers (see https://github.com/facebookresearch/xformers#installing-xformers)\n",
    ],
)
def test_a_module_built_against_another_torch_in_the_packages_own_words(text: str) -> None:
    assert _root(text) == "abi-undefined-symbol"


# --- a package installed without its own compiled module


@pytest.mark.parametrize(
    "text",
    [
        "WARNING[XFORMERS]: Need to compile C++ extensions to use all xFormers features.\n"
        "    Please install xformers properly (see https://github.com/facebookresearch/xformers#installing-xformers)\n",
        "RuntimeError: No compatible CUDA binary found at /srv/env/lib/python3.11/site-packages/bitsandbytes/"
        "libbitsandbytes_cuda129.so\n",
        "\U0001f6a8 Forgot to compile the bitsandbytes library? \U0001f6a8\n1. You're not using the package but checked-out the source code\n",
        "This means:\nThe version you're trying to use is NOT distributed with this package\n",
        "WARNING - Exllama kernel is not installed, reset disable_exllama to True. This may because you installed "
        "auto_gptq using a pre-build wheel on Windows\n",
        "UserWarning: Skipping fusing modules because AWQ extension is not installed.DLL load failed while importing awq_ext\n",
        "ImportError: Could not find module '_grid_cpu' in /opt/py/lib/python3.10/site-packages/torch_cluster\n",
    ],
)
def test_a_package_without_its_own_compiled_module(text: str) -> None:
    assert _root(text) == "extension-not-built"


def test_near_misses_of_the_compiled_module_classes() -> None:
    # Windows' ctypes wording names a DLL path and its dependencies: not the PyG packages' own check
    assert _root("FileNotFoundError: Could not find module 'C:\\Python311\\Lib\\site-packages\\foo\\bar.dll' "
                 "(or one of its dependencies). Try using the full path with constructor syntax.\n") \
        != "extension-not-built"
    # xformers without its module on a Mac: there is no CUDA build to make, the platform is the cause
    assert _root("/Users/ana/venv/lib/python3.12/site-packages/xformers/_cpp_lib.py\n"
                 "WARNING[XFORMERS]: Need to compile C++ extensions to use all xFormers features.\n") \
        == "platform-unsupported"


# --- an extension installed without its CUDA half: the setup.py saw no GPU or no toolkit


@pytest.mark.parametrize(
    "text",
    [
        '  File "/home/a/proj/render.py", line 40, in forward\n    d = knn_points(p1, p2)\n'
        "RuntimeError: Not compiled with GPU support.\n",
        "RuntimeError: Detectron2 is not compiled with GPU support!\n",
        "/opt/py/lib/python3.8/site-packages/MinkowskiEngine/__init__.py:271: UserWarning: The MinkowskiEngine was "
        "compiled with CPU_ONLY flag. If you want to compile with CUDA support, make sure `torch.cuda.is_available()` "
        "is True when you install MinkowskiEngine.\n",
        # said at install time (weak)
        "  setup.py:130: UserWarning: torch.cuda.is_available() is False. MinkowskiEngine will compile with CPU_ONLY. "
        "Please use `--force_cuda` to compile with CUDA.\n",
        "WARNING - No GPUs found. Installing with CPU support only. Set FORCE_CUDA=1 for GPU cross-compilation.\n",
    ],
)
def test_an_extension_built_without_cuda_says_so(text: str) -> None:
    assert _root(text) == "extension-missing-from-wheel"


def test_torchs_own_cpu_build_is_not_an_extension_built_without_cuda() -> None:
    assert _root("AssertionError: Torch not compiled with CUDA enabled\n") == "torch-cpu-only"


@pytest.mark.parametrize(
    "text",
    [
        "\U0001f6a8 CUDA SETUP ERROR: Missing dependency: libcublasLt.so.12 \U0001f6a8\n\n"
        "CUDA 12.x runtime libraries were not found in the LD_LIBRARY_PATH.\n",
        "CUDA SETUP: Problem: The main issue seems to be that the main CUDA runtime library was not detected.\n"
        "CUDA SETUP: Solution 1: To solve the issue the libcudart.so location needs to be added to the LD_LIBRARY_PATH variable\n",
    ],
)
def test_bitsandbytes_reports_a_missing_cuda_runtime(text: str) -> None:
    assert _root(text) == "cuda-runtime-missing"


def test_tiny_cuda_nn_built_for_other_gpus_only() -> None:
    text = "OSError: Could not find compatible tinycudann extension for compute capability 61.\n"
    assert _root(text) == "no-kernel-image"


def test_a_setup_py_without_torch_in_pips_isolated_build() -> None:
    autogptq = ("  Getting requirements to build wheel ... error\n  error: subprocess-exited-with-error\n"
                "      Building PyTorch CUDA extension requires PyTorch being installed, please install PyTorch first: "
                "No module named 'torch'.\n")
    assert _root(autogptq) == "build-isolation-no-torch"
    minkowski = ("  Preparing metadata (pyproject.toml) ... error\n"
                 '      File "/tmp/pip-install-k2/minkowskiengine_5/setup.py", line 54, in <module>\n'
                 "    ImportError: Pytorch not found. Please install pytorch first.\n")
    assert _root(minkowski) == "build-isolation-no-torch"
    # the same sentence with build isolation switched off is not that class
    assert _root("$ pip install --no-build-isolation MinkowskiEngine\n"
                 "    ImportError: Pytorch not found. Please install pytorch first.\n") != "build-isolation-no-torch"


def test_minkowski_engine_on_windows_is_the_platform() -> None:
    text = ('  File "C:\\Users\\me\\AppData\\Local\\Temp\\pip-install-q\\minkowskiengine_1\\setup.py", line 68\n'
            "    ImportError: Windows is currently not supported.\n")
    assert _root(text) == "platform-unsupported"
    # the sentence alone, from some other package, is not claimed
    assert _root("ImportError: Windows is currently not supported.\n") == "unknown"
