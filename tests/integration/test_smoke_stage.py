"""smoke_test_wheels for real (pip --target, child Python), with tiny pure-Python wheels.

The wheels here only pretend to be causal-conv1d, to exercise staging and reporting; the CUDA
path is exercised with the real causal-conv1d wheel by the compile integration test.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from mamba_build.build.smoke import smoke_test_wheels
from mamba_build.errors import SmokeTestError
from tests.conftest import has_gpu

PYTHON = sys.executable


def make_wheel(dest: Path, dist: str, version: str, files: dict[str, str]) -> Path:
    """A minimal valid py3-none-any wheel holding ``files`` (path -> text)."""
    dist_info = f"{dist}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    contents[f"{dist_info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: mamba-build-tests\nRoot-Is-Purelib: true\n"
                                      "Tag: py3-none-any\n")
    tops = sorted({p.split("/")[0].removesuffix(".py") for p in files})
    contents[f"{dist_info}/top_level.txt"] = "\n".join(tops) + "\n"
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    wheel = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in contents.items():
            zf.writestr(path, text)
    return wheel


def _site_packages_snapshot() -> set[str]:
    purelib = Path(sysconfig.get_paths()["purelib"])
    return {p.name for p in purelib.iterdir()}


def _installed_in_env(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_broken_wheel_fails_and_never_touches_the_env(tmp_path):
    assert not _installed_in_env("causal_conv1d"), "this env already has causal_conv1d; the test needs it absent"
    wheel = make_wheel(tmp_path, "causal_conv1d", "1.7.0", {
        "causal_conv1d/__init__.py": "raise ImportError('broken on purpose: undefined symbol _ZN3c10fake')\n",
    })
    before = _site_packages_snapshot()
    report = smoke_test_wheels([wheel], python=PYTHON, workdir=tmp_path / "work", timeout=300)
    after = _site_packages_snapshot()

    assert before == after, f"site-packages changed: {sorted(after ^ before)}"
    assert not _installed_in_env("causal_conv1d")
    assert not report.passed and report.verdict == "fail"
    assert report.packages == ("causal_conv1d",)
    by_name = {c.name: c for c in report.checks}
    assert by_name["import causal_conv1d"].status == "fail"
    assert "broken on purpose" in by_name["import causal_conv1d"].detail
    assert by_name["import causal_conv1d_cuda"].status == "fail"  # the wheel holds no CUDA module
    assert by_name["causal_conv1d"].status == "skipped"
    # it was staged, not installed
    assert (report.staging_dir / "causal_conv1d" / "__init__.py").is_file()
    assert report.log_path and "broken on purpose" in report.log_path.read_text()
    with pytest.raises(SmokeTestError) as info:
        report.raise_for_failure()
    assert info.value.exit_code == 7 and "nothing was installed" in info.value.fix


@pytest.mark.skipif(has_gpu(), reason="without a GPU only: on a GPU the fake would (rightly) fail the kernels")
def test_importable_wheel_without_gpu_is_import_only_not_a_pass(tmp_path):
    wheel = make_wheel(tmp_path, "causal_conv1d", "1.7.0", {
        "causal_conv1d/__init__.py": "import torch\nimport causal_conv1d_cuda\n",
        "causal_conv1d_cuda.py": "FAKE = True\n",
    })
    report = smoke_test_wheels([wheel], python=PYTHON, workdir=tmp_path / "work", timeout=300)
    assert report.gpu is False
    assert report.passed is True  # means only: the staged modules import
    assert report.verdict == "import-only"
    assert "not a pass" in report.summary()
    statuses = {c.name: c.status for c in report.checks}
    assert statuses == {"import causal_conv1d_cuda": "ok", "import causal_conv1d": "ok", "causal_conv1d": "skipped"}
    assert all(str(report.staging_dir) in c.detail for c in report.checks if c.name.startswith("import "))


def test_wheel_of_another_package_is_a_failure(tmp_path):
    wheel = make_wheel(tmp_path, "not_mamba", "0.1", {"not_mamba/__init__.py": ""})
    report = smoke_test_wheels([wheel], python=PYTHON, workdir=tmp_path / "work", timeout=300)
    assert not report.passed and "hold no extension module" in report.checks[0].detail


def test_missing_wheel_file_is_a_failure(tmp_path):
    report = smoke_test_wheels([tmp_path / "nope.whl"], python=PYTHON, workdir=tmp_path / "work")
    assert not report.passed and "not found" in report.checks[0].detail


def test_a_pre_started_child_gives_the_same_verdict_and_imports_from_staging(tmp_path):
    from mamba_build.build.smoke.stage import WarmChild

    wheel = make_wheel(tmp_path, "causal_conv1d", "1.7.0", {
        "causal_conv1d/__init__.py": "raise ImportError('broken on purpose: undefined symbol _ZN3c10fake')\n",
    })
    cold = smoke_test_wheels([wheel], python=PYTHON, workdir=tmp_path / "cold", timeout=300)
    warm = WarmChild(PYTHON, tmp_path / "warm")
    report = smoke_test_wheels([wheel], python=PYTHON, workdir=tmp_path / "warm", timeout=300, warm=warm)
    assert [(c.name, c.status) for c in report.checks] == [(c.name, c.status) for c in cold.checks]
    assert not report.passed and "broken on purpose" in {c.name: c for c in report.checks}["import causal_conv1d"].detail
    log = report.log_path.read_text()
    assert "pre-started" in log and "--wait-for" in log  # the warm child ran the checks, not a fresh one
    warm.abort()  # after go: a no-op


def test_an_aborted_pre_started_child_exits_untested(tmp_path):
    import time

    from mamba_build.build.smoke.stage import WarmChild

    warm = WarmChild(PYTHON, tmp_path / "w")
    start = time.monotonic()
    warm.abort()
    assert warm.result is not None and warm.result.result.returncode == 3 and warm.result.records == []
    assert time.monotonic() - start < 30


def test_the_result_comes_through_the_child_protocol_not_stdout(tmp_path):
    """What the staged modules write on stdout (fd 1: torch, triton and C extensions do) cannot spoil the result: it
    comes back in checks.py's result file (mamba_build/child.py), one record per check."""
    wheel = make_wheel(tmp_path, "causal_conv1d", "1.7.0", {
        "causal_conv1d/__init__.py": (
            "import os\nos.write(1, b'{\"checks\": [], \"gpu\": true}\\n')\nraise ImportError('broken on purpose')\n"
        ),
    })
    report = smoke_test_wheels([wheel], python=PYTHON, workdir=tmp_path / "work", timeout=300)
    assert not report.passed and report.gpu is False
    assert {c.name: c.status for c in report.checks}["import causal_conv1d"] == "fail"
    log = report.log_path.read_text()
    assert '{"checks": [], "gpu": true}' in log.split("# stdout")[1]  # printed, and ignored
    assert '{"check": {"name": "import causal_conv1d", "status": "fail"' in log  # the record the parent read


