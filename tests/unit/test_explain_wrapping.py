"""Reasoning added after the blind set's first contact (docs/explain-evaluation.md): messages wrapped
so that the break splits the message's only literal, words cut by a terminal at its width, and the
provenance of every kind of catalog regex (so grouped cross-validation can leave each one out).

The snippets are built from other messages than the blind logs that revealed the weaknesses (the
toolkit's GNU check, torch's CUDA_HOME error, pip's wrapper), so they test the mechanism, not a log.
"""

from __future__ import annotations

from mamba_build.diagnose import explain as ex


def _root(text: str) -> str:
    expl = ex.explain_text(text)
    return expl.root.id if expl.root else "unknown"


def test_a_wrap_that_splits_the_only_literal_is_still_matched():
    # uv/pip wrap at a space and indent the rest: the literal "CUDA_HOME environment variable is not set"
    # lies on neither line alone
    text = ("      [stderr]\n"
            "      OSError: CUDA_HOME environment\n"
            "      variable is not set. Please set it to your CUDA install root.\n")
    assert _root(text) == "cuda-home-missing"


def test_a_word_cut_by_the_terminal_width_is_joined_without_a_space():
    head = "/usr/local/cuda-11.8/include/crt/host_config.h(143): error: #error -- unsupported GNU ver"
    text = head + "\nsion! gcc versions later than 11 are not supported! The nvcc flag '-allow-unsupported-compiler'\n"
    assert len(head) >= ex.HARD_WRAP_MIN
    assert _root(text) == "gcc-unsupported"


def test_an_ordinary_line_break_is_not_glued_into_a_word():
    # a short first line, or a second line that is indented, is a normal break: no gluing
    assert _root("error: #error -- unsupported GNU ver\n  sion! gcc versions later than 11 are not supported!\n") \
        == "unknown"


def test_a_message_on_one_line_is_found_once():
    expl = ex.explain_text("OSError: CUDA_HOME environment variable is not set. Please set it.\nnext line here\n")
    assert expl.root.id == "cuda-home-missing" and len(expl.root.evidence) == 1


def test_every_kind_of_catalog_regex_can_be_left_out_by_its_citation():
    cat = ex.load_catalog()
    cited = ex.corpus_refs(cat)
    blind = sorted(r for r in cited if r.startswith("blind:"))
    assert blind, "the catalog records no pattern written from a blind-set log"
    for ref in blind:
        without = ex.load_catalog(frozenset({ref}))
        for e in without.entries:
            for cites in ex.entry_cites(e):
                assert ref not in cites, (ref, e.id)
            full = cat.entry(e.id)
            assert len(e.requires) == len(e.requires_cites) and len(e.excludes) == len(e.excludes_cites)
            assert len(e.support) == len(e.support_cites)
            assert len(e.requires) <= len(full.requires) and len(e.excludes) <= len(full.excludes)
        assert all(ref not in c for c in without.fact_cites)
        assert len(without.facts) == len(without.fact_cites) <= len(cat.facts)
    # a held-out requires alternative or exclusion really changes the answer: the uv build wrapper
    uv = ("  × Failed to build `flash-attn==2.8.2`\n  ├─▶ The build backend returned an error\n"
          "  ╰─▶ Call to `setuptools.build_meta:__legacy__.build_wheel` failed (exit status: 1)\n"
          "  ModuleNotFoundError: No module named 'torch'\n")
    assert ex.explain_text(uv).root.id == "build-isolation-no-torch"
    refs = frozenset(r for r, ids in cited.items() if "build-isolation-no-torch" in ids and r.startswith("blind:"))
    assert ex.explain_text(uv, catalog=ex.load_catalog(refs)).root.id != "build-isolation-no-torch"


def test_compiler_owned_headers_mean_an_old_compiler_not_a_missing_package():
    assert _root("foo.cpp:3:10: fatal error: optional: No such file or directory\n") == "gcc-unsupported"
    assert _root("x.c:1:10: fatal error: stdatomic.h: No such file or directory\n") == "gcc-unsupported"
    assert _root("x.cu:1:10: fatal error: cusparse.h: No such file or directory\n") == "headers-missing"


def test_the_gcc_version_is_read_from_the_paths_gcc_prints():
    text = ("In file included from /usr/include/c++/5.4.0/mutex:35:0,\n"
            "/x/torch/include/c10/util/C++17.h:27:2: error: #error You need C++17 to compile PyTorch\n")
    expl = ex.explain_text(text)
    assert dict(expl.facts).get("gcc_version") == "5.4.0"
    assert expl.root.id == "gcc-unsupported"


def test_torch_2_libraries_that_no_longer_exist_mean_another_torch():
    assert _root("ImportError: libtorch_cuda_cpp.so: cannot open shared object file: No such file or directory\n") \
        == "abi-undefined-symbol"
    assert _root("ImportError: libc10.so: cannot open shared object file: No such file or directory\n") \
        == "torch-libs-not-loaded"


