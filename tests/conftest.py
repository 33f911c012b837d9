"""Shared test fixtures.

Expensive real things (downloads, builds) are session-scoped and cached on disk so that each is
done once per run (and once per machine for downloads).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def tests_cache_root() -> Path:
    """Persistent cache for test downloads (PyPI sdists, NVIDIA wheels): reused across runs."""
    root = Path(os.environ.get("MAMBA_BUILD_TEST_CACHE", Path.home() / ".cache" / "mamba-build-tests"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def test_cache() -> Path:
    return tests_cache_root()


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A private MAMBA_BUILD_CACHE so tests never touch the user's cache."""
    path = tmp_path / "mb-cache"
    monkeypatch.setenv("MAMBA_BUILD_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


# ---------------------------------------------------------------------------------------------
# The CUDA toolkit of the real-toolchain tests, provisioned by the project itself

TEST_CUDA = "13.0"  # torch 2.14.1 (the venv's) is a CUDA 13.0 build
_TOOLKIT_CODE = (
    "mamba_build/toolchain/toolkits.py", "mamba_build/toolchain/pins.py", "mamba_build/toolchain/installed.py",
    "mamba_build/toolchain/fetch.py", "mamba_build/toolchain/assemble.py", "mamba_build/toolchain/toolkit_index.py",
    "mamba_build/data/toolchains.toml",
)


def _toolkit_stamp() -> str:
    import hashlib

    h = hashlib.sha256()
    for rel in _TOOLKIT_CODE:
        h.update((REPO / rel).read_bytes())
    return h.hexdigest()[:16]


def provision_toolkit(cuda: str = TEST_CUDA) -> Path:
    """The CUDA toolkit every real-toolchain test uses: `mamba-build toolchain install --cuda X.Y` (this
    checkout's CLI, run in a child) into ``$MAMBA_BUILD_TEST_CACHE/toolkits`` (its MAMBA_BUILD_CACHE: the
    toolkit and the downloaded wheels stay there). Done once per machine, and again (``--force``) when the code
    that assembles toolkits changed (a stamp of toolchain.py, toolkit_index.py, data/toolchains.toml). Nothing
    of /usr/local/cuda* is used. ``$MAMBA_BUILD_TEST_CUDA_HOME`` overrides it (a toolkit of your own).
    Network failure: skip (an error under CI=true, see pytest_runtest_makereport)."""
    import fcntl

    override = os.environ.get("MAMBA_BUILD_TEST_CUDA_HOME")
    if override:
        return Path(override)
    cache = tests_cache_root() / "toolkits"
    cache.mkdir(parents=True, exist_ok=True)
    home = cache / "toolchains" / f"cuda-{cuda}"
    stamp_file = cache / f"cuda-{cuda}.stamp"
    stamp = _toolkit_stamp()
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time (parallel sessions on one machine)
        current = stamp_file.read_text().strip() if stamp_file.is_file() else None
        if current == stamp and (home / "bin" / "nvcc").is_file():
            return home.resolve()
        argv = ["toolchain", "install", "--cuda", cuda] + (["--force"] if home.exists() else [])
        proc = run_cli(*argv, env={"MAMBA_BUILD_CACHE": str(cache)}, timeout=3600)
        if proc.returncode == 8:  # ExitCode.NETWORK
            pytest.skip(f"cannot provision CUDA {cuda} for the real-toolchain tests (network): {proc.stderr[-400:]}")
        if proc.returncode != 0 or not (home / "bin" / "nvcc").is_file():
            pytest.fail(f"`mamba-build toolchain install --cuda {cuda}` failed ({proc.returncode}):\n"
                        + (proc.stdout + proc.stderr)[-3000:])
        stamp_file.write_text(stamp + "\n")
    return home.resolve()


@pytest.fixture(scope="session")
def cuda_home() -> Path:
    """CUDA_HOME of the real-toolchain tests (see :func:`provision_toolkit`)."""
    return provision_toolkit()


@pytest.fixture(scope="session")
def cuda_env(cuda_home) -> dict:
    """Environment additions that point a `mamba-build` child at the provisioned toolkit."""
    return {"CUDA_HOME": str(cuda_home)}


# ---------------------------------------------------------------------------------------------
# CI=true: a skipped real-toolchain test is an error

ALLOWED_SKIP_MARKERS = ("gpu",)  # `gpu`: depends on whether a GPU is visible (skips where that does not hold)


def pytest_configure(config):
    config.addinivalue_line("markers", "toolchain: uses a real CUDA toolkit (provisioned by the project, see "
                                       "tests/conftest.py); under CI=true its skip is an error")


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true (the CI runner sets it) a skip of a test marked `toolchain` becomes an error/failure: CI must
    run the real-toolchain tests, not skip them because a toolkit, a tool or the network was missing. Allowed:
    tests also marked `gpu` (ALLOWED_SKIP_MARKERS), which skip where a GPU is (not) visible."""
    outcome = yield
    rep = outcome.get_result()
    if not (rep.skipped and _ci()) or hasattr(rep, "wasxfail"):
        return
    if item.get_closest_marker("toolchain") is None:
        return
    if any(item.get_closest_marker(m) is not None for m in ALLOWED_SKIP_MARKERS):
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3 else str(rep.longrepr)
    rep.outcome = "failed"
    rep.longrepr = (f"CI=true: the real-toolchain test {item.nodeid} was skipped ({reason}); in CI it must run. "
                    "Only tests marked `gpu` may skip (tests/conftest.py: ALLOWED_SKIP_MARKERS).")


def has_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_cli(*args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None):
    """Run the real `mamba-build` CLI in a child process (as a user would)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "mamba_build", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd or REPO)


