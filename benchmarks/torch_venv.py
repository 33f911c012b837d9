"""A build venv of torch for another Python version (the Python axis of a wheel matrix, issue 17).

``python benchmarks/torch_venv.py --python 3.12 --torch 2.14.1 --dest DIR [--wheels CACHE] [--nvidia-from VENV]``

Makes ``DIR`` with that Python (``pythonX.Y`` on PATH, e.g. pyenv's), torch from PyPI (its wheel for that Python,
downloaded once into CACHE and kept), and what building an extension needs (ninja, setuptools, wheel, packaging,
pip). torch's pure-Python requirements come from PyPI as usual; its CUDA libraries (the nvidia-* wheels, the
same py3-none files for every Python, ~3 GB) are taken from an existing venv of the same torch with
``--nvidia-from`` (a symlink of its ``site-packages/nvidia``; torch finds them through its RPATH
``$ORIGIN/../../nvidia/...``), so only the torch wheel itself (~1 GB) is new per Python. Prints the venv's python.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

BUILD_TOOLS = ("ninja", "setuptools", "wheel", "packaging", "numpy")
# torch 2.14.1's requirements other than the CUDA wheels (its METADATA): pure Python, or small per-Python wheels
TORCH_PURE = ("filelock", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec")


def find_python(version: str) -> str | None:
    for cand in (shutil.which(f"python{version}"), *sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python{version}"))):
        if cand and subprocess.run([cand, "-c", "import venv, ssl"], capture_output=True).returncode == 0:
            return cand
    return None


def site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3.*/site-packages"))
    if not found:
        raise SystemExit(f"torch_venv: no site-packages in {venv}")
    return found[0]


def _run(argv, timeout=3600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)


def torch_ok(py: Path, torch: str) -> bool:
    if not py.exists():
        return False
    res = _run([py, "-c", "import torch, ninja, setuptools, wheel, packaging; print(torch.__version__, torch.version.cuda)"],
               600)
    return res.returncode == 0 and res.stdout.split()[:1] and res.stdout.split()[0].split("+")[0] == torch


def make(version: str, torch: str, dest: Path, wheels: Path, nvidia_from: Path | None) -> Path:
    py = dest / "bin" / "python"
    if torch_ok(py, torch):
        return py
    base = find_python(version)
    if base is None:
        raise SystemExit(f"torch_venv: no python{version} found (pyenv install {version}, or put it on PATH)")
    shutil.rmtree(dest, ignore_errors=True)
    made = _run([base, "-m", "venv", dest], 600)
    if made.returncode != 0:
        raise SystemExit(made.stderr)
    wheels.mkdir(parents=True, exist_ok=True)
    tag = f"cp{version.replace('.', '')}"
    if not list(wheels.glob(f"torch-{torch}-{tag}-*.whl")):
        got = _run([py, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", wheels, f"torch=={torch}"])
        if got.returncode != 0:
            raise SystemExit("torch_venv: pip download torch failed:\n" + got.stderr[-3000:])
    inst = _run([py, "-m", "pip", "install", "-q", "--no-deps", "--find-links", wheels, f"torch=={torch}"])
    if inst.returncode != 0:
        raise SystemExit(inst.stderr[-3000:])
    inst = _run([py, "-m", "pip", "install", "-q", *TORCH_PURE, *BUILD_TOOLS])
    if inst.returncode != 0:
        raise SystemExit(inst.stderr[-3000:])
    if nvidia_from is not None:
        src = site_packages(nvidia_from) / "nvidia"
        link = site_packages(dest) / "nvidia"
        if not link.exists():
            os.symlink(src, link)
    if not torch_ok(py, torch):
        res = _run([py, "-c", "import torch"], 600)
        raise SystemExit(f"torch_venv: torch {torch} does not import in {dest}:\n{res.stderr[-3000:]}")
    return py


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", required=True, help="X.Y")
    p.add_argument("--torch", default="2.14.1")
    p.add_argument("--dest", required=True, type=Path)
    p.add_argument("--wheels", type=Path, default=Path.home() / ".cache" / "mamba-build-tests" / "wheels-torch-other-pythons")
    p.add_argument("--nvidia-from", type=Path, help="a venv of the same torch whose nvidia-* libraries to share")
    args = p.parse_args(argv)
    print(make(args.python, args.torch, args.dest, args.wheels, args.nvidia_from))
    return 0


if __name__ == "__main__":
    sys.exit(main())
