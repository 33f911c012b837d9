"""The classes blind batches 13-17's misses revealed (docs/explain.md, "Batch 13" onwards), with other paths,
packages and versions than the logs that revealed them: each class answered with its id, and a near miss that must
not be (so a pattern written too broadly fails here); the snippets are not the blind logs. Sections follow the
collectors' ranges (batch 13: 428-457 the six trackers searched by message, 458-486 non-English pages, 488-517
installers and environments; batch 14: 518-547 the six trackers by hardware and version, 548-577 model and training
repositories; batch 15: 578-607 forums, Q&A and blog pages, 608-637 the trackers of LLM tooling that installs these
kernels, 638-666 failures after the install, at import or the first call; batch 16: 667-696 pytorch's tracker and
its extension trackers, 697-711 containers, CI and hosted notebooks, 727-756 new hardware and new stacks; batch 17:
757-779 native Windows, 787-807 shared clusters and old systems, 817-828 other languages' pages)."""

from __future__ import annotations

from mamba_build.diagnose import explain as ex


def _found(text: str, catalog: ex.Catalog | None = None) -> tuple[str, str]:
    """(root id, confidence) of a log, ("unknown", "") when explain names nothing."""
    expl = ex.explain_text(text, catalog=catalog)
    return (expl.root.id, expl.root.confidence) if expl.root else ("unknown", "")


def _root(text: str) -> str:
    return _found(text)[0]


def _answered_not_near(fid: str, snippet: str, *nears: str) -> None:
    """The source sweeps' check of one row: the snippet is answered with ``fid``, each near miss is not."""
    assert _root(snippet) == fid
    for near in nears:
        assert _root(near) != fid, near


def _case_ids(cases: list[tuple]) -> list[str]:
    """pytest ids of a sweep's rows: the id and the row's index, so a failure names its case."""
    return [f"{c[0]}-{i}" for i, c in enumerate(cases)]


# ---- 428-457 ----


def test_torch_arch_refusal_with_its_start_cut():
    # torch's ValueError cut by a terminal: only its tail and the raise line of _get_cuda_arch_flags are left
    cut = (
        'user@box:~/src/xformers$ ages/torch/utils/cpp_extension.py", line 1987, in _get_cuda_arch_flags\n'
        'user@box:~/src/xformers$ ch ({arch}) or GPU not supported")\n'
        "user@box:~/src/xformers$ 9.0a) or GPU not supported\n"
    )
    assert _root(cut) == "arch-unsupported"
    # the same words without torch's arch function: not torch's refusal
    assert _root("Error: CUDA (driver 470) or GPU not supported by this build of the app\n") != "arch-unsupported"


def test_nvcc_failing_inside_the_host_gccs_own_intrinsic_headers():
    gcc = (
        '/usr/lib/gcc/aarch64-linux-gnu/7/include/arm_neon.h(212): error: identifier "__builtin_aarch64_x" is undefined\n'
        '/usr/lib/gcc/aarch64-linux-gnu/7/include/arm_neon.h(230): error: identifier "__builtin_aarch64_y" is undefined\n'
    )
    expl = ex.explain_text(gcc)
    assert expl.root is not None and expl.root.id == "gcc-unsupported"
    # the project's own source fails as well: its code, not the compiler's headers
    own = gcc + 'csrc/ops/fused_kernel.cu(41): error: no instance of overloaded function "atomicAdd" matches\n'
    assert _root(own) != "gcc-unsupported"
    # gcc's own format (file:line:col) in those headers: gcc compiling with flags it lacks, no nvcc involved
    assert (
        _root("/usr/lib/gcc/x86_64-linux-gnu/9/include/avx2intrin.h:52:1: error: inlining failed\n")
        != "gcc-unsupported"
    )


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
        '  File "setup.py", line 120, in <module>\n'
        "    _, bare_metal_version = get_cuda_bare_metal_version(CUDA_HOME)\n"
        '  File "setup.py", line 30, in get_cuda_bare_metal_version\n'
        '    raw_output = subprocess.check_output([cuda_dir + "/bin/nvcc", "-V"], universal_newlines=True)\n'
        '  File "C:\\Python311\\Lib\\subprocess.py", line 1538, in _execute_child\n'
        "FileNotFoundError: [WinError 2] The system cannot find the file specified\n"
    )
    expl = ex.explain_text(win)
    assert expl.root is not None and expl.root.id == "cuda-home-missing" and expl.root.confidence == "low"
    # WinError 2 for another program (MSVC's cl.exe): not the toolkit
    cl = "C:\\env\\lib\\site-packages\\torch\\utils\\cpp_extension.py:380: UserWarning: Error checking compiler version for cl: [WinError 2] The system cannot find the file specified\n"
    assert _root(cl) != "cuda-home-missing"
    assert (
        _root("FileNotFoundError: [WinError 2] The system cannot find the file specified: 'model.ckpt'\n")
        != "cuda-home-missing"
    )


# ---- 458-486 ----


def test_pips_wheel_refusal_quoted_without_the_file_name():
    # pip's phrase in a reporter's words, no wheel named: the tag class, weakly
    assert _found('Installing the cp312 build from a 3.9 env gives "not a supported wheel on this platform".\n') == (
        "wheel-tag-mismatch",
        "low",
    )
    # near-miss: a platform-support sentence that is not pip's refusal
    assert _root("Note: this wheel is not supported on this platform yet, see the docs.\n") != "wheel-tag-mismatch"


def test_a_linux_only_sdist_built_by_pip_on_windows_is_not_taken_for_build_isolation():
    head = (
        "(env) PS C:\\Users\\dev> pip install causal-conv1d==1.4.0\n"
        "Collecting causal-conv1d==1.4.0\n"
        "  Downloading causal_conv1d-1.4.0.tar.gz (9.3 kB)\n"
        "  Installing build dependencies ... done\n"
    )
    win = head + "  Getting requirements to build wheel ... error\n  error: subprocess-exited-with-error\n"
    # on Windows: the platform, weakly, whatever step the excerpt stops at (here inside the hook's traceback,
    # whose frames alone would otherwise be the isolated build's weak evidence and disagree)
    assert _found(win) == ("platform-unsupported", "low")
    hook = win + (
        "      Traceback (most recent call last):\n"
        '        File "C:\\Users\\dev\\AppData\\Local\\Temp\\pip-build-env-abc\\overlay\\Lib\\site-packages\\'
        'setuptools\\build_meta.py", line 333, in get_requires_for_build_wheel\n'
    )
    assert _found(hook) == ("platform-unsupported", "low")
    # near-miss: the same failure on Linux stays the isolated-build class
    linux = win.replace("(env) PS C:\\Users\\dev>", "(env) user@host:~$")
    assert _root(linux) == "build-isolation-no-torch"


def test_pips_build_dependency_subprocess_killed_while_installing_its_own_torch():
    text = (
        "  × pip subprocess to install build dependencies did not run successfully.\n"
        "  │ exit code: -9\n"
        "  ╰─> [5 lines of output]\n"
        "      Collecting setuptools>=64\n"
        "      Collecting torch\n"
        "        Downloading https://pypi.example.org/packages/torch-2.6.0-cp311-cp311-manylinux_2_28_x86_64.whl (766.7 MB)\n"
        "      [end of output]\n"
    )
    assert _found(text) == ("build-isolation-no-torch", "low")
    # near-miss: pip says why the build dependency failed (no torch release for this Python): another class
    stated = text.replace(
        "      [end of output]\n",
        "      ERROR: Could not find a version that satisfies the requirement torch==2.0.1 (from versions: 2.5.0)\n"
        "      ERROR: No matching distribution found for torch==2.0.1\n      [end of output]\n",
    )
    assert _root(stated) != "build-isolation-no-torch"


def test_a_windows_dll_failure_of_a_packages_ext_module_is_a_missing_cuda_dll():
    text = (
        '  File "D:\\ai\\env\\lib\\site-packages\\exllamav2\\ext.py", line 20, in <module>\n'
        "    import exllamav2_ext\n"
        "ImportError: DLL load failed while importing exllamav2_ext: The specified module could not be found.\n"
    )
    assert _found(text) == ("cuda-runtime-missing", "low")
    # near-miss: a missing procedure is a symbol of another torch, not a missing DLL
    proc = text.replace("The specified module could not be found.", "The specified procedure could not be found.")
    assert _root(proc) == "abi-undefined-symbol"
    # near-miss: a module whose name is not a torch extension's stays unknown
    assert (
        _root("ImportError: DLL load failed while importing _imaging: The specified module could not be found.\n")
        != "cuda-runtime-missing"
    )


