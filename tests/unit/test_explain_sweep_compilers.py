"""Source sweep of the compilers and the build (nvcc, gcc/MSVC, ninja, the machine): every message format added to
the catalog, written here from the tool's own format string (own paths, versions and packages, no corpus log), is
answered with its id, and a near miss (the same words in prose, the message of another cause, a warning form) is not."""

from __future__ import annotations

import pytest

from tests.unit.test_explain_blind_classes import _answered_not_near, _case_ids, _root

# (id, a snippet in the tool's format, a near miss that must not be answered with that id)
CASES = [
    # ---- cuda-home-missing ----
    (
        "cuda-home-missing",
        "+ which nvcc\n/usr/bin/which: no nvcc in (/opt/conda/bin:/usr/local/bin:/usr/bin:/bin)\n",
        "/usr/bin/which: no ninja in (/opt/conda/bin:/usr/bin)\n",
    ),
    # ---- cuda-home-wrong ----
    (
        "cuda-home-wrong",
        '  File "C:\\Users\\ana\\venv\\Lib\\site-packages\\torch\\utils\\cpp_extension.py", line 633, in _check_cuda_version\n'
        "FileNotFoundError: nvcc not found at 'C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v12.6\\bin\\nvcc.exe'. "
        "Ensure CUDA path 'C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v12.6' is correct.\n",
        "Please ensure CUDA path 'C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v12.6' is correct before you build.\n",
    ),
    # ---- gcc-unsupported ----
    (
        "gcc-unsupported",
        "/opt/cuda-12.2/include/crt/host_config.h:81:2: error: #error --- !!! UNSUPPORTED COMPILER !!! ---\n",
        "warning: this compiler is UNSUPPORTED by our team, use at your own risk\n",
    ),
    (
        "gcc-unsupported",
        "/opt/nvidia/cuda/include/crt/host_config.h:88:2: error: #error -- unsupported pgc++ configuration! "
        "pgc++ is supported only on Linux x86_64!\n",
        "pgc++ configuration loaded from /opt/nvidia/hpc_sdk/localrc\n",
    ),
    (
        "gcc-unsupported",
        "/usr/local/cuda-13.0/include/crt/host_config.h:103:2: error: #error -- ICC is not supported as a host compiler!\n",
        "icc: remark #10441: The Intel(R) C++ Compiler Classic (ICC) is deprecated\n",
    ),
    (
        "gcc-unsupported",
        "C:\\src\\ext>nvcc -c kernel.cu -ccbin C:\\mingw64\\bin\\g++.exe\nnvcc fatal   : Host compiler targets unsupported OS.\n",
        "nvcc fatal   : Unknown option '-fopenmp'\n",
    ),
    (
        "gcc-unsupported",
        "nvcc fatal   : The version ('100000') of the host compiler ('Apple clang') is not supported\n",
        "ERROR: The version ('535.54') of the NVIDIA driver is not supported by this container\n",
    ),
    (
        "gcc-unsupported",
        "nvcc fatal   : Unsupported host compiler 'icpx'\n",
        "nvcc fatal   : Unsupported gpu architecture 'compute_52'\n",
    ),
    (
        "gcc-unsupported",
        "nvcc fatal   : Unsupported NVHPC compiler found. nvc++ is the only NVHPC compiler that is supported.\n",
        "note: nvc++ is the only NVHPC compiler we test in CI\n",
    ),
    # ---- cxx-standard ----
    (
        "cxx-standard",
        "/usr/local/cuda-13.0/include/cccl/cub/util_cpp_dialect.cuh(88): error: #error directive: CUB requires at least "
        "C++17. Define CCCL_IGNORE_DEPRECATED_CPP_DIALECT to suppress this message.\n",
        "/usr/local/cuda-12.8/include/cub/util_cpp_dialect.cuh:129:13: warning: CUB requires at least C++17. "
        "Define CCCL_IGNORE_DEPRECATED_CPP_DIALECT to suppress this message.\n",
    ),
    (
        "cxx-standard",
        "/usr/local/cuda-11.8/include/thrust/detail/cpp14_required.h:31:6: error: #error C++14 is required for this Thrust "
        "feature; please upgrade your compiler or pass the appropriate -std=c++14 flag to it.\n",
        "README: C++14 is required for this project.\n",
    ),
    # ---- toolkit-headers-mixed ----
    (
        "toolkit-headers-mixed",
        "/opt/cccl/libcudacxx/include/cuda/std/__cccl/cuda_toolkit.h(39): error: #error directive: "
        '"CUDA compiler and CUDA toolkit headers are incompatible, please check your include paths"\n',
        "warning: the CUDA compiler found is older than the toolkit you asked for\n",
    ),
    (
        "toolkit-headers-mixed",
        "/home/ana/venv/lib/python3.10/site-packages/nvidia/cu13/include/cccl/cuda/std/__cccl/compiler.h:172:4: error: "
        '#error "CUDA versions below 12 are not supported." "Define CCCL_IGNORE_DEPRECATED_CUDA_BELOW_12 to suppress this message."\n',
        "RuntimeError: CUDA versions below 12 are not supported.\n",
    ),
    (
        "toolkit-headers-mixed",
        "/usr/local/cuda-12.1/include/cuda_pipeline.h(40): error: #error directive: cuda_pipeline.h has assumed a different "
        "libcu++ ABI version than provided by this library. To fix this, please include a libcu++ header before including "
        "cuda_pipeline.h, or upgrade to a version of the toolkit this version of libcu++ shipped in.\n",
        '/usr/local/cuda-12.1/include/cuda_pipeline.h(40): error: identifier "__pipeline_memcpy_async" is undefined\n',
    ),
    (
        "toolkit-headers-mixed",
        "/opt/proj/third_party/nvtx/include/nvtx3/nvToolsExt.h:191:2: error: #error \"Trying to #include NVTX version 3 in a "
        'source file where an older NVTX version has already been included.  If you are not directly using NVTX"\n',
        "-- Found NVTX version 3 in /usr/local/cuda/include\n",
    ),
    # ---- arch-unsupported ----
    (
        "arch-unsupported",
        "nvcc fatal   : Value 'sm_37' is not defined for option 'gpu-code'\n",
        "nvcc fatal   : Value 'c++23' is not defined for option 'std'\n",
    ),
    # ---- headers-missing ----
    (
        "headers-missing",
        'ops/kernel.cu(3): catastrophic error: could not open source file "cusparseLt.h" (no directories in search list)\n',
        'Missing file index entry for source file "ops/kernel.cu"\n',
    ),
    (
        "headers-missing",
        "building 'pkg._ext' extension\nsrc/module.c:2:20: error: Python.h: No such file or directory\n",
        "src/module.c:2:20: error: data/table.bin: No such file or directory\n",
    ),
    # ---- oom-killed ----
    (
        "oom-killed",
        "g++: internal compiler error: Killed (program cc1plus)\nPlease submit a full bug report,\n",
        "g++: internal compiler error: Segmentation fault (program cc1plus)\nPlease submit a full bug report,\n",
    ),
    (
        "oom-killed",
        "collect2: fatal error: ld terminated with signal 9 [Killed]\ncompilation terminated.\n",
        "collect2: fatal error: ld terminated with signal 11 [Segmentation fault]\ncompilation terminated.\n",
    ),
    (
        "oom-killed",
        "make[2]: *** [CMakeFiles/fused.dir/build.make:104: CMakeFiles/fused.dir/src/fused.cu.o] Killed\n"
        "make[1]: *** [CMakeFiles/Makefile2:95: CMakeFiles/fused.dir/all] Error 2\n",
        "make[2]: *** [CMakeFiles/fused.dir/build.make:104: CMakeFiles/fused.dir/src/fused.cu.o] Error 1\n",
    ),
    (
        "oom-killed",
        "/var/spool/slurm/d/job88/slurm_script: line 9: 41234 Killed                  python setup.py bdist_wheel\n",
        "/var/spool/slurm/d/job88/slurm_script: line 9: 41234 Segmentation fault      python setup.py bdist_wheel\n",
    ),
    (
        "oom-killed",
        "[ 8812.301245] Out of memory: Killed process 90211 (cicc) total-vm:14203312kB, anon-rss:13877120kB\n",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n",
    ),
    (
        "oom-killed",
        "slurmstepd: error: Detected 2 oom-kill event(s) in StepId=4412.batch. Some of your processes may have been killed "
        "by the cgroup out-of-memory handler.\n",
        "slurmstepd: error: *** JOB 4412 ON gpu07 CANCELLED AT 2025-01-01T10:00:00 DUE TO TIME LIMIT ***\n",
    ),
    (
        "oom-killed",
        "ERROR: failed to solve: process \"/bin/sh -c pip install --no-build-isolation causal-conv1d\" did not complete "
        "successfully: exit code: 137\n",
        "ERROR: failed to solve: process \"/bin/sh -c pip install --no-build-isolation causal-conv1d\" did not complete "
        "successfully: exit code: 1\n",
    ),
    (
        "oom-killed",
        "LLVM ERROR: out of memory\nAllocation failed\n",
        "LLVM ERROR: Cannot select: intrinsic %llvm.nvvm.foo\n",
    ),
    (
        "oom-killed",
        "ptxas fatal   : Memory allocation failure\n",
        "ptxas fatal   : Unresolved extern function '_Z3foov'\n",
    ),
    # ---- disk-full ----
    (
        "disk-full",
        "failed to copy files: copy file range failed: write /var/lib/docker/tmp/buildkit-mount/whl: no space left on device\n",
        "Is there no space left on device? I am not sure.\n",
    ),
    (
        "disk-full",
        "error: failed to register layer: write /scratch/ana/containers/x.so: disk quota exceeded\n",
        "Error: quota exceeded for quota metric 'Requests' of service 'storage'\n",
    ),
    (
        "disk-full",
        "OSError: [WinError 39] The disk is full\n",
        "OSError: [WinError 3] The system cannot find the path specified\n",
    ),
    # ---- build-too-slow ----
    (
        "build-too-slow",
        "Installing collected packages: causal-conv1d\n    Running setup.py install for causal-conv1d ... \\\n",
        "Installing collected packages: causal-conv1d\n    Running setup.py install for causal-conv1d ... done\n"
        "Successfully installed causal-conv1d-1.4.0\n",
    ),
    (
        "build-too-slow",
        "Building wheels for collected packages: flash-attn\n  Building wheel for flash-attn (PEP 517) ... /\n",
        "  Building wheel for flash-attn (PEP 517) ... done\n  Created wheel for flash-attn: filename=x.whl\n",
    ),
    # ---- sdist-missing-sources ----
    (
        "sdist-missing-sources",
        "make[2]: *** No rule to make target 'csrc/conv1d/conv1d_fwd.cu', needed by "
        "'CMakeFiles/conv.dir/csrc/conv1d/conv1d_fwd.cu.o'.  Stop.\n",
        "make: *** No rule to make target 'install'.  Stop.\n",
    ),
    (
        "sdist-missing-sources",
        "CMake Error at CMakeLists.txt:40 (add_library):\n  Cannot find source file:\n\n    kernels/scan.cu\n",
        "-- Cannot find source file list for docs, skipping\n",
    ),
    (
        "sdist-missing-sources",
        "nvcc fatal   : Could not open input file '/tmp/pip-req-build-x1/kernels/scan.cu'\n",
        "nvcc fatal   : Could not open output file '/tmp/pip-req-build-x1/build/scan.o'\n",
    ),
]


@pytest.mark.parametrize(("fid", "snippet", "near"), CASES, ids=_case_ids(CASES))
def test_sweep_format_is_answered_and_near_miss_is_not(fid: str, snippet: str, near: str) -> None:
    _answered_not_near(fid, snippet, near)


def test_a_sigkill_of_the_build_backend_alone_is_no_oom_finding() -> None:
    # pip's and uv's report of a SIGKILLed backend is support only: alone it names no cause
    pip = "  × Building wheel for flash-attn (setup.py) did not run successfully.\n  │ exit code: -9\n  ╰─> [0 lines of output]\n"
    uv = "  ╰─▶ Call to `setuptools.build_meta.build_wheel` failed (signal: 9 (SIGKILL))\n"
    assert _root(pip) != "oom-killed"
    assert _root(uv) != "oom-killed"
    # beside a kill line they are evidence of that finding
    assert _root(pip + "g++: internal compiler error: Killed (program cc1plus)\n") == "oom-killed"
