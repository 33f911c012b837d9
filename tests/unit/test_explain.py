"""`mamba-build explain`: catalog, root-cause ordering, placeholders, limits, JSON and CLI exit codes.

The one-line snippets below follow the exact wording of the tools that print them (sources in
mamba_build/data/failures.toml); the real, whole logs are tested in
tests/integration/test_explain_real_logs.py.
"""

from __future__ import annotations

import argparse
import codecs
import inspect
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mamba_build.commands import explain as cmd
from mamba_build.diagnose import explain as ex
from mamba_build.errors import ExitCode, UsageError

REPO = Path(__file__).resolve().parents[2]
SHARED_LOGS = REPO.parent / "shared" / "failure-logs"
OUR_LOGS = REPO / "tests" / "data" / "failure-logs"

CASCADE_TAIL = """\
      ninja: build stopped: subcommand failed.
      Traceback (most recent call last):
        File "/home/user/venv/lib/python3.11/site-packages/torch/utils/cpp_extension.py", line 2906, in _run_ninja_build
          subprocess.run(
      subprocess.CalledProcessError: Command '['ninja', '-v', '-j', '2']' returned non-zero exit status 1.

      The above exception was the direct cause of the following exception:

      RuntimeError: Error compiling objects for extension
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
  ERROR: Failed building wheel for mamba_ssm
Failed to build mamba_ssm
ERROR: Failed to build one or more wheels
"""

