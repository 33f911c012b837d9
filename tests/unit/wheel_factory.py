"""Real wheels for the distribution tests: tiny synthetic projects built with `pip wheel`,
optionally carrying a real nvcc-built shared object with device code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

NVCC = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"  # the default; the tests pass the provisioned one
KERNEL = textwrap.dedent("""
    __global__ void add(float* a, const float* b, int n) {
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i < n) a[i] += b[i];
    }
    extern "C" void launch(float* a, const float* b, int n) { add<<<(n + 255) / 256, 256>>>(a, b, n); }
""")
# sm_80 and sm_90 SASS, PTX for compute_90 (what `wheels` builds for distribution).
GENCODE = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=[sm_90,compute_90]"]


def nvcc_available() -> bool:
    return NVCC.is_file() and os.access(NVCC, os.X_OK)


def compile_cuda_so(out_dir: Path, gencode: list[str] = GENCODE, nvcc: Path = NVCC) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / "kernel.cu"
    src.write_text(KERNEL)
    so = out_dir / "libkernel.so"
    subprocess.run([str(nvcc), *gencode, "--shared", "-Xcompiler", "-fPIC", str(src), "-o", str(so)],
                   check=True, capture_output=True, timeout=300)
    return so


def build_wheel(work: Path, dist_name: str, version: str, module: str, *, so_file: Path | None = None,
                requires_python: str | None = None, requires: tuple[str, ...] = ()) -> Path:
    """`pip wheel` a project named ``dist_name`` with one package ``module`` (importable)."""
    proj = work / f"src-{dist_name}-{version}"
    if proj.exists():
        shutil.rmtree(proj)
    pkg = proj / module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"VERSION = {version!r}\n")
    package_data = ""
    if so_file is not None:
        shutil.copy2(so_file, pkg / "_kernels.so")
        package_data = f", package_data={{{module!r}: ['*.so']}}, include_package_data=True"
    rp = f", python_requires={requires_python!r}" if requires_python else ""
    rp += f", install_requires={list(requires)!r}" if requires else ""
    (proj / "setup.py").write_text(
        f"from setuptools import setup\nsetup(name={dist_name!r}, version={version!r}, "
        f"packages=[{module!r}]{package_data}{rp})\n")
    out = work / "built"
    out.mkdir(exist_ok=True)
    before = set(out.glob("*.whl"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "--ignore-requires-python", "-q", "-w", str(out), str(proj)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    new = sorted(set(out.glob("*.whl")) - before)
    assert len(new) == 1, new
    return new[0]


def prov(torch: str, cuda: str, abi: bool = True) -> dict:
    """A provenance document (dist-info/mamba_build.json) of a build against this torch/CUDA/ABI."""
    return {"schema_version": 1, "torch_version": torch, "torch_cuda": cuda, "cxx11_abi": abi,
            "toolkit_version": cuda, "host_compiler": "g++ 12.2.0", "flags": [], "archs_sass": [],
            "archs_ptx": [], "source_origin": "test", "source_sha256": None, "mamba_build_version": "t"}


def stamped(work: Path, dist: Path, name: str, version: str, module: str, facts: dict | None, **kw) -> Path:
    """A real wheel (pip wheel), stamped as the build stamps it, finalized into ``dist``'s manifest."""
    from mamba_build.dist import manifest, provenance

    whl = build_wheel(work, name, version, module, **kw)
    if facts is not None:
        provenance.stamp(whl, facts)
    manifest.finalize_wheel(whl, dist, run_auditwheel=False)
    return dist / whl.name


def clean_pip_env() -> dict[str, str]:
    """Environment for a pip that sees only the index it is given (no config, no find-links)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env
