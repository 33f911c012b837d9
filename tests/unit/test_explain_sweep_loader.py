"""Source sweep of the loader and the runtime (import and first-call failures): the message formats that ld.so,
dyld, Windows' loader through ctypes, torch's own library loading and CUDA checks, the CUDA runtime/driver error
names and triton's libcuda lookup print, as their sources and binaries write them (snippets built from the
formats with other paths, versions and packages). Each class is answered with its id, and a near miss (the same
words for another cause, or a neighbouring message) is not."""

from __future__ import annotations

from tests.unit.test_explain_blind_classes import _found, _root

_SO = "/srv/env/lib/python3.12/site-packages/kern/_ops.cpython-312-x86_64-linux-gnu.so"

# ---- ld.so: symbol versions ----


def test_glibc_abi_dt_relr_version_missing_is_an_old_c_library():
    log = f"ImportError: /lib64/libc.so.6: version `GLIBC_ABI_DT_RELR' not found (required by {_SO})\n"
    assert _root(log) == "glibc-too-old"
    # readelf listing the version a binary needs is no failure
    assert _root("  0x0020:   Name: GLIBC_ABI_DT_RELR  Flags: none  Version: 4\n") != "glibc-too-old"


def test_libgcc_s_version_missing_is_an_old_gcc_runtime():
    log = f"OSError: /usr/lib64/libgcc_s.so.1: version `GCC_13.0.0' not found (required by {_SO})\n"
    assert _root(log) == "glibcxx-missing"
    # `ldd -v` lists the versions found: no failure
    ok = "\t\tlibgcc_s.so.1 (GCC_3.0) => /lib/x86_64-linux-gnu/libgcc_s.so.1\n"
    assert _root(ok) != "glibcxx-missing"


# ---- macOS dyld ----


def test_dyld_symbol_not_found_is_another_torchs_abi():
    new = (
        "ImportError: dlopen(/Users/dev/env/lib/python3.12/site-packages/kern/_ops.cpython-312-darwin.so, 0x0002): "
        "symbol not found in flat namespace '__ZN3c106detail14torchCheckFailEPKcS2_jS2_'\n"
    )
    assert _root(new) == "abi-undefined-symbol"
    old = (
        "ImportError: dlopen(/Users/dev/env/lib/python3.9/site-packages/kern/_ops.cpython-39-darwin.so, 2): "
        "Symbol not found: __ZN2at6TensorC1Ev\n"
        "  Referenced from: /Users/dev/env/lib/python3.9/site-packages/kern/_ops.cpython-39-darwin.so\n"
        "  Expected in: flat namespace\n"
    )
    assert _root(old) == "abi-undefined-symbol"
    # a libc++ (std::) symbol is the C++ runtime's, not torch's
    libcxx = "ImportError: dlopen(/Users/dev/x.so, 0x0002): symbol not found in flat namespace '__ZNSt3__122__libcpp_verbose_abortEPKcz'\n"
    assert _root(libcxx) != "abi-undefined-symbol"


def test_dyld_library_not_loaded_names_torchs_dylib():
    log = (
        "ImportError: dlopen(/Users/dev/env/lib/python3.12/site-packages/kern/_ops.cpython-312-darwin.so, 0x0002): "
        "Library not loaded: @rpath/libtorch_python.dylib\n"
        "  Referenced from: <1A2B3C4D-0000-3333-AAAA-123456789ABC> /Users/dev/env/lib/python3.12/site-packages/kern/_ops.cpython-312-darwin.so\n"
        "  Reason: tried: '/usr/local/lib/libtorch_python.dylib' (no such file)\n"
    )
    assert _root(log) == "torch-libs-not-loaded"
    # another library (OpenMP) not loaded: not one of torch's
    omp = "ImportError: dlopen(/Users/dev/x.so, 0x0002): Library not loaded: @rpath/libomp.dylib\n  Reason: image not found\n"
    assert _root(omp) != "torch-libs-not-loaded"


# ---- Windows through ctypes ----


def test_winerror_127_is_a_missing_entry_point_weakly():
    log = (
        '  File "C:\\Users\\dev\\env\\Lib\\site-packages\\torch\\_ops.py", line 1350, in load_library\n'
        "    ctypes.CDLL(path)\n"
        "OSError: [WinError 127] The specified procedure could not be found\n"
    )
    assert _found(log) == ("abi-undefined-symbol", "low")
    # ERROR_MOD_NOT_FOUND (126) is a missing DLL, not a missing entry point
    mod = log.replace("[WinError 127] The specified procedure", "[WinError 126] The specified module")
    assert _root(mod) != "abi-undefined-symbol"


# ---- CUDA libraries ----


def test_other_cuda_toolkit_libraries_not_found():
    for lib in ("libcupti.so.13", "libnvrtc-builtins.so.13.0", "libnvToolsExt.so.1", "libnppig.so.12", "libcufile.so.0"):
        assert _root(f"ImportError: {lib}: cannot open shared object file: No such file or directory\n") == (
            "cuda-runtime-missing"
        ), lib
    # cuDNN is versioned apart from the toolkit: not this class
    assert _root("ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory\n") != (
        "cuda-runtime-missing"
    )


def test_torch_preload_of_its_cuda_wheels_finds_none():
    log = (
        '  File "/srv/env/lib/python3.12/site-packages/torch/__init__.py", line 346, in _preload_cuda_lib\n'
        "ValueError: libnvJitLink.so.*[0-9] not found in the system path ['/srv/app', '/srv/env/lib/python3.12/site-packages']\n"
    )
    assert _root(log) == "cuda-runtime-missing"
    # the same ValueError for cuDNN's wheel: not the toolkit's runtime
    assert _root(log.replace("libnvJitLink", "libcudnn")) != "cuda-runtime-missing"