# id -> a log excerpt that must be explained with that id first
SNIPPETS = {
    "platform-unsupported": "      error: Microsoft Visual C++ 14.0 or greater is required. Get it with "
                            "\"Microsoft C++ Build Tools\": https://visualstudio.microsoft.com/visual-cpp-build-tools/\n",
    "build-isolation-no-torch": "  Installing build dependencies: finished with status 'done'\n"
                                "  Getting requirements to build wheel: finished with status 'error'\n"
                                "      ModuleNotFoundError: No module named 'torch'\n",
    "torch-cpu-only": "  torch.__version__  = 2.3.0+cpu\n",
    "cuda-home-missing": "      OSError: CUDA_HOME environment variable is not set. Please set it to your CUDA install root.\n",
    "cuda-home-wrong": "  W1122 15:10:50.591000 7973 torch/utils/cpp_extension.py:183] No CUDA runtime is found, "
                       "using CUDA_HOME='/usr/local'\n"
                       "  /x/torch/include/c10/cuda/CUDAStream.h:4:10: fatal error: cuda_runtime_api.h: "
                       "No such file or directory\n" + CASCADE_TAIL,
    "cuda-major-mismatch": "      RuntimeError: ('The detected CUDA version (%s) mismatches the version that was used to "
                           "compilePyTorch (%s). Please make sure to use the same CUDA versions.', '11.8', '12.1')\n",
    "gcc-unsupported": "      RuntimeError: The current installed version of g++ (13.2.0) is greater than the maximum "
                       "required version by CUDA 12.1. Please make sure to use an adequate version of g++ "
                       "(>=6.0.0, <13.0).\n",
    "arch-unsupported": "nvcc fatal   : Unsupported gpu architecture 'compute_120'\n" + CASCADE_TAIL,
    "cxx-standard": "/v/torch/include/ATen/ATen.h:5:2: error: #error C++20 or later compatible compiler is "
                    "required to use ATen.\n" + CASCADE_TAIL,
    "sdist-missing-sources": "ninja: error: '/s/mamba_ssm-2.2.4/csrc/selective_scan/selective_scan.cpp', needed by "
                             "'/s/build/selective_scan.o', missing and no known rule to make it\n" + CASCADE_TAIL,
    "headers-missing": "/usr/include/x.h:1:10: fatal error: Python.h: No such file or directory\n"
                       "compilation terminated.\n" + CASCADE_TAIL,
    "oom-killed": "g++: fatal error: Killed signal terminated program cc1plus\ncompilation terminated.\n" + CASCADE_TAIL,
    "disk-full": "OSError: [Errno 28] No space left on device: '/tmp/pip-build-abc'\n",
    "prebuilt-download-failed": "  Guessing wheel URL:  https://github.com/Dao-AILab/causal-conv1d/releases/download/"
                                "v1.7.0/causal_conv1d-1.7.0+cu12torch2.4cxx11abiTRUE-cp311-cp311-linux_x86_64.whl\n"
                                "  TimeoutError: [Errno 110] Connection timed out\n",
    "glibc-too-old": "ImportError: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.32' not found (required by "
                     "/v/site-packages/selective_scan_cuda.cpython-310-x86_64-linux-gnu.so)\n",
    "glibcxx-missing": "ImportError: /opt/conda/lib/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by "
                       "/v/site-packages/causal_conv1d_cuda.cpython-311-x86_64-linux-gnu.so)\n",
    "abi-undefined-symbol": "ImportError: /v/site-packages/selective_scan_cuda.cpython-310-x86_64-linux-gnu.so: "
                            "undefined symbol: _ZN3c104cuda9SetDeviceEi\n",
    "extension-not-built": "ModuleNotFoundError: No module named 'causal_conv1d_cuda'\n",
    "dependency-missing": "Traceback (most recent call last):\n  File \"run.py\", line 1, in <module>\n"
                          "ModuleNotFoundError: No module named 'einops'\n",
    "package-version-mismatch": "TypeError: causal_conv1d_fwd(): incompatible function arguments. The following "
                                "argument types are supported:\n",
    "driver-too-old": "RuntimeError: The NVIDIA driver on your system is too old (found version 11040). Please "
                      "update your GPU driver by downloading and installing a new version from the URL\n",
    "no-kernel-image": "torch.AcceleratorError: CUDA error: no kernel image is available for execution on the device\n",
    "wheel-tag-mismatch": "ERROR: causal_conv1d-1.7.0+cu12torch2.4cxx11abiTRUE-cp311-cp311-linux_x86_64.whl is not "
                          "a supported wheel on this platform.\n",
    "pip-missing": "/home/user/.venv/bin/python: No module named pip\n",
    "pkg-resources-missing": "  File \"/v/site-packages/torch/utils/cpp_extension.py\", line 25, in <module>\n"
                             "    from pkg_resources import packaging  # type: ignore[attr-defined]\n"
                             "ModuleNotFoundError: No module named 'pkg_resources'\n",
    "torch-version-unparsable": "packaging.version.InvalidVersion: Invalid version: 'gpgpu.1234'\n",
    "toolkit-headers-mixed": "/usr/local/cuda-12.4/include/thrust/system/cuda/config.h:116:2: error: #error The "
                             "version of CUB in your include path is not compatible with this release of Thrust. CUB "
                             "is now included in the CUDA Toolkit, so you no longer need to use your own checkout of "
                             "CUB. Define THRUST_IGNORE_CUB_VERSION_CHECK to ignore this.\n" + CASCADE_TAIL,
    "cuda-runtime-missing": "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory\n",
    "torch-libs-not-loaded": "ImportError: libc10.so: cannot open shared object file: No such file or directory\n",
    "triton-libcuda-missing": "AssertionError: libcuda.so cannot found!\n",
    "build-too-slow": "Building wheels for collected packages: mamba-ssm\n"
                      "  Building wheel for mamba-ssm (setup.py) ... |\n",
    "extension-missing-from-wheel": "  Created wheel for mamba-ssm: filename=mamba_ssm-2.3.0-py3-none-any.whl "
                                    "size=312345 sha256=ab\nSuccessfully built mamba-ssm\n"
                                    "ModuleNotFoundError: No module named 'selective_scan_cuda'\n",
}


def shared_label_ids() -> list[str]:
    text = (SHARED_LOGS / "LABELS.md").read_text(encoding="utf-8")
    return [i for i in re.findall(r"^\| ([a-z0-9-]+) \| [a-z ]+ \|", text, re.M) if i != "id"]


# ------------------------------------------------------------------------------------ catalog


