"""Source sweep of the packaging front end (pip, uv, conda, setuptools, packaging, torch's setup helpers): each
message format the tools print (read from their sources, cited in failures.toml as ``src:``) is answered with its
id, and a near miss (the same words in prose or a source line, or another cause's message) is not. The snippets
are written from the format strings, with made-up paths, packages and versions."""

from __future__ import annotations

import pytest

from mamba_build.diagnose import explain as ex
from tests.unit.test_explain_blind_classes import _answered_not_near, _case_ids, _found, _root

GUESS = (
    "Guessing wheel URL:  https://github.com/Dao-AILab/causal-conv1d/releases/download/v1.4.0/"
    "causal_conv1d-1.4.0+cu122torch2.3cxx11abiFALSE-cp310-cp310-linux_x86_64.whl\n"
)

# (id, a snippet in the tool's format, the near misses that must not be answered with that id: none on a row that is
# one more format of the case above it)
CASES = [
    # ---- wheel-tag-mismatch ----
    (
        "wheel-tag-mismatch",
        "error: Package `selective-scan` can't be installed because it doesn't have a source distribution or wheel for the current platform\n",
        ("Package `selective-scan` can't be installed because the index is offline\n",),
    ),
    # ---- platform-unsupported ----
    (
        "platform-unsupported",
        "    building 'fused_dense_lib' extension\n"
        '    error: Microsoft Visual C++ 14.0 is required. Get it with "Build Tools for Visual Studio": '
        "https://visualstudio.microsoft.com/downloads/\n",
        ("Note: Microsoft Visual C++ 14.0 is required for some optional speedups.\n",),
    ),
    (
        "platform-unsupported",
        '  File "C:\\Python27\\lib\\distutils\\msvc9compiler.py", line 287, in query_vcvarsall\n'
        '    raise DistutilsPlatformError("Unable to find vcvarsall.bat")\n'
        "distutils.errors.DistutilsPlatformError: Unable to find vcvarsall.bat\n",
        # the raise line alone (a source excerpt) is not the error
        ('        raise DistutilsPlatformError("Unable to find vcvarsall.bat")\n',),
    ),
    (
        "platform-unsupported",
        '  File "/tmp/pip-install-x1/causal-conv1d_0a1b/setup.py", line 85, in get_platform\n'
        '    raise ValueError("Unsupported platform: {}".format(sys.platform))\n'
        "ValueError: Unsupported platform: openbsd7\n",
        ("ValueError: Unsupported platform: openbsd7\n",),
    ),
    # ---- pip-missing ----
    (
        "pip-missing",
        "D:\\envs\\demo\\Scripts\\python.exe: No module named pip\n",
        ("D:\\envs\\demo\\Scripts\\python.exe: No module named pipx_helpers\n",),
    ),
    (
        "pip-missing",
        '  File "/usr/local/bin/pip2", line 7, in <module>\n    from pip._internal import main\nImportError: No module named pip._internal\n',
        ("ImportError: No module named pipeline_utils\n",),
    ),
    # ---- pkg-resources-missing ----
    (
        "pkg-resources-missing",
        '  File "/opt/env/lib/python3.10/site-packages/kernels/setup_helpers.py", line 12, in <module>\n'
        "    pkg_resources.packaging.version.parse(torch.__version__)\n"
        "AttributeError: module 'pkg_resources' has no attribute 'packaging'\n",
        ("AttributeError: module 'pkg_resources' has no attribute 'declare_ns'\n",),
    ),
    # ---- torch-version-unparsable ----
    (
        "torch-version-unparsable",
        '  File "setup.py", line 31, in <module>\n'
        '    if StrictVersion(torch.__version__) < StrictVersion("1.10.0"):\n'
        "ValueError: invalid version number '2.3.1+cu118'\n",
        # a plain X.Y.Z refused is not torch's label, and without torch in the log it is another tool's version
        (
            '  File "setup.py", line 31, in <module>\n'
            '    if StrictVersion(torch.__version__) < StrictVersion("1.10.0"):\n'
            "ValueError: invalid version number '2.3.1'\n",
            "ValueError: invalid version number '4.2.0rc1'\n",
        ),
    ),
    # ---- prebuilt-download-failed ----
    (
        "prebuilt-download-failed",
        GUESS + "http.client.IncompleteRead: IncompleteRead(524288 bytes read, 190000000 more expected)\n",
        # no wheel download in the log: another request's IncompleteRead
        ("http.client.IncompleteRead: IncompleteRead(524288 bytes read, 190000000 more expected)\n",),
    ),
    (
        "prebuilt-download-failed",
        GUESS + "ssl.SSLError: [SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed or bad record mac (_ssl.c:2580)\n",
        ("ssl.SSLError: [SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed or bad record mac (_ssl.c:2580)\n",),
    ),
    (
        "prebuilt-download-failed",
        GUESS + "ConnectionAbortedError: [WinError 10053] An established connection was aborted by the software in your host machine\n",
        ("ConnectionAbortedError: [WinError 10053] An established connection was aborted by the software in your host machine\n",),
    ),
    # ---- dependency-missing ----
    (
        "dependency-missing",
        "ERROR: Could not find a final version that satisfies the requirement einops>=9.0 (from mamba-ssm) "
        "(from versions: 0.6.1, 0.7.0, 0.8.0)\n"
        "ERROR: No matching distribution found for einops>=9.0\n",
        ("pip says: could not find a final version of the docs\n",),
    ),
    (
        "dependency-missing",
        "ImportError: tokenizers>=0.21,<0.22 is required for a normal functioning of this module, but found tokenizers==0.15.2.\n"
        "Try: `pip install transformers -U` or `pip install -e '.[dev]'` if you're working with git main\n",
        ("tokenizers is required for a normal functioning of this module (see the docs)\n",),
    ),
    (
        "dependency-missing",
        "pkg_resources.ContextualVersionConflict: (einops 0.3.0 (/opt/env/lib/python3.9/site-packages), Requirement.parse('einops>=0.6'), {'mamba-ssm'})\n",
        ("the docs explain pkg_resources.VersionConflict in detail\n",),
    ),
    (
        "dependency-missing",
        "error: ninja 1.10.0 is installed but ninja>=1.11.1 is required by {'causal-conv1d'}\n",
        ("error: ninja 1.10.0 is installed but a newer one is required\n",),
    ),
    # ---- package-version-mismatch ----
    (
        "package-version-mismatch",
        "TypeError: causal_conv1d_fn() got an unexpected keyword argument 'initial_states'\n",
        # the user's own function with the same error: not the two packages' APIs
        ("TypeError: build_model() got an unexpected keyword argument 'd_conv'\n",),
    ),
    (
        "package-version-mismatch",
        "TypeError: causal_conv1d_update() takes from 4 to 5 positional arguments but 7 were given\n",
        (),
    ),
]


