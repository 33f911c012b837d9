"""matrix.py and the `matrix` command: expansion, exclusions, GitHub and GitLab shapes."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from mamba_build.commands import matrix as matrix_cmd
from mamba_build.dist import matrix
from mamba_build.errors import UsageError

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "ci" / "mamba-build.toml"


def assert_github_matrix_shape(doc) -> None:
    """What `strategy.matrix: ${{ fromJSON(...) }}` accepts for an include-only matrix."""
    assert isinstance(doc, dict) and set(doc) == {"include"}
    jobs = doc["include"]
    assert isinstance(jobs, list) and 0 < len(jobs) <= 256
    for job in jobs:
        assert isinstance(job, dict) and job
        for key, value in job.items():
            assert isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key)
            assert isinstance(value, str), (key, value)  # flat: no lists/objects
    assert len({json.dumps(j, sort_keys=True) for j in jobs}) == len(jobs)
    names = [j["artifact"] for j in jobs]
    assert len(set(names)) == len(names)
    for name in names:  # actions/upload-artifact forbids " : < > | * ? \r \n \ /
        assert not re.search(r'[":<>|*?\r\n\\/]', name)


def run_cmd(capsys, *argv):
    parser = argparse.ArgumentParser()
    matrix_cmd.register(parser)
    rc = matrix_cmd.run(parser.parse_args(list(argv)))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_example_config_github(capsys):
    rc, out, err = run_cmd(capsys, "--config", str(EXAMPLE), "--explain")
    assert rc == 0
    assert len(out.strip().splitlines()) == 1  # one line: fit for $GITHUB_OUTPUT
    doc = json.loads(out)
    assert_github_matrix_shape(doc)
    jobs = doc["include"]
    combos = {(j["package"], j["python"], j["torch"], j["cuda"]) for j in jobs}
    # torch 2.8 has cu128 (not 13.0); torch 2.14 has 13.0 only
    assert ("causal-conv1d", "3.11", "2.8.0", "12.8") in combos
    assert ("causal-conv1d", "3.11", "2.14.1", "13.0") in combos
    assert not any(t == "2.8.0" and c == "13.0" for _, _, t, c in combos)
    assert not any(t == "2.14.1" and c == "12.8" for _, _, t, c in combos)
    assert len(jobs) == 2 * 2 * 2  # packages x pythons x (valid torch/cuda pairs)
    job = next(j for j in jobs if j["torch"] == "2.14.1")
    assert job["image"] == "nvidia/cuda:13.0.1-devel-ubuntu22.04"
    assert job["torch_index"] == "https://download.pytorch.org/whl/cu130"
    assert job["arch"] == "8.0,9.0"
    assert list(job) == list(matrix.JOB_KEYS)
    assert "skipped:" in err and "has CUDA builds" in err


def test_gitlab_format(capsys):
    rc, out, _ = run_cmd(capsys, "--config", str(EXAMPLE), "--format", "gitlab")
    assert rc == 0
    lines = out.splitlines()
    assert lines[:3] == [".mamba-build-matrix:", "  parallel:", "    matrix:"]
    entries = [ln for ln in lines if ln.startswith("      - ")]
    assert len(entries) == 8
    # each scalar is a JSON string (valid YAML); rebuild the structure and compare
    parsed, current = [], None
    for line in lines[3:]:
        m = re.fullmatch(r"      (- |  )(MB_[A-Z_]+): (\".*\")", line)
        assert m, line
        if m.group(1) == "- ":
            current = {}
            parsed.append(current)
        current[m.group(2)] = json.loads(m.group(3))
    jobs = matrix.expand(matrix.load_config(EXAMPLE)).jobs
    assert parsed == matrix.gitlab_matrix(jobs)["parallel"]["matrix"]
    try:
        import yaml  # optional: check with a real YAML parser where one is installed
    except ImportError:
        return
    assert yaml.safe_load(out)[".mamba-build-matrix"]["parallel"]["matrix"] == parsed


def test_default_compat_uses_pypi_table_and_excludes():
    cfg = matrix.config_from_dict({"matrix": {"python": ["3.11", "3.12"], "torch": ["2.5.1", "2.14.1"],
                                              "cuda": ["12.4", "13.0"], "exclude": [{"python": "3.12"}]},
                                   "wheels": {"packages": ["causal-conv1d"]}})
    exp = matrix.expand(cfg)
    assert {(j["torch"], j["cuda"]) for j in exp.jobs} == {("2.5.1", "12.4"), ("2.14.1", "13.0")}
    assert all(j["python"] == "3.11" for j in exp.jobs)
    assert any("excluded by config" in s for s in exp.skipped)


def test_arch_unsupported_by_toolkit_is_skipped():
    cfg = matrix.config_from_dict({"matrix": {"python": ["3.11"], "torch": ["2.14.1"], "cuda": ["13.0"],
                                              "arch": ["7.0,8.0", "8.0;9.0+PTX", ["9.0", "10.0"]]},
                                   "wheels": {"packages": ["mamba-ssm"]}})
    exp = matrix.expand(cfg)
    assert [j["arch"] for j in exp.jobs] == ["8.0,9.0+PTX", "9.0,10.0"]
    assert any("cannot build sm_70" in s for s in exp.skipped)


@pytest.mark.parametrize("text,expected", [("8.0,9.0", "8.0,9.0"), ("8.0 9.0", "8.0,9.0"),
                                           ("9.0a;10.0+PTX", "9.0a,10.0+PTX"), ("8.0,8.0", "8.0")])
def test_normalize_arch_list(text, expected):
    assert matrix.normalize_arch_list(text) == expected


def test_bad_configs(tmp_path):
    with pytest.raises(UsageError, match="needs python"):
        matrix.config_from_dict({"matrix": {"torch": ["2.14.1"], "cuda": ["13.0"]}})
    with pytest.raises(UsageError, match="quoted strings"):
        matrix.config_from_dict({"matrix": {"python": [3.10], "torch": ["2.14.1"], "cuda": ["13.0"]}})
    with pytest.raises(UsageError, match="malformed CUDA architecture"):
        matrix.normalize_arch_list("eight")
    with pytest.raises(UsageError, match="does not exist"):
        matrix.load_config(tmp_path / "missing.toml")
    empty = matrix.config_from_dict({"matrix": {"python": ["3.11"], "torch": ["2.14.1"], "cuda": ["12.1"]}})
    with pytest.raises(UsageError, match="empty"):
        matrix.github_matrix(matrix.expand(empty).jobs)


def test_job_limits():
    many = [{"name": str(i), "artifact": f"a{i}"} for i in range(257)]
    with pytest.raises(UsageError, match="256"):
        matrix.github_matrix(many)
    jobs = [dict.fromkeys(matrix.JOB_KEYS, "x") for _ in range(201)]
    with pytest.raises(UsageError, match="200"):
        matrix.gitlab_matrix(jobs)