def test_catalog_ids_unique_and_cover_the_shared_labels():
    cat = ex.load_catalog()
    assert len(set(cat.ids)) == len(cat.ids)
    if not (SHARED_LOGS / "LABELS.md").exists():
        pytest.skip("../shared/failure-logs not present")
    labels = shared_label_ids()
    assert len(labels) >= 20
    assert set(labels) <= set(cat.ids), set(labels) - set(cat.ids)


def test_catalog_is_cached_and_every_entry_is_complete():
    cat = ex.load_catalog()
    assert ex.load_catalog() is cat
    phases = {"download", "configure", "compile", "link", "import", "runtime", "any"}
    for e in cat.entries:
        assert e.phase in phases, e.id
        assert e.patterns and e.cause and e.fix and e.source, e.id
        assert e.cause.rstrip().endswith(".") and e.fix.rstrip().endswith("."), e.id


def test_rank_order_is_most_fundamental_first():
    rank = {e.id: e.rank for e in ex.load_catalog().entries}
    order = ["platform-unsupported", "build-isolation-no-torch", "torch-cpu-only", "cuda-home-missing",
             "cuda-home-wrong", "cuda-major-mismatch", "gcc-unsupported", "arch-unsupported",
             "sdist-missing-sources", "headers-missing", "oom-killed", "disk-full"]
    assert [rank[i] for i in order] == sorted(rank[i] for i in order)
    assert max(rank[i] for i in order) < min(rank[i] for i in ("abi-undefined-symbol", "glibcxx-missing",
                                                                "extension-not-built", "dependency-missing"))
    assert rank["abi-undefined-symbol"] < rank["no-kernel-image"]


def test_every_regex_has_a_required_literal():
    """No regex falls back to 'try on every line' (that keeps 64 MiB logs fast)."""
    assert ex.load_catalog().always == frozenset()


def _all_lines():
    for text in SNIPPETS.values():
        yield from text.splitlines()
    for d in (SHARED_LOGS, OUR_LOGS):
        for p in sorted(d.glob("*.log")):
            yield from p.read_text(encoding="utf-8", errors="replace").splitlines()


def test_required_literals_are_sound_on_every_known_line():
    cat = ex.load_catalog()
    pats = [p for e in cat.entries for p in (*e.patterns, *e.support, *e.requires, *e.excludes)]
    pats += [*cat.facts, *cat.cascade, *cat.suspicious]
    lits = {p.pattern: ex.required_literals(p) for p in pats}
    for line in _all_lines():
        for p in pats:
            if p.search(line):
                assert any(lit in line for lit in lits[p.pattern]), (p.pattern, line)


@pytest.mark.parametrize("pattern,line", [
    (r"abc(?:def|xyz)+q", "abcxyzq"),
    (r"^\s*Killed\s*$", "  Killed"),
    (r"\w(?:Error|Exception):", "ValueError:"),
])
def test_required_literals_small(pattern, line):
    lits = ex.required_literals(re.compile(pattern))
    assert lits and any(lit in line for lit in lits)
    assert ex.required_literals(re.compile("(?i)error")) is None


# ------------------------------------------------------------------------------------ explaining


@pytest.mark.parametrize("fid", sorted(SNIPPETS))
def test_each_id_is_recognised_first(fid):
    expl = ex.explain_text(SNIPPETS[fid])
    assert expl.ids and expl.ids[0] == fid, expl.ids
    assert not expl.unknown
    root = expl.findings[0]
    assert root.evidence and all(isinstance(n, int) and n >= 1 for n, _ in root.evidence)
    assert "{" not in root.cause and "{" not in root.fix


def test_snippets_cover_every_catalog_id():
    assert set(SNIPPETS) == set(ex.load_catalog().ids)


def test_cascade_reports_the_root_not_the_consequences():
    expl = ex.explain_text(SNIPPETS["cuda-home-wrong"])
    assert expl.ids == ("cuda-home-wrong",)  # not headers-missing for the same line, nothing for ninja/pip
    ev = [t for _, t in expl.findings[0].evidence]
    assert any("cuda_runtime_api.h" in t for t in ev)
    assert not any("Error compiling objects" in t or "ninja: build stopped" in t for t in ev)