def test_torchs_jit_loader_cannot_import_the_module_it_built():
    tb = (
        '  File "/opt/conda/lib/python3.8/site-packages/torch/utils/cpp_extension.py", line 1099, in _jit_compile\n'
        "    return _import_module_from_library(name, build_directory, is_python_module)\n"
        '  File "/opt/conda/lib/python3.8/site-packages/torch/utils/cpp_extension.py", line 1300, in'
        " _import_module_from_library\n"
        "    file, path, description = imp.find_module(module_name, [path])\n"
        '  File "/opt/conda/lib/python3.8/imp.py", line 296, in find_module\n'
        "    raise ImportError(_ERR_MSG.format(name), name=name)\n"
        "ImportError: No module named 'deform_conv_ext'\n"
    )
    assert _root(tb) == "extension-not-built"
    # near-miss: the same missing module outside torch's JIT loader is a dependency to install
    assert (
        _root(
            'Traceback (most recent call last):\n  File "run.py", line 3, in <module>\n'
            "ImportError: No module named 'einops'\n"
        )
        == "dependency-missing"
    )
    # on Windows: the JIT module's .pyd (or a DLL it links) cannot be loaded: the same class, weakly
    win = (
        '  File "C:\\Python310\\lib\\site-packages\\torch\\utils\\cpp_extension.py", line 1536, in _jit_compile\n'
        "    return _import_module_from_library(name, build_directory, is_python_module)\n"
        '  File "C:\\Python310\\lib\\site-packages\\torch\\utils\\cpp_extension.py", line 1931, in'
        " _import_module_from_library\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "ImportError: DLL load failed while importing gridencoder_ext2: The specified module could not be found.\n"
    )
    assert _found(win) == ("extension-not-built", "low")


def test_a_missing_module_without_quotes_and_transformers_too_new_for_torch():
    # Python 2's format, or Python 3's after a page dropped the quotes (text run together)
    assert _root("ImportError: No module named yaml\n") == "dependency-missing"
    assert _root("安装时报错ModuleNotFoundError: No module named einops随后失败\n") == "dependency-missing"
    # near-miss: an unquoted torch is left to the isolated-build reasoning, never 'pip install torch' as a dependency
    assert _root("构建报错ModuleNotFoundError: No module named torch随后失败\n") != "dependency-missing"
    # transformers calling torch.utils._pytree.register_pytree_node on a torch before 2.2
    pytree = (
        '  File "/env/lib/python3.10/site-packages/transformers/utils/generic.py", line 478, in <module>\n'
        "    _torch_pytree.register_pytree_node(\n"
        "AttributeError: module 'torch.utils._pytree' has no attribute 'register_pytree_node'\n"
    )
    assert _root(pytree) == "dependency-missing"
    # near-miss: another missing attribute of torch is not this class
    assert (
        _root("AttributeError: module 'torch.utils._pytree' has no attribute 'tree_flatten_with_path'\n")
        != "dependency-missing"
    )


def test_triton_cannot_run_ldconfig_to_find_libcuda():
    text = (
        '  File "/usr/local/lib/python3.11/dist-packages/triton/backends/nvidia/driver.py", line 30, in libcuda_dirs\n'
        '    libs = subprocess.check_output(["/sbin/ldconfig", "-p"]).decode()\n'
        "FileNotFoundError: [Errno 2] No such file or directory: '/sbin/ldconfig'\n"
    )
    assert _root(text) == "triton-libcuda-missing"
    # near-miss: ldconfig missing in a script that is not about triton or its kernels
    assert (
        _root("setup.sh: FileNotFoundError: [Errno 2] No such file or directory: 'ldconfig'\n")
        != "triton-libcuda-missing"
    )


# ---- 488-517 ----


def test_uvs_wording_of_a_flash_attn_build_on_windows_is_the_platform_weakly():
    win = (
        "  × Failed to build `flash-attn==2.7.0.post2`\n"
        "  ├─▶ The build backend returned an error\n"
        "  ╰─▶ Call to `setuptools.build_meta:__legacy__.build_wheel` failed (exit code: 1)\n"
        "      [stderr]\n"
        "      D:\\envs\\py311\\Lib\\site-packages\\setuptools\\dist.py:476: SetuptoolsDeprecationWarning: Invalid dash-separated options\n"
        "      C:\\Users\\dev\\AppData\\Local\\uv\\cache\\sdists-v6\\.tmpAb12\\setup.py:3: UserWarning: long paths\n"
    )
    assert _found(win) == ("platform-unsupported", "low")
    # the same uv failure on Linux is no platform problem
    linux = (
        "  × Failed to build `flash-attn==2.7.0.post2`\n"
        "  ├─▶ The build backend returned an error\n"
        "  ╰─▶ Call to `setuptools.build_meta:__legacy__.build_wheel` failed (exit code: 1)\n"
        "      [stderr]\n"
        "      /opt/env/lib/python3.11/site-packages/setuptools/dist.py:476: SetuptoolsDeprecationWarning: Invalid options\n"
    )
    assert _found(linux)[0] != "platform-unsupported"
    # nor is another package's uv build on Windows
    assert _found(win.replace("flash-attn==2.7.0.post2", "pycocotools==2.0.8"))[0] != "platform-unsupported"


def test_uvs_failed_get_requires_hook_of_a_torch_extension_is_the_isolated_build_weakly():
    uv = (
        "error: Failed to prepare distributions\n"
        "  Caused by: Failed to fetch wheel: causal-conv1d==1.4.0\n"
        "  Caused by: Build backend failed to determine extra requires with `build_wheel()` with exit status: 1\n"
    )
    assert _found(uv) == ("build-isolation-no-torch", "low")
    # pixi's tree, cut after the word 'extra' (the rest of the line lost in the excerpt)
    cut = "  ├─▶ Failed to build: `mamba-ssm==2.2.4`\n  ╰─▶ Build backend failed to determine extra\n"
    assert _found(cut) == ("build-isolation-no-torch", "low")
    # isolation switched off, another package, or another missing module: not this class
    assert _found(uv + 'pixi.toml: no-build-isolation = ["causal-conv1d"]\n')[0] != "build-isolation-no-torch"
    assert _found(uv.replace("causal-conv1d", "madmom"))[0] != "build-isolation-no-torch"
    assert _found(uv + "ModuleNotFoundError: No module named 'Cython'\n")[0] != "build-isolation-no-torch"


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
    assert _found(no_nvcc)[0] == "cuda-home-missing"
    # the isolated env's torch alone stays the isolated-build class
    assert _found(_ISOLATED + "      torch.__version__  = 2.8.0+cu128\n")[0] == "build-isolation-no-torch"
    # the exclusion cites the log it was written from: grouped cross-validation leaves it out for that log
    held_out = ex.load_catalog(frozenset({"blind:494"}))
    assert _found(no_nvcc, held_out)[0] == "build-isolation-no-torch"


def test_nvccs_host_compiler_check_quoted_without_its_error_head():
    assert _found("unsupported GNU version! gcc versions later than 10 are not supported!\n")[0] == "gcc-unsupported"
    assert _found("unsupported clang version! clang version must be less than 16 and greater than 3.2 .\n")[0] == (
        "gcc-unsupported"
    )
    assert _found("is this an unsupported GNU version? gcc 13 builds it fine here\n")[0] != "gcc-unsupported"


def test_a_mangled_name_set_in_markdown_bold_is_still_the_loaders_undefined_symbol():
    torch_sym = (
        "> ImportError: /env/lib/python3.9/site-packages/xentropy_cuda_lib.cpython-39-x86_64-linux-gnu.so:"
        " undefined symbol: **_ZN3c104cuda9SetDeviceEi**\n"
    )
    assert _found(torch_sym)[0] == "abi-undefined-symbol"
    std_sym = "ImportError: /env/lib/fused.so: undefined symbol: `_ZSt28__throw_bad_array_new_lengthv`\n"
    assert _found(std_sym)[0] == "glibcxx-missing"
    # a C symbol (not a mangled C++ name) in bold is not torch's ABI
    assert (
        _found("ImportError: /env/lib/ext.so: undefined symbol: **cudaLaunchKernelExC**\n")[0] != "abi-undefined-symbol"
    )


def test_a_setup_py_whose_submodule_is_not_in_the_checkout():
    log = (
        "  Running setup.py develop for my_attn\n"
        "  error: pathspec 'third_party/cutlass' did not match any file(s) known to git\n"
        "  torch.__version__  = 2.4.1+cu121\n"
    )
    assert _found(log) == ("sdist-missing-sources", "low")
    # a git checkout of a branch that does not exist is no missing source tree
    branch = "  Running setup.py develop for my_attn\nerror: pathspec 'feature/new-kernels' did not match any file(s) known to git\n"
    assert _found(branch)[0] != "sdist-missing-sources"
    # nor is the same git error outside a package build
    assert (
        _found(
            "$ git checkout csrc/kernels/old.cu\nerror: pathspec 'csrc/kernels/old.cu' did not match any file(s) known to git\n"
        )[0]
        != "sdist-missing-sources"
    )


