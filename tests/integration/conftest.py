"""Shared real-toolchain fixtures (session-scoped; downloads cached in the ``test_cache`` dir).

``toolkit_130``: a CUDA 13.0 toolkit assembled by ``mamba_build.toolchain.toolkits.install`` from the pinned
PyPI wheels (~105 MB download, once per machine) into a private cache for this test session.
``toolkit_118``: the same for 11.8 (compiler from Debian's nvidia-cuda-toolkit .deb via a private
apt-get, headers/cudart from the cu11 wheels; ~107 MB). ``toolkit_12x``: 12.4 the same way (compiler from
Debian 13 trixie's nvidia-cuda-toolkit 12.4.1, headers/cudart from the cu12 wheels; ~114 MB).
``toolchain_cache``: the MAMBA_BUILD_CACHE those toolkits live in (set it to let the CLI find them).

CUDA 11.8 against torch 2.0.1 (tests/integration/test_cuda118_real.py):
``torch201_venv``: a venv with torch==2.0.1 (CUDA 11.7 build from PyPI) and this checkout of
mamba-build installed editable; kept in ``$MAMBA_BUILD_TEST_CACHE/venv-torch201`` (its wheels in
``wheels-torch201``) and rebuilt when it does not import torch 2.0.1.
``cuda118_cli_install``: ``mamba-build toolchain install --cuda 11.8`` run by that venv's CLI into a
fresh MAMBA_BUILD_CACHE (so the install path runs every session); the downloaded .deb and wheels are
kept in ``$MAMBA_BUILD_TEST_CACHE/cuda118-files`` and passed with --find-links on later runs.

The seeds' stack as a new user installs it today (tests/integration/test_old_stack_real.py):
``torch201_seed_venv``: torch 2.0.1 (from ``wheels-torch201``, the same files as ``torch201_venv``) with the
LATEST setuptools, 84.2.1, which has no pkg_resources, plus what mamba-ssm 1.1.3.post1 imports (einops,
transformers 4.36.2); kept in ``$MAMBA_BUILD_TEST_CACHE/venv-torch201-seed`` (its extra wheels in
``wheels-torch201-seed``). ``old_seed_sources``: release tarballs of causal-conv1d 1.1.1 and mamba-ssm
1.1.3.post1 made from PyPI's sdists (see its docstring for exactly what they hold). ``old_seed_build``: ONE
`compile --cuda 11.8 --arch 8.0` of both in that venv (12 min on 2 cores).

CUDA 12.4 against torch 2.5.1 (tests/integration/test_cuda124_probe_real.py), made by the same helpers
(``make_torch_venv``, ``cli_toolchain_install``): ``torch251_venv`` (torch==2.5.1, PyPI's default CUDA 12.4
build; ``venv-torch251``, ``wheels-torch251``) and ``cuda124_cli_install`` (files in ``cuda124-files``).
``torch260_venv``: a second CUDA-12 torch (2.6.0, PyPI's default build is CUDA 12.4 too) for the index
tests (tests/integration/test_install_index_real.py); its nvidia-*-cu12 wheels are the same files as
torch 2.5.1's, found in ``wheels-torch251`` and hard-linked into ``wheels-torch260``, so a machine that has
the torch 2.5.1 wheels downloads only torch 2.6.0, triton 3.2.0 and cuSPARSELt (~1.3 GB).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mamba_build.errors import ExitCode, MambaBuildError, NetworkError
from mamba_build.toolchain import toolkits


@pytest.fixture(scope="session")
def nvidia_wheel_cache(test_cache) -> Path:
    """Where downloaded NVIDIA wheels are kept between runs: the wheel store of the tests' provisioned toolkits
    (``$MAMBA_BUILD_TEST_CACHE/toolkits/wheels/nvidia``, tests/conftest.py::provision_toolkit), so that each
    file is downloaded once."""
    path = test_cache / "toolkits" / "wheels" / "nvidia"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def toolchain_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("toolchain-cache")


def _install(cuda: str, cache: Path, wheels: Path) -> toolkits.ToolchainInfo:
    old = os.environ.get("MAMBA_BUILD_CACHE")
    os.environ["MAMBA_BUILD_CACHE"] = str(cache)
    try:
        pins = toolkits.release_pins(cuda)
        if not pins.complete:
            pytest.skip(f"CUDA {cuda} cannot be assembled from PyPI: its nvcc wheel lacks "
                        f"{', '.join(pins.missing)} (data/toolchains.toml)")
        if pins.debs and not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
            pytest.skip(f"CUDA {cuda} comes from Debian packages: needs apt-get and dpkg-deb")
        return toolkits.install(cuda, wheels_dir=wheels, debs_dir=wheels.parent / "debs")
    except NetworkError as exc:
        pytest.skip(f"PyPI / the Debian archive not reachable: {exc.message}")
    except MambaBuildError as exc:  # anything else is a real failure of install()
        pytest.fail(exc.render())
    finally:
        if old is None:
            os.environ.pop("MAMBA_BUILD_CACHE", None)
        else:
            os.environ["MAMBA_BUILD_CACHE"] = old


@pytest.fixture(scope="session")
def toolkit_130(toolchain_cache, nvidia_wheel_cache) -> toolkits.ToolchainInfo:
    return _install("13.0", toolchain_cache, nvidia_wheel_cache)


@pytest.fixture(scope="session")
def toolkit_118(toolchain_cache, nvidia_wheel_cache) -> toolkits.ToolchainInfo:
    return _install("11.8", toolchain_cache, nvidia_wheel_cache)


@pytest.fixture(scope="session")
def toolkit_12x(toolchain_cache, nvidia_wheel_cache) -> toolkits.ToolchainInfo:
    return _install("12.4", toolchain_cache, nvidia_wheel_cache)


# ---------------------------------------------------------------------------------------------
# A torch venv per CUDA line + `toolchain install` by that venv's CLI:
# CUDA 11.8 + torch 2.0.1 (test_cuda118_real.py), CUDA 12.4 + torch 2.5.1 (test_cuda124_probe_real.py)

REPO = Path(__file__).resolve().parents[2]
_EXTRAS = ["ninja", "packaging", "wheel", "setuptools", "rich", "requests"]
_PIP_OFFLINE = ("NewConnectionError", "Temporary failure", "Network is unreachable")


@dataclass(frozen=True)
class TorchVenv:
    """What a cached torch venv holds: ``$MAMBA_BUILD_TEST_CACHE/venv-<key>``, wheels in ``wheels-<key>``."""
    key: str                     # "torch201"
    requirements: tuple[str, ...]
    torch_version: str           # torch.__version__ it must report, e.g. "2.0.1+cu117"
    max_python: tuple[int, int]  # newest CPython with torch wheels of that release
    download: str                # what a clean machine downloads, for the docstring/skip text
    shares: tuple[str, ...] = ()  # keys of other venvs whose cached wheels are reused (found, hard-linked)


TORCH201 = TorchVenv("torch201", ("torch==2.0.1", "numpy<2", *_EXTRAS), "2.0.1+cu117", (3, 11),
                     "torch 2.0.1 + its nvidia-*-cu11 dependencies: ~2.3 GB")
# PyPI's default torch 2.5.1 wheel is the CUDA 12.4 build (nvidia-*-cu12 12.4.x dependencies)
TORCH251 = TorchVenv("torch251", ("torch==2.5.1", "numpy", *_EXTRAS), "2.5.1+cu124", (3, 12),
                     "torch 2.5.1 + its nvidia-*-cu12 dependencies: ~2.9 GB")
# PyPI's default torch 2.6.0 wheel is CUDA 12.4 as well; most of its nvidia-*-cu12 pins equal 2.5.1's
TORCH260 = TorchVenv("torch260", ("torch==2.6.0", "numpy", *_EXTRAS), "2.6.0+cu124", (3, 13),
                     "torch 2.6.0 + triton 3.2.0 + cuSPARSELt, the other nvidia-*-cu12 wheels shared with "
                     "torch 2.5.1: ~1.3 GB (~3.2 GB alone)", shares=("torch251",))


def _run(argv, timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)


def _torch_ok(python: Path, spec: TorchVenv) -> bool:
    if not python.exists():
        return False
    probe = _run([python, "-c", "import torch, numpy, ninja, rich, requests; print(torch.__version__)"], 300)
    return probe.returncode == 0 and probe.stdout.strip() == spec.torch_version


def make_torch_venv(spec: TorchVenv, test_cache: Path) -> Path:
    """The venv of ``spec`` (made from cached wheels, or downloaded once) with this checkout's
    mamba-build installed editable; returns the venv folder. Rebuilt when torch does not import."""
    if sys.version_info[:2] > spec.max_python:
        pytest.skip(f"{spec.requirements[0]} has wheels for CPython <= {'.'.join(map(str, spec.max_python))} only")
    wheels = test_cache / f"wheels-{spec.key}"
    venv = test_cache / f"venv-{spec.key}"
    py = venv / "bin" / "python"
    if not _torch_ok(py, spec):
        shutil.rmtree(venv, ignore_errors=True)
        made = _run([sys.executable, "-m", "venv", venv], 300)
        assert made.returncode == 0, made.stderr
        wheels.mkdir(parents=True, exist_ok=True)
        # keep the wheels for the next run (wheels cached for the venvs it shares with are found, not downloaded)
        shared = [test_cache / f"wheels-{k}" for k in spec.shares if (test_cache / f"wheels-{k}").is_dir()]
        links = [arg for d in [wheels, *shared] for arg in ("--find-links", d)]
        got = _run([py, "-m", "pip", "download", "-q", "-d", wheels, *links, *spec.requirements], 1800)
        if got.returncode != 0:
            if any(m in got.stderr for m in _PIP_OFFLINE):
                pytest.skip(f"PyPI not reachable to download {spec.requirements[0]} ({spec.download})")
            pytest.fail(f"pip download {spec.requirements[0]} failed:\n" + got.stderr[-3000:])
        _hardlink_copies(wheels, shared)
        inst = _run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels, *spec.requirements],
                    1800)
        assert inst.returncode == 0, inst.stderr[-3000:]
        assert _torch_ok(py, spec), f"torch {spec.torch_version} does not import in the new venv {venv}"
    # this checkout, every session (cheap): the CLI under test must be the code under test
    mb = _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", REPO], 600)
    assert mb.returncode == 0, mb.stderr[-3000:]
    return venv


def _hardlink_copies(wheels: Path, shared: list[Path]) -> None:
    """pip download copies what it finds in another cache dir: make those copies hard links (no 2 GB twice)."""
    for other in shared:
        for src in other.glob("*.whl"):
            dup = wheels / src.name
            if dup.is_file() and not dup.samefile(src) and dup.stat().st_size == src.stat().st_size:
                tmp = dup.with_name(dup.name + ".link")
                os.link(src, tmp)
                os.replace(tmp, dup)


@pytest.fixture(scope="session")
def torch201_venv(test_cache) -> Path:
    """venv with torch 2.0.1+cu117 and this checkout's mamba-build (editable); returns the venv folder."""
    return make_torch_venv(TORCH201, test_cache)


