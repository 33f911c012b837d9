"""Under CI=true a skipped real-toolchain test is an error (tests/conftest.py::pytest_runtest_makereport).

A child pytest runs a small test file next to a copy of the project's tests/conftest.py, with and without CI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

TESTS = textwrap.dedent("""
    import pytest

    @pytest.mark.toolchain
    def test_toolchain_skips_in_the_body():
        pytest.skip("no toolkit here")

    @pytest.fixture
    def toolkit():
        pytest.skip("network down")

    @pytest.mark.toolchain
    def test_toolchain_skips_in_a_fixture(toolkit):
        pass

    @pytest.mark.toolchain
    @pytest.mark.skipif(True, reason="ccache missing")
    def test_toolchain_skipif():
        pass

    @pytest.mark.toolchain
    @pytest.mark.gpu
    def test_toolchain_gpu_only():
        pytest.skip("no GPU visible")

    def test_not_toolchain():
        pytest.skip("shared logs absent")

    @pytest.mark.toolchain
    @pytest.mark.xfail(reason="known")
    def test_toolchain_xfail():
        assert False

    @pytest.mark.toolchain
    def test_toolchain_passes():
        pass
""")


def run(tmp_path: Path, ci: str | None) -> dict[str, str]:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_sample.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:cacheprovider", "-o", "markers=gpu: x",
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    outcomes = {}
    for m in re.finditer(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL)\s+(?:\[\d+\]\s+)?\S*?::?(test_\w+)", proc.stdout, re.M):
        outcomes[m.group(2)] = m.group(1)
    return outcomes | {"_out": proc.stdout}


def test_ci_turns_toolchain_skips_into_errors(tmp_path):
    got = run(tmp_path, "true")
    out = got.pop("_out")
    assert got.get("test_toolchain_skips_in_the_body") == "FAILED", out
    assert got.get("test_toolchain_skips_in_a_fixture") == "ERROR", out
    assert got.get("test_toolchain_skipif") == "ERROR", out
    assert got.get("test_toolchain_passes") == "PASSED", out
    assert got.get("test_toolchain_xfail") == "XFAIL", out
    assert "CI=true: the real-toolchain test" in out and "no toolkit here" in out
    # allowed: a `gpu` test, and tests that are not real-toolchain tests
    assert "test_toolchain_gpu_only" not in got or got["test_toolchain_gpu_only"] == "SKIPPED", out
    assert "FAILED" not in (got.get("test_not_toolchain"), got.get("test_toolchain_gpu_only"))
    assert re.search(r"[0-9]+ skipped", out), out


@pytest.mark.parametrize("ci", [None, "false"])
def test_without_ci_skips_stay_skips(tmp_path, ci):
    got = run(tmp_path, ci)
    out = got.pop("_out")
    assert "FAILED" not in got.values() and "ERROR" not in got.values(), out
    assert re.search(r"5 skipped", out) and re.search(r"1 xfailed", out), out