def test_the_compiler_out_of_memory_inside_a_docker_build_and_in_nvccs_front_end():
    buildkit = (
        "#14 812.4   /usr/local/cuda/bin/nvcc -I/usr/include/python3.11 -c csrc/attn.cu -o build/attn.o --threads 4\n"
        "#14 812.4   Killed\n"
        "#14 1203.3   [5/12] /usr/local/cuda/bin/nvcc -c csrc/norm.cu\n"
    )
    assert _found(buildkit)[0] == "oom-killed"
    assert _found("#14 812.4 Killed 3 stale workers before the build\n")[0] != "oom-killed"
    edg = "/opt/venv/lib/python3.11/site-packages/torch/include/ATen/core/TensorBody.h(247): catastrophic error: out of memory\n"
    assert _found(edg)[0] == "oom-killed"
    other = 'csrc/attn.cu(3): catastrophic error: cannot open source file "cuda_fp8.h"\n'
    assert _found(other)[0] != "oom-killed"


# ---- 518-547 ----


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


# ---- 548-577 ----


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


# ---- 578-607 ----


def test_a_jit_built_module_missing_from_torchs_extensions_cache():
    # the loader names the JIT module file itself (<root>/pyXY_cuNNN/<name>/<name>.so): the build left none there
    gone = (
        "    return _import_module_from_library(name, build_directory, is_python_module)\n"
        "ImportError: /home/ci/.cache/torch_extensions/py311_cu124/cpu_lion/cpu_lion.so: "
        "cannot open shared object file: No such file or directory\n"
    )
    assert _found(gone) == ("extension-not-built", "high")
    # a CUDA runtime the JIT module links is missing: the loader names that library, another class
    linked = "ImportError: libcudart.so.11.0: cannot open shared object file: No such file or directory\n"
    assert _root(linked) != "extension-not-built"
    # a library of the package's own directory (not torch's JIT cache) missing is not the JIT build's
    other = "OSError: /opt/venv/lib/python3.12/site-packages/foo/lib/foo.so: cannot open shared object file\n"
    assert _root(other) != "extension-not-built"


def test_an_undefined_torch_symbol_broken_over_three_lines():
    wrapped = (
        "ImportError: /usr/local/lib/python3.10/dist-packages/apex_C.cpython-310-x86_64-linux-gnu.so: undefined\n"
        "symbol:\n"
        "_ZN3c106detail23torchInternalAssertFailEPKcS2_jS2_RKSs\n"
    )
    assert _found(wrapped) == ("abi-undefined-symbol", "high")
    # a libstdc++ (std::) symbol broken the same way is not torch's
    std = (
        "ImportError: /srv/env/lib/python3.9/site-packages/ext_mod.so: undefined\n"
        "symbol:\n"
        "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm\n"
    )
    assert _root(std) != "abi-undefined-symbol"
    # 'undefined' at a line end with no symbol after it: no loader message
    assert _root("/opt/lib/libfoo.so: undefined\nbehaviour was reported by the test suite\n") != "abi-undefined-symbol"


def test_vllm_precompiled_wheel_metadata_not_found():
    both = (
        "  [stdout]\n"
        "  Using precompiled wheel commit 0123456789abcdef0123456789abcdef01234567 with variant cu130\n"
        "  Trying to fetch nightly build metadata from https://wheels.vllm.ai/0123456789abcdef0123456789abcdef01234567/cu130/vllm/metadata.json\n"
        "  Trying the default variant from remote\n"
        "  Trying to fetch nightly build metadata from https://wheels.vllm.ai/0123456789abcdef0123456789abcdef01234567/vllm/metadata.json\n"
        "  [stderr]\n"
        "  error: subprocess-exited-with-error\n"
    )
    assert _found(both) == ("prebuilt-download-failed", "low")
    # the default variant's metadata was found: the download worked, the failure is elsewhere
    found = both.replace(
        "  [stderr]\n",
        "  Found precompiled wheel metadata: {'package_name': 'vllm', 'platform_tag': 'manylinux1_x86_64'}\n  [stderr]\n",
    )
    assert _root(found) != "prebuilt-download-failed"
    # the first fetch alone, without the fallback: nothing says it failed
    first = "  Trying to fetch nightly build metadata from https://wheels.vllm.ai/nightly/cu129/vllm/metadata.json\n"
    assert _root(first) != "prebuilt-download-failed"


def test_flash_attn_setup_py_failing_on_windows_at_its_setup_call():
    tb = (
        '    File "D:\\Temp\\pip-install-abc123\\flash-attn_0f1e2d3c\\setup.py", line 201, in <module>\n'
        "      setup(\n"
        '    File "D:\\py\\envs\\x\\lib\\site-packages\\setuptools\\__init__.py", line 103, in setup\n'
        "      return distutils.core.setup(**attrs)\n"
        '    File "D:\\py\\envs\\x\\lib\\site-packages\\setuptools\\_distutils\\core.py", line 184, in setup\n'
        "      return run_commands(dist)\n"
    )
    assert _found(tb) == ("platform-unsupported", "low")
    # the same frames on Linux: not the platform
    linux = tb.replace("D:\\Temp", "/tmp").replace("D:\\py\\envs\\x\\lib", "/opt/envs/x/lib/python3.10").replace("\\", "/")
    assert _root(linux) != "platform-unsupported"


def test_insufficient_driver_on_a_machine_with_only_intel_or_amd_graphics():
    err = "RuntimeError: CUDA driver version is insufficient for CUDA runtime version\n"
    intel = err + "My laptop has only an Intel UHD Graphics 630 (Intel(R) UHD Graphics 630), Linux Mint 21.\n"
    assert _found(intel) == ("platform-unsupported", "high")
    # the same error with an NVIDIA card in the log: an old driver
    both = intel + "GPU 0: NVIDIA GeForce MX450 (driver 460.91)\n"
    assert _root(both) == "driver-too-old"
    assert _root(err) == "driver-too-old"


# ---- 608-637 ----


def test_a_requirement_check_that_finds_the_distribution_absent():
    # transformers' require_version() re-raising importlib.metadata's error with its own sentence
    worded = (
        "importlib.metadata.PackageNotFoundError: No package metadata was found for The 'peft>=0.7.1' "
        "distribution was not found and is required by this application.\n"
        "To fix: pip install peft>=0.7.1\n"
    )
    assert _found(worded) == ("dependency-missing", "high")
    # pkg_resources' DistributionNotFound of a console script's requirement
    assert _root("pkg_resources.DistributionNotFound: The 'einops' distribution was not found and is required by mylib\n") == "dependency-missing"
    # importlib.metadata's bare message inside require_version's frame
    framed = (
        '  File "/opt/venv/lib/python3.12/site-packages/transformers/utils/versions.py", line 99, in require_version\n'
        "    got_ver = importlib.metadata.version(pkg)\n"
        "importlib.metadata.PackageNotFoundError: No package metadata was found for bitsandbytes\n"
    )
    assert _found(framed) == ("dependency-missing", "high")
    # the same bare message from a packaging script's own version() lookup: not a requirement of the program
    bare = (
        '  File "<string>", line 1, in <module>\n'
        "    from importlib.metadata import version; print(version('my-wheel'))\n"
        "importlib.metadata.PackageNotFoundError: No package metadata was found for my-wheel\n"
    )
    assert _root(bare) != "dependency-missing"


def test_pip_finding_no_release_while_it_skipped_releases_for_another_python():
    base = (
        "ERROR: Could not find a version that satisfies the requirement numpy>=3.0 (from versions: 1.24.0, 1.26.4)\n"
        "ERROR: No matching distribution found for numpy>=3.0\n"
    )
    assert _root(base) == "dependency-missing"
    skipped = "ERROR: Ignored the following versions that require a different python version: 2.3.0 Requires-Python >=3.11\n" + base
    assert _root(skipped) != "dependency-missing"


def test_compiled_modules_of_flash_attn_csrc_and_lmdeploy_turbomind():
    for mod in ("dropout_layer_norm", "xentropy_cuda_lib", "rotary_emb"):
        assert _found(f"ModuleNotFoundError: No module named '{mod}'\n") == ("extension-not-built", "high")
    assert _root("    import _turbomind as _tm\nModuleNotFoundError: No module named '_turbomind'\n") == "extension-not-built"
    warn = "2025-01-02 10:00:00,000 - lmdeploy - WARNING - archs.py:60 - Fallback to pytorch engine because turbomind engine is not installed correctly.\n"
    assert _root(warn) == "extension-not-built"
    # a Python package with a similar name is a distribution to install
    assert _root("ModuleNotFoundError: No module named 'rotary_embedding_torch'\n") == "dependency-missing"
    assert _root("ModuleNotFoundError: No module named 'turbomind_utils'\n") == "dependency-missing"


