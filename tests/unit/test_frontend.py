"""build/frontend.py: a source tree's wheel through its PEP 517 backend's build_wheel alone (the default), or through
the plan's installer (`pip wheel`), which first runs setup.py once more for metadata."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from mamba_build import runner
from mamba_build.build import frontend
from mamba_build.errors import SourceError, UsageError
from mamba_build.plan.installer import for_python

# a setup.py that counts its own runs (what the metadata step costs: setup.py, and torch's import, once more)
SETUP = """
from pathlib import Path
from setuptools import setup
with open(Path(__file__).with_name("runs.txt"), "a") as fh:
    fh.write("run\\n")
setup(name="countme", version="0.1", py_modules=["countme"])
"""


def _tree(tmp_path: Path, pyproject: str | None = None) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "setup.py").write_text(SETUP, encoding="utf-8")
    (tree / "countme.py").write_text("X = 1\n", encoding="utf-8")
    if pyproject is not None:
        (tree / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return tree


def _plan(kind: str) -> SimpleNamespace:
    inst = for_python(sys.executable)
    return SimpleNamespace(build_frontend=kind, python=sys.executable, installer_for=lambda: inst)


def test_the_build_backend_comes_from_pyproject_or_pep517s_default(tmp_path):
    assert frontend.build_system(tmp_path) == (frontend.DEFAULT_BACKEND, ())
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 100\n")
    assert frontend.build_system(tmp_path) == (frontend.DEFAULT_BACKEND, ())
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools", "torch"]\nbuild-backend = "setuptools.build_meta"\n'
        'backend-path = ["_build"]\n'
    )
    assert frontend.build_system(tmp_path) == ("setuptools.build_meta", (str(tmp_path / "_build"),))
    (tmp_path / "pyproject.toml").write_text("[build-system\n")
    with pytest.raises(SourceError) as err:
        frontend.build_system(tmp_path)
    assert "does not parse" in err.value.message


def test_choose_names_the_frontend_and_refuses_others():
    assert frontend.choose("backend")[0] == "backend" and "build_wheel" in frontend.choose("backend")[1]
    assert frontend.choose("installer")[0] == "installer"
    with pytest.raises(UsageError):
        frontend.choose("poetry")


@pytest.mark.parametrize(("kind", "runs"), [("backend", 1), ("installer", 2)])
def test_the_backend_runs_setup_py_once_where_pip_wheel_runs_it_twice(tmp_path, kind, runs):
    """The same tree built both ways, for real (this Python's setuptools and pip): the same wheel; the backend
    frontend runs setup.py once, `pip wheel --no-build-isolation` twice (its metadata step, then the build)."""
    tree = _tree(tmp_path, '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    out = tmp_path / "out"
    argv = frontend.wheel_argv(_plan(kind), tree, out)
    res = runner.run(argv, cwd=tree, timeout=300)
    assert res.ok, res.output
    wheels = sorted(out.glob("*.whl"))
    assert [w.name for w in wheels] == ["countme-0.1-py3-none-any.whl"]
    assert "countme.py" in zipfile.ZipFile(wheels[0]).namelist()
    assert (tree / "runs.txt").read_text().count("run") == runs


def test_a_failing_build_exits_non_zero_with_the_traceback(tmp_path):
    tree = _tree(tmp_path)
    (tree / "setup.py").write_text("raise RuntimeError('broken on purpose: CUDA_HOME is not set')\n")
    argv = frontend.wheel_argv(_plan("backend"), tree, tmp_path / "out")
    assert argv[1] == str(frontend.HOOK_SCRIPT) and argv[3] == frontend.DEFAULT_BACKEND
    res = subprocess.run(argv, cwd=tree, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "broken on purpose: CUDA_HOME is not set" in res.stderr
    assert not list((tmp_path / "out").glob("*.whl"))