def test_a_source_tree_import_is_not_a_dependency_to_install():
    assert _root("ModuleNotFoundError: No module named 'src.models.layers'\n") == "unknown"
    assert _root("ModuleNotFoundError: No module named 'einops'\n") == "dependency-missing"


def test_every_wording_of_the_toolkits_msvc_check():
    for rng in ("between 2017 and 2022 (inclusive)", "2012, 2013, 2015, 2017 and 2019"):
        line = (r"C:\CUDA\v10.2\include\crt/host_config.h(150): fatal error C1189: #error:  -- unsupported "
                f"Microsoft Visual Studio version! Only the versions {rng} are supported!\n")
        assert _root(line) == "gcc-unsupported", rng


# Classes blind batch 3 revealed (docs/explain-evaluation.md, "Batch 3"); snippets of other packages,
# paths and versions than the logs that revealed them.

def test_a_cuda_only_package_on_macos_is_the_platform_not_a_missing_toolkit():
    mac = ("Collecting mamba-ssm\n  Using cached mamba_ssm-2.2.4.tar.gz (91 kB)\n"
           "  File \"/Users/ann/proj/.venv/lib/python3.12/site-packages/torch/utils/cpp_extension.py\", line 1, in x\n"
           "OSError: CUDA_HOME environment variable is not set. Please set it to your CUDA install root.\n")
    assert _root(mac) == "platform-unsupported"
    assert _root(mac.replace("/Users/ann/", "/home/ann/")) == "cuda-home-missing"


def test_a_windows_build_dir_is_the_platform_only_for_packages_without_windows_builds():
    build = "copying {pkg}\\__init__.py -> build\\lib.win-amd64-cpython-311\\{pkg}\n"
    assert _root(build.format(pkg="flash_attn")) == "unknown"
    assert _root(build.format(pkg="causal_conv1d")) == "platform-unsupported"


def test_deepspeeds_wording_of_no_toolkit():
    assert _root("AssertionError: CUDA_HOME does not exist, unable to compile CUDA op(s)\n") == "cuda-home-missing"


def test_a_setup_py_that_cannot_import_torch_in_the_isolated_build():
    text = ("  Getting requirements to build wheel ... error\n  error: subprocess-exited-with-error\n"
            "      [WARNING] Unable to import torch, pre-compiling ops will be disabled.\n")
    assert _root(text) == "build-isolation-no-torch"
    assert _root("$ pip install --no-build-isolation deepspeed\n" + text) != "build-isolation-no-torch"


def test_the_package_named_only_in_pips_unpack_dir():
    text = ("Getting requirements to build wheel ... error\n"
            "cwd: /tmp/pip-install-x1y2z3/causal-conv1d_0123456789abcdef0123456789abcdef\n"
            "Traceback (most recent call last):\n"
            "File \"/tmp/pip-build-env-abcd/overlay/lib/python3.9/site-packages/setuptools/build_meta.py\", line 1\n")
    assert _root(text) == "build-isolation-no-torch"


# ---- after blind batch 4's first contact (snippets from the tools' messages, not the blind logs' lines) ----


def test_a_wrapped_message_quoted_in_markdown_is_joined_without_the_quote_marker():
    text = ("> OSError: CUDA_HOME environment\n"
            ">   variable is not set. Please set it to your CUDA install root.\n")
    assert _root(text) == "cuda-home-missing"
    # an unquoted second line after a quoted first one is not the same text
    assert _root("> OSError: CUDA_HOME environment\nvariable is not set. Please set it.\n") == "unknown"


def test_a_setup_py_that_joins_a_none_cuda_home_with_bin_nvcc():
    text = ("  File \"/src/flash-attention/setup.py\", line 60, in get_cuda_bare_metal_version\n"
            "    raw_output = subprocess.check_output([cuda_dir + \"/bin/nvcc\", \"-V\"], universal_newlines=True)\n"
            "TypeError: unsupported operand type(s) for +: 'NoneType' and 'str'\n")
    assert _root(text) == "cuda-home-missing"
    assert _root(text.splitlines()[-1] + "\n") == "unknown"  # the same TypeError elsewhere is no toolkit fact


def test_a_cub_or_thrust_header_from_the_system_include_dir():
    line = '/usr/include/thrust/system/cuda/detail/util.h(40): error: identifier "cudaFoo" is undefined\n'
    assert _root(line) == "toolkit-headers-mixed"
    # the distribution's own toolkit keeps its CUB/Thrust there
    assert _root("/usr/bin/nvcc -c x.cu -o x.o\n" + line) == "unknown"


