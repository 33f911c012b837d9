"""Run (patched) upstream setup.py files against stub torch/setuptools/wheel modules and record
what they would hand to the build: the CUDAExtension's nvcc flags, cmdclass, ABI switch, torch's
compiler tables, and whether the prebuilt-wheel path would touch the network.

This tests the text of our patches, not the toolchain: the stubs stand in for torch only so that
setup.py's module-level logic (the -gencode list, env switches) runs in a child process in ~0.1 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

_TORCH_INIT = '''
__version__ = "2.14.1"
class _Version:
    cuda = "13.0"
    hip = None
version = _Version()
class _C:
    _GLIBCXX_USE_CXX11_ABI = False
'''

_CPP_EXT = '''
import os
RECORD = {"extensions": []}
CUDA_HOME = os.environ["MB_STUB_CUDA_HOME"]
HIP_HOME = None
ROCM_HOME = None
CUDA_GCC_VERSIONS = {"13.0": ((6, 0, 0), (16, 0))}
CUDA_CLANG_VERSIONS = {"13.0": ((7, 0), (21, 0))}

class BuildExtension:
    use_ninja = True
    @classmethod
    def with_options(cls, **options):
        return type("BuildExtensionWithOptions", (cls,), {"options": options,
                                                           "use_ninja": options.get("use_ninja", True)})

def CUDAExtension(name, sources, *args, **kwargs):
    RECORD["extensions"].append({"name": name, "sources": list(sources),
                                 "extra_compile_args": kwargs.get("extra_compile_args")})
    return {"name": name}

def CppExtension(*args, **kwargs):
    return {}
'''

_SETUPTOOLS = '''
RECORD = {}
def setup(**kwargs):
    RECORD["setup"] = kwargs
def find_packages(*args, **kwargs):
    return []
'''

_BDIST = '''
RUNS = []
class bdist_wheel:
    def run(self):
        RUNS.append("source build")
'''

_DRIVER = r'''
import json, os, runpy, sys, types, urllib.request
import torch, torch.utils.cpp_extension as ce, setuptools, wheel.bdist_wheel as bw

results = {}
for path in sys.argv[1:]:
    ce.RECORD["extensions"].clear(); setuptools.RECORD.clear(); bw.RUNS.clear()
    torch._C._GLIBCXX_USE_CXX11_ABI = False
    ce.CUDA_GCC_VERSIONS.clear(); ce.CUDA_GCC_VERSIONS["13.0"] = ((6, 0, 0), (16, 0))
    ce.CUDA_CLANG_VERSIONS.clear(); ce.CUDA_CLANG_VERSIONS["13.0"] = ((7, 0), (21, 0))
    os.chdir(os.path.dirname(os.path.abspath(path)))
    out = {}
    try:
        g = runpy.run_path(path, run_name="__main__")
        ext = ce.RECORD["extensions"]
        nvcc = ext[0]["extra_compile_args"]["nvcc"] if ext else None
        kw = setuptools.RECORD.get("setup", {})
        cmd = kw.get("cmdclass") or {}
        be = cmd.get("build_ext")
        # The prebuilt-wheel path, as pip would take it if FORCE_BUILD were off:
        url_calls = []
        real = urllib.request.urlretrieve
        urllib.request.urlretrieve = lambda *a, **k: url_calls.append(a) or (_ for _ in ()).throw(
            OSError("network used"))
        wheel_outcome = None
        try:
            g["FORCE_BUILD"] = False
            wcls = cmd["bdist_wheel"]
            wcls.run.__globals__["FORCE_BUILD"] = False
            inst = wcls.__new__(wcls)
            try:
                inst.run()
                wheel_outcome = list(bw.RUNS)
            except Exception as exc:
                wheel_outcome = "error: %r" % (exc,)
        finally:
            urllib.request.urlretrieve = real
        out = {
            "ok": True,
            "extensions": [e["name"] for e in ext],
            "sources": ext[0]["sources"] if ext else None,
            "nvcc": nvcc,
            "use_ninja": getattr(be, "use_ninja", None),
            "build_ext": getattr(be, "__name__", None),
            "cxx11_abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
            "gcc_bounds": {k: [list(v[0]), list(v[1])] for k, v in ce.CUDA_GCC_VERSIONS.items()},
            "clang_bounds": {k: [list(v[0]), list(v[1])] for k, v in ce.CUDA_CLANG_VERSIONS.items()},
            "wheel_urlretrieve_calls": len(url_calls),
            "wheel_outcome": wheel_outcome,
        }
    except BaseException as exc:
        out = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
    results[path] = out
print(json.dumps(results))
'''


def make_stubs(root: Path, cuda_release: str = "13.0") -> Path:
    """Write the stub modules and a fake nvcc under ``root``; returns the directory for sys.path."""
    stub = root / "stubs"
    (stub / "torch" / "utils").mkdir(parents=True, exist_ok=True)
    (stub / "torch" / "__init__.py").write_text(_TORCH_INIT)
    (stub / "torch" / "utils" / "__init__.py").write_text("")
    (stub / "torch" / "utils" / "cpp_extension.py").write_text(_CPP_EXT)
    (stub / "setuptools").mkdir(exist_ok=True)
    (stub / "setuptools" / "__init__.py").write_text(_SETUPTOOLS)
    (stub / "wheel").mkdir(exist_ok=True)
    (stub / "wheel" / "__init__.py").write_text("")
    (stub / "wheel" / "bdist_wheel.py").write_text(_BDIST)
    (stub / "mb_driver.py").write_text(_DRIVER)
    nvcc = root / "cuda" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True, exist_ok=True)
    nvcc.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "nvcc: NVIDIA (R) Cuda compiler driver"
        echo "Cuda compilation tools, release {cuda_release}, V{cuda_release}.48"
        """))
    nvcc.chmod(0o755)
    return stub


def record(setup_files: list[Path], root: Path, timeout: float = 120) -> dict[str, dict]:
    """Run every setup.py under the stubs in ONE child process; {str(path): record}."""
    stub = make_stubs(root)
    env = {"PYTHONPATH": str(stub), "MB_STUB_CUDA_HOME": str(root / "cuda"), "PATH": "/usr/bin:/bin",
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, str(stub / "mb_driver.py"), *map(str, setup_files)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gencode_of(nvcc: list[str]) -> list[str]:
    """The -gencode values in an nvcc argument list, in order."""
    return [nvcc[i + 1] for i, flag in enumerate(nvcc) if flag == "-gencode"]
