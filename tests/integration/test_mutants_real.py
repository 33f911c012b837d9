"""The mutants of tests/mutants/mutants.toml against the real sources.

1. Each applies to the real, patched sdist (PyPI, fetched at run time) exactly where it should: one anchor, the
   unit it names is one setup.py compiles (split-bwd-launch included), and reverting restores every byte.
2. The cheap ones (causal-conv1d's forward unit, ~15 s of nvcc each) compile with the exact command of the pool
   build (tests/conftest.py::pool_wheels keeps its trees), so the GPU run (scripts/gpu/mutation_check.py) cannot
   be lost to a typo. Their numbers need a GPU: that part is the GPU script's, results in docs/benchmarks.md.
"""

from __future__ import annotations

import concurrent.futures
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mamba_build.build.jobserver import find_ninja
from tests import mutants
from tests.conftest import POOL_VERSIONS

CUDA = Path("/usr/local/cuda-13.0/bin/nvcc").exists()


@pytest.fixture(scope="module")
def patched_trees(tmp_path_factory, test_cache, monkeypatch_module):
    """Both sdists fetched (cached in the tests' cache) and patched as a many-core build patches them (units split)."""
    from mamba_build.build.patching import PatchOptions, apply_patches
    from mamba_build.build.sources import fetch

    monkeypatch_module.setenv("MAMBA_BUILD_CACHE", str(test_cache / "mb-cache-sdists"))
    trees = {}
    for name, version in POOL_VERSIONS.items():
        fetched = fetch(name, version, "pypi", tmp_path_factory.mktemp(name))
        opts = PatchOptions(archs=("9.0",), nvcc_threads=1, split_compile=None, use_ninja=True, cxx11_abi=True,
                            split_units=True)
        results = apply_patches(fetched.tree, name, fetched.version, opts)
        assert all(r.status.value != "anchor-missing" for r in results), results
        trees[name] = fetched.tree
    return trees


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _snapshot(tree: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mutant", mutants.load(), ids=lambda m: m.id)
def test_each_mutant_applies_to_the_patched_real_source_and_reverts(patched_trees, mutant):
    tree = patched_trees[mutant.package]
    before = _snapshot(tree)
    applied = mutants.apply(mutant, tree)
    try:
        after = _snapshot(tree)
        changed = sorted(str(p.relative_to(tree)) for p in after if before.get(p) != after[p])
        expected = sorted({mutant.compiled, mutant.file if mutant.unit is None else
                           str(Path(mutant.file).with_name(Path(mutant.file).stem + mutants.SUFFIX + Path(mutant.file).suffix))})
        assert changed == expected
        assert "mamba-build mutant" in (tree / mutant.compiled).read_text()
        assert f'"{mutant.compiled}"' in (tree / "setup.py").read_text()  # a unit setup.py compiles
        if "bwd" in mutant.compiled and mutant.package == "mamba-ssm":  # split-bwd-launch: the first unit keeps 3 shapes
            assert "extern template void selective_scan_bwd_launch<32, 16," in (tree / mutant.compiled).read_text()
    finally:
        applied.revert()
    assert _snapshot(tree) == before
    with pytest.raises(mutants.MutationError, match="occurs 0 times"):
        mutants.apply(mutants.Mutant(**{**mutant.__dict__, "anchor": "no such text in any kernel"}), tree)
    assert _snapshot(tree) == before


def test_every_bug_kind_and_both_packages_are_covered():
    ms = mutants.load()
    assert {m.bug for m in ms} >= {"off-by-one in the sequence index", "zeroed tail", "wrong sign", "NaN"}
    assert {m.package for m in ms} == set(POOL_VERSIONS)
    assert any("bwd" in c for m in ms for c in m.expect) and any("fwd" in c for m in ms for c in m.expect)


def _unit_command(tree: Path, unit: str) -> tuple[str, str]:
    """(the compile command of ``unit`` in the kept build, its object path) from torch's build.ninja."""
    (build_file,) = list((tree / "build").glob("temp.*/build.ninja"))
    src = str((tree / unit).resolve())
    text = build_file.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("build ") and ln.rstrip().endswith(src.replace(":", "$:")))
    obj = line.split(":", 1)[0][len("build "):].replace("$ ", " ")
    ninja = find_ninja(sys.executable).path or "ninja"
    cmd = subprocess.run([ninja, "-C", str(build_file.parent), "-t", "commands", "-s", obj], capture_output=True,
                         text=True, check=True).stdout.strip()
    return cmd, obj


@pytest.mark.slow
@pytest.mark.skipif(not CUDA, reason="needs CUDA 13.0")
def test_the_cheap_mutants_compile_with_the_builds_own_command(pool_wheels, tmp_path):
    tree = pool_wheels.trees["causal-conv1d"]
    cheap = [m for m in mutants.load("causal-conv1d") if m.unit is None]
    assert len(cheap) >= 2

    def compile_one(m: mutants.Mutant) -> subprocess.CompletedProcess:
        cmd, obj = _unit_command(tree, m.compiled)
        unit = tree / m.compiled
        copy = unit.with_name(f"{unit.stem}{mutants.SUFFIX}-{m.id}{unit.suffix}")  # beside it: same includes
        copy.write_text(mutants._replace_once(unit.read_text(), m.anchor, m.replace, unit))
        out = tmp_path / f"{m.id}.o"
        argv = [a.replace(obj, str(out)).replace(str(unit.resolve()), str(copy)) for a in shlex.split(cmd)]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=tree,
                                  env=dict(os.environ, PATH=f"{Path(argv[0]).parent}:{os.environ['PATH']}"))
        finally:
            copy.unlink()

    with concurrent.futures.ThreadPoolExecutor(len(cheap)) as pool:
        results = dict(zip([m.id for m in cheap], pool.map(compile_one, cheap), strict=True))
    for mid, res in results.items():
        assert res.returncode == 0, f"{mid}:\n{res.stderr[-3000:]}"
        assert (tmp_path / f"{mid}.o").stat().st_size > 10_000