def test_header_missing_with_a_real_toolkit_is_headers_missing():
    text = SNIPPETS["cuda-home-wrong"].replace("CUDA_HOME='/usr/local'", "CUDA_HOME='/usr/local/cuda-12.1'")
    assert ex.explain_text(text).ids[0] == "headers-missing"


def test_cascade_only_is_unknown_and_lists_the_lines():
    expl = ex.explain_text(CASCADE_TAIL)
    assert expl.unknown and not expl.findings
    texts = [t for _, t in expl.suspicious_lines]
    assert any("Error compiling objects" in t for t in texts)
    assert len(expl.suspicious_lines) <= ex.MAX_SUSPICIOUS


def test_unknown_log_points_at_error_lines_first():
    text = "\n".join(["ok line"] * 5 + ["foo.cu(12): error: identifier \"bar\" is undefined"] + ["x"] * 3) + "\n"
    text += CASCADE_TAIL
    expl = ex.explain_text(text)
    assert expl.unknown
    assert expl.suspicious_lines[0] == (6, 'foo.cu(12): error: identifier "bar" is undefined')
    out = ex.render_text(expl)
    assert "No known cause" in out and "line 6:" in out


def test_independent_problems_all_reported_most_fundamental_first():
    # arch line first in the file, gcc line later: gcc is more fundamental and goes first
    text = SNIPPETS["arch-unsupported"] + SNIPPETS["gcc-unsupported"] + SNIPPETS["torch-cpu-only"]
    expl = ex.explain_text(text)
    assert expl.ids == ("torch-cpu-only", "gcc-unsupported", "arch-unsupported")
    assert ex.explain_text(text, max_findings=1).ids == ("torch-cpu-only",)


def test_cpu_torch_and_missing_cuda_home():
    expl = ex.explain_text(SNIPPETS["torch-cpu-only"] + SNIPPETS["cuda-home-missing"])
    assert expl.ids == ("torch-cpu-only", "cuda-home-missing")


def test_download_failure_that_fell_back_to_source_is_not_the_cause():
    text = (SNIPPETS["prebuilt-download-failed"] + "  Precompiled wheel not found. Building from source...\n"
            + SNIPPETS["oom-killed"])
    assert ex.explain_text(text).ids == ("oom-killed",)


def test_numpy_warning_is_not_a_missing_dependency():
    text = ("  /v/torch/_subclasses/functional_tensor.py:368: UserWarning: Failed to initialize NumPy: "
            "No module named 'numpy' (Triggered internally at /p/tensor_numpy.cpp:84.)\n")
    expl = ex.explain_text(text)
    assert "dependency-missing" not in expl.ids


def test_torch_missing_at_runtime_is_a_dependency_not_build_isolation():
    text = "Traceback (most recent call last):\n  File \"train.py\", line 1, in <module>\n" \
           "ModuleNotFoundError: No module named 'torch'\n"
    assert ex.explain_text(text).ids == ("dependency-missing",)


def test_clean_build_log_has_no_finding():
    text = ("Building wheels for collected packages: tinyext\n"
            "  [1/2] /usr/local/cuda-13.0/bin/nvcc -c k.cu -o k.o -I/usr/local/cuda-13.0/include\n"
            "  warning: install_lib: byte-compiling is disabled, skipping.\n"
            "  Created wheel for tinyext: filename=tinyext-0.0.1-cp311-cp311-linux_x86_64.whl\n"
            "Successfully built tinyext\n")
    expl = ex.explain_text(text)
    assert expl.findings == () and expl.unknown and expl.suspicious_lines == ()
    assert "No failure found" in ex.render_text(expl)


# ------------------------------------------------------------------------------------ placeholders


