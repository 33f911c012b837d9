"""CUDA 12.4 for real (issue 4): `doctor --probe --cuda 12.4` compiles the probe with an assembled toolkit.

In order, through session fixtures (tests/integration/conftest.py): a torch==2.5.1 venv (PyPI's default
build, CUDA 12.4) with this mamba-build; `mamba-build toolchain install --cuda 12.4` by that venv's CLI
into a fresh MAMBA_BUILD_CACHE (compiler from Debian 13 trixie's non-free nvidia-cuda-toolkit 12.4.1
through a private, signature-checked, rootless apt-get; headers and libcudart from NVIDIA's cu12 wheels;
cuBLAS/cuSPARSE/cuSOLVER headers from torch's nvidia-*-cu12 packages); then
`mamba-build doctor --probe --cuda 12.4 --json`, which must pick that toolkit and compile the probe
extension (csrc/probe) with it for sm_80 (no GPU here: the probe is imported, not run).

Budget on 2 cores: ~1 min for the venv from cached wheels (a clean machine first downloads ~2.9 GB),
~5 s for the toolkit, ~1 min for the probe compile.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from mamba_build.plan.host_compiler import parse_host_config

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.toolchain]


def _run(argv, timeout, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)


def test_toolchain_install_124(cuda124_cli_install, tmp_path):
    info = cuda124_cli_install.toolkit
    out = cuda124_cli_install.output
    assert "CUDA 12.4  nvcc 12.4.131" in out, out
    assert "cuBLAS/cuSPARSE/cuSOLVER headers: yes" in out  # from torch 2.5.1's nvidia-*-cu12
    assert info.nvcc_version == "12.4.131"
    (deb,) = info.debs
    assert deb["package"] == "nvidia-cuda-toolkit" and deb["version"].startswith("12.4.131~")
    assert deb["archive"].endswith(" trixie")
    for rel in ("bin/nvcc", "bin/nvcc.profile", "bin/cudafe++", "bin/fatbinary", "bin/nvlink", "bin/ptxas",
                "nvvm/bin/cicc", "nvvm/libdevice/libdevice.10.bc", "include/cuda_runtime.h", "include/cub/cub.cuh",
                "include/crt/host_config.h", "include/cublas_v2.h", "include/cusparse.h", "include/cusolverDn.h",
                "lib64/libcudart.so"):
        assert (info.path / rel).exists(), rel
    assert parse_host_config(info.host_config.read_text()).gcc_max == 13  # system gcc 12 is accepted
    assert "/usr/lib/nvidia-cuda-toolkit" not in (info.path / "bin" / "nvcc.profile").read_text()
    # NVIDIA's prebuilt trixie binaries run on this host (e.g. bookworm, glibc 2.36), no system CUDA on PATH
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH")}
    env["PATH"] = "/usr/bin:/bin"
    src = tmp_path / "tiny.cu"
    src.write_text("#include <cuda_runtime.h>\n#include <cuda_bf16.h>\n#include <cub/cub.cuh>\n"
                   "__global__ void k(float* x) { x[threadIdx.x] *= 2.f; }\n"
                   "int main() { float* d; cudaMalloc(&d, 4); k<<<1, 1>>>(d); return 0; }\n")
    proc = _run([info.nvcc, "-arch=sm_80", "-c", "-o", tmp_path / "tiny.o", src], 300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_doctor_probe_compiles_with_cuda124(torch251_venv, cuda124_cli_install):
    cache = cuda124_cli_install.cache
    home = str(cuda124_cli_install.toolkit.path)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_HOME", "CUDA_PATH", "CC", "CXX", "TORCH_CUDA_ARCH_LIST", "NVCC_PREPEND_FLAGS",
                        "NVCC_APPEND_FLAGS")}
    # no system CUDA on PATH: the toolkit must be the managed 12.4 one, found through MAMBA_BUILD_CACHE
    env.update(MAMBA_BUILD_CACHE=str(cache),
               PATH=os.pathsep.join([str(torch251_venv / "bin"), "/usr/bin", "/bin"]))
    start = time.monotonic()
    proc = _run([torch251_venv / "bin" / "mamba-build", "doctor", "--probe", "--cuda", "12.4", "--json"], 900,
                env=env)
    seconds = time.monotonic() - start
    assert proc.stdout.strip().startswith("{"), proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    print(f"doctor --probe --cuda 12.4: {seconds:.0f} s (probe compile {doc.get('probe', {}).get('compile_seconds')} s)")

    target = doc["environment"]["target"]
    assert target["cuda"] == "12.4" and target["toolkit"] == home, target
    checks = {c["id"]: c for c in doc["checks"]}
    probe_check = checks["probe"]
    probe = doc["probe"]
    assert probe["ok"] is True, json.dumps(probe, indent=1)[-3000:]
    assert probe["cuda"] == "12.4" and probe["toolkit"] == home and probe["arch"] == "8.0"
    # compiled and imported; no GPU here, so import only: a warn, never a fail (nor an ok without a run)
    assert probe_check["status"] == "warn", probe_check
    assert "imported" in probe_check["summary"] and "CUDA 12.4" in probe_check["summary"], probe_check
    assert probe["run"]["imported"] is True