@pytest.fixture(scope="session")
def torch251_venv(test_cache) -> Path:
    """venv with torch 2.5.1+cu124 and this checkout's mamba-build (editable); returns the venv folder."""
    return make_torch_venv(TORCH251, test_cache)


@pytest.fixture(scope="session")
def torch260_venv(test_cache, torch251_venv) -> Path:
    """venv with torch 2.6.0+cu124 and this checkout's mamba-build (editable); made after torch251_venv so the
    shared nvidia-*-cu12 wheels are downloaded once."""
    return make_torch_venv(TORCH260, test_cache)


@dataclass
class CliInstall:
    cache: Path            # MAMBA_BUILD_CACHE used by the CLI calls
    toolkit: toolkits.ToolchainInfo
    output: str            # what `toolchain install` printed
    seconds: float


def cli_toolchain_install(cuda: str, venv: Path, test_cache: Path, cache: Path) -> CliInstall:
    """`mamba-build toolchain install --cuda X.Y` by ``venv``'s CLI into the fresh cache ``cache``.

    The pinned .deb and wheels it downloads are kept in ``$MAMBA_BUILD_TEST_CACHE/cudaXY-files`` and
    passed with --find-links once all are there."""
    import time
    pins = toolkits.release_pins(cuda)
    if pins.debs:
        for tool in ("apt-get", "dpkg-deb"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is needed for the Debian-provided CUDA {cuda} compiler")
    files = test_cache / f"cuda{cuda.replace('.', '')}-files"
    files.mkdir(parents=True, exist_ok=True)
    have = {f.name for f in files.iterdir()}
    local = all(d.filename in have for d in pins.debs) and all(
        any(f.filename in have for f in w.files) for w in pins.wheels)
    env = dict(os.environ, MAMBA_BUILD_CACHE=str(cache))
    argv = [venv / "bin" / "mamba-build", "toolchain", "install", "--cuda", cuda]
    if local:
        argv += ["--find-links", files]
    start = time.monotonic()
    proc = _run(argv, 1800, env=env)
    seconds = time.monotonic() - start
    if proc.returncode == ExitCode.NETWORK:
        pytest.skip("the Debian archive or PyPI is not reachable: " + proc.stderr[-500:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if not local:  # keep what was downloaded (sha256-checked by install) for the next run
        for found in list((cache / "debs").glob("*.deb")) + list((cache / "wheels" / "nvidia").glob("*.whl")):
            shutil.copy2(found, files / found.name)
    old = os.environ.get("MAMBA_BUILD_CACHE")
    os.environ["MAMBA_BUILD_CACHE"] = str(cache)
    try:
        info = toolkits.find(cuda)
    finally:
        if old is None:
            os.environ.pop("MAMBA_BUILD_CACHE", None)
        else:
            os.environ["MAMBA_BUILD_CACHE"] = old
    assert info is not None, f"toolchain install succeeded but no toolkit is under {cache}"
    return CliInstall(cache, info, proc.stdout + proc.stderr, seconds)


@pytest.fixture(scope="session")
def cuda118_cli_install(torch201_venv, test_cache, tmp_path_factory) -> CliInstall:
    """`mamba-build toolchain install --cuda 11.8` by the torch 2.0.1 venv's CLI, into a fresh cache."""
    return cli_toolchain_install("11.8", torch201_venv, test_cache, tmp_path_factory.mktemp("mb-cache-118"))


@pytest.fixture(scope="session")
def cuda124_cli_install(torch251_venv, test_cache, tmp_path_factory) -> CliInstall:
    """`mamba-build toolchain install --cuda 12.4` by the torch 2.5.1 venv's CLI, into a fresh cache."""
    return cli_toolchain_install("12.4", torch251_venv, test_cache, tmp_path_factory.mktemp("mb-cache-124"))


# ---------------------------------------------------------------------------------------------
# The seeds' stack: torch 2.0.1 + CUDA 11.8 + gcc-11, causal-conv1d 1.1.1 + mamba-ssm 1.1.3.post1, in a venv a new user
# makes today (setuptools 84.2.1: no pkg_resources). tests/integration/test_old_stack_real.py

SEED_EXTRAS = ("setuptools==84.2.1", "einops", "transformers==4.36.2")  # transformers: 1.1.3.post1's generation.py
SEED_CHECK = ("import importlib.util, setuptools, torch, einops, transformers; "
              "assert importlib.util.find_spec('pkg_resources') is None, 'pkg_resources found'; "
              "print(setuptools.__version__, torch.__version__)")
SEED_PINS = {"causal-conv1d": "1.1.1", "mamba-ssm": "1.1.3.post1"}
# The nearest sdist that ships the CUDA sources each old release's setup.py lists (see old_seed_sources)
CSRC_FROM = {"causal-conv1d": "1.5.2", "mamba-ssm": "2.2.5"}


def _seed_ok(python: Path) -> bool:
    if not python.exists():
        return False
    probe = _run([python, "-c", SEED_CHECK], 300)
    return probe.returncode == 0 and probe.stdout.split() == ["84.2.1", TORCH201.torch_version]


@pytest.fixture(scope="session")
def torch201_seed_venv(torch201_venv, test_cache) -> Path:
    """torch 2.0.1+cu117 with setuptools 84.2.1 (no pkg_resources), einops and transformers 4.36.2, and this
    checkout's mamba-build (editable): a fresh venv as a new user makes it for the seeds' stack today.
    torch and its NVIDIA libraries come from ``wheels-torch201`` (downloaded once by ``torch201_venv``); the
    extras are downloaded once into ``wheels-torch201-seed``. ~1-2 min to create from the cached wheels."""
    if sys.version_info[:2] > TORCH201.max_python:
        pytest.skip("torch 2.0.1 has wheels for CPython <= 3.11 only")
    base, extra = test_cache / "wheels-torch201", test_cache / "wheels-torch201-seed"
    venv = test_cache / "venv-torch201-seed"
    py = venv / "bin" / "python"
    if not _seed_ok(py):
        shutil.rmtree(venv, ignore_errors=True)
        made = _run([sys.executable, "-m", "venv", venv], 300)
        assert made.returncode == 0, made.stderr
        extra.mkdir(parents=True, exist_ok=True)
        got = _run([py, "-m", "pip", "download", "-q", "-d", extra, "--find-links", extra, *SEED_EXTRAS], 1800)
        if got.returncode != 0:
            if any(m in got.stderr for m in _PIP_OFFLINE):
                pytest.skip(f"PyPI not reachable to download {' '.join(SEED_EXTRAS)}")
            pytest.fail("pip download of the seed venv's extras failed:\n" + got.stderr[-3000:])
        links = ["--find-links", base, "--find-links", extra]
        inst = _run([py, "-m", "pip", "install", "-q", "--no-index", *links, *TORCH201.requirements[:2],
                     *(r for r in TORCH201.requirements[2:] if not r.startswith("setuptools")), *SEED_EXTRAS], 1800)
        assert inst.returncode == 0, inst.stderr[-3000:]
        assert _seed_ok(py), _run([py, "-c", SEED_CHECK], 300).stderr[-2000:]
    mb = _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", REPO], 600)
    assert mb.returncode == 0, mb.stderr[-3000:]
    return venv


# GitHub's archive of tag vX: one top folder named <repo>-X (no "v")
SEED_REPOS = {"causal-conv1d": "causal-conv1d", "mamba-ssm": "mamba"}
SDIST_GENERATED = ("PKG-INFO", "*.egg-info", "setup.cfg")  # what `setup.py sdist` adds (setup.cfg: egg_info tags only)


def release_tarball(package: str, version: str, csrc_from: str, test_cache: Path, work: Path) -> Path:
    """``work/<package>/v<version>.tar.gz`` shaped as GitHub's release tarball, made from PyPI: see old_seed_sources."""
    import tarfile

    from tests.pypi_sdists import sdist_tree

    cache = test_cache / "pypi-sdists"
    own = sdist_tree(package, version, cache, work / "sdists")
    donor = sdist_tree(package, csrc_from, cache, work / "sdists")
    top = work / "trees" / f"{SEED_REPOS[package]}-{version}"
    shutil.copytree(own, top, ignore=shutil.ignore_patterns(*SDIST_GENERATED))
    assert not (top / "csrc").exists(), f"{package} {version}'s sdist has csrc/ now: use it"
    shutil.copytree(donor / "csrc", top / "csrc")
    from mamba_build.build.sources import verify_tree

    verify_tree(top, package, version)  # every file setup.py lists is there (else the fixture is wrong)
    out = work / package / f"v{version}.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tf:
        tf.add(top, arcname=top.name)
    return out


@pytest.fixture(scope="session")
def old_seed_sources(test_cache, tmp_path_factory) -> dict[str, Path]:
    """Release tarballs of the seeds' pins, causal-conv1d 1.1.1 and mamba-ssm 1.1.3.post1, made at test time
    from PyPI (GitHub is not reachable from here, and these releases' sdists lack their CUDA sources).

    Each is shaped as GitHub's ``archive/refs/tags/v<version>.tar.gz`` (file ``v<version>.tar.gz``, one top folder
    ``<repo>-<version>/``) and holds:

    - the release's own sdist minus what ``setup.py sdist`` generates (PKG-INFO, *.egg-info, setup.cfg): its
      setup.py (the old shape under test), its Python package, README, LICENSE, AUTHORS;
    - ``csrc/`` from the NEAREST sdist that ships every file that setup.py lists (``CSRC_FROM``): causal-conv1d
      1.5.2 (the first complete one; 1.1.1's setup.py lists csrc/causal_conv1d{.cpp,_fwd.cu,_bwd.cu,_update.cu})
      and mamba-ssm 2.2.5 (1.1.3.post1 lists csrc/selective_scan/selective_scan{.cpp,_fwd_*.cu,_bwd_*.cu}).

    These are real CUDA sources with the old build files, NOT the 1.1.x kernels: causal-conv1d 1.5.2's
    ``causal_conv1d_fwd`` takes more arguments than 1.1.1's Python passes. The wheels are fit for the build, the
    arch check and import, not for numbers (old_seed_build hides any GPU, so its smoke test is import-only).
    Returns {package: tarball}."""
    work = tmp_path_factory.mktemp("old-seed-sources")
    try:
        return {pkg: release_tarball(pkg, ver, CSRC_FROM[pkg], test_cache, work) for pkg, ver in SEED_PINS.items()}
    except OSError as exc:  # requests' ConnectionError is an OSError
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PyPI not reachable for the sdists: {exc}")


@dataclass
class OldSeedBuild:
    venv: Path
    proc: subprocess.CompletedProcess
    wheel_dir: Path
    report: dict                 # compile --json's report
    seconds: float
    tools_before: str            # `pip list` of the venv's build tools before the compile
    tools_after: str             # ... and after


def build_tools_state(python: Path) -> str:
    """Versions of the build tools in ``python``'s env and whether pkg_resources imports (the test's witness)."""
    code = ("import importlib.metadata as m, importlib.util as u\n"
            "for n in ('setuptools', 'packaging', 'ninja', 'wheel'):\n"
            "    try: print(n, m.version(n), m.distribution(n)._path)\n"
            "    except m.PackageNotFoundError: print(n, None)\n"
            "print('pkg_resources', u.find_spec('pkg_resources') is not None)\n")
    res = _run([python, "-c", code], 120)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="session")
def old_seed_build(torch201_seed_venv, cuda118_cli_install, old_seed_sources, tmp_path_factory) -> OldSeedBuild:
    """ONE `mamba-build compile --cuda 11.8 --arch 8.0 --no-install --json` of causal-conv1d 1.1.1 and mamba-ssm
    1.1.3.post1 from their release tarballs (``--source``), run by the seed venv's own CLI (torch 2.0.1,
    setuptools 84.2.1: the build needs the build-only setuptools overlay). Any GPU is hidden (see old_seed_sources).
    About 12 minutes on 2 cores (740 s of build: 1430 s of CPU, mamba-ssm's selective_scan_bwd_*_complex.cu the
    longest units)."""
    import json
    import time

    if shutil.which("g++-11") is None:
        why = "g++-11 is not installed (make apt-deps): CUDA 11.8 accepts gcc <= 11"
        pytest.fail(why) if os.environ.get("CI") == "true" else pytest.skip(why)
    py = torch201_seed_venv / "bin" / "python"
    wheel_dir = tmp_path_factory.mktemp("old-seed-wheels")
    env = dict(os.environ, MAMBA_BUILD_CACHE=str(cuda118_cli_install.cache), CUDA_VISIBLE_DEVICES="")
    for key in ("CUDA_HOME", "CUDA_PATH", "CC", "CXX", "TORCH_CUDA_ARCH_LIST", "PYTHONPATH"):
        env.pop(key, None)
    before = build_tools_state(py)
    start = time.monotonic()
    proc = _run([torch201_seed_venv / "bin" / "mamba-build", "compile", "--cuda", "11.8", "--arch", "8.0",
                 "--source", f"causal-conv1d={old_seed_sources['causal-conv1d']}",
                 "--source", f"mamba-ssm={old_seed_sources['mamba-ssm']}",
                 "--no-install", "--no-cache", "--wheel-dir", wheel_dir, "--json"], 2400, env=env)
    seconds = time.monotonic() - start
    after = build_tools_state(py)
    if proc.returncode != 0:
        pytest.fail(f"compile of the old seeds failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    return OldSeedBuild(torch201_seed_venv, proc, wheel_dir, json.loads(proc.stdout), seconds, before, after)


UV_VERSION = "0.13.9"


@pytest.fixture(scope="session")
def uv_exe(test_cache) -> Path:
    """uv: the one next to this Python or on PATH, else uv==0.13.9 from PyPI into
    ``$MAMBA_BUILD_TEST_CACHE/uv-0.13.9`` (a ~20 MB wheel, once per machine)."""
    for cand in (Path(sys.executable).parent / "uv", shutil.which("uv")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return Path(cand)
    target = test_cache / f"uv-{UV_VERSION}"
    exe = target / "bin" / "uv"
    if not exe.is_file():
        got = _run([sys.executable, "-m", "pip", "install", "-q", "--target", target, f"uv=={UV_VERSION}"], 600)
        if got.returncode != 0 and any(m in got.stderr for m in _PIP_OFFLINE):
            pytest.skip(f"PyPI not reachable to download uv=={UV_VERSION}")
        assert got.returncode == 0, got.stderr[-3000:]
    return exe
