"""--launcher ccache for real: the fixture package built twice (``--no-cache``, so the wheel cache does not
short-circuit) with a fresh CCACHE_DIR; the second build must take its nvcc unit from ccache and still
produce a working wheel. About 1 min cold + 15 s warm on 2 cores.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from mamba_build.dist.fatbin import archs_in_wheel
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.toolchain,
              pytest.mark.skipif(shutil.which("ccache") is None,
                                 reason="ccache is not installed (`make apt-deps` or `apt-get install ccache`)")]


def nvcc_results(log: Path) -> list[str]:
    """ccache's result for each nvcc invocation in its log (lines are keyed by pid)."""
    nvcc_pids, results = set(), {}
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"\[\S+ +(\d+) *\] (.*)$", line)  # "[timestamp pid] text"; ccache pads short pids
        if not m:
            continue
        pid, text = m.groups()
        if text.startswith("Command line:") and "/nvcc " in text:
            nvcc_pids.add(pid)
        elif text.startswith("Result: ") and text.split()[-1] in ("direct_cache_hit", "preprocessed_cache_hit",
                                                                  "cache_miss"):
            results[pid] = text.split()[-1]
    return [results.get(pid, "none") for pid in sorted(nvcc_pids)]


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory, cuda_env):
    root = tmp_path_factory.mktemp("launcher")
    env = {"CCACHE_DIR": str(root / "ccache"), "CCACHE_LOGFILE": str(root / "ccache.log"),
           "MAMBA_BUILD_CACHE": str(root / "mb-cache"), **cuda_env}
    runs = []
    for i in (1, 2):
        out = root / f"wheels{i}"
        proc = run_cli("compile", "--package", "mb-fixture", "--source", str(REPO / "csrc" / "fixture"),
                       "--arch", "8.0", "--no-install", "--no-cache", "--launcher", "ccache", "--wheel-dir", str(out),
                       "--json", env=env, timeout=1200)
        assert proc.returncode == 0, proc.stderr[-3000:]
        log = Path(env["CCACHE_LOGFILE"])
        runs.append((json.loads(proc.stdout), out, nvcc_results(log), proc.stderr))
        log.rename(root / f"ccache-{i}.log")
    return runs


def test_plan_records_the_launcher(two_builds, cuda_home):
    report, _, _, stderr = two_builds[0]
    plan = report["plan"]
    assert plan["launcher"] == "ccache" and plan["launcher_path"] == shutil.which("ccache")
    assert plan["launcher_env"]["PYTORCH_NVCC"].endswith(f"{cuda_home}/bin/nvcc")
    assert "launcher    ccache" in stderr


def test_second_build_takes_the_nvcc_unit_from_ccache(two_builds):
    (first, _, nvcc1, _), (second, _, nvcc2, stderr) = two_builds
    assert nvcc1 == ["cache_miss"]  # the fixture has one .cu unit; a fresh CCACHE_DIR
    assert nvcc2 and all(r.endswith("_cache_hit") for r in nvcc2), nvcc2
    stats1, stats2 = first["launcher_stats"], second["launcher_stats"]
    assert stats1["hits"] == 0 and stats1["misses"] >= 1
    assert stats2["misses"] == 0 and stats2["hits"] >= 1  # nvcc unit (and the host unit: torch wraps CXX)
    assert re.search(r"launcher: ccache: \d+ hits, 0 misses", stderr)


def test_warm_build_produces_a_working_wheel(two_builds):
    report, out, _, _ = two_builds[1]
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1
    assert archs_in_wheel(wheels[0]).sass == (80,)
    with zipfile.ZipFile(wheels[0]) as zf:
        assert any(n.startswith("mb_fixture_cuda") and n.endswith(".so") for n in zf.namelist())
    smoke = report["smoke"]
    assert smoke["passed"] is True
    assert any(c["name"].startswith("import mb_fixture_cuda") and c["status"] == "ok" for c in smoke["checks"])