def test_an_older_cuda_runtime_without_a_versioned_symbol():
    old = (
        "ImportError: /srv/env/lib/python3.9/site-packages/myops/_C.so: symbol cudaMallocAsync version "
        "libcudart.so.11.0 not defined in file libcudart.so.11.0 with link time reference\n"
    )
    assert _found(old) == ("cuda-runtime-missing", "high")
    new = "ImportError: /srv/env/lib/python3.12/site-packages/myops/_C.so: undefined symbol: cudaGraphInstantiateWithFlags, version libcudart.so.12\n"
    assert _root(new) == "cuda-runtime-missing"
    # glibc's own versioned symbol is another class
    assert _root("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by ./ext.so)\n") != "cuda-runtime-missing"


def test_an_undefined_cuda_driver_api_symbol():
    drv = "ImportError: /opt/py/lib/python3.11/site-packages/fastkern/_ops.abi3.so: undefined symbol: cuTensorMapEncodeIm2col\n"
    assert _found(drv) == ("driver-too-old", "low")
    # a runtime-API or cuBLAS symbol is not the driver's
    assert _root("ImportError: /opt/py/lib/python3.11/site-packages/fastkern/_ops.so: undefined symbol: cublasLtMatmul\n") != "driver-too-old"
    assert _root("ImportError: /opt/py/lib/python3.11/site-packages/fastkern/_ops.so: undefined symbol: cudaLaunchKernelExC\n") != "driver-too-old"


def test_triton_has_no_release_for_macos_or_windows():
    mac = (
        "Requirement already satisfied: torch in /Users/ann/venv/lib/python3.11/site-packages (2.5.1)\n"
        "ERROR: Could not find a version that satisfies the requirement triton==3.1.0 (from unsloth) (from versions: none)\n"
        "ERROR: No matching distribution found for triton==3.1.0\n"
    )
    assert _found(mac) == ("platform-unsupported", "high")
    win = (
        "Collecting triton (from bitsandbytes)\n"
        "ERROR: Could not find a version that satisfies the requirement triton (from versions: none)\n"
        "C:\\Users\\bo\\AppData\\Local\\Programs\\Python\\Python311\\python.exe -m pip ...\n"
    )
    assert _root(win) == "platform-unsupported"
    # the same on Linux: no platform claim
    linux = "ERROR: Could not find a version that satisfies the requirement triton (from versions: none)\nERROR: No matching distribution found for triton\n"
    assert _root(linux) != "platform-unsupported"


def test_an_old_gcc_rejecting_a_constexpr_read_inside_a_lambda():
    err = (
        "csrc/kernels/launch.h: In lambda function:\n"
        "csrc/kernels/launch.h:57:311: error: lambda capture of 'Is_even_K' is not a constant expression\n"
    )
    assert _found(err) == ("gcc-unsupported", "low")
    # another constant-expression error of the code itself
    assert _root("src/a.h:12:5: error: the value of 'n' is not usable in a constant expression\n") != "gcc-unsupported"


# ---- 638-666 ----


def test_triton_launcher_link_without_libcuda_through_any_gnu_linker():
    # a cross / conda toolchain's ld names itself by the path it was invoked as; gold adds 'error:'
    cross = (
        "/opt/miniforge/envs/llm/bin/../lib/gcc/aarch64-conda-linux-gnu/13.2.0/../../../../aarch64-conda-linux-gnu/bin/ld: "
        "cannot find -lcuda: No such file or directory\n"
        "collect2: error: ld returned 1 exit status\n"
    )
    assert _found(cross) == ("triton-libcuda-missing", "high")
    assert _root("powerpc64le-conda-linux-gnu-ld: cannot find -lcuda\n") == "triton-libcuda-missing"
    assert _root("/usr/local/bin/ld.gold: error: cannot find -lcuda\n") == "triton-libcuda-missing"
    # another library missing at the same link, or a word merely ending in 'ld'
    assert _root("../x86_64-conda-linux-gnu/bin/ld: cannot find -lcudart_static: No such file or directory\n") != (
        "triton-libcuda-missing"
    )
    assert _root("/usr/bin/ld: cannot find -lcudnn\n") != "triton-libcuda-missing"
    assert _root("build: cannot find -lcuda in the sandbox manifest\n") != "triton-libcuda-missing"


def test_a_kernel_module_the_driver_cannot_load():
    torch_err = (
        "  File \"/srv/venv/lib/python3.11/site-packages/xformers/ops/fmha/cutlass.py\", line 202, in apply\n"
        "RuntimeError: CUDA error: device kernel image is invalid\n"
        "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.\n"
    )
    assert _found(torch_err) == ("driver-too-old", "low")
    assert _root("cuModuleLoadData failed: CUDA_ERROR_INVALID_IMAGE\n") == "driver-too-old"
    # ROCm's HIP prints the same words for a gfx target the build lacks; a missing arch is no-kernel-image
    rocm = "HIP_VISIBLE_DEVICES=0 python run.py\n" + torch_err.replace("xformers", "rocm_kernels")
    assert _root(rocm) != "driver-too-old"
    assert _root("RuntimeError: CUDA error: no kernel image is available for execution on the device\n") == (
        "no-kernel-image"
    )


# ---- 667-696 ----


def test_traceback_cut_inside_torchs_join_cuda_home():
    # the call into _join_cuda_home, then its own frame (cut): the only thing it raises is CUDA_HOME = None
    cut = (
        '  File "/opt/venv/lib/python3.12/site-packages/torch/utils/cpp_extension.py", line 2051, in _write_ninja_file\n'
        "    nvcc = _join_cuda_home('bin', 'nvcc')\n"
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        '  File "/opt/venv/lib/python3.12/site-pa\n'
    )
    assert _found(cut) == ("cuda-home-missing", "high")
    # the same call line with the exception raised in that frame itself (no deeper frame): not _join_cuda_home's
    own = (
        '  File "/opt/venv/lib/python3.12/site-packages/torch/utils/cpp_extension.py", line 1290, in library_paths\n'
        "    paths.append(_join_cuda_home(lib_dir))\n"
        "AttributeError: 'NoneType' object has no attribute 'append'\n"
    )
    assert _root(own) != "cuda-home-missing"


def test_torchs_cxx_standard_error_in_msvcs_words_or_quoted():
    msvc = (
        "D:\\libtorch\\include\\c10/util/C++17.h(24): fatal error C1189: #error:  You need C++17 to compile PyTorch\n"
    )
    assert _found(msvc) == ("cxx-standard", "high")
    assert _root("my build stops with: you need C++17 to compile pytorch\n") == "cxx-standard"
    # the same words about another project
    assert _root("fatal error C1189: #error:  You need C++17 to compile this library\n") != "cxx-standard"


def test_a_cxx17_std_name_unknown_inside_torchs_headers():
    gcc = (
        "In file included from /srv/env/lib/python3.9/site-packages/torch/include/ATen/core/Tensor.h:3,\n"
        "/srv/env/lib/python3.9/site-packages/torch/include/c10/util/TypeList.h:58:14: error: "
        "\u2018variant\u2019 in namespace \u2018std\u2019 does not name a template type\n"
    )
    assert _found(gcc) == ("cxx-standard", "high")
    clang = "/usr/lib/libtorch/include/c10/core/SymInt.h:12:8: error: no template named 'optional' in namespace 'std'\n"
    assert _root(clang) == "cxx-standard"
    # a gcc the log shows to be older than 7 has no C++17 library at all: the compiler, not the flag
    old = "gcc (GCC) 6.3.0\n" + gcc
    assert _root(old) == "gcc-unsupported"
    # the project's own file using std::optional without C++17 is its own code, not torch's headers
    own = "src/ops/fused.cpp:41:8: error: \u2018optional\u2019 in namespace \u2018std\u2019 does not name a template type\n"
    assert _root(own) != "cxx-standard"


