"""The split-bwd-launch recipe with the real nvcc: mamba-ssm's selective_scan_bwd_bf16_real.cu compiled whole and
as its two split units (sm_90, the setup.py flags) holds the same kernels, each in exactly one of the two
objects, and the first unit's extern launchers are exactly what the second defines. About 100 s on 2 cores."""

from __future__ import annotations

import concurrent.futures
import json
import re
import shutil
import subprocess
import sysconfig
import tarfile
from pathlib import Path

import pytest

from mamba_build.build.patching import PatchOptions, apply_patches
from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.toolchain]
SDIST = REPO / ".carry" / "sdists" / "mamba_ssm-2.3.2.post1.tar.gz"
FLAGS = ["-O3", "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__", "-U__CUDA_NO_BFLOAT16_OPERATORS__",
         "-U__CUDA_NO_BFLOAT16_CONVERSIONS__", "-U__CUDA_NO_BFLOAT162_OPERATORS__", "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
         "--expt-relaxed-constexpr", "--expt-extended-lambda", "--use_fast_math", "-lineinfo",
         "-gencode", "arch=compute_90,code=sm_90", "--compiler-options", "-fPIC",
         "-DTORCH_API_INCLUDE_EXTENSION_H", "-DTORCH_EXTENSION_NAME=selective_scan_cuda"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory, test_cache):
    from tests.integration.test_patch_all_releases import _download, _sdists

    if SDIST.is_file():
        archive = SDIST
    else:
        item = next((i for i in _sdists("mamba-ssm") if i["version"] == "2.3.2.post1"), None)
        if item is None:
            pytest.skip("mamba-ssm 2.3.2.post1 not on the index")
        archive = _download(item, test_cache / "pypi-sdists")
    root = tmp_path_factory.mktemp("split-launch")
    with tarfile.open(archive) as tf:
        tf.extractall(root, filter="data")
    whole = root / "whole"
    shutil.copytree(root / "mamba_ssm-2.3.2.post1", whole)
    split = root / "mamba_ssm-2.3.2.post1"
    apply_patches(split, "mamba-ssm", "2.3.2.post1", PatchOptions(archs=("9.0",), split_units=True))
    return whole / "csrc" / "selective_scan", split / "csrc" / "selective_scan"


def _plan(cuda_env: dict) -> dict:
    proc = run_cli("compile", "--package", "mamba-ssm", "--version", "mamba-ssm==2.3.2.post1", "--arch", "9.0",
                   "--dry-run", "--json", env=cuda_env, timeout=300)
    if proc.returncode != 0:
        pytest.fail(proc.stderr[-3000:])
    return json.loads(proc.stdout)


def _symbols(obj: Path, flag: str) -> set[str]:
    out = subprocess.run(["nm", "-C", flag, str(obj)], capture_output=True, text=True, check=True).stdout
    # "<address> T name" (defined) or "                 U name" (undefined)
    return {m.group(1) for m in re.finditer(r"^\s*(?:[0-9a-f]+\s+)?[A-Za-z]\s+(.+)$", out, re.MULTILINE)}


def test_the_two_units_hold_the_whole_files_kernels_once_each(sources, cuda_env):
    whole_dir, split_dir = sources
    plan = _plan(cuda_env)
    import torch

    inc = Path(torch.__file__).parent / "include"
    nvcc = Path(plan["cuda_home"]) / "bin" / "nvcc"
    cmd = [str(nvcc), "-c", f"-std=c++{plan.get('cxx_std') or 17}", "-ccbin", plan["compiler"]["cxx"], *FLAGS,
           f"-I{inc}", f"-I{inc / 'torch' / 'csrc' / 'api' / 'include'}", f"-I{sysconfig.get_paths()['include']}",
           *[f"-I{d}" for d in plan.get("include_dirs") or []],
           f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"]
    jobs = {"whole": whole_dir / "selective_scan_bwd_bf16_real.cu",
            "first": split_dir / "selective_scan_bwd_bf16_real.cu",
            "second": split_dir / "selective_scan_bwd_bf16_real.mbpart01.cu"}

    def build(item):
        name, src = item
        obj = src.with_name(f"{name}.o")
        res = subprocess.run([*cmd, f"-I{src.parent}", str(src), "-o", str(obj)], capture_output=True, text=True,
                             timeout=1200)
        assert res.returncode == 0, (name, res.stderr[-3000:])
        return name, obj

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        objs = dict(pool.map(build, jobs.items()))
    stubs = {n: {s for s in _symbols(o, "--defined-only") if "__device_stub__" in s} for n, o in objs.items()}
    assert len(stubs["whole"]) > 0
    assert stubs["first"] | stubs["second"] == stubs["whole"] and not stubs["first"] & stubs["second"]
    assert len(stubs["second"]) * 5 == len(stubs["whole"]) * 2  # 2 of the 5 launch shapes moved to the second unit
    launch = re.compile(r"^void selective_scan_bwd_launch<\d+, \d+, [^<>]+>\(SSMParamsBwd&, CUstream_st\*\)$")
    wanted = {s for s in _symbols(objs["first"], "--undefined-only") if launch.match(s)}
    given = {s for s in _symbols(objs["second"], "--defined-only") if launch.match(s)}
    assert len(wanted) == 2 and wanted == given
