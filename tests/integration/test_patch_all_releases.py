"""Every recipe on the setup.py of EVERY release of mamba-ssm and causal-conv1d on PyPI, and on mamba's
main branch (July 2026): both generations of the CUDA-build switch (SKIP_CUDA_BUILD / KEEP_CUDA_BUILD).

The sdists are downloaded at run time (PyPI JSON API, sha256-checked) and cached in the test cache
(~/.cache/mamba-build-tests/pypi-sdists); main's setup.py is read from ../shared/upstream/ (its README says
where it comes from); nothing of upstream is committed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from mamba_build.build import patching
from mamba_build.build.patching import PatchOptions, Status
from tests.pypi_sdists import PACKAGES
from tests.pypi_sdists import download as _download
from tests.pypi_sdists import extract as _extract
from tests.pypi_sdists import sdists as _sdists
from tests.setup_recorder import gencode_of, record

pytestmark = pytest.mark.network

# What PyPI held when the recipes were written; the test fails if a release disappears, and any
# newer release is tested too (and must patch cleanly, or the recipes need a version-scoped variant).
MIN_RELEASES = {"mamba-ssm": 26, "causal-conv1d": 22}

ALL_ON = PatchOptions(archs=("9.0",), nvcc_threads=3, split_compile=2, use_ninja=False, cxx11_abi=True,
                      compiler_bounds={"13.0": ((6, 0, 0), (17, 0))}, allow_unsupported_compiler=True,
                      cxx_std="20")
DEFAULTS = PatchOptions(archs=("9.0",))


SPLITS = ("split-bwd-units", "split-bwd-launch")  # split_units recipes need the csrc/ tree (tested below)


@pytest.fixture(scope="session")
def releases(test_cache, tmp_path_factory) -> list[dict]:
    cache = test_cache / "pypi-sdists"
    cache.mkdir(parents=True, exist_ok=True)
    items = [i for p in PACKAGES for i in _sdists(p)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        archives = list(pool.map(lambda i: _download(i, cache), items))
    root = tmp_path_factory.mktemp("releases")
    for item, archive in zip(items, archives, strict=True):
        item["tree"] = _extract(archive, root / f"{item['package']}-{item['version']}")
    for p in PACKAGES:
        assert sum(i["package"] == p for i in items) >= MIN_RELEASES[p], p
    return items


# the CUDA-build switch of each generation: every PyPI release has SKIP_CUDA_BUILD, main's setup.py KEEP_CUDA_BUILD
GENERATION_RECIPE = {"release": "skip-cuda-build-off", "main": "keep-cuda-build-on"}


def _expected_status(recipe: patching.Recipe, version: str, options: PatchOptions,
                     generation: str = "release") -> Status:
    if not recipe.applies_to(version):
        return Status.SKIPPED_VERSION
    if not recipe.enabled_by(options):
        return Status.SKIPPED_OPTION
    if recipe.group == "cuda-build-switch" and recipe.id != GENERATION_RECIPE[generation]:
        return Status.SKIPPED_GENERATION
    return Status.APPLIED


@pytest.fixture(scope="session")
def main_setup_py(shared_dir) -> Path:
    """mamba's setup.py on its main branch (July 2026: MAMBA_KEEP_CUDA_BUILD), ../shared/upstream."""
    path = shared_dir / "upstream" / "mamba-main-setup.py"
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must have ../shared/ beside the clone")
        pytest.skip(f"{path} is not here (../shared/ beside the checkout)")
    return path


@pytest.fixture(scope="session")
def main_generation(releases, main_setup_py, tmp_path_factory) -> dict:
    """The newest release's tree (2.3.2.post1 at the time of writing) with main's setup.py: mamba's next
    release as its main branch builds it."""
    newest = max((i for i in releases if i["package"] == "mamba-ssm"), key=lambda i: Version(i["version"]))
    tree = tmp_path_factory.mktemp("main-generation") / f"mamba_ssm-{newest['version']}-main"
    shutil.copytree(newest["tree"], tree, ignore=shutil.ignore_patterns(f"*{patching.PRISTINE_SUFFIX}",
                                                                       f"*{patching.PART_INFIX}*"))
    (tree / "setup.py").write_bytes(main_setup_py.read_bytes())
    return {"package": "mamba-ssm", "version": newest["version"], "tree": tree, "generation": "main"}


