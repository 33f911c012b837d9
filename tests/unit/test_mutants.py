"""tests/mutants: the mutant list names real smoke checks, and a mutant is judged by them."""

from __future__ import annotations

import subprocess
import sys

from mamba_build.smoke import checks
from tests import mutants
from tests.conftest import REPO


def smoke_check_names() -> set[str]:
    names = {f"causal_conv1d {t} {d}" for t in checks.DTYPES for d in ("fwd", "bwd")}
    names |= {f"selective_scan {t} {v} {d}" for t in checks.DTYPES for v in ("real", "complex") for d in ("fwd", "bwd")}
    names |= {f"{b} block float32 {d}" for b in ("Mamba", "Mamba2") for d in ("fwd", "bwd")}
    return names


def test_every_mutant_names_checks_the_smoke_test_has():
    known = smoke_check_names()
    for m in mutants.load():
        for name in (*m.expect, *m.may_fail, *m.must_pass):
            assert name in known, (m.id, name)
        assert m.expect and not set(m.expect) & set(m.must_pass)


def test_judge_wants_every_expected_failure_and_every_must_pass():
    m = next(x for x in mutants.load() if x.id == "ss-bwd-fp32-real-dD-sign")
    assert m.judge({"selective_scan float32 real bwd"}, {"selective_scan float32 real fwd",
                                                         "selective_scan float32 complex bwd"})[0]
    assert m.judge({"selective_scan float32 real bwd", "Mamba block float32 bwd"},
                   {"selective_scan float32 real fwd", "selective_scan float32 complex bwd"})[0]  # may_fail
    caught, why = m.judge(set(), {"selective_scan float32 real fwd", "selective_scan float32 complex bwd"})
    assert not caught and "expected to fail but did not" in why
    caught, why = m.judge({"selective_scan float32 real bwd"}, {"selective_scan float32 complex bwd"})
    assert not caught and "should have passed: selective_scan float32 real fwd" in why


def test_the_gpu_script_parses_its_options():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu" / "mutation_check.py"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--budget" in out.stdout, out.stderr
