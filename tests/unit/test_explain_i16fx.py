"""Classes revealed by blind batch 13's misses in stream i16x (logs 458-486), each tested with other paths,
packages and versions than the log that revealed it, plus a near-miss the pattern must not take."""

from __future__ import annotations

from mamba_build.diagnose import explain as ex


def _found(text: str) -> tuple[str, str]:
    expl = ex.explain_text(text)
    return (expl.root.id, expl.root.confidence) if expl.root else ("unknown", "")


def _root(text: str) -> str:
    return _found(text)[0]


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
