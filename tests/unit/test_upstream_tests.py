"""mamba_build.build.upstream_tests with a real pytest in a child Python, on a small source tree made here.

The tree stands in for an sdist's tests/: parametrized tests, a failing one, one that downloads a model, one
that skips itself. ``gpu=True`` forces the run path (this machine has no GPU); the default detects it."""

from __future__ import annotations

import json
import sys

import pytest

from mamba_build.build.upstream_tests import network_tests, run_upstream_tests
from mamba_build.commands import test as test_cmd
from mamba_build.errors import ExitCode

TESTS = '''
import pytest

@pytest.mark.parametrize("k", range(20))
def test_many(k):
    assert k >= 0

def test_fails():
    assert 1 == 2, "boom"

def test_model():
    from transformers import AutoModel
    AutoModel.from_pretrained("org/model")

class TestGroup:
    def test_hub(self):
        hf_hub_download("org/model", "x.bin")

def test_self_skip():
    pytest.skip("unsupported here")
'''


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "src"
    (root / "tests").mkdir(parents=True)
    (root / "setup.py").write_text("# stands in for causal-conv1d's\n")
    (root / "tests" / "test_ops.py").write_text(TESTS)
    (root / "causal_conv1d").mkdir()
    (root / "causal_conv1d" / "__init__.py").write_text("raise ImportError('the uncompiled source package')\n")
    return root


def _run(tree, tmp_path, **kw):
    kw.setdefault("gpu", True)
    return run_upstream_tests("causal-conv1d", python=sys.executable, workdir=tmp_path / "w", source=str(tree),
                              version="1.7.0+cu13torch2.14", **kw)


def test_network_tests_are_found_by_their_source(tree):
    found = network_tests(tree, [tree / "tests" / "test_ops.py"])
    assert found == {"tests/test_ops.py::test_model": "needs the network or a model download (from_pretrained)",
                     "tests/test_ops.py::TestGroup::test_hub": "needs the network or a model download (hf_hub_download)"}


def test_a_full_run_counts_every_outcome_and_lists_the_skipped_network_tests(tree, tmp_path):
    run = _run(tree, tmp_path)
    assert run.ran and not run.ok
    assert (run.collected, run.selected, run.passed, run.failed, run.skipped) == (24, 24, 20, 1, 1)
    assert sorted(run.network_skipped) == ["tests/test_ops.py::TestGroup::test_hub", "tests/test_ops.py::test_model"]
    assert run.failures[0][0] == "tests/test_ops.py::test_fails" and "boom" in run.failures[0][1]
    assert run.files == ["tests/test_ops.py"] and run.version == "1.7.0+cu13torch2.14"
    assert "1 failed" in run.summary() and "2 needing the network or a model skipped" in run.summary()


def test_a_pytest_killed_in_a_test_keeps_the_outcomes_reported_before_and_fails(tree, tmp_path):
    """A kernel that takes the process down (segfault, illegal address) ends pytest without a session finish: the
    outcomes reported before it still count, and the run fails, naming the last one reported."""
    (tree / "tests" / "test_zz_crash.py").write_text(
        "import os, signal\n\ndef test_ok():\n    pass\n\ndef test_crash():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    run = _run(tree, tmp_path)
    assert run.ran and not run.ok and run.collected == 26
    assert run.passed == 21  # test_ops' 20 + test_zz_crash::test_ok, all before the crash
    assert run.failures[-1][0] == "(the whole run)"
    assert "pytest died (exit -9)" in run.note and "tests/test_zz_crash.py::test_ok" in run.note, run.note


def test_a_sample_is_seeded_and_smaller(tree, tmp_path):
    a = _run(tree, tmp_path / "a", sample=6, seed=3)
    b = _run(tree, tmp_path / "b", sample=6, seed=3)
    assert a.selected == b.selected == 6 and a.collected == 24
    assert a.passed + a.failed + a.skipped + len(a.network_skipped) == 6
    assert "6 selected of 24 collected" in a.summary()


def test_the_tests_never_import_the_uncompiled_source_package(tree, tmp_path):
    (tree / "tests" / "test_import.py").write_text("def test_imp():\n    import causal_conv1d\n")
    run = _run(tree, tmp_path)
    assert any(f[0].endswith("test_imp") and "No module named 'causal_conv1d'" in f[1] for f in run.failures)


def test_time_budget_leaves_the_rest_not_run(tree, tmp_path):
    run = _run(tree, tmp_path, time_budget=0.0)
    assert run.passed == 0 and run.not_run > 0 and "(time budget)" in run.summary()


def test_without_a_gpu_it_collects_and_says_nothing_ran(tree, tmp_path):
    run = _run(tree, tmp_path, gpu=False)
    assert not run.ran and not run.ok and run.collected == 24 and run.passed == 0
    assert "NOT RUN" in run.summary() and "no CUDA GPU" in run.summary() and "24 collected" in run.summary()
    assert test_cmd.exit_code([run]) == ExitCode.NOT_RUN == 10


def test_exit_codes():
    from mamba_build.build.upstream_tests import UpstreamTestRun

    ok = UpstreamTestRun("causal-conv1d", "1", "x", [], "py", "installed", gpu=True, ran=True, passed=3)
    bad = UpstreamTestRun("causal-conv1d", "1", "x", [], "py", "installed", gpu=True, ran=True, passed=3, failed=1)
    assert test_cmd.exit_code([ok]) == 0 and test_cmd.exit_code([ok, bad]) == 1
    assert json.loads(json.dumps(ok.to_json()))["ok"] is True


def test_compile_upstream_tests_stage_the_built_wheels_and_use_the_builds_sources(tree, tmp_path, capsys):
    """`compile --upstream-tests N`: the built wheels staged (never installed), the tests of the very source they
    were built from (the plan's --source), and what a user reads without a GPU: not run, how many collected."""
    from types import SimpleNamespace

    from mamba_build.commands.compile import _upstream_tests
    from tests.integration.test_smoke_stage import make_wheel

    wheel = make_wheel(tmp_path, "causal_conv1d", "1.7.0", {"causal_conv1d/__init__.py": ""})
    plan = SimpleNamespace(python=sys.executable, timeout=600, index_url=None, find_links=(),
                           packages=[SimpleNamespace(name="causal-conv1d", source=str(tree))])
    report = SimpleNamespace(wheels=[SimpleNamespace(package="causal-conv1d", wheel=wheel)])
    (run,) = _upstream_tests(plan, report, 5)
    assert run.version == "1.7.0" and "staged in" in run.against and run.source == str(tree)
    if not run.gpu:
        assert not run.ran and (run.collected, run.selected) == (24, 5)
        err = capsys.readouterr().err
        assert "NOT RUN" in err and "this is not a pass" in err and "(24 collected)" in err