def test_uvs_refusal_of_a_wheel_given_by_url():
    text = ("error: Failed to determine installation plan\n"
            "  Caused by: A URL dependency is incompatible with the current platform: "
            "https://example.org/causal_conv1d-1.5.0-cp311-cp311-win_amd64.whl\n")
    expl = ex.explain_text(text)
    assert expl.root.id == "wheel-tag-mismatch" and "win_amd64.whl" in expl.root.cause


def test_a_loader_message_cut_after_the_cuda_runtime_name():
    assert _root("ImportError: libcudart.so.11.0: cannot open shar\n") == "cuda-runtime-missing"
    assert _root("ImportError: libcudart.so\n") == "cuda-runtime-missing"
    assert _root("ImportError: libcudart.so.12: undefined symbol\n") == "unknown"


def test_the_wheel_mamba_ssm_guesses_for_windows_is_weak_platform_evidence():
    guess = ("Guessing wheel URL:  https://github.com/state-spaces/mamba/releases/download/v2.2.2/"
             "mamba_ssm-2.2.2+cu12torch2.3cxx11abiFALSE-cp311-cp311-win_amd64.whl\n")
    expl = ex.explain_text(guess)
    assert expl.root.id == "platform-unsupported" and expl.root.confidence == "low"
    assert _root(guess.replace("win_amd64", "linux_x86_64")) != "platform-unsupported"


def test_setuptools_check_of_the_packages_own_version_is_not_torchs():
    own = "setuptools.extern.packaging.version.InvalidVersion: Invalid version: '1.0-final-beta'\n"
    assert _root(own) == "unknown"
    assert _root("packaging.version.InvalidVersion: Invalid version: '2.1.0a0+git.x'\n") == "torch-version-unparsable"


# ---- after blind batch 5's first contact (snippets from the tools' messages, not the blind logs' lines) ----


def test_xformers_naming_a_cpu_torch():
    warn = ("WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:\n"
            "    PyTorch 2.4.0+cu124 with CUDA 1204 (you have 2.4.0+cpu)\n")
    expl = ex.explain_text(warn)
    assert expl.root.id == "torch-cpu-only" and "2.4.0+cpu" in expl.root.cause
    # built for another CUDA torch: another class (weak abi-undefined-symbol), never the CPU build
    assert _root(warn.replace("2.4.0+cpu", "2.5.1+cu121")) != "torch-cpu-only"


def test_a_packages_own_ext_module_is_not_a_missing_distribution():
    assert _root("ModuleNotFoundError: No module named 'mmdet3d.ops._ext'\n") == "extension-not-built"
    assert _root("ModuleNotFoundError: No module named 'mmengine'\n") == "dependency-missing"


def test_bitsandbytes_without_its_own_native_library():
    text = ("Could not load bitsandbytes native library: /src/bnb/bitsandbytes/libbitsandbytes_cuda118.so: "
            "cannot open shared object file: No such file or directory\n")
    assert _root(text) == "extension-not-built"
    # a CUDA runtime library that bitsandbytes' library needs is another class
    other = ("Could not load bitsandbytes native library: libcusparse.so.11: cannot open shared object file: "
             "No such file or directory\n")
    assert _root(other) != "extension-not-built"


def test_deepspeed_prebuild_asked_for_but_no_op_installed():
    report = ("op name ................ installed .. compatible\n"
              "fused_adam ............. [NO] ....... [OKAY]\n"
              "cpu_adam ............... [NO] ....... [OKAY]\n")
    assert _root("$ export DS_BUILD_OPS=1\n$ pip install deepspeed==0.9.5\n" + report) == "extension-missing-from-wheel"
    assert _root(report) == "unknown"  # without DS_BUILD_OPS=1, not-installed ops are JIT-compiled: no failure
    built = report.replace("cpu_adam ............... [NO]", "cpu_adam ............... [YES]")
    assert _root("export DS_BUILD_OPS=1\n" + built) == "unknown"


def test_apex_build_options_through_config_settings_that_built_nothing():
    cmd = 'pip install -v --no-build-isolation --config-settings "--build-option=--cuda_ext" ./\n'
    ok = cmd + "  adding 'apex/optimizers/fused_adam.py'\nSuccessfully installed apex-0.1\n"
    expl = ex.explain_text(ok)
    assert expl.root.id == "extension-missing-from-wheel" and expl.root.confidence == "low"
    # it compiled (or failed compiling): another story
    assert _root(cmd + "building 'amp_C' extension\nSuccessfully installed apex-0.1\n") != "extension-missing-from-wheel"


def test_nvcc_failing_inside_libstdcxx_headers():
    text = ("/opt/gcc/include/c++/7.5.0/tuple:495:244: error: wrong number of template arguments\n"
            "error: command '/usr/local/cuda-9.0/bin/nvcc' failed with exit status 1\n")
    assert _root(text) == "gcc-unsupported"
    # an error in the project's own code with a note into libstdc++ is the project's error
    own = "csrc/x.cu:10:3: error: no match for call\n" + text.replace("error: wrong", "note: candidate")
    assert _root(own) != "gcc-unsupported"