def test_major_mismatch_fix_is_filled_from_log_and_context():
    text = ("  W0101 00:00:00.000000 1 torch/utils/cpp_extension.py:183] No CUDA runtime is found, "
            "using CUDA_HOME='/usr/local/cuda-11.8'\n" + SNIPPETS["cuda-major-mismatch"])
    ctx = {"toolkits": "/usr/local/cuda-11.8,/usr/local/cuda-12.1", "torch_cuda": "12.1"}
    f = ex.explain_text(text, ctx).findings[0]
    assert f.id == "cuda-major-mismatch"
    want = "your torch is CUDA 12.1, nvcc at /usr/local/cuda-11.8 is 11.8: use /usr/local/cuda-12.1"
    assert want.lower() in f.fix.lower()
    assert "mamba-build toolchain install --cuda 12.1" in f.fix


def test_major_mismatch_formatted_message_of_older_torch():
    text = ("RuntimeError: The detected CUDA version (12.4) mismatches the version that was used to compile "
            "PyTorch (11.8). Please make sure to use the same CUDA versions.\n")
    f = ex.explain_text(text).findings[0]
    assert f.id == "cuda-major-mismatch" and "CUDA 11.8" in f.fix and "12.4" in f.fix


def test_major_mismatch_without_versions_reads_as_a_template_and_says_how_to_fill_it():
    # nvcc older than CUDA 10.2 names no version (blind:1177); the text used to read "CUDA another CUDA version"
    text = "nvcc fatal   : Unknown option '-generate-dependencies-with-compile'\n"
    expl = ex.explain_text(text)
    f = expl.findings[0]
    assert f.id == "cuda-major-mismatch"
    assert "is CUDA A.B but your torch was built with CUDA X.Y" in f.cause
    assert "`mamba-build toolchain install --cuda X.Y`" in f.fix and "another CUDA version" not in f.fix
    assert {"nvcc_cuda", "torch_cuda", "toolkit"} <= set(f.not_in_log)
    assert expl.to_dict()["findings"][0]["not_in_log"] == list(f.not_in_log)
    out = " ".join(ex.render_text(expl).split())
    assert "Not in the log: A.B is nvcc's CUDA version (`nvcc --version`)" in out
    assert "`mamba-build explain --here` fills in X.Y and /usr/local/cuda-X.Y" in out
    assert "--here" not in " ".join(ex.render_text(expl, here=True).split())
    # the log states both versions: nothing to fill by hand but the toolkit's path
    f = ex.explain_text("RuntimeError: The detected CUDA version (12.4) mismatches the version that was used to "
                        "compile PyTorch (11.8). Please make sure to use the same CUDA versions.\n").findings[0]
    assert "nvcc_cuda" not in f.not_in_log and "torch_cuda" not in f.not_in_log and "toolkit" in f.not_in_log


def test_defaults_never_put_prose_inside_a_command():
    # a value the log does not state must not leave a sentence inside a shell command or a package name
    f = ex.explain_text(SNIPPETS["build-isolation-no-torch"]).findings[0]
    assert "`pip install --no-build-isolation <package>`" in f.fix and "package_spec" in f.not_in_log
    named = SNIPPETS["build-isolation-no-torch"].replace(
        "  Installing", "Building wheels for collected packages: mamba-ssm\n  Installing")
    f = ex.explain_text("Collecting mamba-ssm\n" + named).findings[0]  # the log names it: the command too
    assert "`pip install --no-build-isolation mamba-ssm`" in f.fix and f.not_in_log == ()
    host_config = "/usr/local/cuda/include/crt/host_config.h:132:2: error: #error -- unsupported GNU version!\n"
    f = ex.explain_text(host_config).findings[0]
    assert f.id == "gcc-unsupported"
    assert "`CC=gcc-N CXX=g++-N`" in f.fix and "see the #error line)/" not in f.fix
    out = " ".join(ex.render_text(ex.explain_text(host_config)).split())
    assert "N is the newest gcc major the toolkit accepts" in out
    f = ex.explain_text("CUDA driver version is insufficient for CUDA runtime version\n").findings[0]
    assert f.id == "driver-too-old"
    assert f.cause == "The NVIDIA driver (its version not shown in the log) is too old for the CUDA runtime these binaries use."


