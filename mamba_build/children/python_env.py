"""Child script (mamba_build/diagnose/probes/python_env.py): runs INSIDE the target Python (stdlib + whatever is
installed there); never imported by mamba-build.

Emits one JSON object at a time (mamba_build/child.py), so that a crash while importing torch or an
extension module still leaves the facts gathered before it:

  {"kind": "python", ...}      interpreter, package versions (from metadata, no imports)
  {"kind": "torch", ...}       what `import torch` says (or the error)
  {"kind": "extension", ...}   one line per extension module import attempt
"""

import os
import platform
import sys
import traceback
from typing import Any

from _mb_child import emit

EXTENSIONS = {
    "causal_conv1d_cuda": "causal-conv1d",
    "selective_scan_cuda": "mamba-ssm",
}
MATH_HEADERS = ["cusparse.h", "cublas_v2.h", "cublasLt.h", "cusolverDn.h"]  # = probes.toolkits.MATH_HEADERS
PACKAGES = [
    "pip",
    "setuptools",
    "wheel",
    "packaging",
    "ninja",
    "torch",
    "mamba-ssm",
    "causal-conv1d",
    "triton",
    "einops",
    "transformers",
    "pybind11",
    "numpy",
]
# modules a build imports that no distribution name tells about (found, not imported: find_spec)
BUILD_MODULES = ["pkg_resources"]


def dist_version(name):
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover
        return None
    try:
        return metadata.version(name)
    except Exception:
        return None


def wheel_tags(name):
    try:
        from importlib import metadata

        dist = metadata.distribution(name)
        text = dist.read_text("WHEEL") or ""
        return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]
    except Exception:
        return []


def find_spec_origin(module):
    try:
        import importlib.util

        spec = importlib.util.find_spec(module)
        return spec.origin if spec else None
    except Exception:
        return None


def nvidia_include_dirs(headers):
    """include/ dirs of torch's NVIDIA pip packages (site-packages/nvidia/*/include) holding any of headers."""
    out = []
    try:
        import importlib.util

        spec = importlib.util.find_spec("nvidia")
        roots = list(spec.submodule_search_locations or []) if spec else []
    except Exception:
        roots = []
    for root in roots:
        try:
            subdirs = sorted(os.listdir(root))
        except OSError:
            continue
        for sub in subdirs:
            inc = os.path.join(root, sub, "include")
            if os.path.isdir(inc) and any(os.path.isfile(os.path.join(inc, h)) for h in headers):
                out.append(inc)
    return out


def main():
    want_torch = "--no-torch" not in sys.argv
    want_ext = "--extensions" in sys.argv
    emit(
        {
            "kind": "python",
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "prefix": sys.prefix,
            "packages": {name: dist_version(name) for name in PACKAGES},
            "torch_wheel_tags": wheel_tags("torch"),
            "torch_origin": find_spec_origin("torch"),
            "extension_origins": {mod: find_spec_origin(mod) for mod in EXTENSIONS},
            "module_origins": {mod: find_spec_origin(mod) for mod in BUILD_MODULES},
            "nvidia_include_dirs": nvidia_include_dirs(MATH_HEADERS),
        }
    )
    if not want_torch:
        return
    info: dict[str, Any] = {"kind": "torch", "ok": False}
    try:
        import torch

        info.update(
            ok=True,
            version=torch.__version__,
            cuda=getattr(torch.version, "cuda", None),
            hip=getattr(torch.version, "hip", None),
            cxx11_abi=bool(torch._C._GLIBCXX_USE_CXX11_ABI),
            file=torch.__file__,
            arch_list=[],
            cuda_available=False,
            devices=[],
        )
        try:
            info["cuda_available"] = bool(torch.cuda.is_available())
            if info["cuda_available"]:
                info["arch_list"] = list(torch.cuda.get_arch_list())
                for i in range(torch.cuda.device_count()):
                    cap = torch.cuda.get_device_capability(i)
                    info["devices"].append(
                        {"index": i, "name": torch.cuda.get_device_name(i), "capability": f"{cap[0]}.{cap[1]}"}
                    )
        except Exception as exc:  # driver problems must not hide the rest
            info["cuda_error"] = f"{type(exc).__name__}: {exc}"
    except BaseException as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
        info["traceback"] = traceback.format_exc()[-4000:]
    emit(info)
    if not (want_ext and info.get("ok")):
        return
    for module, package in EXTENSIONS.items():
        entry = {"kind": "extension", "module": module, "package": package, "origin": find_spec_origin(module)}
        if entry["origin"] is None:
            entry.update(ok=False, present=False)
        else:
            try:
                __import__(module)
                entry.update(ok=True, present=True)
            except BaseException as exc:
                entry.update(ok=False, present=True, error=f"{type(exc).__name__}: {exc}")
        emit(entry)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