def test_a_platform_named_in_the_reporters_words():
    warn = ("WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:\n"
            "    PyTorch 2.1.0 with CUDA 1108 (you have 2.1.0)\n")
    assert _root("Running it on my MacBook Pro M3:\n" + warn) == "platform-unsupported"
    assert _root("Running it on my Macintosh server:\n" + warn) != "platform-unsupported"
    fail = "ERROR: Failed building wheel for flash-attn\n"
    expl = ex.explain_text("I tried it on my Windows 11 laptop:\n" + fail)
    assert expl.root.id == "platform-unsupported" and expl.root.confidence == "low"
    assert _root(fail) == "unknown"


# ---- after blind batch 6's first contact (snippets from the tools' messages, not the blind logs' lines) ----


def test_distutils_cannot_start_nvcc_at_torchs_default_cuda_home():
    old = "unable to execute '/usr/local/cuda/bin/nvcc': No such file or directory\n"
    new = "error: command '/usr/local/cuda/bin/nvcc' failed: No such file or directory\n"
    assert _root(old) == "cuda-home-missing"
    assert _root("building 'torch_cluster._grid' extension\n" + new) == "cuda-home-missing"
    # nvcc that exists and fails is a compile error, not a missing toolkit
    assert _root("error: command '/usr/local/cuda/bin/nvcc' failed with exit code 2\n") != "cuda-home-missing"


def test_cuda_home_in_condas_cudatoolkit_package_cache():
    text = "No CUDA runtime is found, using CUDA_HOME='/home/u/miniforge3/pkgs/cudatoolkit-11.3.1-h2bc3f7f_2'\n"
    expl = ex.explain_text(text)
    assert expl.root.id == "cuda-home-wrong" and "cudatoolkit-11.3.1" in expl.root.cause
    assert _root("export CUDA_HOME=C:\\conda\\pkgs\\cudatoolkit-11.8.0-h09e9e62_12\n") == "cuda-home-wrong"
    # a real toolkit root is no finding
    assert _root("No CUDA runtime is found, using CUDA_HOME='/usr/local/cuda-12.4'\n") == "unknown"


def test_pip_cannot_install_a_requirement_of_another_package():
    text = (
        "ERROR: Could not find a version that satisfies the requirement pccm>=0.4.16 (from cumm-cu118) "
        "(from versions: 0.1.0, 0.2.4)\nERROR: No matching distribution found for pccm>=0.4.16\n"
    )
    expl = ex.explain_text(text)
    assert expl.root.id == "dependency-missing" and "pccm" in expl.root.cause
    # the package the user asked for (no parent) may be a platform or Python-tag question: not claimed
    top = "ERROR: Could not find a version that satisfies the requirement torch==1.13.1 (from versions: 2.2.0)\n"
    assert _root(top) != "dependency-missing"


def test_a_torch_extension_plugin_is_not_a_missing_distribution():
    assert _root("ModuleNotFoundError: No module named 'upfirdn2d_plugin'\n") == "extension-not-built"
    assert _root("ModuleNotFoundError: No module named 'plugin'\n") == "dependency-missing"


def test_custom_ops_that_failed_to_load():
    warn = "UserWarning: Failed to load custom C++ ops. Running on CPU mode Only!\n"
    assert _root(warn + "NameError: name '_C' is not defined\n") == "extension-not-built"
    # the package's own setup.py said it built without CUDA: the wheel has no CUDA module
    built = "running build_ext\nCompiling without CUDA\nSuccessfully installed deformable-attention-0.2\n"
    assert _root(built + warn) == "extension-missing-from-wheel"
    # a compiled module that exists but cannot load is another class
    abi = "ImportError: /x/_C.so: undefined symbol: _ZN3c105ErrorC2E\n" + warn
    assert _root(abi) != "extension-not-built"


def test_bitsandbytes_cuda_setup_without_its_cuda_library():
    text = (
        "CUDA SETUP: Detected CUDA version 122\n"
        "CUDA SETUP: Required library version not found: libbitsandbytes_cuda122.so. Maybe you need to compile it from source?\n"
        "CUDA SETUP: Defaulting to libbitsandbytes_cpu.so...\n"
    )
    expl = ex.explain_text(text)
    assert expl.root.id == "extension-not-built" and "libbitsandbytes_cuda122.so" in expl.root.cause


def test_xformers_setup_py_in_an_isolated_build():
    text = (
        "Collecting xformers==0.0.20\n  Installing build dependencies ... done\n"
        "  Getting requirements to build wheel ... error\n      Traceback (most recent call last):\n"
    )
    expl = ex.explain_text(text)
    assert expl.root.id == "build-isolation-no-torch" and expl.root.confidence == "low"
    assert _root(text.replace("xformers", "timm")) == "unknown"