def test_every_placeholder_help_names_a_default_used_by_some_text():
    cat = ex.load_catalog()
    texts = " ".join(e.cause + " " + e.fix for e in cat.entries)
    assert cat.placeholder_help
    for key, (means, _here) in cat.placeholder_help:
        assert key in dict(cat.defaults), key  # the template value the help explains
        assert "{" + key + "}" in texts, key  # and some cause or fix shows it
        assert means.strip(), key


def test_doctor_check_families_are_shown_as_families():
    out = " ".join(ex.render_text(ex.explain_text(SNIPPETS["no-kernel-image"])).split())
    assert "(checks archs:*, gpu-arch)" in out
    out = " ".join(ex.render_text(ex.explain_text(SNIPPETS["cuda-major-mismatch"])).split())
    assert "(check torch-vs-nvcc)" in out


def test_cuda_home_wrong_fix_names_the_guess_and_the_real_toolkit():
    f = ex.explain_text(SNIPPETS["cuda-home-wrong"], {"toolkits": "/usr/local/cuda-13.0"}).findings[0]
    assert "CUDA_HOME is /usr/local," in f.cause
    assert "export CUDA_HOME=/usr/local/cuda-13.0" in f.fix
    f = ex.explain_text(SNIPPETS["cuda-home-wrong"]).findings[0]  # no context: readable default
    assert "export CUDA_HOME=/usr/local/cuda-X.Y" in f.fix and "{" not in f.fix


def test_log_values_win_over_context():
    f = ex.explain_text(SNIPPETS["cuda-home-wrong"], {"cuda_home": "/opt/cuda"}).findings[0]
    assert "/usr/local," in f.cause and "/opt/cuda" not in f.cause


def test_gcc_and_arch_placeholders():
    f = ex.explain_text(SNIPPETS["gcc-unsupported"]).findings[0]
    assert "gcc-12" in f.fix and "13.2.0" in f.cause
    f = ex.explain_text(SNIPPETS["arch-unsupported"], {"nvcc_version": "12.4"}).findings[0]
    assert "compute_120" in f.cause and "12.4" in f.cause and "sm_120" in f.fix


def test_no_kernel_image_uses_the_gpu_arch_from_context():
    f = ex.explain_text(SNIPPETS["no-kernel-image"], {"gpu_arch": "sm_90"}).findings[0]
    assert "--arch 9.0" in f.fix


def test_fill_never_raises():
    assert ex.fill("a {x} b", {"x": "1"}) == "a 1 b"
    assert ex.fill("{missing}", {}) == "<missing>"
    assert ex.fill("{missing}", {}, {"missing": "dflt"}) == "dflt"
    assert ex.fill("{x.attr} {", {"x": "1"}) == "{x.attr} {"
    assert ex.fill("{0}", {}) == "{0}"
    assert ex.fill("{v}", {"v": "{not a field}"}) == "{not a field}"


# ------------------------------------------------------------------------------------ JSON


def test_json_schema():
    expl = ex.explain_text(SNIPPETS["cuda-home-wrong"])
    d = json.loads(json.dumps(expl.to_dict()))
    # fields are only ever added (the contract of --json): the original ones keep their meaning
    assert {"schema", "unknown", "findings", "suspicious_lines", "lines_read", "truncated"} <= set(d)
    assert {"facts", "second_candidate", "alternatives", "follow_on_lines"} <= set(d)
    assert d["schema"] == 1 and d["unknown"] is False and d["truncated"] is False
    assert isinstance(d["lines_read"], int) and d["lines_read"] > 5
    f = d["findings"][0]
    assert {"id", "phase", "rank", "cause", "fix", "evidence"} <= set(f) and f["confidence"] == "high"
    assert all(set(e) == {"line", "text"} for e in d["follow_on_lines"])
    assert any("Error compiling objects" in e["text"] for e in d["follow_on_lines"])
    assert f["id"] == "cuda-home-wrong" and f["phase"] == "compile"
    assert all(set(e) == {"line", "text"} and isinstance(e["line"], int) for e in f["evidence"])
    u = ex.explain_text(CASCADE_TAIL).to_dict()
    assert u["unknown"] is True and u["findings"] == []
    assert all(set(e) == {"line", "text"} for e in u["suspicious_lines"])