@pytest.mark.parametrize(("fid", "snippet", "nears"), CASES, ids=_case_ids(CASES))
def test_sweep_format_is_answered_and_near_miss_is_not(fid: str, snippet: str, nears: tuple[str, ...]) -> None:
    _answered_not_near(fid, snippet, *nears)


# ---- build-isolation-no-torch ----


def test_uv_hint_that_the_package_imports_torch_without_declaring_it():
    named = (
        "  hint: This error likely indicates that `causal-conv1d@1.5.2` depends on `torch`, but doesn't declare it as a "
        "build dependency. If `causal-conv1d` is a first-party package, consider adding `torch` to its "
        "`build-system.requires`. Otherwise, either add it to your `pyproject.toml` under:\n"
    )
    anon = (
        "  hint: This error likely indicates that a package depends on `torch`, but doesn't declare it as a build "
        "dependency. If the package is a first-party package, consider adding `torch` to its `build-system.requires`. "
        "Otherwise, `uv pip install torch` into the environment and re-run with `--no-build-isolation`.\n"
    )
    # answered by the pattern written from uv's source alone, with the one learned from a corpus log held out
    held_out = ex.load_catalog(without=frozenset({"public:096"}))
    assert _found(named, held_out)[0] == "build-isolation-no-torch"
    assert _found(anon, held_out)[0] == "build-isolation-no-torch"
    # the same hint for another module is not torch missing from the build env
    assert _found(named.replace("`torch`", "`wheel`"), held_out)[0] != "build-isolation-no-torch"


# ---- dependency-missing ----


def test_pip26_final_version_top_level_is_weak():
    log = (
        "ERROR: Could not find a final version that satisfies the requirement causal-conv1d==9.9 (from versions: 1.4.0, 1.5.2)\n"
        "ERROR: No matching distribution found for causal-conv1d==9.9\n"
    )
    assert _found(log) == ("dependency-missing", "low")
    py = "ERROR: Ignored the following versions that require a different python version: 1.6.0 Requires-Python >=3.9\n" + log
    assert _root(py) != "dependency-missing"


def test_conda_packages_not_found_is_weak():
    log = (
        "PackagesNotFoundError: The following packages are not available from current channels:\n\n"
        "  - causal-conv1d=1.5.2\n\nCurrent channels:\n\n  - https://repo.anaconda.com/pkgs/main/linux-64\n"
    )
    assert _found(log) == ("dependency-missing", "low")
    assert _root("The following packages are not available from current channels is a conda message\n") != "dependency-missing"


def test_uv_package_not_found_in_the_registry_is_weak():
    log = (
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because selective-scan-cuda was not found in the package registry and you require selective-scan-cuda, "
        "we can conclude that your requirements are unsatisfiable.\n"
    )
    assert _found(log) == ("dependency-missing", "low")
    assert _root("selective-scan-cuda was not found in the package registry yesterday\n") != "dependency-missing"