def test_older_cuda_library_without_the_versioned_symbol():
    new = (
        "ImportError: /srv/env/lib/python3.12/site-packages/nvidia/cusparse/lib/libcusparse.so.12: "
        "undefined symbol: __nvJitLinkCreate_12_8, version libnvJitLink.so.12\n"
    )
    assert _root(new) == "cuda-runtime-missing"
    old = (
        "OSError: /opt/lib/libtorch_cuda.so: symbol cublasLtMatmulPreferenceInit version libcublasLt.so.11 "
        "not defined in file libcublasLt.so.11 with link time reference\n"
    )
    assert _root(old) == "cuda-runtime-missing"
    # an unversioned torch symbol stays another torch's ABI
    assert _root(f"ImportError: {_SO}: undefined symbol: _ZN3c104cuda9SetDeviceEa\n") == "abi-undefined-symbol"


# ---- CUDA runtime / driver error names ----


def test_api_call_requiring_a_newer_driver():
    log = "RuntimeError: CUDA error: API call is not supported in the installed CUDA driver\n"
    assert _root(log) == "driver-too-old"
    assert _root("cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorCallRequiresNewerDriver\n") == "driver-too-old"
    # 'operation not supported' is another error (cudaErrorNotSupported)
    assert _root("RuntimeError: CUDA error: operation not supported\n") != "driver-too-old"


def test_unsupported_ptx_version_by_its_runtime_name():
    assert _root("RuntimeError: CUDA error: cudaErrorUnsupportedPtxVersion\n") == "driver-too-old"
    # an invalid PTX is not a toolchain newer than the driver
    assert _root("RuntimeError: CUDA error: cudaErrorInvalidPtx\n") != "driver-too-old"


def test_no_binary_for_gpu_by_its_driver_name():
    assert _root("RuntimeError: Triton Error [CUDA]: CUDA_ERROR_NO_BINARY_FOR_GPU\n") == "no-kernel-image"
    # an invalid image is another error (driver-too-old's weak class)
    assert _root("RuntimeError: Triton Error [CUDA]: CUDA_ERROR_OUT_OF_MEMORY\n") != "no-kernel-image"


# ---- torch's capability warnings (weak) ----

_OLD_GPU = (
    "/srv/env/lib/python3.8/site-packages/torch/cuda/__init__.py:132: UserWarning: \n"
    "    Found GPU0 Quadro K4000 which is of cuda capability 3.0.\n"
    "    PyTorch no longer supports this GPU because it is too old.\n"
    "    The minimum cuda capability supported by this library is 3.7.\n"
)
_NO_KERNELS = (
    "UserWarning: Found GPU1 NVIDIA B200 which is of compute capability (CC) 10.0.\n"
    "Your installed torch==2.7.1+cu118 does not include kernels for this GPU. "
    "Reinstall the same version against a CUDA build that does, e.g.:\n"
)
_NEWER_GPU = (
    "UserWarning: \n"
    "    Found GPU0 NVIDIA A100-SXM4-40GB which requires CUDA_VERSION >= 11000 to\n"
    "     work properly, but your PyTorch was compiled\n"
    "     with CUDA_VERSION 10020. Please install the correct PyTorch binary\n"
)


def test_torch_capability_warnings_are_weak_no_kernel_image():
    for log in (_OLD_GPU, _NO_KERNELS, _NEWER_GPU):
        assert _found(log) == ("no-kernel-image", "low"), log
        # beside a real failure the warning does not decide
        failed = log + "ImportError: libcudart.so.11.0: cannot open shared object file: No such file or directory\n"
        assert _root(failed) == "cuda-runtime-missing"


# ---- triton ----


def test_triton_links_libcuda_by_file_name():
    log = "/usr/bin/ld: cannot find -l:libcuda.so.1: No such file or directory\ncollect2: error: ld returned 1 exit status\n"
    assert _root(log) == "triton-libcuda-missing"
    # the CUDA runtime (not the driver library) missing at a link is not triton's lookup
    assert _root(log.replace("libcuda.so.1", "libcudart.so.12")) != "triton-libcuda-missing"


def test_triton_without_an_active_driver_weakly():
    log = "RuntimeError: 0 active drivers ([]). There should only be one.\n"
    assert _found(log) == ("triton-libcuda-missing", "low")
    two = "RuntimeError: 2 active drivers ([<class 'CudaDriver'>, <class 'HIPDriver'>]). There should only be one.\n"
    assert _root(two) != "triton-libcuda-missing"


def test_triton_2_0_whereis_lookup():
    log = (
        '  File "/srv/env/lib/python3.10/site-packages/triton/common/build.py", line 19, in libcuda_dirs\n'
        "FileNotFoundError: [Errno 2] No such file or directory: 'whereis'\n"
    )
    assert _root(log) == "triton-libcuda-missing"
    # without triton (or a package that runs it) the missing program says nothing of libcuda
    assert _root("FileNotFoundError: [Errno 2] No such file or directory: 'whereis'\n") != "triton-libcuda-missing"


# ---- the skip switch ----


def test_skip_switch_quoted_or_dockerfile_env():
    built = "  Created wheel for mamba-ssm: filename=mamba_ssm-2.2.2-cp311-cp311-linux_x86_64.whl size=321 sha256=00\n"
    assert _root('+ export MAMBA_SKIP_CUDA_BUILD="TRUE"\n' + built) == "extension-missing-from-wheel"
    assert _root("Step 4/8 : ENV MAMBA_SKIP_CUDA_BUILD TRUE\n" + built) == "extension-missing-from-wheel"
    # switched off explicitly: the CUDA build ran
    assert _root('+ export MAMBA_SKIP_CUDA_BUILD="FALSE"\n' + built) != "extension-missing-from-wheel"