def test_a_module_imported_alone_with_python_dash_c():
    alone = (
        "$ python3 -c 'import fused_ops'\n"
        "Traceback (most recent call last):\n"
        '  File "<string>", line 1, in <module>\n'
        "ImportError: /home/u/src/build/lib/fused_ops.cpython-39-x86_64-linux-gnu.so: undefined symbol: "
        "_ZN3c106detail14torchCheckFailEPKcS2_jRKSs\n"
    )
    assert _found(alone) == ("torch-libs-not-loaded", "high")
    th = alone.replace("_ZN3c106detail14torchCheckFailEPKcS2_jRKSs", "_THArgCheck")
    assert _root(th) == "torch-libs-not-loaded"
    # torch imported first in the same command: the symbol really is missing from this torch
    first = alone.replace("'import fused_ops'", "'import torch; import fused_ops'")
    assert _root(first) == "abi-undefined-symbol"
    # another module imported than the one whose library fails (a package that may import torch itself)
    pkg = alone.replace("'import fused_ops'", "'import fusedpkg'")
    assert _root(pkg) == "abi-undefined-symbol"


def test_old_torch_c_api_symbols_undefined():
    th = "ImportError: /srv/det/_ext/roi_align/_roi_align.so: undefined symbol: THCudaTensor_resize4d\n"
    assert _found(th) == ("abi-undefined-symbol", "high")
    assert _root("undefined symbol: THDoubleStorage_newWithSize after upgrading\n") == "abi-undefined-symbol"
    ffi = "OSError: /data/repo/lib/_ext/nms/_nms.so: undefined symbol: state\n"
    assert _root(ffi) == "abi-undefined-symbol"
    # torch's Python-binding globals stay torch-libs-not-loaded; a word 'state' in prose is no loader message
    assert _root("ImportError: ./knn.so: undefined symbol: THPVariableClass\n") == "torch-libs-not-loaded"
    assert _root("the undefined symbol: state of the parser\n") != "abi-undefined-symbol"


def test_torchs_tensor_caster_undefined_is_no_torch_abi_mismatch():
    # libtorch_python's pybind11 caster for at::Tensor, the same in every torch 2.x: not linked or not loaded
    caster = (
        "ImportError: /work/build/libgraph_ops.so: undefined symbol: "
        "_ZN8pybind116detail11type_casterIN2at6TensorEvE4loadENS_6handleEb\n"
    )
    assert _root(caster) != "abi-undefined-symbol"
    # another torch C++ symbol stays the ABI mismatch
    other = caster.replace(
        "_ZN8pybind116detail11type_casterIN2at6TensorEvE4loadENS_6handleEb",
        "_ZN2at4_ops10zeros_like4callERKNS_6TensorE",
    )
    assert _root(other) == "abi-undefined-symbol"


# ---- 697-711 ----


def test_python_dash_m_of_a_module_the_interpreter_lacks():
    # runpy's wording: the interpreter's path, then the module, with no exception type and no quotes
    run = "$ /opt/py/bin/python3.12 -m poetry install\n/opt/py/bin/python3.12: No module named poetry\n"
    assert _found(run) == ("dependency-missing", "high")
    assert _root("C:\\Tools\\Python311\\python.exe: No module named build\n") == "dependency-missing"
    # pip is its own class; a package without __main__ is found, only not runnable
    assert _root("/srv/env/bin/python: No module named pip\n") == "pip-missing"
    assert _root("/srv/env/bin/python: No module named mytool.__main__; 'mytool' is a package and cannot be directly executed\n") != (
        "dependency-missing"
    )
    # another program's words about a module name
    assert _root("lint.cfg: No module named helpers in the search path\n") != "dependency-missing"


def test_pip_staying_at_the_start_of_its_source_builds():
    quoted = "The install hangs at `Building wheels for collected packages: xformers` for two hours now\n"
    assert _found(quoted) == ("build-too-slow", "low")
    assert _root('Stuck on "Building wheels for collected packages:" on a 2-core VM\n') == "build-too-slow"
    # the builds went on to their end: a failure or a success, not a build still running
    failed = (
        "Building wheels for collected packages: apex\n"
        "  Building wheel for apex (setup.py) ... error\n"
        "  error: subprocess-exited-with-error\n"
        "  Failed to build apex\n"
    )
    assert _root(failed) != "build-too-slow"
    done = (
        "Building wheels for collected packages: xformers\n"
        "  Building wheel for xformers (pyproject.toml) ... done\n"
        "Successfully built xformers\n"
    )
    assert _root(done) != "build-too-slow"


def test_a_build_command_killed_by_sigkill_under_a_python_build_script():
    cmake = (
        "    File \"/usr/lib/python3.10/subprocess.py\", line 369, in check_call\n"
        "      raise CalledProcessError(retcode, cmd)\n"
        "  subprocess.CalledProcessError: Command '['cmake', '--build', '.', '-j', '32', '--target', '_C']' "
        "returned non-zero exit status 137.\n"
    )
    assert _found(cmake) == ("oom-killed", "high")
    make = "subprocess.CalledProcessError: Command '['make', '-j64']' died with <Signals.SIGKILL: 9>.\n"
    assert _root(make) == "oom-killed"
    # another exit status of the same build, or exit 137 of a command that compiles nothing
    assert _root(cmake.replace("137", "2")) != "oom-killed"
    assert _root("subprocess.CalledProcessError: Command '['git', 'clone', 'x']' returned non-zero exit status 137.\n") != (
        "oom-killed"
    )


# ---- 727-756 ----


def test_import_order_fixed_but_the_module_still_misses_a_torch_symbol():
    # the same module imported without torch (torch's libraries not found), then after `import torch`: an undefined
    # torch C++ symbol, which the loader looks up only once every needed library was found
    both = (
        "$ python -c 'import selective_scan_cuda'\n"
        "ImportError: libtorch_cpu.so: cannot open shared object file: No such file or directory\n"
        "$ python -c 'import torch, selective_scan_cuda'\n"
        "ImportError: /opt/env/lib/python3.12/site-packages/selective_scan_cuda.cpython-312-x86_64-linux-gnu.so: "
        "undefined symbol: _ZN2at4_ops10zeros_like4callERKNS_6TensorE\n"
    )
    assert _found(both) == ("abi-undefined-symbol", "high")
    # the import-order failure alone stays what it is, and so does a std:: symbol beside it (libstdc++, not torch)
    alone = "ImportError: libtorch_cpu.so: cannot open shared object file: No such file or directory\n"
    assert _root(alone) == "torch-libs-not-loaded"
    std = alone + "ImportError: /opt/x/other.so: undefined symbol: _ZNSt15__exception_ptr13exception_ptr9_M_addrefEv\n"
    assert _root(std) != "abi-undefined-symbol"


def test_cuda_home_whose_nvcc_could_not_run_the_error_cut():
    cut = (
        "  Preparing metadata (setup.py) ... error\n"
        "      Traceback (most recent call last):\n"
        '        File "/var/tmp/pip-install-k2/apex_31/setup.py", line 140, in <module>\n'
        "          _, bare_metal_version = get_cuda_bare_metal_version(CUDA_HOME)\n"
        '        File "/var/tmp/pip-install-k2/apex_31/setup.py", line 30, in get_cuda_bare_metal_version\n'
        '          raw_output = subprocess.check_output([cuda_dir + "/bin/nvcc", "-V"], universal_newlines=True)\n'
        '        File "/srv/py/lib/python3.10/subprocess.py", line 421, in check_output\n'
        "          return run(*popenargs, stdout=PIPE, timeout=timeout, check=True,\n"
    )
    assert _found(cut) == ("cuda-home-wrong", "low")
    # CUDA_HOME None fails in setup.py itself (no toolkit found); a Windows frame is not this class either
    none = cut.split('        File "/srv/py/lib')[0] + "TypeError: unsupported operand type(s) for +: 'NoneType' and 'str'\n"
    assert _root(none) == "cuda-home-missing"
    win = cut.replace('File "/srv/py/lib/python3.10/subprocess.py"', 'File "D:\\\\conda\\\\envs\\\\b\\\\lib\\\\subprocess.py"')
    assert _root(win) != "cuda-home-wrong"
    # a subprocess frame without that nvcc call
    other = '  File "/srv/py/lib/python3.10/subprocess.py", line 421, in check_output\n'
    assert _root("Traceback (most recent call last):\n" + other) != "cuda-home-wrong"


def test_missing_pkg_resources_quoted_without_the_exception_name():
    assert _found("Build fails: No module named 'pkg_resources'\n") == ("pkg-resources-missing", "high")
    assert _root("安装时报错：No module named 'pkg_resources'\n") == "pkg-resources-missing"
    # another module whose name only begins the same
    assert _root("Build fails: No module named 'pkg_resources_ext'\n") != "pkg-resources-missing"