# ------------------------------------------------------------------------------------ limits


def test_binary_file_is_refused(tmp_path):
    p = tmp_path / "core.log"
    p.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 50)
    with pytest.raises(UsageError) as err:
        ex.explain_file(p)
    assert err.value.exit_code == ExitCode.USAGE and "not a text log" in err.value.message


def test_non_text_bytes_without_nul_are_refused(tmp_path):
    p = tmp_path / "rand.log"
    p.write_bytes(bytes((i * 131 + 7) % 255 + 1 for i in range(20000)))
    with pytest.raises(UsageError):
        ex.explain_file(p)


def test_empty_and_missing_files(tmp_path):
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    expl = ex.explain_file(p)
    assert expl.lines_read == 0 and expl.unknown and not expl.truncated
    assert "empty" in ex.render_text(expl)
    with pytest.raises(UsageError):
        ex.explain_file(tmp_path / "nope.log")
    with pytest.raises(UsageError):
        ex.explain_file(tmp_path)


def test_utf16_log_with_bom(tmp_path):
    p = tmp_path / "ps.log"
    p.write_bytes(codecs.BOM_UTF16_LE + SNIPPETS["arch-unsupported"].encode("utf-16-le"))
    assert ex.explain_file(p).ids[0] == "arch-unsupported"


def test_ansi_colours_and_crlf_are_tolerated():
    text = "\x1b[31mnvcc fatal   : Unsupported gpu architecture 'compute_70'\x1b[0m\r\n"
    assert ex.explain_text(text).ids == ("arch-unsupported",)


def test_colour_codes_inside_a_message_are_dropped_before_matching():
    # gcc with -fdiagnostics-color=always (CI logs, FORCE_COLOR): the codes sit between "fatal error: " and the
    # header's name, which the pattern needs next to each other; the evidence is shown without them
    coloured = (
        "\x1b[01m\x1b[Kcsrc/selective_scan/selective_scan.cpp:5:10:\x1b[m\x1b[K \x1b[01;31m\x1b[Kfatal error: "
        "\x1b[m\x1b[Kcuda_runtime_api.h: No such file or directory\n"
    )
    expl = ex.explain_text(coloured)
    assert expl.ids == ("headers-missing",)
    assert all("\x1b" not in t for _, t in expl.findings[0].evidence)


def test_very_long_lines_are_cut(tmp_path):
    long = "nvcc fatal   : Unsupported gpu architecture 'compute_70' " + "x" * 5_000_000 + "\nnext line\n"
    p = tmp_path / "long.log"
    p.write_text(long)
    expl = ex.explain_file(p)
    assert expl.ids == ("arch-unsupported",) and expl.lines_read == 2
    assert all(len(t) <= ex.EVIDENCE_CHARS for _, t in expl.findings[0].evidence)


# two lines of build output that name no cause: the noise after the root of the long logs below
_NOISE = (b"  copying mamba_ssm/ops/triton/layer_norm.py -> build/lib.linux-x86_64-cpython-311/mamba_ssm/ops\n"
          b"[3/40] /usr/local/cuda-13.0/bin/nvcc -c csrc/k.cu -o k.o -O3 --use_fast_math -I/usr/local/cuda/include\n")


def _root_head() -> bytes:
    """The top of a long log: a cuda-home-wrong failure."""
    return (SHARED_LOGS / "02-cuda-home-wrong.log").read_bytes() if SHARED_LOGS.exists() \
        else SNIPPETS["cuda-home-wrong"].encode()


def _huge_log(tmp_path) -> Path:
    head = _root_head()
    filler = _NOISE * 4096
    p = tmp_path / "huge.log"
    with open(p, "wb") as fh:
        fh.write(head)
        written = len(head)
        while written < 200 * 1024 * 1024:
            fh.write(filler)
            written += len(filler)
    assert p.stat().st_size >= 200 * 1024 * 1024
    return p


