"""Fake executables and toolkit trees for unit tests of DETECTION logic only.

Real nvcc/torch/gcc are exercised by tests/integration; these fakes let us create the situations
real users hit (wrapper scripts, garbage output, too-new gcc) on a machine that does not have them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

HOST_CONFIG = """\
#if defined(__GNUC__)
#if __GNUC__ > {gcc_max}
#error -- unsupported GNU version! gcc versions later than {gcc_max} are not supported!
#endif /* __GNUC__ > {gcc_max} */
#if defined(__clang__)
#if (__clang_major__ >= {clang_next}) || (__clang_major__ < 3) || ((__clang_major__ == 3) &&  (__clang_minor__ < 3))
#error -- unsupported clang version! clang version must be less than {clang_next} and greater than 3.2 .
#endif
#endif
#endif /* __GNUC__ */
"""


def write_exe(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_toolkit(root: Path, version: str = "13.0", full: str | None = None, *, gcc_max: int = 15,
                 clang_max: int = 20, archs=(75, 80, 86, 89, 90, 100, 120), cub: bool = True,
                 runtime: bool = True, version_output: str | None = None) -> Path:
    """A directory shaped like a CUDA toolkit whose bin/nvcc is a script."""
    full = full or f"{version}.88"
    out = version_output if version_output is not None else (
        "nvcc: NVIDIA (R) Cuda compiler driver\n"
        f"Cuda compilation tools, release {version}, V{full}\nBuild cuda_{version}.r{version}/compiler.0_0\n")
    arch_out = "\n".join(f"compute_{a}" for a in archs)
    write_exe(root / "bin" / "nvcc", f"""#!/bin/sh
case "$1" in
  --version|-V) /bin/cat <<'EOF'
{out}EOF
  ;;
  --list-gpu-arch) /bin/cat <<'EOF'
{arch_out}
EOF
  ;;
  *) echo "fake nvcc: $*" >&2; exit 1;;
esac
""")
    inc = root / "include"
    (inc / "crt").mkdir(parents=True, exist_ok=True)
    (inc / "crt" / "host_config.h").write_text(HOST_CONFIG.format(gcc_max=gcc_max, clang_next=clang_max + 1))
    if runtime:
        (inc / "cuda_runtime_api.h").write_text("/* fake */\n")
    if cub:
        (inc / "cub").mkdir(exist_ok=True)
        (inc / "cub" / "cub.cuh").write_text("/* fake */\n")
    return root


def make_wrapper(bin_dir: Path, target_nvcc: Path) -> Path:
    """The trap of this machine: /usr/local/bin/nvcc is `exec /usr/local/cuda-13.0/bin/nvcc "$@"`."""
    return write_exe(bin_dir / "nvcc", f'#!/bin/sh\nexec {target_nvcc} "$@"\n')


def make_gcc(bin_dir: Path, version: str, names=("gcc", "g++")) -> list[Path]:
    out = []
    for name in names:
        out.append(write_exe(bin_dir / name, f"""#!/bin/sh
case "$1" in
  -dumpfullversion|-dumpversion) echo {version};;
  --version) echo "{name} (Fake) {version}";;
  *) exit 1;;
esac
"""))
    return out


def make_nvidia_smi(bin_dir: Path, rows: list[tuple[str, str]], driver: str = "580.159.04",
                    driver_cuda: str = "13.0") -> Path:
    """rows: [(name, compute_cap), ...]"""
    query = "\n".join(f"{i}, {name}, {cc}, {driver}, 81559" for i, (name, cc) in enumerate(rows))
    return write_exe(bin_dir / "nvidia-smi", f"""#!/bin/sh
case "$1" in
  --query-gpu=*) /bin/cat <<'EOF'
{query}
EOF
  ;;
  -L) echo "GPU 0: fake";;
  *) echo "| NVIDIA-SMI {driver}   Driver Version: {driver}   CUDA Version: {driver_cuda} |";;
esac
""")


def path_with(*dirs: Path) -> str:
    """PATH made of exactly the given dirs (the fake scripts call /bin/cat by absolute path)."""
    return os.pathsep.join(str(d) for d in dirs)
