"""Default versions honour the known torch minimums of data/packages.toml ([[torch_requirement]])."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet

from mamba_build.errors import SourceError
from mamba_build.plan import packages
from mamba_build.plan.packages import TorchRequirement

CC = ["1.4.0", "1.5.0.post8", "1.5.1", "1.5.2", "1.5.3.post1", "1.6.0", "1.6.1", "1.6.2.post1", "1.7.0", "1.8.0.dev1"]
MAMBA = ["2.2.4", "2.2.5", "2.2.6.post3", "2.3.0", "2.3.1", "2.3.2.post1"]


def test_real_table_is_well_formed():
    reqs = packages.torch_requirements()
    assert reqs
    for r in reqs:
        assert r.package in packages.PACKAGES and r.scope in ("build", "python")
        assert r.reason and r.determined and str(r.versions) and str(r.torch)
    cc = packages.torch_requirements("causal_conv1d")
    assert any(r.scope == "python" and "custom_op" in r.reason and r.torch == SpecifierSet(">=2.4") for r in cc)


@pytest.mark.parametrize("torch_version", ["2.0.1+cu117", "2.0.1", "2.3.1"])
def test_causal_conv1d_on_old_torch_picks_newest_whose_extension_builds(torch_version):
    # every complete sdist (>= 1.5.2) needs torch >= 2.4 for its Python code, none for its extension
    assert packages.default_version("causal-conv1d", CC, torch_version, "11.8") == "1.7.0"
    unmet = packages.unmet_torch_requirements("causal-conv1d", "1.7.0", torch_version)
    assert [r.scope for r in unmet] == ["python"]


@pytest.mark.parametrize("torch_version", ["2.4.0", "2.14.1", "2.14.1+cu130", "2.5.0a0+git1234", None, "garbage"])
def test_new_or_unknown_torch_changes_nothing(torch_version):
    assert packages.default_version("causal-conv1d", CC, torch_version, "13.0") == "1.7.0"
    assert packages.unmet_torch_requirements("causal-conv1d", "1.7.0", torch_version) == []


def _fake_reqs(monkeypatch, *reqs):
    monkeypatch.setattr(packages, "torch_requirements",
                        lambda package=None: [r for r in reqs if package is None or r.package == package])


def _req(versions, torch, scope, package="causal-conv1d"):
    return TorchRequirement(package, SpecifierSet(versions), SpecifierSet(torch), scope, "because", "test")


def test_release_whose_python_works_is_preferred_over_a_newer_one(monkeypatch):
    _fake_reqs(monkeypatch, _req(">=1.6.0", ">=2.4", "python"))
    assert packages.default_version("causal-conv1d", CC, "2.0.1", "11.8") == "1.5.3.post1"
    assert packages.default_version("causal-conv1d", CC, "2.5.0", "11.8") == "1.7.0"


def test_build_scope_excludes_releases(monkeypatch):
    _fake_reqs(monkeypatch, _req(">=1.6.1", ">=2.1", "build"), _req(">=1.5.1", ">=2.4", "python"))
    # 1.6.1+ cannot be built on 2.0.1; the rest build but their Python needs 2.4: newest buildable wins
    assert packages.default_version("causal-conv1d", CC, "2.0.1", "11.8") == "1.6.0"
    assert packages.default_version("causal-conv1d", CC, "2.1.0", "11.8") == "1.7.0"


def test_nothing_buildable_for_this_torch_is_a_source_error(monkeypatch):
    _fake_reqs(monkeypatch, _req(">=1.0", ">=2.1", "build"))
    with pytest.raises(SourceError) as exc:
        packages.default_version("causal-conv1d", CC, "2.0.1", "11.8")
    assert "torch 2.0.1" in exc.value.message and ">=2.1" in exc.value.message
    assert "--source" in exc.value.fix


def test_pair_defaults_honour_torch(monkeypatch):
    _fake_reqs(monkeypatch, _req(">=1.6.0", ">=2.4", "python"),
               _req(">=2.3.0", ">=2.2", "build", package="mamba-ssm"))
    pair = packages.default_versions("2.0.1", {"mamba-ssm": MAMBA, "causal-conv1d": CC}, "11.8")
    assert pair == {"mamba-ssm": "2.2.6.post3", "causal-conv1d": "1.5.3.post1"}
    pair = packages.default_versions("2.14.1", {"mamba-ssm": MAMBA, "causal-conv1d": CC}, "13.0")
    assert pair == {"mamba-ssm": "2.3.2.post1", "causal-conv1d": "1.7.0"}


def test_plan_passes_the_torch_version(monkeypatch):
    """plan.resolve_versions hands the environment's torch to the defaults (no --version given)."""
    from mamba_build.build import sources
    from mamba_build.plan import build_plan
    seen = {}

    def fake_default(name, available, torch_version, cuda_version):
        seen[name] = torch_version
        return "1.7.0"

    monkeypatch.setattr(sources, "available_versions", lambda *a, **k: CC)
    monkeypatch.setattr(packages, "default_version", fake_default)
    opts = build_plan.CompileOptions(packages=("causal-conv1d",))
    assert build_plan.resolve_versions(opts, "11.8", "2.0.1+cu117") == {"causal-conv1d": "1.7.0"}
    assert seen == {"causal-conv1d": "2.0.1+cu117"}


def test_smoke_failure_explained_by_a_python_scope_requirement_is_a_note():
    """pipeline.known_python_limits: causal-conv1d 1.7.0 on torch 2.0.1 -> extension ok, package import fails."""
    from types import SimpleNamespace

    from mamba_build.build.pipeline import known_python_limits
    plan = SimpleNamespace(torch_version="2.0.1+cu117")
    wheel = SimpleNamespace(package="causal-conv1d", version="1.7.0")
    checks = [SimpleNamespace(name="import causal_conv1d_cuda", status="ok", detail=""),
              SimpleNamespace(name="import causal_conv1d", status="fail", detail="AttributeError: custom_op"),
              SimpleNamespace(name="causal_conv1d", status="skipped", detail="did not import")]
    notes = known_python_limits(plan, [wheel], checks)
    assert list(notes) == ["import causal_conv1d"] and ">=2.4" in notes["import causal_conv1d"]
    # the extension failing too is a real failure; so is any other failing check
    checks[0].status = "fail"
    assert known_python_limits(plan, [wheel], checks) == {}
    checks[0].status = "ok"
    checks.append(SimpleNamespace(name="causal_conv1d fwd+bwd", status="fail", detail="mismatch"))
    assert known_python_limits(plan, [wheel], checks) == {}
    # with a torch that meets the requirement, a failing import is a failure
    assert known_python_limits(SimpleNamespace(torch_version="2.4.0"), [wheel], checks[:3]) == {}
    # an old release without the requirement: nothing to explain
    old = SimpleNamespace(package="causal-conv1d", version="1.4.0")
    assert known_python_limits(plan, [old], checks[:3]) == {}