def test_every_release_takes_every_recipe_idempotently(releases, main_generation, tmp_path):
    patched = []
    cases = [*releases, main_generation]
    for item in cases:
        package, version, generation = item["package"], item["version"], item.get("generation", "release")
        tree = tmp_path / f"{package}-{version}-{generation}"
        tree.mkdir()
        (tree / "setup.py").write_bytes((item["tree"] / "setup.py").read_bytes())
        recipes = patching.load_recipes(package)
        for options in (DEFAULTS, ALL_ON):
            patching.unpatch(tree)  # each option set from the pristine file: every recipe reports "applied"
            results = patching.apply_patches(tree, package, version, options)
            got = {r.recipe: r.status for r in results}
            want = {r.id: _expected_status(r, version, options, generation) for r in recipes}
            assert got == want, f"{package} {version} ({generation})"
        first = (tree / "setup.py").read_bytes()
        again = patching.apply_patches(tree, package, version, ALL_ON)
        assert (tree / "setup.py").read_bytes() == first, f"{package} {version} not byte-identical"
        # (split_units needs the csrc/ tree: test_split_units_on_every_release_that_ships_the_unit)
        assert {r.status for r in again if r.recipe not in SPLITS} <= {
            Status.ALREADY_APPLIED, Status.SKIPPED_VERSION, Status.SKIPPED_GENERATION}, f"{package} {version}"
        text = first.decode()
        compile(text, f"{package}-{version}/setup.py", "exec")
        assert (tree / "setup.py.mamba-build-orig").read_bytes() == (item["tree"] / "setup.py").read_bytes()
        patched.append((item, text))
    assert len(patched) == len(releases) + 1
    main_text = patched[-1][1]
    assert "KEEP_CUDA_BUILD = True  # mamba-build:keep-cuda-build-on" in main_text
    assert "SKIP_CUDA_BUILD" not in main_text  # main has no such switch: nothing was invented


def test_patched_setup_py_of_every_release_builds_exactly_the_plan(releases, main_generation, tmp_path):
    """Both generations: every release's patched setup.py and main's (whose unpatched file builds NO extension:
    the silent trap the keep-cuda-build-on recipe exists for) hand exactly the plan's flags to one extension."""
    cases = [*releases, main_generation]
    pristine = tmp_path / "main-unpatched"
    shutil.copytree(main_generation["tree"], pristine, ignore=shutil.ignore_patterns(f"*{patching.PRISTINE_SUFFIX}"))
    patching.unpatch(pristine)
    files = []
    for item in cases:
        tree = item["tree"]
        patching.apply_patches(tree, item["package"], item["version"], ALL_ON)
        files.append(tree / "setup.py")
    rec = record([*files, pristine / "setup.py"], tmp_path, timeout=300)
    unpatched = rec[str(pristine / "setup.py")]
    assert unpatched["ok"] and unpatched["extensions"] == [], unpatched  # main without MAMBA_KEEP_CUDA_BUILD=TRUE
    for item, f in zip(cases, files, strict=True):
        r = rec[str(f)]
        label = f"{item['package']} {item['version']} ({item.get('generation', 'release')})"
        assert r["ok"], (label, r)
        assert len(r["extensions"]) == 1, label
        assert gencode_of(r["nvcc"]) == ["arch=compute_90,code=sm_90"], label
        assert r["nvcc"].count("-gencode") == 1, label
        assert r["nvcc"][-4:] == ["--threads", "3", "--split-compile", "2"], label
        assert "-allow-unsupported-compiler" in r["nvcc"], label
        assert r["use_ninja"] is False, label
        assert r["cxx11_abi"] is True, label
        assert r["gcc_bounds"]["13.0"] == [[6, 0, 0], [17, 0]], label
        assert r["wheel_urlretrieve_calls"] == 0 and r["wheel_outcome"] == ["source build"], label
        if item["package"] == "mamba-ssm":  # cxx-std: torch 2.14's headers need C++20
            assert "-std=c++20" in r["nvcc"] and "-std=c++17" not in r["nvcc"], label


