"""What every phase shares: the repo, the packages, the targets, and small file/process helpers."""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCHEMA = 1

TARGET_COLD_S = 150.0      # cold build of both packages, wall, whole command
TARGET_SPEEDUP = 8.0       # upstream default total / mamba-build cold
TARGET_WARM_S = 10.0       # warm rebuild, wall, whole command
TARGET_BOUND_RATIO = 1.15  # cold wall / CPU-work bound (CPU seconds of the command / CPUs), issue 17

PHASES = ("cold", "warm", "kernels-aa", "upstream", "kernels")
KERNEL_OPS = {"causal-conv1d": "causal_conv1d", "mamba-ssm": "selective_scan"}  # package -> kernel_speed.py --ops
HEARTBEAT_S = 20.0


@dataclass(frozen=True)
class Package:
    name: str
    sdist: str          # the file expected in --sdists
    prefix: str         # upstream's env prefix (FORCE_BUILD, ...)
    dist: str           # the wheel's distribution name


PACKAGES = {
    "causal-conv1d": Package("causal-conv1d", "causal_conv1d-1.7.0.tar.gz", "CAUSAL_CONV1D_", "causal_conv1d"),
    "mamba-ssm": Package("mamba-ssm", "mamba_ssm-2.3.2.post1.tar.gz", "MAMBA_", "mamba_ssm"),
}






def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")




def run_text(argv: list[str], timeout: float = 60, **kw) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
