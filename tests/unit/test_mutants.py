"""tests/mutants: the mutant list names real smoke checks, and a mutant is judged by them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mamba_build.build.smoke import checks
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


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutation_check", REPO / "scripts" / "gpu" / "mutation_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_run(monkeypatch, tmp_path, budget="900", caught=True):
    """mutation_check.main with its builds and smoke tests faked (no nvcc, no GPU): the orchestration only."""
    from types import SimpleNamespace

    from mamba_build.build.smoke.stage import SmokeCheck, SmokeReport

    mc = _load_script()
    names = sorted(smoke_check_names())
    pkgs = [SimpleNamespace(name=n, version=v, source="pypi") for n, v in mc.VERSIONS.items()]
    plan = SimpleNamespace(packages=pkgs, python=sys.executable, archs=("9.0",), jobs=16, split_units=True,
                           split_units_reason="", torch_version="2.11", cuda_version="13.0")
    monkeypatch.setattr(mc, "resolve", lambda opts: plan)
    trees = {}
    for n in mc.VERSIONS:  # a tree holding each mutant's anchor (and its unit's include)
        tree = tmp_path / "src" / n
        for m in mutants.load(n):
            f = tree / m.file
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text((f.read_text() if f.exists() else "") + m.anchor + "\n")
            if m.unit:
                (tree / m.unit).write_text(f'#include "{Path(m.file).name}"\n')
        trees[n] = tree
    monkeypatch.setattr(mc, "fetch", lambda name, *a, **k: SimpleNamespace(tree=trees[name], version="1"))
    monkeypatch.setattr(mc, "apply_patches", lambda *a, **k: [])
    monkeypatch.setattr(mc, "raise_for_missing", lambda *a, **k: None)
    monkeypatch.setattr(mc, "patch_options", lambda plan: None)
    seen = {}

    def build_wheel(plan, pkg, tree, out_dir, log, show_progress=True):
        out_dir.mkdir(parents=True, exist_ok=True)
        seen[out_dir.parent.name] = "mamba-build mutant" in "".join(p.read_text() for p in tree.rglob("*") if p.is_file())
        wheel = out_dir / f"{pkg.name.replace('-', '_')}-1-cp3-none-any.whl"
        wheel.write_text("")
        return wheel

    def smoke(wheels, python, workdir, timeout):
        label = Path(workdir).name
        m = next((x for x in mutants.load() if x.id == label), None)
        bad = set(m.expect) if (m and caught) else set()
        checks = [SmokeCheck(n, "fail" if n in bad else "ok") for n in names]
        return SmokeReport(passed=not bad, gpu=True, checks=checks, device="fake GPU")

    monkeypatch.setattr(mc, "build_wheel", build_wheel)
    monkeypatch.setattr(mc, "smoke_test_wheels", smoke)
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["mutation_check.py", "--out", str(out), "--work", str(tmp_path / "work"),
                                      "--budget", budget, "--upstream-sample", "0", "--sdists", str(tmp_path)])
    rc = mc.main()
    return rc, json.loads((out / "mutation.json").read_text()), seen, trees


def test_the_gpu_script_builds_each_mutant_mutated_and_judges_it(monkeypatch, tmp_path):
    rc, doc, seen, trees = _fake_run(monkeypatch, tmp_path)
    assert rc == 0 and doc["control"]["passed"] is True
    assert {m["id"]: m["verdict"] for m in doc["mutants"]} == {m.id: "CAUGHT" for m in mutants.load()}
    assert seen["good"] is False and all(seen[m.id] for m in mutants.load())  # mutated while built, not before
    for tree in trees.values():  # and taken back after
        assert not any("mamba-build mutant" in p.read_text() for p in tree.rglob("*") if p.is_file())
    assert "| cc-fwd-nan | NaN |" in (tmp_path / "out" / "mutation.md").read_text()


def test_the_gpu_script_reports_a_missed_mutant_and_one_over_budget(monkeypatch, tmp_path):
    rc, doc, _, _ = _fake_run(monkeypatch, tmp_path, caught=False)
    assert rc == 1 and all(m["verdict"] == "MISSED" for m in doc["mutants"])
    assert "expected to fail but did not" in doc["mutants"][0]["why"]
    rc, doc, _, _ = _fake_run(monkeypatch, tmp_path / "b", budget="1")
    assert rc == 0 and all(m["verdict"] == "not run" for m in doc["mutants"])