# ---- after blind batch 7's first contact (snippets from the tools' messages, not the blind logs' lines) ----


def _names(text: str, fid: str, fragment: str) -> bool:
    """The root cause is `fid` and its cause sentence names `fragment` (a value read from the message)."""
    expl = ex.explain_text(text)
    return expl.root is not None and expl.root.id == fid and fragment in expl.root.cause


def test_a_package_importing_its_own_compiled_module_by_its_own_name():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/opt/venv/lib/python3.10/site-packages/vision_ops/layers/deform.py", line 7, in <module>\n'
        "    import vision_ops_cuda\n"
        "ModuleNotFoundError: No module named 'vision_ops_cuda'\n"
    )
    assert _names(text, "extension-not-built", "vision_ops_cuda")
    # a user's script importing a distribution with such a name is still a missing dependency
    script = (
        '  File "/home/u/train.py", line 3, in <module>\n    import numba_cuda\n'
        "ModuleNotFoundError: No module named 'numba_cuda'\n"
    )
    assert _root(script) == "dependency-missing"


def test_autogptqs_own_warning_that_its_cuda_kernels_are_missing():
    assert _root("WARNING - CUDA extension not installed.\n") == "extension-not-built"
    newer = "WARNING - CUDA kernels for auto_gptq are not installed, this will result in very slow inference speed.\n"
    assert _root(newer) == "extension-not-built"


def test_a_path_style_cuda_home_in_torchs_own_message():
    text = "No CUDA runtime is found, using CUDA_HOME='/usr/local/cuda:/opt/cuda-12.1'\nrunning build_ext\n"
    assert _names(text, "cuda-home-wrong", "/usr/local/cuda:/opt/cuda-12.1")
    assert _root("No CUDA runtime is found, using CUDA_HOME=':/opt/cuda'\n") == "cuda-home-wrong"
    # a Windows drive letter is no PATH separator
    win = "No CUDA runtime is found, using CUDA_HOME='C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v11.8'\n"
    assert _root(win) == "unknown"


def test_the_msvc_stl_refusing_an_older_nvcc():
    text = (
        "C:\\BuildTools\\VC\\Tools\\MSVC\\14.29.30133\\include\\yvals_core.h(556): error: static assertion failed "
        'with "error STL1002: Unexpected compiler version, expected CUDA 11.6 or newer."\n'
    )
    assert _root(text) == "gcc-unsupported"
    assert _root("#error STL1002: Unexpected compiler version, expected CUDA 10.1 Update 2 or newer.\n") == "gcc-unsupported"


def test_an_include_of_the_projects_own_tree_not_found():
    gcc = "csrc/deform_conv.cpp:3:10: fatal error: src/cuda/deform_im2col.cuh: No such file or directory\n"
    assert _names(gcc, "sdist-missing-sources", "src/cuda/deform_im2col.cuh")
    msvc = "fatal error C1083: Cannot open include file: 'third_party/cutlass_ext/gemm.h': No such file or directory\n"
    assert _root(msvc) == "sdist-missing-sources"
    # headers that an installed package or the toolkit provides stay headers-missing
    provided = ("fatal error C1083: Cannot open include file: 'cuda_runtime.h':", "fatal error: torch/extension.h:")
    for line in provided:
        assert _root(f"{line} No such file or directory\n") == "headers-missing", line


def test_transformer_engine_built_with_its_release_packaging_switch():
    text = (
        "$ NVTE_RELEASE_BUILD=1 NVTE_FRAMEWORK=jax pip install --no-build-isolation .\n"
        "Successfully installed transformer_engine-2.4.0\n"
        "FileNotFoundError: Could not find shared object file for Transformer Engine jax lib.\n"
    )
    assert _names(text, "extension-missing-from-wheel", "NVTE_RELEASE_BUILD=1")
    # the setting alone, with a working import, is no failure
    assert _root("NVTE_RELEASE_BUILD=1 pip wheel .\nSuccessfully built transformer_engine\n") != "extension-missing-from-wheel"


def test_timms_train_script_without_apex():
    text = "AssertionError: AMP impl specified as APEX but APEX is not installed.\n"
    assert _names(text, "dependency-missing", "APEX")


def test_torchs_own_binding_symbols_undefined_before_import_torch():
    text = "ImportError: /home/u/ext/build/lib/roi_align_cuda.cpython-39-x86_64-linux-gnu.so: undefined symbol: THPDtypeType\n"
    assert _names(text, "torch-libs-not-loaded", "libtorch_python.so")
    # a mangled C++ symbol of another torch stays an ABI mismatch
    assert _root("ImportError: /x/y.so: undefined symbol: _ZN3c104cuda9SetDeviceEi\n") == "abi-undefined-symbol"