# The two packages every CI run builds, once, through the one-ninja pool (sm_90, ~9 min on 2 cores).
POOL_VERSIONS = {"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}


@dataclass(frozen=True)
class PoolWheels:
    out: Path                      # the wheels + manifest.json (`mamba-build wheels --out`)
    proc: subprocess.CompletedProcess
    wheels: dict                   # package name -> its wheel in ``out``
    seconds: float
    trees: dict                    # package name -> its kept, patched, built source tree (objects and build.ninja)


@pytest.fixture(scope="session")
def pool_mamba_ssm_source(mamba_main_source) -> tuple[str, str | None]:
    """THE place that says which mamba-ssm source the pool builds: (``--source`` spec, ``--version`` pin or None).
    It is mamba-ssm 2.3.2.post1's PyPI sdist with upstream main's setup.py (``mamba_main_source``): the same csrc/
    as the release, built by the next release's setup.py (MAMBA_KEEP_CUDA_BUILD), so one build serves issue 15's
    main-setup test and every user of ``pool_wheels``. The release's own setup.py is covered by the patch tests of
    every release (tests/integration/test_patch_all_releases.py). Return ("pypi", "2.3.2.post1") to build the
    release sdist instead; every user of ``pool_wheels`` follows."""
    return str(mamba_main_source), None


@pytest.fixture(scope="session")
def pool_wheels(tmp_path_factory, pool_mamba_ssm_source, cuda_env) -> PoolWheels:
    """causal-conv1d 1.7.0 and mamba-ssm built ONCE per session, at the same time, through the pool's one ninja,
    for sm_90 without PTX, by `mamba-build wheels` (fetch, patch, pool build, arch check, smoke test in staging:
    import-only without a GPU). About 9 minutes on 2 cores. ``--split-units``, as on a many-core machine: the
    split-bwd-units and split-bwd-launch units are built, linked and imported (on 2 slots the split costs no wall
    time: 535 vs 529 s, docs/benchmarks.md). The build trees are kept (``trees``): the mutant tests compile
    mutated units with the very commands of this build. The toolkit: the tests' provisioned one (``cuda_env``)."""
    import time

    source, pin = pool_mamba_ssm_source
    out = tmp_path_factory.mktemp("pool-wheels")
    builds = tmp_path_factory.mktemp("pool-builds")
    argv = ["wheels", "--out", str(out), "--package", "causal-conv1d,mamba-ssm", "--arch", "9.0", "--no-ptx",
            "--no-cache", "--schedule", "pool", "--version", f"causal-conv1d=={POOL_VERSIONS['causal-conv1d']}",
            "--keep-build", "--build-dir", str(builds), "--split-units"]
    if pin:
        argv += ["--version", f"mamba-ssm=={pin}"]
    if source != "pypi":
        argv += ["--source", f"mamba-ssm={source}"]
    start = time.monotonic()
    proc = run_cli(*argv, env={**cuda_env, "PYTHONUNBUFFERED": "1"}, timeout=3600)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        pytest.fail(f"mamba-build wheels (both packages, pool) failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    wheels = {name: next(out.glob(name.replace("-", "_") + "-*.whl")) for name in POOL_VERSIONS}
    trees = {name: next(p for p in builds.glob("run-*/src/*")
                        if p.name.replace("-", "_").lower().startswith(name.replace("-", "_"))) for name in POOL_VERSIONS}
    return PoolWheels(out, proc, wheels, seconds, trees)


@pytest.fixture(scope="session")
def causal_conv1d_wheels(pool_wheels):
    """The real causal-conv1d sdist from PyPI built for sm_90 by `mamba-build wheels`: the pool build of both
    packages (``pool_wheels``), so CI compiles it once. Returns (out_dir, process); out_dir also holds the
    mamba-ssm wheel (its users pick causal_conv1d-*.whl, and the index tests index the directory whole)."""
    return pool_wheels.out, pool_wheels.proc


# mamba's next release as far as it can be had here (issue 15): the newest sdist with upstream main's setup.py
MAMBA_MAIN_BASE = "2.3.2.post1"


@pytest.fixture(scope="session")
def mamba_main_source(test_cache, shared_dir, tmp_path_factory) -> Path:
    """mamba-ssm 2.3.2.post1's sdist from PyPI with upstream main's setup.py put over its own
    (``../shared/upstream/mamba-main-setup.py``: since July 2026 it builds selective_scan_cuda ONLY with
    MAMBA_KEEP_CUDA_BUILD=TRUE, and MAMBA_SKIP_CUDA_BUILD is gone). Returns the tree, for ``--source``.
    Nothing else is changed: main's setup.py builds the same csrc/ list as 2.3.2.post1's."""
    from tests.pypi_sdists import sdist_tree

    upstream = shared_dir / "upstream" / "mamba-main-setup.py"
    if not upstream.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{upstream} is missing: CI must have ../shared/ beside the clone")
        pytest.skip(f"{upstream} is not here (../shared/ beside the checkout)")
    try:
        tree = sdist_tree("mamba-ssm", MAMBA_MAIN_BASE, test_cache / "pypi-sdists", tmp_path_factory.mktemp("mamba-main"))
    except OSError as exc:  # requests' ConnectionError is an OSError
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PyPI not reachable for mamba-ssm {MAMBA_MAIN_BASE}'s sdist: {exc}")
    (tree / "setup.py").write_bytes(upstream.read_bytes())
    return tree


@pytest.fixture(scope="session")
def mamba_main_wheels(pool_wheels) -> Path:
    """``mamba_main_source`` built for sm_90 by `mamba-build wheels` (the keep-cuda-build-on recipe, the wheel's
    extension check, the arch check, the smoke test in staging): the pool build of both packages builds mamba-ssm
    from this tree (``pool_mamba_ssm_source``), so CI compiles it once. Returns the folder holding the wheels
    (mamba_ssm-*.whl, causal_conv1d-*.whl) and manifest.json."""
    return pool_wheels.out
