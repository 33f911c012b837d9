"""The classes blind batch 14's misses in 518-547 revealed (stream i16gz), with other paths, packages and
versions than the logs that revealed them: each class answered with its id, and a near miss that must not be
(so a pattern written too broadly fails here); the snippets are not the blind logs."""

from __future__ import annotations

from mamba_build.diagnose import explain as ex


def _found(text: str) -> tuple[str, str]:
    """(root id, confidence) of a log, ("unknown", "") when explain names nothing."""
    expl = ex.explain_text(text)
    return (expl.root.id, expl.root.confidence) if expl.root else ("unknown", "")


def _root(text: str) -> str:
    return _found(text)[0]


_FA_TRACE = (
    "ninja: build stopped: subcommand failed.\n"
    "      Traceback (most recent call last):\n"
    '        File "/tmp/pip-install-abcd1234/flash-attn_0123456789abcdef0123456789abcdef/setup.py", line 301, in run\n'
    "          urllib.request.urlretrieve(wheel_url, wheel_filename)\n"
    '        File "/opt/conda/envs/lm/lib/python3.11/urllib/request.py", line 241, in urlretrieve\n'
    "          with contextlib.closing(urlopen(url, data)) as fp:\n"
)


def test_flash_attns_prebuilt_wheel_download_in_its_traceback():
    # the exception shown: a strong finding; cut before it: a weak one
    assert _found(_FA_TRACE + "urllib.error.HTTPError: HTTP Error 404: Not Found\n") == (
        "prebuilt-download-failed",
        "high",
    )
    assert _found(_FA_TRACE) == ("prebuilt-download-failed", "low")
    # an HTTPError of another program (no wheel download of a setup.py) is not this class
    assert _root("Traceback (most recent call last):\nurllib.error.HTTPError: HTTP Error 404: Not Found\n") != (
        "prebuilt-download-failed"
    )
    # the same download on Windows: flash-attn has no Windows wheels, the 404 is not the answer there
    win = _FA_TRACE.replace(
        "/tmp/pip-install-abcd1234/flash-attn_0123456789abcdef0123456789abcdef/setup.py",
        "C:\\Users\\bob\\AppData\\Local\\Temp\\pip-install-x1\\flash-attn_0123456789abcdef0123456789abcdef\\setup.py",
    )
    assert _root(win + "urllib.error.HTTPError: HTTP Error 404: Not Found\n") != "prebuilt-download-failed"


def test_flash_attns_cuda_11_6_refusal_with_an_old_nvcc_shown_is_the_major_mismatch():
    msg = "RuntimeError: FlashAttention is only supported on CUDA 11.6 and above.  Note: make sure nvcc has a supported version by running nvcc -V.\n"
    old_nvcc = "Cuda compilation tools, release 9.2, V9.2.148\n"
    assert _root(msg + "torch.__version__  = 2.1.2+cu118\n" + old_nvcc) == "cuda-major-mismatch"
    # without an nvcc version the message stays the missing toolkit (public:053's maintainer)
    assert _root(msg + "torch.__version__  = 2.1.2+cu118\n") == "cuda-home-missing"
    # an nvcc 11.x below 11.6 under a CUDA 11 torch is no major mismatch, and an nvcc is there: neither class
    assert _root(msg + "torch.__version__  = 1.13.1+cu117\nCuda compilation tools, release 11.4, V11.4.48\n") not in (
        "cuda-major-mismatch",
        "cuda-home-missing",
    )


def test_pips_open_build_line_pasted_without_its_spinner():
    log = (
        "Building wheels for collected packages: xformers\n"
        "  Building wheel for xformers (pyproject.toml)`\n"
        "it has been sitting there for two hours\n"
    )
    assert _found(log) == ("build-too-slow", "low")
    # the same line followed by its end is not a build still running
    done = log + "  Building wheel for xformers (pyproject.toml) ... done\n  Created wheel for xformers\n"
    assert _root(done) != "build-too-slow"


