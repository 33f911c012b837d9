"""index.py: PEP 503/691 index of real wheels, installed with pip into a fresh venv; merging."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mamba_build import index, manifest
from mamba_build.commands import index as index_cmd
from mamba_build.errors import UsageError
from tests.unit.wheel_factory import build_wheel, clean_pip_env


@pytest.mark.parametrize("raw,norm", [
    ("causal_conv1d", "causal-conv1d"), ("Mamba_SSM", "mamba-ssm"), ("a.b-_c", "a-b-c"),
    ("Friendly-Bard", "friendly-bard"), ("FRIENDLY__bard", "friendly-bard"), ("friendly.bard", "friendly-bard"),
])
def test_normalize(raw, norm):
    assert index.normalize(raw) == norm


def run_index(capsys, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    index_cmd.register(parser)
    rc = index_cmd.run(parser.parse_args(list(argv)))
    return rc, capsys.readouterr().out


def check_pep691_project(doc: dict, name: str) -> None:
    assert doc["meta"]["api-version"] == index.API_VERSION
    assert doc["name"] == name == index.normalize(name)
    assert isinstance(doc["versions"], list)
    for f in doc["files"]:
        assert set(f) <= {"filename", "url", "hashes", "requires-python", "size"}
        assert re.fullmatch(r"[0-9a-f]{64}", f["hashes"]["sha256"])
        assert f["url"].endswith(f["filename"].replace("+", "%2B"))


def test_index_pip_install_and_merge(tmp_path, capsys):
    work = tmp_path / "work"
    dist = tmp_path / "dist"
    cc = build_wheel(work, "causal_conv1d", "1.7.0+cu13torch2.14cxx11abiTRUE", "causal_conv1d_fixture",
                     requires_python=">=3.8")
    ms = build_wheel(work, "Mamba_SSM", "2.2.4", "mamba_ssm_fixture")
    future = build_wheel(work, "mamba_ssm", "9.0.0", "mamba_ssm_fixture", requires_python=">=4")
    for w in (cc, ms, future):
        manifest.finalize_wheel(w, dist, {"torch_version": "2.14.1"}, run_auditwheel=False)

    rc, out = run_index(capsys, str(dist))
    assert rc == 0 and "3 file(s), 2 project(s)" in out
    simple = dist / "simple"
    assert sorted(p.name for p in simple.iterdir() if p.is_dir()) == ["causal-conv1d", "mamba-ssm"]
    page = (simple / "causal-conv1d" / "index.html").read_text()
    digest = manifest.sha256_file(dist / cc.name)
    assert f'href="../../{cc.name.replace("+", "%2B")}#sha256={digest}"' in page
    assert 'data-requires-python="&gt;=3.8"' in page
    root_json = json.loads((simple / "index.json").read_text())
    assert root_json == {"meta": {"api-version": index.API_VERSION},
                         "projects": [{"name": "causal-conv1d"}, {"name": "mamba-ssm"}]}
    ms_json = json.loads((simple / "mamba-ssm" / "index.json").read_text())
    check_pep691_project(ms_json, "mamba-ssm")
    assert ms_json["versions"] == ["2.2.4", "9.0.0"]
    assert {f["filename"]: f.get("requires-python") for f in ms_json["files"]}[future.name] == ">=4"

    # a fresh venv installs from the index alone (no pip config, no find-links)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=180)
    py = venv / "bin" / "python"
    url = simple.resolve().as_uri()
    res = subprocess.run([str(py), "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--index-url", url,
                          "causal-conv1d", "mamba-ssm"], capture_output=True, text=True, env=clean_pip_env(),
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run([str(py), "-c", "import causal_conv1d_fixture as c, mamba_ssm_fixture as m; "
                          "print(c.VERSION, m.VERSION)"], capture_output=True, text=True, timeout=60)
    # pip honoured data-requires-python: 9.0.0 (>=4) was skipped for 2.2.4
    assert res.stdout.split() == ["1.7.0+cu13torch2.14cxx11abiTRUE", "2.2.4"], res.stderr

    # add a wheel, re-index: old entries stay, the new one appears
    extra = build_wheel(work, "causal_conv1d", "1.7.1", "causal_conv1d_fixture")
    manifest.finalize_wheel(extra, dist, {}, run_auditwheel=False)
    rc, out = run_index(capsys, str(dist))
    assert f"new: {extra.name}" in out
    cc_json = json.loads((simple / "causal-conv1d" / "index.json").read_text())
    assert {f["filename"] for f in cc_json["files"]} == {cc.name, extra.name}

    # a wheel removed from DIR keeps its entry (never drop)
    (dist / cc.name).unlink()
    result = index.build_index([dist])
    assert cc.name in result.projects["causal-conv1d"] and result.kept == [cc.name]
    assert cc.name in (simple / "causal-conv1d" / "index.html").read_text()


def test_merge_several_dirs_into_root(tmp_path, capsys):
    work = tmp_path / "work"
    part1, part2, public = tmp_path / "parts" / "a", tmp_path / "parts" / "b", tmp_path / "public"
    w1 = build_wheel(work, "causal_conv1d", "1.7.0", "cc_fixture")
    w2 = build_wheel(work, "mamba_ssm", "2.2.4", "ms_fixture")
    manifest.finalize_wheel(w1, part1, {"torch_version": "2.14.1"}, run_auditwheel=False)
    manifest.finalize_wheel(w2, part2, {"torch_version": "2.8.0"}, run_auditwheel=False)
    rc, out = run_index(capsys, str(part1), str(part2), "--out", str(public), "--json")
    doc = json.loads(out)
    assert sorted(doc["copied"]) == sorted([w1.name, w2.name])
    assert set(manifest.Manifest.load(public).records) == {w1.name, w2.name}
    assert (public / "simple" / "mamba-ssm" / "index.html").is_file()
    # an existing index made elsewhere (HTML only) is merged too
    (public / "simple" / "other").mkdir()
    (public / "simple" / "other" / "index.html").write_text(
        '<a href="https://x.invalid/other-1.0-py3-none-any.whl#sha256=' + "a" * 64 + '">other-1.0-py3-none-any.whl</a>')
    result = index.build_index([public])
    assert "other-1.0-py3-none-any.whl" in result.projects["other"]
    assert json.loads((public / "simple" / "other" / "index.json").read_text())["files"][0]["url"].startswith("https://")


def test_conflicting_wheel_names_are_refused(tmp_path):
    work = tmp_path / "work"
    a, b = tmp_path / "a", tmp_path / "b"
    w = build_wheel(work, "causal_conv1d", "1.7.0", "cc_fixture")
    manifest.finalize_wheel(w, a, {}, run_auditwheel=False)
    b.mkdir()
    data = bytearray(w.read_bytes())
    data[-30] ^= 1
    (b / w.name).write_bytes(bytes(data))
    with pytest.raises(UsageError, match="two different wheels"):
        index.build_index([a, b])


def test_empty_dir_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError):
        index.build_index([tmp_path])
