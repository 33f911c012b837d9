"""In-place patching of torch's cpp_extension.py: always on a COPY of the real file in tmp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mamba_build import cli
from mamba_build.build import torch_patch
from mamba_build.build.torch_patch import backup_path, patched_torch_compiler_map
from mamba_build.errors import EnvironmentProblem

REAL = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "torch" / "utils" / "cpp_extension.py"
BOUNDS = {"13.0": ((6, 0, 0), (17, 0))}


@pytest.fixture
def cpp_ext(tmp_path, isolated_cache) -> Path:
    if not REAL.is_file():
        pytest.skip("torch is not installed in this interpreter")
    d = tmp_path / "torch" / "utils"
    d.mkdir(parents=True)
    target = d / "cpp_extension.py"
    target.write_bytes(REAL.read_bytes())
    return target


def _tables_of(path: Path) -> dict:
    """Execute just the module-level tables of a cpp_extension.py copy (no torch import)."""
    src = path.read_text()
    start = src.index("MINIMUM_GCC_VERSION = ")
    stop = src.index("__all__ = ")
    ns: dict = {}
    exec(src[start:stop], ns)
    tail = src[src.index("# mamba-build:torch-compiler-map-inplace begin"):] if "# mamba-build:" in src else ""
    exec(tail, ns)
    return {"gcc": ns["CUDA_GCC_VERSIONS"], "clang": ns["CUDA_CLANG_VERSIONS"]}


def test_locate_finds_the_real_file_without_importing_torch():
    if not REAL.is_file():
        pytest.skip("torch is not installed in this interpreter")
    assert torch_patch.locate_cpp_extension(sys.executable).resolve() == REAL.resolve()


def test_inplace_patches_and_restores_byte_identical(cpp_ext):
    original = cpp_ext.read_bytes()
    stat_before = cpp_ext.stat()
    with patched_torch_compiler_map(BOUNDS, "inplace", target=cpp_ext,
                                    clang_bounds={"13.0": ((7, 0), (22, 0))}) as state:
        assert state.applied and state.target == cpp_ext
        patched = cpp_ext.read_text()
        assert "# mamba-build:torch-compiler-map-inplace begin" in patched
        assert backup_path(cpp_ext).read_bytes() == original
        journal = json.loads(state.journal.read_text())
        assert journal["target"] == str(cpp_ext) and journal["backup"] == str(backup_path(cpp_ext))
        tables = _tables_of(cpp_ext)
        assert tables["gcc"]["13.0"] == ((6, 0, 0), (17, 0))
        assert tables["clang"]["13.0"] == ((7, 0), (22, 0))
        assert tables["gcc"]["12.8"] == ((6, 0, 0), (15, 0))  # the rest is untouched
        compile(patched, str(cpp_ext), "exec")
    assert cpp_ext.read_bytes() == original
    assert cpp_ext.stat().st_mtime_ns == stat_before.st_mtime_ns  # copy2: pyc caches stay valid
    assert not backup_path(cpp_ext).exists()
    assert not state.journal.exists()
    assert state.restored


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_restored_after_interrupt_or_failure(cpp_ext, exc):
    original = cpp_ext.read_bytes()
    with pytest.raises(exc):
        with patched_torch_compiler_map(BOUNDS, "inplace", target=cpp_ext):
            assert cpp_ext.read_bytes() != original
            raise exc()
    assert cpp_ext.read_bytes() == original
    assert not backup_path(cpp_ext).exists()


def test_process_mode_touches_nothing(cpp_ext):
    original = cpp_ext.read_bytes()
    with patched_torch_compiler_map(BOUNDS, "process", target=cpp_ext) as state:
        assert cpp_ext.read_bytes() == original and not state.applied
    assert not backup_path(cpp_ext).exists()


def _crash_child(cpp_ext: Path, cache: Path) -> None:
    """A build process that dies (SIGKILL) inside the context: no finally runs."""
    code = (
        "import os, signal, sys\n"
        "from mamba_build.build.torch_patch import patched_torch_compiler_map\n"
        f"with patched_torch_compiler_map({BOUNDS!r}, 'inplace', target={str(cpp_ext)!r}):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = dict(os.environ, MAMBA_BUILD_CACHE=str(cache))
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == -9


def test_restore_torch_command_after_a_crash(cpp_ext, isolated_cache, capsys):
    original = cpp_ext.read_bytes()
    _crash_child(cpp_ext, isolated_cache)
    assert cpp_ext.read_bytes() != original and backup_path(cpp_ext).exists()
    # restore-torch finds it through the journal alone (no --file)
    assert cli.main(["restore-torch", "--python", sys.executable]) == 0
    assert f"{cpp_ext}: restored" in capsys.readouterr().out
    assert cpp_ext.read_bytes() == original
    assert not backup_path(cpp_ext).exists()
    assert not list((isolated_cache / "torch-patches").glob("*.json"))
    assert cli.main(["restore-torch", "--file", str(cpp_ext)]) == 0
    assert "nothing to restore" in capsys.readouterr().out


def test_next_inplace_run_restores_a_crashed_one_first(cpp_ext, isolated_cache):
    original = cpp_ext.read_bytes()
    _crash_child(cpp_ext, isolated_cache)
    with patched_torch_compiler_map(BOUNDS, "inplace", target=cpp_ext) as state:
        assert "earlier backup: restored" in state.notes
        assert cpp_ext.read_text().count("# mamba-build:torch-compiler-map-inplace begin") == 1
        assert backup_path(cpp_ext).read_bytes() == original
    assert cpp_ext.read_bytes() == original


def test_stale_backup_is_never_restored_over_a_reinstalled_torch(cpp_ext, capsys):
    backup_path(cpp_ext).write_bytes(b"# an old torch\n")
    reinstalled = cpp_ext.read_bytes()
    assert cli.main(["restore-torch", "--file", str(cpp_ext)]) == 3
    assert cpp_ext.read_bytes() == reinstalled and backup_path(cpp_ext).exists()
    assert "stale backup" in capsys.readouterr().out
    with pytest.raises(EnvironmentProblem, match="changed since"):
        with patched_torch_compiler_map(BOUNDS, "inplace", target=cpp_ext):
            pass
    assert cpp_ext.read_bytes() == reinstalled


def test_torch_without_compiler_table_is_a_patch_error(tmp_path, isolated_cache):
    target = tmp_path / "cpp_extension.py"
    target.write_text("X = 1\n")
    from mamba_build.errors import PatchError
    with pytest.raises(PatchError, match="torch-compiler-map-inplace"):
        with patched_torch_compiler_map(BOUNDS, "inplace", target=target):
            pass
    assert target.read_text() == "X = 1\n" and not backup_path(target).exists()