def test_a_child_killed_in_a_check_keeps_what_it_had_checked_and_names_where_it_died(tmp_path):
    """A kernel that kills its process (a segfault, an illegal address) leaves no final result: the report
    still holds the checks done before it, fails, and names the check that was running."""
    wheel = make_wheel(tmp_path, "causal_conv1d", "1.7.0", {
        "causal_conv1d/__init__.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
        "causal_conv1d_cuda.py": "FAKE = True\n",
    })
    report = smoke_test_wheels([wheel], python=PYTHON, workdir=tmp_path / "work", timeout=300)
    assert not report.passed and report.verdict == "fail"
    by_name = {c.name: c for c in report.checks}
    assert by_name["import causal_conv1d_cuda"].status == "ok"  # done before the crash, kept
    died = by_name["smoke script"]
    assert died.status == "fail"
    assert "killed by SIGSEGV while running import causal_conv1d" in died.detail, died.detail
    assert report.summary() == "smoke test FAILED: smoke script"


def test_read_result_orders_running_and_done_checks():
    from mamba_build.build.smoke.stage import read_result

    head = {"header": {"gpu": True, "device": "H200", "torch": "2.11", "python": "3.12", "expected": ["mamba_ssm"]}}
    ok = {"check": {"name": "import selective_scan_cuda", "status": "ok"}}
    assert read_result([]) == (None, None)
    assert read_result([head, {"running": "import selective_scan_cuda"}, ok]) == (
        {**head["header"], "checks": [ok["check"]]}, "")
    payload, running = read_result([head, {"running": "import selective_scan_cuda"}, ok, {"running": "selective_scan"}])
    assert running == "selective_scan" and payload["device"] == "H200" and payload["checks"] == [ok["check"]]
    final = {"gpu": False, "checks": []}
    assert read_result([head, ok, {"result": final}]) == (final, None)