def test_200_mb_log_is_bounded(tmp_path, monkeypatch):
    """A 200 MB log: read up to the byte bound only, streamed; the root near the top is still found. The time
    budget is taken out of the way (its own test is below), so the count of lines read does not depend on how
    fast this machine scans: 4 MiB of ~100-byte lines."""
    monkeypatch.setattr(ex, "TIME_BUDGET_S", 3600.0)
    p = _huge_log(tmp_path)
    expl = ex.explain_file(p, max_bytes=4 * 1024 * 1024)
    assert expl.truncated is True
    assert expl.ids[0] == "cuda-home-wrong"
    assert 35_000 < expl.lines_read < 45_000  # 4 MiB worth of lines, not 200 MB
    assert "cut" in ex.render_text(expl)
    assert inspect.signature(ex.explain_file).parameters["max_bytes"].default == ex.MAX_BYTES == 64 * 1024 * 1024


def _batches_log(tmp_path) -> Path:
    """_huge_log's shape (the root at the top, then noise) at about 3 scan batches of lines, not 200 MB: a scan that
    did not stop would read past the 2 batches the time budget's test allows."""
    p = tmp_path / "batches.log"
    p.write_bytes(_root_head() + _NOISE * (3 * ex.BATCH_LINES // 2))
    assert p.read_bytes().count(b"\n") >= 3 * ex.BATCH_LINES
    return p


def test_time_budget_stops_a_slow_scan_and_keeps_the_root(tmp_path, monkeypatch):
    """The scan's time budget: with none left after the first batch, explain stops there, says the log was cut,
    and still names the root cause it read before."""
    monkeypatch.setattr(ex, "TIME_BUDGET_S", 0.0)
    expl = ex.explain_file(_batches_log(tmp_path))
    assert expl.truncated is True
    assert expl.ids[0] == "cuda-home-wrong"
    assert expl.lines_read <= 2 * ex.BATCH_LINES
    assert "cut" in ex.render_text(expl)


def test_stdin_dash(monkeypatch):
    class FakeStdin:
        buffer = io.BytesIO(SNIPPETS["disk-full"].encode())

        def isatty(self):
            return False

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    assert ex.explain_file("-").ids == ("disk-full",)


# ------------------------------------------------------------------------------------ command


def _run_cmd(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cmd.register(parser)
    return cmd.run(parser.parse_args(list(argv)))


def test_command_exit_codes_in_process(tmp_path, capsys):
    known = tmp_path / "k.log"
    known.write_text(SNIPPETS["gcc-unsupported"])
    unknown = tmp_path / "u.log"
    unknown.write_text("something: error: new failure\n")
    assert _run_cmd(str(known)) == 0
    assert "[gcc-unsupported]" in capsys.readouterr().out
    assert _run_cmd(str(unknown)) == 1
    assert "No known cause" in capsys.readouterr().out
    assert _run_cmd(str(known), "--json") == 0
    assert json.loads(capsys.readouterr().out)["findings"][0]["id"] == "gcc-unsupported"
    with pytest.raises(UsageError):
        _run_cmd(str(tmp_path / "absent.log"))


def _cli(*args: str, stdin: bytes | None = None):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "mamba_build", "explain", *args], input=stdin,
                          capture_output=True, cwd=REPO, env=env, timeout=120)


def test_cli_exit_codes(tmp_path):
    known = tmp_path / "k.log"
    known.write_text(SNIPPETS["cuda-home-wrong"])
    binary = tmp_path / "b.log"
    binary.write_bytes(b"\x00\x01\x02" * 1000)
    r = _cli(str(known))
    assert r.returncode == 0, r.stderr
    assert b"[cuda-home-wrong]" in r.stdout and b"Fix:" in r.stdout
    r = _cli("--json", "-", stdin=b"hello\nworld\n")
    assert r.returncode == 1
    assert json.loads(r.stdout)["unknown"] is True
    r = _cli(str(tmp_path / "missing.log"))
    assert r.returncode == 2 and b"usage error" in r.stderr
    r = _cli(str(binary))
    assert r.returncode == 2 and b"not a text log" in r.stderr
