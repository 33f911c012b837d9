"""Child script (mamba_build/diagnose/toolchain_probe.py build_probe): argv[1] = JSON config {name, sources, nvcc_flags,
include_dirs, build_dir, cuda_home}; compiles the probe extension with torch's cpp_extension (its output is the
build log) and emits {compiled, compile_seconds, so_path, error, import_error}."""

import json
import os
import sys
import time
import traceback

from _mb_child import emit

cfg = json.loads(sys.argv[1])
result: dict = {"compiled": False, "compile_seconds": None, "so_path": None, "error": None, "import_error": None}


def finish(code):
    emit(result)
    sys.exit(code)


try:
    import torch
    import torch.utils.cpp_extension as cpp
except Exception as exc:
    result["error"] = f"cannot import torch / torch.utils.cpp_extension: {exc!r}"
    finish(3)
print("probe: torch", torch.__version__, "cuda", torch.version.cuda, "CUDA_HOME", cpp.CUDA_HOME, flush=True)
if os.path.realpath(str(cpp.CUDA_HOME or "")) != os.path.realpath(cfg["cuda_home"]):
    result["error"] = "torch.utils.cpp_extension picked CUDA_HOME={}, not {}".format(cpp.CUDA_HOME, cfg["cuda_home"])
    finish(3)
so_path = os.path.join(cfg["build_dir"], cfg["name"] + ".so")
start = time.monotonic()
try:
    cpp.load(
        name=cfg["name"],
        sources=cfg["sources"],
        extra_cuda_cflags=cfg["nvcc_flags"],
        extra_include_paths=cfg["include_dirs"],
        build_directory=cfg["build_dir"],
        verbose=True,
    )
except Exception as exc:
    result["compile_seconds"] = time.monotonic() - start
    traceback.print_exc()
    if os.path.exists(so_path) and "Error building extension" not in str(exc):
        result.update(compiled=True, so_path=so_path, import_error=f"{type(exc).__name__}: {exc}")
        finish(0)
    result["error"] = f"{type(exc).__name__}: {exc}"
    finish(6)
result["compile_seconds"] = time.monotonic() - start
result.update(compiled=os.path.exists(so_path), so_path=so_path)
finish(0 if result["compiled"] else 6)
