"""mamba_build/child.py: the one protocol of the scripts mamba-build runs in another Python."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mamba_build import child
from mamba_build.children._mb_child import RESULT_ENV


def test_every_child_script_hands_back_its_result_through_emit():
    scripts = sorted(p for p in child.CHILDREN.glob("*.py") if not p.name.startswith("_"))
    assert {p.stem for p in scripts} >= {"python_env", "installed_files", "target_dists", "cpp_extension_path",
                                         "nvidia_include_dirs", "probe_build", "probe_run"}
    for p in scripts:
        text = p.read_text(encoding="utf-8")
        assert "from _mb_child import emit" in text and "emit(" in text.split("import emit", 1)[1], p.name
        assert "print(json.dumps" not in text, p.name  # results never go to stdout


def test_a_real_child_result_survives_noise_on_stdout_and_a_crash(tmp_path, monkeypatch):
    noisy = tmp_path / "children"
    noisy.mkdir()
    (noisy / "_mb_child.py").write_text((child.CHILDREN / "_mb_child.py").read_text(encoding="utf-8"))
    (noisy / "noisy.py").write_text(
        "import sys\nfrom _mb_child import emit\nprint('{\"not\": \"the result\"}')\nemit({'a': 1})\n"
        "print('warning: torch says hi', file=sys.stderr)\nemit([2])\nraise SystemExit(7)\n"
    )
    monkeypatch.setattr(child, "CHILDREN", noisy)
    ran = child.run(sys.executable, "noisy", timeout=60)
    assert ran.result.returncode == 7 and ran.records == [{"a": 1}, [2]] and ran.data == [2]


def test_cpp_extension_path_child_finds_torch_without_the_parent_parsing_stdout():
    pytest.importorskip("torch")
    ran = child.run(sys.executable, "cpp_extension_path", timeout=120)
    assert ran.result.ok and Path(ran.data).name == "cpp_extension.py" and Path(ran.data).is_file()
    assert RESULT_ENV not in ran.result.stdout
