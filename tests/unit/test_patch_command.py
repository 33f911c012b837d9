"""`mamba-build patch DIR` accepts the folder `mamba-build fetch PKG --dest DIR` filled (one source tree in
it), and says what to do when it holds none or several."""

from __future__ import annotations

import json
import shutil

import pytest

from mamba_build import cli, paths
from mamba_build.commands.patch import source_tree
from mamba_build.errors import UsageError


def _tree(parent, name="fixture"):
    dest = parent / name
    shutil.copytree(paths.csrc_dir() / "fixture", dest)
    return dest


def test_patch_takes_the_folder_fetch_filled(tmp_path, capsys):
    tree = _tree(tmp_path, "mb_fixture-0.3.0")
    assert source_tree(tmp_path) == tree and source_tree(tree) == tree
    rc = cli.main(["patch", str(tmp_path), "--arch", "9.0", "--cxx11-abi", "on", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["tree"] == str(tree)
    assert any(r["status"] == "applied" for r in out["results"])
    assert "FORCE_BUILD = True  # mamba-build:force-build" in (tree / "setup.py").read_text()


def test_a_folder_without_a_tree_or_with_two_is_a_usage_error_naming_them(tmp_path):
    with pytest.raises(UsageError) as err:
        source_tree(tmp_path)
    assert "no setup.py" in err.value.message and "fetch" in err.value.fix
    a, b = _tree(tmp_path, "a-1"), _tree(tmp_path, "b-2")
    with pytest.raises(UsageError) as err:
        source_tree(tmp_path)
    assert "2 source trees" in err.value.message and str(a) in err.value.fix and str(b) in err.value.fix
