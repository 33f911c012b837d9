"""NVIDIA driver and GPUs, from nvidia-smi. Returns data only."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass

from mamba_build import runner


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    compute_capability: str | None  # "9.0"
    memory_mib: int | None


@dataclass(frozen=True)
class GpuInfo:
    nvidia_smi: str | None  # path, None when absent
    driver_version: str | None
    driver_cuda: str | None  # the newest CUDA the driver supports ("CUDA Version" in nvidia-smi)
    gpus: tuple[Gpu, ...]
    error: str | None = None


_CC = re.compile(r"^\d+\.\d+$")


def parse_query(text: str) -> tuple[list[Gpu], str | None]:
    """Parse `--query-gpu=index,name,compute_cap,driver_version,memory.total --format=csv,noheader,nounits`."""
    gpus: list[Gpu] = []
    driver = None
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5 or not parts[0].isdigit():
            continue
        cc = parts[2] if _CC.match(parts[2]) else None
        try:
            mem = int(float(parts[4]))
        except ValueError:
            mem = None
        gpus.append(Gpu(int(parts[0]), parts[1], cc, mem))
        driver = driver or (parts[3] if re.match(r"^\d+(\.\d+)+$", parts[3]) else None)
    return gpus, driver


def parse_driver_cuda(text: str) -> str | None:
    m = re.search(r"CUDA Version\s*:\s*(\d+\.\d+)", text)
    return m.group(1) if m else None


def probe_gpus(timeout: float = 20.0) -> GpuInfo:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return GpuInfo(None, None, None, ())
    q = runner.run(
        [smi, "--query-gpu=index,name,compute_cap,driver_version,memory.total", "--format=csv,noheader,nounits"],
        timeout=timeout,
    )
    if not q.ok:
        err = (q.stderr or q.stdout).strip().splitlines()
        return GpuInfo(smi, None, None, (), error=err[-1] if err else f"nvidia-smi exited {q.returncode}")
    gpus, driver = parse_query(q.stdout)
    header = runner.run([smi], timeout=timeout)
    return GpuInfo(smi, driver, parse_driver_cuda(header.stdout), tuple(gpus))