def test_split_units_on_every_release_that_ships_the_unit(releases, tmp_path):
    """causal-conv1d >= 1.5.1: causal_conv1d_bwd.cu becomes 18 units, each with exactly one of the
    original instantiations, all listed in the sources setup.py really passes to CUDAExtension."""
    import re
    import shutil

    split_on = dataclasses.replace(ALL_ON, split_units=True)
    anchor = re.compile(r"^template void causal_conv1d(?:_channellast)?_bwd_cuda<.*;\s*$", re.MULTILINE)
    checked, files, expect = [], [], {}
    for item in releases:
        src = item["tree"] / "csrc" / "causal_conv1d_bwd.cu"
        if item["package"] != "causal-conv1d" or not src.is_file():
            continue
        version = item["version"]
        tree = tmp_path / f"cc-{version}"
        shutil.copytree(item["tree"], tree)
        original = sorted(m.group(0).strip() for m in anchor.finditer(src.read_text()))
        results = {r.recipe: r for r in patching.apply_patches(tree, "causal-conv1d", version, split_on)}
        assert results["split-bwd-units"].status is Status.APPLIED and results["split-bwd-units"].matches == 18, version
        units = [tree / "csrc" / "causal_conv1d_bwd.cu", *sorted((tree / "csrc").glob("causal_conv1d_bwd.mbpart*.cu"))]
        found = sorted(m.group(0).strip() for u in units for m in anchor.finditer(u.read_text()))
        assert found == original and len(units) == 18, version
        again = {r.recipe: r.status for r in patching.apply_patches(tree, "causal-conv1d", version, split_on)}
        assert again["split-bwd-units"] is Status.ALREADY_APPLIED, version
        files.append(tree / "setup.py")
        expect[str(tree / "setup.py")] = {f"csrc/{u.name}" for u in units}
        checked.append(version)
    assert len(checked) >= 7, checked  # 1.5.1 .. 1.7.0 at the time of writing
    rec = record(files, tmp_path / "rec", timeout=300)
    for f in files:
        r = rec[str(f)]
        assert r["ok"], (f, r)
        assert expect[str(f)] <= set(r["sources"]), f


def test_split_launch_on_every_mamba_ssm_release_that_ships_the_units(releases, tmp_path):
    """mamba-ssm (sdists >= 2.2.5 carry csrc/): each of the 6 selective_scan_bwd_*.cu files becomes two units;
    together they hold the original dispatcher instantiation once, and each of the two split launch shapes
    exactly once as an explicit instantiation (declared extern in the first unit), all listed in setup.py."""
    import re
    import shutil

    split_on = dataclasses.replace(ALL_ON, split_units=True)
    checked, files, expect = [], [], {}
    for item in releases:
        src_dir = item["tree"] / "csrc" / "selective_scan"
        if item["package"] != "mamba-ssm" or not (src_dir / "selective_scan_bwd_kernel.cuh").is_file():
            continue
        version = item["version"]
        tree = tmp_path / f"ms-{version}"
        shutil.copytree(item["tree"], tree)
        results = {r.recipe: r for r in patching.apply_patches(tree, "mamba-ssm", version, split_on)}
        assert results["split-bwd-launch"].status is Status.APPLIED and results["split-bwd-launch"].matches == 12, version
        sdir = tree / "csrc" / "selective_scan"
        for whole in sorted(src_dir.glob("selective_scan_bwd_*.cu")):
            first, second = (sdir / whole.name).read_text(), (sdir / whole.name.replace(".cu", ".mbpart01.cu")).read_text()
            dispatch = re.search(r"^template void selective_scan_bwd_cuda<.*;$", whole.read_text(), re.MULTILINE).group(0)
            assert dispatch in first and dispatch not in second, (version, whole.name)
            for shape in ("32, 16", "64, 16"):
                assert re.search(rf"^extern template void selective_scan_bwd_launch<{shape}, ", first, re.MULTILINE)
                assert len(re.findall(rf"^template void selective_scan_bwd_launch<{shape}, ", second, re.MULTILINE)) == 1
            expect.setdefault(str(tree / "setup.py"), set()).update(
                {f"csrc/selective_scan/{whole.name}", f"csrc/selective_scan/{whole.name.replace('.cu', '.mbpart01.cu')}"})
        again = {r.recipe: r.status for r in patching.apply_patches(tree, "mamba-ssm", version, split_on)}
        assert again["split-bwd-launch"] is Status.ALREADY_APPLIED, version
        files.append(tree / "setup.py")
        checked.append(version)
    assert len(checked) >= 4, checked  # 2.2.5 .. 2.3.2.post1 at the time of writing
    rec = record(files, tmp_path / "rec", timeout=300)
    for f in files:
        r = rec[str(f)]
        assert r["ok"], (f, r)
        assert expect[str(f)] <= set(r["sources"]), f