def test_reporter_naming_an_oom_of_the_build_above_a_pasted_compile():
    text = (
        "Our CI gets an OOM error during compilation of the kernels:\n"
        "[112/240] /usr/local/cuda-12.4/bin/nvcc -c csrc/fwd_split_hdim64_fp16.cu -o build/fwd_split_hdim64_fp16.o\n"
        "FAILED: build/fwd_split_hdim64_fp16.o\n"
    )
    assert _found(text) == ("oom-killed", "low")
    # GPU memory at run time, and the same words with no compile in the log
    assert _root("torch.OutOfMemoryError: CUDA out of memory during the build of the KV cache\n") != "oom-killed"
    assert _root("We saw an OOM error while building the index for the dataset.\n") != "oom-killed"


# ---- 757-779 ----


def test_windows_isolated_build_env_torch_frame():
    # pip's isolated env under Windows' install scheme: PyPI's CPU torch ran the build, the excerpt cut or not
    frame = (
        "  Getting requirements to build wheel ... error\n"
        "  × Getting requirements to build wheel did not run successfully.\n"
        "      D:\\Temp\\pip-build-env-q7w2xk1a\\normal\\Lib\\site-packages\\torch\\cuda\\__init__.py:61: UserWarning: x\n"
    )
    assert _found(frame) == ("build-isolation-no-torch", "high")
    # with the no-toolkit message that follows from it, still the isolated env's torch
    raised = (
        '  File "D:\\Temp\\pip-build-env-q7w2xk1a\\overlay\\Lib\\site-packages\\torch\\utils\\cpp_extension.py",'
        " line 2101, in _join_cuda_home\n"
        "  OSError: CUDA_HOME environment variable is not set. Please set it to your CUDA install root.\n"
    )
    assert _root(raised) == "build-isolation-no-torch"
    # the user's own torch on Windows, and the env's torch headers handed to a compiler
    own = raised.replace("D:\\Temp\\pip-build-env-q7w2xk1a\\overlay", "D:\\conda\\envs\\dev")
    assert _root(own) == "cuda-home-missing"
    inc = "cl /c -ID:\\Temp\\pip-build-env-q7w2xk1a\\overlay\\Lib\\site-packages\\torch\\include src\\ops.cpp\n"
    assert _root(inc) != "build-isolation-no-torch"


def test_windows_isolated_build_step_without_a_toolkit_found():
    text = (
        "PS D:\\work\\gsplat-fork> pip install .\n"
        "  Getting requirements to build wheel ... error\n"
        "      OSError: CUDA_HOME environment variable is not set. Please set it to your CUDA install root.\n"
        "PS C:\\Users\\ana\\src> echo $Env:CUDA_PATH\n"
    )
    assert _root(text) == "build-isolation-no-torch"
    # the same with build isolation off, and on Linux
    assert _root(text.replace("pip install .", "pip install --no-build-isolation .")) == "cuda-home-missing"
    linux = text.replace("PS D:\\work\\gsplat-fork>", "$").replace("PS C:\\Users\\ana\\src>", "$")
    assert _root(linux) == "cuda-home-missing"


def test_old_cpython_dll_load_failed_procedure_not_found():
    text = (
        '  File "D:\\envs\\p37\\lib\\site-packages\\kaolin\\ops\\mesh.py", line 3, in <module>\n'
        "    from kaolin import _C\n"
        "ImportError: DLL load failed: The specified procedure could not be found.\n"
    )
    assert _found(text) == ("abi-undefined-symbol", "low")
    # the module itself or a DLL it links missing (ERROR_MOD_NOT_FOUND) is not an undefined symbol
    missing = text.replace("procedure", "module")
    assert _root(missing) != "abi-undefined-symbol"


def test_localized_msvc_cannot_open_include_file():
    text = (
        "D:\\VS\\2022\\VC\\Tools\\MSVC\\14.38.33130\\include\\yvals.h(20): fatal error C1083: "
        "Nie można otworzyć pliku dołączanego: crtdbg.h: No such file or directory\n"
    )
    assert _root(text) == "headers-missing"
    # C1083 for a source file that is not a header
    src = "cl : fatal error C1083: Nie można otworzyć pliku źródłowego: kernels\\scan.cu: No such file or directory\n"
    assert _root(src) != "headers-missing"


def test_gcc_only_setup_py_on_windows_msvc_compiler():
    text = (
        '  File "setup.py", line 64, in customize_compiler_for_nvcc\n'
        "    default_compiler_so = self.compiler_so\n"
        "AttributeError: 'MSVCCompiler' object has no attribute 'compiler_so'\n"
    )
    assert _root(text) == "platform-unsupported"
    # the Unix compiler lacking another attribute is not the platform
    other = "AttributeError: 'UnixCCompiler' object has no attribute 'compiler_so'\n"
    assert _root(other) != "platform-unsupported"


# ---- 787-807 ----


def test_flash_attn_1x_module_missing_beside_a_flash_attn_2x():
    text = (
        "  File \"/opt/venv/lib/python3.11/site-packages/mylib/attention.py\", line 9, in <module>\n"
        "    import flash_attn_cuda\n"
        "ModuleNotFoundError: No module named 'flash_attn_cuda'\n"
        "$ pip list | grep flash\n"
        "flash_attn                2.6.3\n"
    )
    assert _root(text) == "dependency-missing"
    # without a flash-attn 2.x in the log: its own module missing, the extension was not built
    assert _root(text.split("$ pip list")[0]) == "extension-not-built"


def test_mamba_kernel_using_a_math_constant_msvc_does_not_define():
    text = (
        "      selective_scan_fwd_fp16.cu\n"
        '      E:\\src\\mamba\\csrc\\selective_scan\\selective_scan_fwd_kernel.cuh(118): error: identifier "M_PI" is undefined\n'
        '      1 error detected in the compilation of "csrc/selective_scan/selective_scan_fwd_fp16.cu".\n'
    )
    assert _root(text) == "platform-unsupported"
    # a Linux path, and a package that builds on Windows: not the platform class
    assert _root(text.replace("E:\\src\\mamba\\csrc\\", "/home/u/mamba/csrc/")) != "platform-unsupported"
    other = text.replace("mamba\\csrc\\selective_scan\\selective_scan_fwd_kernel", "xops\\csrc\\attn\\attn_kernel").replace(
        "selective_scan/selective_scan_fwd_fp16", "attn/attn_fwd"
    ).replace("selective_scan_fwd_fp16.cu\n", "attn_fwd.cu\n")
    assert _root(other) != "platform-unsupported"


def test_distutils_cannot_execute_nvcc_under_a_cuda_home_without_it():
    text = "unable to execute '/opt/cuda-12.1/bin/nvcc': No such file or directory\nerror: command failed with exit status 1\n"
    assert _root(text) == "cuda-home-wrong"
    # the head dropped, as in a title
    assert _root("/opt/nvidia/cuda-10.2/bin/nvcc': No such file or directory\n") == "cuda-home-wrong"
    # torch's fallback /usr/local/cuda is no toolkit at all; a shell's unquoted form is someone typing a path
    assert _root("unable to execute '/usr/local/cuda/bin/nvcc': No such file or directory\n") == "cuda-home-missing"
    assert _root("bash: /opt/cuda-12.1/bin/nvcc: No such file or directory\n") != "cuda-home-wrong"


def test_pip_write_failing_on_the_users_disk_quota():
    text = "Installing collected packages: numpy, torch\nERROR: Could not install packages due to an OSError: [Errno 122] Disk quota exceeded\n"
    assert _root(text) == "disk-full"
    # another OSError of pip's
    assert _root("ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/usr/lib/python3'\n") != "disk-full"


def test_nvcc_ignoring_a_cxx_standard_the_host_compiler_lacks():
    text = (
        "/usr/local/cuda-11.3/bin/nvcc -I/opt/conda/include -c ops/roi.cu -o build/roi.o -std=c++14\n"
        "nvcc warning : The -std=c++14 flag is not supported with the configured host compiler. Flag will be ignored.\n"
    )
    assert _root(text) == "gcc-unsupported"
    # another nvcc warning about a flag
    assert _root("nvcc warning : The 'compute_35' architectures are deprecated, and may be removed in a future release\n") != "gcc-unsupported"


# ---- 817-828 ----


def test_compiler_driver_given_a_source_file_the_tree_lacks():
    old_gcc = "x86_64-linux-gnu-gcc: error: src/roi_align_cuda.cpp: No such file or directory\n"
    assert _found(old_gcc) == ("sdist-missing-sources", "high")
    gcc12 = (
        "g++-11: error: ops/csrc/deform_conv.cu: linker input file not found: No such file or directory\n"
        "g++-11: fatal error: no input files\n"
    )
    assert _root(gcc12) == "sdist-missing-sources"
    # zh_CN gcc: the colon before the errno text is full-width
    assert _root("gcc: 错误：layers/dcn_kernel.cu：没有那个文件或目录\n编译中断。\n") == "sdist-missing-sources"
    assert _root("cc1plus: fatal error: kernels/gather.cpp: No such file or directory\n") == "sdist-missing-sources"
    # an object file of a failed earlier step, and a missing linker script: not a source the tree lacks
    assert _root("gcc: error: build/temp.linux-x86_64-3.9/roi_align.o: No such file or directory\n") != "sdist-missing-sources"
    assert _root("g++: error: /opt/sdk/version.lds: No such file or directory\n") != "sdist-missing-sources"