# blind batch 8's classes: the tools' message formats with other packages, versions and paths than the logs


def test_a_compiled_module_imported_first_at_the_prompt_before_torch():
    text = (
        ">>> import knn_ops\n"
        "Traceback (most recent call last):\n"
        '  File "<stdin>", line 1, in <module>\n'
        "ImportError: /opt/conda/lib/python3.8/site-packages/knn_ops.cpython-38-x86_64-linux-gnu.so: "
        "undefined symbol: _ZN3c1010TensorImpl17set_autograd_metaESt10unique_ptrINS_21AutogradMetaInterfaceESt14default_deleteIS2_EE\n"
    )
    assert _root(text) == "torch-libs-not-loaded"
    # torch imported first in the session: another torch's symbol, an ABI mismatch
    assert _root(">>> import torch\n" + text) == "abi-undefined-symbol"


def test_nvcc_refusing_the_cxx_standard_torch_passes():
    assert _root("nvcc fatal   : Value 'c++17' is not defined for option 'std'\n") == "cuda-major-mismatch"
    # a package's own newer standard is not torch's
    assert _root("nvcc fatal   : Value 'c++20' is not defined for option 'std'\n") != "cuda-major-mismatch"


def test_a_cuda_launch_call_of_another_release_undefined():
    old_nvcc = "ImportError: /srv/ops/roi_pool_cuda.cpython-36m-x86_64-linux-gnu.so: undefined symbol: cudaConfigureCall\n"
    assert _names(old_nvcc, "cuda-major-mismatch", "CUDA")
    new_nvcc = "OSError: /home/u/lib/libdcn.so: undefined symbol: __cudaPushCallConfiguration\n"
    assert _root(new_nvcc) == "cuda-major-mismatch"


def test_torchs_jit_loader_given_no_sources():
    frame = '  File "/usr/lib/python3/dist-packages/torch/utils/cpp_extension.py", line 1561, in _write_ninja_file\n'
    old_torch = frame + "    assert len(sources) > 0\nAssertionError\n"
    new_torch = "AssertionError: At least one source is required to build a library\n"
    assert [_root(t) for t in (old_torch, new_torch)] == ["sdist-missing-sources"] * 2


def test_a_packages_own_compiled_module_by_import_name_is_no_distribution():
    text = "ImportError: cannot import name '_C' from 'pointops' (/opt/venv/lib/python3.11/site-packages/pointops/__init__.py)\n"
    assert _root(text) != "dependency-missing"
    # an ordinary name stays a dependency of the wrong version
    assert _root("ImportError: cannot import name 'cached_download' from 'huggingface_hub'\n") == "dependency-missing"


def test_other_wordings_of_no_cuda_toolkit():
    lines = (
        "FileNotFoundError: [Errno 2] No such file or directory: 'nvcc'\n",
        "EnvironmentError: The nvcc binary could not be located in your $PATH. Either add it to your path, or set $CUDA_HOME\n",
        "NotImplementedError: CUDA_HOME is None. Please set environment variable CUDA_HOME.\n",
    )
    for line in lines:
        assert _root(line) == "cuda-home-missing", line
    # an nvcc path that does not exist is a CUDA_HOME without a toolkit, not a missing one
    assert _root("FileNotFoundError: [Errno 2] No such file or directory: '/opt/cuda-12/bin/nvcc'\n") == "cuda-home-wrong"


def test_code_parsing_the_cuda_version_of_a_cpu_torch():
    text = (
        '  File "/opt/venv/lib/python3.9/site-packages/flash_attn_setup.py", line 40, in check\n'
        "    v = Version(torch.version.cuda)\n"
        "TypeError: expected string or bytes-like object, got 'NoneType'\n"
    )
    assert _root(text) == "torch-cpu-only"


def test_a_mac_named_in_the_reporters_words():
    text = "Installing under macOS Sonoma I get: NotImplementedError: CUDA_HOME is None. Please set environment variable CUDA_HOME.\n"
    assert _root(text) == "platform-unsupported"
    prose = "pip install on my MacBook Pro fails: OSError: CUDA_HOME environment variable is not set.\n"
    assert _root(prose) == "platform-unsupported"


def test_batch_8_messages_that_name_their_cause():
    """torch's ninja check, a quoted CUDA_HOME in distutils' repr, the loader's GLIBC line cut after the version."""
    cases = (
        ("RuntimeError: Ninja is required to load C++ extensions (pip install ninja to get it)\n", "dependency-missing", "Ninja"),
        ('error: command "\'/opt/cuda-11.3\'/bin/nvcc" failed: No such file or directory\n', "cuda-home-wrong", "'/opt/cuda-11.3'"),
        ("ImportError: /lib64/libc.so.6: version `GLIBC_2.34'\n", "glibc-too-old", "GLIBC_2.34"),
    )
    for text, fid, fragment in cases:
        assert _names(text, fid, fragment), text


