"""Source sweep of the loader and the runtime (import and first-call failures): the message formats that ld.so,
dyld, Windows' loader through ctypes, torch's own library loading and CUDA checks, the CUDA runtime/driver error
names and triton's libcuda lookup print, as their sources and binaries write them (snippets built from the
formats with other paths, versions and packages). Each class is answered with its id, and a near miss (the same
words for another cause, or a neighbouring message) is not."""

from __future__ import annotations

import pytest

from tests.unit.test_explain_blind_classes import _answered_not_near, _case_ids, _found, _root

_SO = "/srv/env/lib/python3.12/site-packages/kern/_ops.cpython-312-x86_64-linux-gnu.so"

# (id, a snippet in the format, the near misses that must not be answered with that id: none on a row that is one
# more format of the case above it)
CASES = [
    # ---- ld.so: symbol versions ----
    (
        "glibc-too-old",
        f"ImportError: /lib64/libc.so.6: version `GLIBC_ABI_DT_RELR' not found (required by {_SO})\n",
        # readelf listing the version a binary needs is no failure
        ("  0x0020:   Name: GLIBC_ABI_DT_RELR  Flags: none  Version: 4\n",),
    ),
    (
        "glibcxx-missing",
        f"OSError: /usr/lib64/libgcc_s.so.1: version `GCC_13.0.0' not found (required by {_SO})\n",
        # `ldd -v` lists the versions found: no failure
        ("\t\tlibgcc_s.so.1 (GCC_3.0) => /lib/x86_64-linux-gnu/libgcc_s.so.1\n",),
    ),
    # ---- macOS dyld ----
    (
        "abi-undefined-symbol",
        "ImportError: dlopen(/Users/dev/env/lib/python3.12/site-packages/kern/_ops.cpython-312-darwin.so, 0x0002): "
        "symbol not found in flat namespace '__ZN3c106detail14torchCheckFailEPKcS2_jS2_'\n",
        # a libc++ (std::) symbol is the C++ runtime's, not torch's
        (
            "ImportError: dlopen(/Users/dev/x.so, 0x0002): symbol not found in flat namespace "
            "'__ZNSt3__122__libcpp_verbose_abortEPKcz'\n",
        ),
    ),
    (
        "abi-undefined-symbol",
        "ImportError: dlopen(/Users/dev/env/lib/python3.9/site-packages/kern/_ops.cpython-39-darwin.so, 2): "
        "Symbol not found: __ZN2at6TensorC1Ev\n"
        "  Referenced from: /Users/dev/env/lib/python3.9/site-packages/kern/_ops.cpython-39-darwin.so\n"
        "  Expected in: flat namespace\n",
        (),
    ),
    (
        "torch-libs-not-loaded",
        "ImportError: dlopen(/Users/dev/env/lib/python3.12/site-packages/kern/_ops.cpython-312-darwin.so, 0x0002): "
        "Library not loaded: @rpath/libtorch_python.dylib\n"
        "  Referenced from: <1A2B3C4D-0000-3333-AAAA-123456789ABC> /Users/dev/env/lib/python3.12/site-packages/kern/_ops.cpython-312-darwin.so\n"
        "  Reason: tried: '/usr/local/lib/libtorch_python.dylib' (no such file)\n",
        # another library (OpenMP) not loaded: not one of torch's
        ("ImportError: dlopen(/Users/dev/x.so, 0x0002): Library not loaded: @rpath/libomp.dylib\n  Reason: image not found\n",),
    ),
    # ---- CUDA libraries ----
    (
        "cuda-runtime-missing",
        "ImportError: libcupti.so.13: cannot open shared object file: No such file or directory\n",
        # (cuDNN, versioned apart from the toolkit, was this sweep's near miss; batch 23's threads resolved its missing
        # libraries like the toolkit's, so it is this class too: tests/unit/test_explain_blind_classes.py, batch 23)
        (),
    ),
    (
        "cuda-runtime-missing",
        "ImportError: libnvrtc-builtins.so.13.0: cannot open shared object file: No such file or directory\n",
        (),
    ),
    (
        "cuda-runtime-missing",
        "ImportError: libnvToolsExt.so.1: cannot open shared object file: No such file or directory\n",
        (),
    ),
    (
        "cuda-runtime-missing",
        "ImportError: libnppig.so.12: cannot open shared object file: No such file or directory\n",
        (),
    ),
    (
        "cuda-runtime-missing",
        "ImportError: libcufile.so.0: cannot open shared object file: No such file or directory\n",
        (),
    ),
    (
        "cuda-runtime-missing",
        '  File "/srv/env/lib/python3.12/site-packages/torch/__init__.py", line 346, in _preload_cuda_lib\n'
        "ValueError: libnvJitLink.so.*[0-9] not found in the system path ['/srv/app', '/srv/env/lib/python3.12/site-packages']\n",
        (),
    ),
    (
        "cuda-runtime-missing",
        "ImportError: /srv/env/lib/python3.12/site-packages/nvidia/cusparse/lib/libcusparse.so.12: "
        "undefined symbol: __nvJitLinkCreate_12_8, version libnvJitLink.so.12\n",
        (),
    ),
    (
        "cuda-runtime-missing",
        "OSError: /opt/lib/libtorch_cuda.so: symbol cublasLtMatmulPreferenceInit version libcublasLt.so.11 "
        "not defined in file libcublasLt.so.11 with link time reference\n",
        (),
    ),
    # an unversioned torch symbol stays another torch's ABI (the near miss of the two versioned symbols above)
    (
        "abi-undefined-symbol",
        f"ImportError: {_SO}: undefined symbol: _ZN3c104cuda9SetDeviceEa\n",
        (),
    ),
    # ---- CUDA runtime / driver error names ----
    (
        "driver-too-old",
        "RuntimeError: CUDA error: API call is not supported in the installed CUDA driver\n",
        # 'operation not supported' is another error (cudaErrorNotSupported)
        ("RuntimeError: CUDA error: operation not supported\n",),
    ),
    (
        "driver-too-old",
        "cupy_backends.cuda.api.runtime.CUDARuntimeError: cudaErrorCallRequiresNewerDriver\n",
        (),
    ),
    (
        "driver-too-old",
        "RuntimeError: CUDA error: cudaErrorUnsupportedPtxVersion\n",
        # an invalid PTX is not a toolchain newer than the driver
        ("RuntimeError: CUDA error: cudaErrorInvalidPtx\n",),
    ),
    (
        "no-kernel-image",
        "RuntimeError: Triton Error [CUDA]: CUDA_ERROR_NO_BINARY_FOR_GPU\n",
        # an invalid image is another error (driver-too-old's weak class)
        ("RuntimeError: Triton Error [CUDA]: CUDA_ERROR_OUT_OF_MEMORY\n",),
    ),
    # ---- triton ----
    (
        "triton-libcuda-missing",
        "/usr/bin/ld: cannot find -l:libcuda.so.1: No such file or directory\ncollect2: error: ld returned 1 exit status\n",
        # the CUDA runtime (not the driver library) missing at a link is not triton's lookup
        ("/usr/bin/ld: cannot find -l:libcudart.so.12: No such file or directory\ncollect2: error: ld returned 1 exit status\n",),
    ),
    (
        "triton-libcuda-missing",
        '  File "/srv/env/lib/python3.10/site-packages/triton/common/build.py", line 19, in libcuda_dirs\n'
        "FileNotFoundError: [Errno 2] No such file or directory: 'whereis'\n",
        # without triton (or a package that runs it) the missing program says nothing of libcuda
        ("FileNotFoundError: [Errno 2] No such file or directory: 'whereis'\n",),
    ),
    # ---- the skip switch ----
    (
        "extension-missing-from-wheel",
        '+ export MAMBA_SKIP_CUDA_BUILD="TRUE"\n'
        "  Created wheel for mamba-ssm: filename=mamba_ssm-2.2.2-cp311-cp311-linux_x86_64.whl size=321 sha256=00\n",
        # switched off explicitly: the CUDA build ran
        (
            '+ export MAMBA_SKIP_CUDA_BUILD="FALSE"\n'
            "  Created wheel for mamba-ssm: filename=mamba_ssm-2.2.2-cp311-cp311-linux_x86_64.whl size=321 sha256=00\n",
        ),
    ),
    (
        "extension-missing-from-wheel",
        "Step 4/8 : ENV MAMBA_SKIP_CUDA_BUILD TRUE\n"
        "  Created wheel for mamba-ssm: filename=mamba_ssm-2.2.2-cp311-cp311-linux_x86_64.whl size=321 sha256=00\n",
        (),
    ),
]


@pytest.mark.parametrize(("fid", "snippet", "nears"), CASES, ids=_case_ids(CASES))
def test_sweep_format_is_answered_and_near_miss_is_not(fid: str, snippet: str, nears: tuple[str, ...]) -> None:
    _answered_not_near(fid, snippet, *nears)


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


def test_triton_without_an_active_driver_weakly():
    log = "RuntimeError: 0 active drivers ([]). There should only be one.\n"
    assert _found(log) == ("triton-libcuda-missing", "low")
    two = "RuntimeError: 2 active drivers ([<class 'CudaDriver'>, <class 'HIPDriver'>]). There should only be one.\n"
    assert _root(two) != "triton-libcuda-missing"