# ---- batch 19: 871-888 resolved threads of the six trackers, 891-896 Q&A pages, 911-929 other extensions ----


def test_torchs_driver_sentence_quoted_without_its_version():
    _answered_not_near(
        "driver-too-old",
        "Building the wheel failed: RuntimeError: The NVIDIA driver on your system is too old\n",
        "warning: the firmware on your system is too old\n",
    )
    # the full sentence still gives the driver version
    full = "RuntimeError: The NVIDIA driver on your system is too old (found version 10010). Please update your GPU driver\n"
    assert ex.explain_text(full).root.evidence  # matched by the versioned pattern


def test_pkg_resources_packaging_import_with_its_closing_quote_lost():
    # another name from pkg_resources is not the removal of packaging
    _answered_not_near(
        "pkg-resources-missing",
        "pip install fails: cannot import name 'packaging' from 'pkg_resources\n",
        "cannot import name 'packagingx' from 'pkg_resources\n",
    )


def test_a_setup_py_splitting_torch_version_cuda_of_a_cpu_only_torch():
    log = (
        "Traceback (most recent call last):\n"
        '  File "/tmp/pip-req-build-x1/setup.py", line 40, in <module>\n'
        "    major = torch.version.cuda.split('.')[0]\n"
        "AttributeError: 'NoneType' object has no attribute 'split'\n"
    )
    # the same AttributeError from another None: not torch's CUDA version
    other = log.replace("torch.version.cuda.split('.')", "os.environ.get('ARCHS').split(',')")
    _answered_not_near("torch-cpu-only", log, other)


def test_bitsandbytes_finding_no_cuda_runtime():
    log = (
        "CUDA_SETUP: WARNING! libcudart.so not found in any environmental path. Searching /usr/local/cuda/lib64...\n"
        "WARNING: No libcudart.so found! Install CUDA or the cudatoolkit package (anaconda)!\n"
        "CUDA SETUP: Loading binary /opt/venv/lib/python3.10/site-packages/bitsandbytes/libbitsandbytes_cpu.so...\n"
    )
    # only the first warning: the search goes on and may find it
    _answered_not_near("cuda-runtime-missing", log, log.splitlines()[0] + "\n")


def test_torchs_default_cuda_home_without_nvcc_is_missing_not_wrong():
    default = "FileNotFoundError: [Errno 2] No such file or directory: '/usr/local/cuda/bin/nvcc'\n"
    assert _root(default) == "cuda-home-missing"
    # a CUDA_HOME the user set elsewhere, without nvcc: that root is wrong
    assert _root("FileNotFoundError: [Errno 2] No such file or directory: '/opt/cuda-12.1/bin/nvcc'\n") == (
        "cuda-home-wrong"
    )


def test_a_librarys_own_kernel_stub_undefined_is_no_torch_abi_mismatch():
    stub = "ImportError: /x/libfoo_cuda.so: undefined symbol: _Z27__device_stub__scale_kernelPfS_i\n"
    assert _root(stub) != "abi-undefined-symbol"
    torch_symbol = "ImportError: /x/foo_cuda.so: undefined symbol: _ZN3c104cuda9SetDeviceEa\n"
    assert _root(torch_symbol) == "abi-undefined-symbol"


# ---- batch 20: 931-936 Mamba-based model repositories, 951-953 pytorch's tracker, 971-983 LLM stacks ----


def test_sglangs_own_check_of_a_required_package():
    _answered_not_near(
        "dependency-missing",
        "Exception: sgl-kernel with minimum required version 0.1.0 is not installed. Please install\n",
        "note: the minimum required version is not installed on this mirror yet\n",
    )
    older = (
        "Exception: flashinfer_python is installed with version 0.2.3, which is less than the minimum required "
        "version 0.2.5. Please reinstall\n"
    )
    assert _root(older) == "dependency-missing"


def test_llm_awqs_kernels_never_built():
    log = (
        '  File "/work/llm-awq/awq/quantize/qmodule.py", line 4, in <module>\n'
        "    import awq_inference_engine  # with CUDA kernels\n"
        "ModuleNotFoundError: No module named 'awq_inference_engine'\n"
    )
    assert _root(log) == "extension-not-built"
    # AutoAWQ's own package name missing is a dependency, not these kernels
    assert _root("ModuleNotFoundError: No module named 'awq'\n") == "dependency-missing"


# ---- batch 21: 984-986 the six trackers, 1004-1023 other CUDA-extension projects, 1024-1026 blog summaries ----


def test_pyg_extension_built_without_cuda_reports_cuda_version_zero():
    """torch_scatter/torch_sparse < 0.6.9 map a module compiled without CUDA (cuda_version() == -1) to 'CUDA
    version 0.0' in their mismatch check: a build that left CUDA out, not a module built for another torch."""
    built_without = (
        "RuntimeError: Detected that PyTorch and torch_scatter were compiled with different CUDA versions. "
        "PyTorch has CUDA version 11.3 and torch_scatter has CUDA version 0.0. Please reinstall the torch_scatter "
        "that matches your PyTorch install.\n"
    )
    other_cuda = built_without.replace("version 0.0.", "version 10.2.")
    _answered_not_near("extension-missing-from-wheel", built_without, other_cuda)
    assert _root(other_cuda) == "abi-undefined-symbol"


# ---- batch 22: 1027-1036 the six trackers, 1047-1061 other CUDA-extension projects, 1067-1076 Q&A and threads ----


def test_thc_headers_torch_removed_are_not_a_header_to_install():
    """torch 1.11 removed THC/THC.h (and the THC API): an extension including it was written for an older torch,
    and no package provides the header, so headers-missing's fix (install its provider) does not apply; the two THC
    headers torch still ships, and any other header, stay headers-missing."""
    removed = (
        "/work/pcdet/ops/roiaware_pool3d/src/roiaware_pool3d.cpp:11:10: fatal error: THC/THC.h: No such file or "
        "directory\n   11 | #include <THC/THC.h>\ncompilation terminated.\n"
    )
    assert _root(removed) == "unknown"
    assert _root(removed.replace("THC/THC.h", "THC/THCAtomics.cuh")) == "headers-missing"
    assert _root(removed.replace("THC/THC.h", "cusparse.h")) == "headers-missing"
    nvcc = 'ops/src/nms_kernel.cu(3): catastrophic error: cannot open source file "THC/THCGeneral.h"\n'
    assert _root(nvcc) == "unknown"
    assert _root(nvcc.replace("THC/THCGeneral.h", "cub/cub.cuh")) == "headers-missing"


# ---- batch 23: 1087-1088 WSL/ARM/locales, 1107-1115 applications and tooling, 1127-1133 managed settings ----


def test_cudnn_loader_cannot_find_its_libraries():
    """cuDNN dlopens its sub-libraries at the first call and says so in its own words (8: 'Could not load library',
    Windows 'Could not locate ...dll', 9: 'Unable to load any of {...}'): a cuDNN not on the library path."""
    cudnn8 = (
        "Could not load library libcudnn_cnn_infer.so.8. Error: libcudnn_cnn_infer.so.8: cannot open shared object "
        "file: No such file or directory\nAborted (core dumped)\n"
    )
    windows = "Could not locate cudnn_ops_infer64_8.dll. Please make sure it is in your library path!\n"
    cudnn9 = (
        "Unable to load any of {libcudnn_ops.so.9.1.0, libcudnn_ops.so.9.1, libcudnn_ops.so.9, libcudnn_ops.so}\n"
        "Invalid handle. Cannot load symbol cudnnCreateTensorDescriptor\n"
    )
    loader = "ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory\n"
    preload = (
        '  File "/srv/env/lib/python3.12/site-packages/torch/__init__.py", line 346, in _preload_cuda_lib\n'
        "ValueError: libcudnn.so.*[0-9] not found in the system path ['/srv/app', '/srv/env/lib/python3.12/site-packages']\n"
    )
    for log in (cudnn8, windows, cudnn9, loader, preload):
        assert _root(log) == "cuda-runtime-missing", log
    # a library of another vendor that the same words name is not cuDNN's
    assert _root("Could not load library libonnxruntime_providers_cuda.so. Error: no such file\n") != (
        "cuda-runtime-missing"
    )