# blind batch 9's classes: the tools' message formats with other packages, versions and paths than the logs


def _isolated_cuda_check(scheme: str, user_torch: str, after: bool = False) -> str:
    """torch's CUDA check raised inside pip's isolated build env (its lib dir laid out by `scheme`), with the
    user's own torch shown before (or after) the traceback."""
    shown = f"$ python -c 'import torch; print(torch.__version__)'\n{user_torch}\n"
    trace = (
        f'        File "/var/tmp/pip-build-env-r2c8w0qe/normal/{scheme}/torch/utils/cpp_extension.py", '
        "line 413, in _check_cuda_version\n"
        "          raise RuntimeError(CUDA_MISMATCH_MESSAGE.format(cuda_str_version, torch.version.cuda))\n"
        "      RuntimeError:\n"
        "      The detected CUDA version (12.4) mismatches the version that was used to compile\n"
        "      PyTorch (11.8). Please make sure to use the same CUDA versions.\n"
    )
    return trace + shown if after else shown + trace


def test_a_cuda_check_raised_by_the_torch_of_pips_isolated_build_env():
    debian = "local/lib/python3.11/dist-packages"
    # the user's torch is of the toolkit's CUDA major: the isolated env's other torch made the build fail
    assert _root(_isolated_cuda_check(debian, "2.4.1+cu124")) == "build-isolation-no-torch"
    assert _root(_isolated_cuda_check(debian, "2.4.1+cu121", after=True)) == "build-isolation-no-torch"
    # the user's torch is of the failing CUDA too: building against it would fail the same way
    assert _root(_isolated_cuda_check(debian, "2.3.0+cu118")) == "cuda-major-mismatch"


def test_tops_memory_summary_exhausted_during_a_parallel_build():
    build = "MAX_JOBS=32 pip install causal-conv1d --no-build-isolation\n"
    top = (
        "KiB Mem : 65843212 total,   312044 free, 65101236 used,   429932 buff/cache\n"
        "KiB Swap:  2097148 total,        0 free,  2097148 used.   188320 avail Mem\n"
    )
    expl = ex.explain_text(build + top)
    assert expl.root is not None and expl.root.id == "oom-killed" and expl.root.confidence == "low"
    # memory to spare, or no build in the log: nothing to say
    spare = "MiB Swap:   8192.0 total,   8192.0 free,      0.0 used.  48213.5 avail Mem\n"
    assert [_root(t) for t in (build + spare, top)] == ["unknown", "unknown"]


def test_no_toolkit_claimed_where_the_reporter_shows_nvcc_working():
    text = (
        "UserWarning: causal_conv1d was requested, but nvcc was not found.  Are you sure your environment has nvcc available?\n"
        "NameError: name 'bare_metal_version' is not defined\n"
    )
    assert _root(text) == "cuda-home-missing"
    assert _root(text + "In the same shell `nvcc -V` works fine (release 12.1).\n") != "cuda-home-missing"


# blind batch 10's classes: the same two refusals, cut short, with other packages, versions and paths than the logs


def test_deepspeeds_cuda_refusal_cut_after_extensions_is_still_the_refusal_not_the_warning():
    refusal = (
        '  File "/opt/venv/lib/python3.9/site-packages/deepspeed/ops/op_builder/builder.py", line 96, in assert_no_cuda_mismatch\n'
        "    raise Exception(\n"
        "Exception: >- DeepSpeed Op Builder: Installed CUDA version 11.3 does not match the version torch was compiled "
        "with 10.2, unable to compile cuda/cpp extensions\n"
    )
    expl = ex.explain_text(refusal)
    assert expl.root is not None and expl.root.id == "cuda-major-mismatch"
    assert "11.3" in expl.root.cause and "10.2" in expl.root.cause
    warning = (
        "Installed CUDA version 12.2 does not match the version torch was compiled with 12.1 but since the APIs are "
        "compatible, accepting this combination\n"
    )
    assert _root(warning) == "unknown"


def test_torchs_cuda_check_seen_only_in_its_traceback():
    trace = (
        '    File "/home/u/miniforge3/envs/x/lib/python3.12/site-packages/torch/utils/cpp_extension.py", line 520, '
        "in build_extensions\n"
        "      _check_cuda_version(compiler_name, compiler_version)\n"
        '    File "/home/u/miniforge3/envs/x/lib/python3.12/site-packages/torch/utils/cpp_extension.py", line 414, '
        "in _check_cuda_version\n"
        "      raise RuntimeError(CUDA_MISMATCH_MESSAGE.format(cuda_str_version, torch.version.cuda))\n"
        "  RuntimeError:\n"
        "  The detec"
    )
    assert _root(trace) == "cuda-major-mismatch"
    # the call alone (the check ran, no raise line) says nothing
    assert _root(trace.split("    File")[1]) == "unknown"