def test_vllm_built_from_its_sdist_on_windows_is_the_platform_weakly():
    log = (
        "(env) C:\\Users\\kim>pip install vllm\n"
        "  Using cached vllm-0.2.7.tar.gz (170 kB)\n"
        "  Getting requirements to build wheel ... error\n"
        "      No CUDA runtime is found, using CUDA_HOME='C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v12.1'\n"
    )
    assert _found(log) == ("platform-unsupported", "low")
    # the same failure on Linux is not the platform
    linux = log.replace("(env) C:\\Users\\kim>", "$ ").replace(
        "C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v12.1", "/usr/local/cuda"
    )
    assert _root(linux) != "platform-unsupported"


def test_torchs_mismatch_raised_by_another_torch_than_the_installed_one_under_pip_install_dot():
    log = (
        ">>> torch.__version__\n'2.2.1+cu118'\n"
        "Cuda compilation tools, release 11.8, V11.8.89\n"
        "$ pip install -e .\n"
        "RuntimeError:\n"
        "      The detected CUDA version (11.8) mismatches the version that was used to compile\n"
        "      PyTorch (12.1). Please make sure to use the same CUDA versions.\n"
    )
    assert _root(log) == "build-isolation-no-torch"
    # built without isolation, the torch that raised is the installed one's environment: the mismatch itself
    assert _root(log.replace("pip install -e .", "pip install --no-build-isolation -e .")) == "cuda-major-mismatch"


def test_vllms_unknown_runtime_environment_is_the_isolated_builds_torch_weakly():
    log = '  File "<string>", line 480, in get_vllm_version\nRuntimeError: Unknown runtime environment\n'
    assert _found(log) == ("build-isolation-no-torch", "low")
    # without isolation the torch that ran it is the user's own: not this class
    assert _root("pip install --no-build-isolation -e .\n" + log) != "build-isolation-no-torch"


def test_the_isolated_envs_torch_under_debians_install_scheme():
    warn = (
        "/tmp/pip-build-env-q1w2e3r4/overlay/local/lib/python3.10/dist-packages/torch/_subclasses/functional_tensor.py:258: "
        "UserWarning: Failed to initialize NumPy: No module named 'numpy'\n"
        "  Getting requirements to build editable ... error\n"
    )
    assert _root(warn) == "build-isolation-no-torch"
    # an include path of that torch in a compile command is only a build that used it
    inc = (
        "/usr/local/cuda/bin/nvcc -I/tmp/pip-build-env-q1w2e3r4/overlay/local/lib/python3.10/dist-packages/torch/include "
        "-c csrc/x.cu -o build/x.o\nKilled\n"
    )
    assert _root(inc) != "build-isolation-no-torch"


def test_deepspeeds_cuda_home_assert_with_its_message_cut():
    log = (
        "Traceback (most recent call last):\n"
        '  File "D:\\src\\DeepSpeed-0.8.0\\op_builder\\builder.py", line 44, in installed_cuda_version\n'
        "    assert cuda_home\n"
    )
    assert _root(log) == "cuda-home-missing"
    # another function's assert on a cuda_home variable is not DeepSpeed's
    assert _root('  File "setup.py", line 12, in get_paths\n    assert cuda_home\n') != "cuda-home-missing"


def test_mambas_none_causal_conv1d_after_it_was_uninstalled_is_the_missing_dependency():
    err = "AttributeError: 'NoneType' object has no attribute 'causal_conv1d_update'\n"
    gone = "Successfully uninstalled causal_conv1d-1.2.0.post2\n" + err
    assert _root(gone) == "dependency-missing"
    # uninstalled and installed again (an upgrade): the package is there, its module is not
    upgraded = gone.replace(err, "Successfully installed causal_conv1d-1.5.0.post8\n" + err)
    assert _root(upgraded) == "extension-not-built"
    assert _root(err) == "extension-not-built"