def test_torchao_skips_its_kernels_built_for_another_torch():
    for log in (
        "Skipping import of cpp extensions due to incompatible torch version 2.9.1+cu128 for torchao version 0.14.1\n",
        "Skipping import of cpp extensions due to incompatible torch version. Please upgrade to torch >= 2.11.0 "
        "(found 2.9.1+cu130).\n",
    ):
        assert _found(log) == ("abi-undefined-symbol", "low"), log
    # weak: an error of the log's own outranks the warning
    both = (
        "Skipping import of cpp extensions due to incompatible torch version 2.9.0 for torchao version 0.13.0\n"
        "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory\n"
    )
    assert _root(both) == "cuda-runtime-missing"


def test_apex_fused_optimizers_without_its_cuda_modules():
    _answered_not_near(
        "extension-not-built",
        '  File "/opt/conda/lib/python3.11/site-packages/apex/optimizers/fused_lamb.py", line 92, in __init__\n'
        "    raise RuntimeError('apex.optimizers.FusedLAMB requires cuda extensions')\n"
        "RuntimeError: apex.optimizers.FusedLAMB requires cuda extensions\n",
        "RuntimeError: MyOptimizer requires cuda extensions\n",
    )


def test_tinycc_missing_include_of_triton_on_windows():
    log = (
        "C:\\Users\\me\\AppData\\Local\\Temp\\tmpq1w2e3\\main.c:5: error: include file 'Python.h' not found\n"
        "Failed to compile. cc_cmd: ['D:\\\\ComfyUI\\\\python_embeded\\\\Lib\\\\site-packages\\\\triton\\\\runtime\\\\tcc\\\\"
        "tcc.exe', ...]\n"
    )
    expl = ex.explain_text(log)
    assert expl.root is not None and expl.root.id == "headers-missing"
    assert "Python.h" in expl.root.cause
    assert _root("note: the include file 'Python.h' not found in the docs index\n") != "headers-missing"


def test_cuda_mismatch_message_quoted_without_its_first_words():
    title = "Build fails: CUDA version (12.4) mismatches the version that was used to compile PyTorch (11.8)\n"
    expl = ex.explain_text(title)
    assert expl.root is not None and expl.root.id == "cuda-major-mismatch"
    assert "12.4" in expl.root.cause and "11.8" in expl.root.cause


# ---- batch 24: 1148-1156 the newest stacks, 1167-1178 JIT builds, 1187-1206 prebuilt binaries and indexes ----


def test_prebuilt_fallback_line_broken_by_the_paste_is_not_a_failed_download():
    """setup.py prints 'Precompiled wheel not found. Building from source...' in the except branch of its download:
    the 404 was caught and a source build followed, even when a paste broke that line in two."""
    head = (
        "Guessing wheel URL:  https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.2/"
        "flash_attn-2.8.2+cu12torch2.8cxx11abiTRUE-cp312-cp312-linux_x86_64.whl\n"
    )
    broken = head + "  Precompiled wheel not found.\nBuilding from source...\nurllib.error.HTTPError: HTTP Error 404: Not Found\n"
    assert _root(broken) != "prebuilt-download-failed"
    # without the fallback line, the failed download is the cause
    assert _root(head + "urllib.error.URLError: <urlopen error [Errno 110] Connection timed out>\n") == (
        "prebuilt-download-failed"
    )


def test_msvc_cxx20_feature_errors_and_nvcc13_list_header_misparse():
    msvc = (
        "C:\\src\\ext\\torch_addon.cpp(12): error C7555: use of designated initializers requires at least "
        "'/std:c++20'\n"
    )
    assert _found(msvc) == ("cxx-standard", "low")
    assert _root("error C7555: use of designated initializers requires at least '/std:c++latest'\n") != "cxx-standard"
    nvcc13 = (
        "/env/lib/python3.12/site-packages/torch/include/ATen/core/List_inl.h:202:52: error: need 'typename' before "
        "'decltype (((c10::List<T>*)this)->c10::List<T>::impl_->list)::difference_type'\n"
    )
    assert _found(nvcc13) == ("cxx-standard", "high")
    assert _root(nvcc13.replace("ATen/core/List_inl.h", "mylib/list.h")) != "cxx-standard"


def test_nvcc_older_than_torchs_dependency_flag():
    log = "nvcc fatal   : Unknown option '--generate-dependencies-with-compile'\nninja: build stopped: subcommand failed.\n"
    assert _root(log) == "cuda-major-mismatch"
    assert _root("nvcc fatal   : Unknown option '--my-flag'\n") != "cuda-major-mismatch"


# ---- batch 25: 1207-1222 Q&A-found threads, 1227-1242 research repositories' ops, 1247-1249 older stacks ----


def test_shell_not_found_for_nvcc_under_cuda_home():
    """ninja runs torch's `<CUDA_HOME>/bin/nvcc ...` rule through /bin/sh -c, which dash (Debian's /bin/sh) answers
    with '<cmd>: not found'. A CUDA_HOME without bin/nvcc is wrong; torch's /usr/local/cuda fallback without a
    toolkit is a missing one."""
    conda = "`/home/u/miniconda3/pkgs/cudatoolkit-11.0.221-h6bb024c_0/bin/nvcc: not found`\n"
    assert _root(conda) == "cuda-home-wrong"
    assert _root("/bin/sh: 1: /opt/cuda-11.8/bin/nvcc: not found\nninja: build stopped: subcommand failed.\n") == (
        "cuda-home-wrong"
    )
    assert _root("/bin/sh: 1: /usr/local/cuda/bin/nvcc: not found\n") == "cuda-home-missing"
    # near misses: a PATH-style CUDA_HOME (':/usr/local/cuda') stays the wrong CUDA_HOME, and another program's
    # 'not found' is not about the toolkit
    assert _root("/bin/sh: 1: :/usr/local/cuda/bin/nvcc: not found\n") == "cuda-home-wrong"
    assert _root("/bin/sh: 1: /opt/tools/bin/nvcc-wrapper: not found\n") not in ("cuda-home-wrong", "cuda-home-missing")


def test_mask2former_family_deformable_attention_op_not_compiled():
    """Mask2Former's (MaskDINO's, OneFormer's) ms_deform_attn_func.py turns the failed import of the op its
    ops/setup.py builds into 'Please compile MultiScaleDeformableAttention CUDA op ...'."""
    log = (
        "    raise ModuleNotFoundError(info_string)\n"
        "ModuleNotFoundError: \n\nPlease compile MultiScaleDeformableAttention CUDA op with the following commands:\n"
        "\t`cd mask2former/modeling/pixel_decoder/ops`\n\t`sh make.sh`\n"
    )
    assert _root(log) == "extension-not-built"
    assert _root("ModuleNotFoundError: No module named 'MultiScaleDeformableAttention'\n") == "extension-not-built"
    # near miss: another module of the same repository is a dependency like any other
    assert _root("ModuleNotFoundError: No module named 'detectron2'\n") == "dependency-missing"


def test_removed_th_headers_are_not_a_missing_package():
    """torch 1.11 removed include/TH/ (PyPI wheels: 1.10.2 ships 30 TH/ headers, 1.11.0 none; see
    scripts/torch_wheel_headers.py): no package provides TH/TH.h any more, so headers-missing's fix cannot apply."""
    th = "src/cpu/dcn_v2_im2col_cpu.cpp:9:10: fatal error: TH/TH.h: No such file or directory\ncompilation terminated.\n"
    assert _root(th) == "unknown"
    # near misses: the two THC headers torch kept, and another missing header, stay headers-missing
    assert _root(th.replace("TH/TH.h", "THC/THCAtomics.cuh")) == "headers-missing"
    assert _root(th.replace("TH/TH.h", "cusparse.h")) == "headers-missing"


def test_python_h_missing_in_an_isolated_build_is_the_missing_header():
    """pip's isolated build env is the same base interpreter with extra sys.path prefixes: Python.h comes from the
    base install either way, so its absence is not explained by the isolated env's torch."""
    frame = (
        '  File "/tmp/pip-build-env-q365kpnw/overlay/lib/python3.9/site-packages/torch/utils/cpp_extension.py", '
        "line 1893, in _run_ninja_build\n"
    )
    missing = (
        "/tmp/pip-build-env-q365kpnw/overlay/lib/python3.9/site-packages/torch/include/torch/csrc/python_headers.h:12:10: "
        "fatal error: Python.h: No such file or directory\n"
    )
    assert _root(missing + frame) == "headers-missing"
    # near miss: the isolated env's torch in the traceback with no other failure stays build isolation
    assert _root(frame + "subprocess.CalledProcessError: Command '['ninja', '-v']' returned non-zero exit status 1.\n") == (
        "build-isolation-no-torch"
    )