# blind batch 11's class: a Mamba-based repo's own selective-scan module (VMamba's kernels), never a distribution


def test_vmambas_own_selective_scan_module_missing_is_an_unbuilt_extension():
    for module in ("selective_scan_cuda_oflex", "selective_scan_cuda_ndstate"):
        text = (
            '  File "/data/u/LocalVMamba/classification/models/csms6s.py", line 12, in <module>\n'
            f"    import {module}\n"
            f"ModuleNotFoundError: No module named '{module}'\n"
        )
        expl = ex.explain_text(text)
        assert expl.root is not None and expl.root.id == "extension-not-built" and module in expl.root.cause
    # mamba_ssm's own module stays what it was, and another package's missing module is no unbuilt kernel
    assert _root("ModuleNotFoundError: No module named 'selective_scan_cuda'\n") == "extension-not-built"
    assert _root("ModuleNotFoundError: No module named 'selective_search'\n") == "dependency-missing"


def test_a_top_level_requirement_pip_cannot_install_after_listing_the_releases():
    """pip lists the releases it saw, then gives up on a requirement asked for by name: no release fits
    the pin or this Python (a weak, low-confidence finding naming the requirement)."""
    for req, versions in (("flash-attn==2.9.9", "2.5.0, 2.6.3, 2.7.4.post1"), ("triton", "none")):
        name = req.split("=", 1)[0]
        text = (
            f"$ pip install {req} einops\n"
            f"ERROR: Could not find a version that satisfies the requirement {req} (from versions: {versions})\n"
            f"ERROR: No matching distribution found for {req}\n"
        )
        expl = ex.explain_text(text)
        assert expl.root is not None and expl.root.id == "dependency-missing", req
        assert expl.root.confidence == "low" and name in expl.root.cause
    # without pip's list of releases (it discarded the package for this platform) the cause stays open,
    # and a version that is no version at all (a setup.py's 'latest') is a broken package, not a pin
    assert _root("ERROR: No matching distribution found for mmcv-full==1.2.0\n") != "dependency-missing"
    latest = (
        "ERROR: Could not find a version that satisfies the requirement DCNv4==latest (from versions: 1.0.0)\n"
        "ERROR: No matching distribution found for DCNv4==latest\n"
    )
    assert _root(latest) != "dependency-missing"


def test_batch_12_classes_from_the_tools_that_print_them():
    """The classes blind batch 12's misses revealed, with other paths, packages and versions."""
    # a symbol of libstdc++ itself undefined: the C++ runtime loaded is older than the compiler's; torch's
    # own symbols stay the torch/ABI class
    std = "ImportError: /opt/env/lib/python3.11/site-packages/fused_ops.so: undefined symbol: _ZSt28__throw_bad_array_new_lengthv\n"
    assert _root(std) == "glibcxx-missing"
    assert _root("ImportError: /x/y_cuda.so: undefined symbol: _ZN3c1017RegisterOperatorsD1Ev\n") == "abi-undefined-symbol"
    # ld.so's version message with its quotes eaten by Markdown
    md = "ImportError: /usr/lib64/libstdc++.so.6: version GLIBCXX_3.4.29 not found (required by /env/lib/ext.so)\n"
    assert _root(md) == "glibcxx-missing"
    # pip 25+'s summary of a get_requires hook that failed on `import torch`: an isolated build
    iso = (
        "      ModuleNotFoundError: No module named 'torch'\n"
        "      [end of output]\n"
        "ERROR: Failed to build 'flash-attn' when getting requirements to build wheel\n"
    )
    assert _root(iso) == "build-isolation-no-torch"
    # an assertion inside gcc (a compiler bug): another gcc; a signal is the OOM killer's
    ice = "/src/kernel.cu:88:1: internal compiler error: in tsubst_copy, at cp/pt.c:15385\n"
    expl = ex.explain_text(ice)
    assert expl.root is not None and expl.root.id == "gcc-unsupported" and expl.root.confidence == "low"
    assert _root("g++: internal compiler error: Killed (program cc1plus)\n") != "gcc-unsupported"
    # xformers installed without its compiled extension (its build metadata beside _C is missing)
    xf = "FileNotFoundError: [Errno 2] No such file or directory: '/venv/lib/python3.12/site-packages/xformers/cpp_lib.json'\n"
    assert _root(xf) == "extension-not-built"
    # flash-attn's setup.py guessing a Windows wheel (none is published): the platform, weakly
    fa = (
        "Guessing wheel URL:  https://github.com/Dao-AILab/flash-attention/releases/download/v2.7.4/"
        "flash_attn-2.7.4+cu12torch2.6cxx11abiFALSE-cp312-cp312-win_amd64.whl\n"
        "Precompiled wheel not found. Building from source...\n"
    )
    assert _root(fa) == "platform-unsupported"
