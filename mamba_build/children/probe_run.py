"""Child script (mamba_build/diagnose/toolchain_probe.py run_probe): argv[1] = JSON {so_path, name, tolerances,
seed}; imports the built probe and, on a GPU, checks its scan against torch.cumsum; emits {imported, ran_on_gpu, passed,
max_abs_err, within_tol, info, device, device_arch, error}."""

import json
import sys
import traceback

from _mb_child import emit

cfg = json.loads(sys.argv[1])
res: dict = {
    "imported": False,
    "ran_on_gpu": False,
    "passed": None,
    "max_abs_err": {},
    "within_tol": {},
    "info": {},
    "device": None,
    "device_arch": None,
    "error": None,
}


def finish(code):
    emit(res)
    sys.exit(code)


try:
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location(cfg["name"], cfg["so_path"])
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res["imported"] = True
    res["info"] = {str(k): v for k, v in dict(mod.probe_info()).items()}
    res["info"]["runtime_torch"] = torch.__version__
    res["info"]["runtime_torch_cuda"] = torch.version.cuda
except Exception as exc:
    traceback.print_exc()
    res["error"] = f"{type(exc).__name__}: {exc}"
    finish(1)
try:
    gpu = torch.cuda.is_available()
except Exception:
    gpu = False
if not gpu:
    finish(0)
try:
    res["ran_on_gpu"] = True
    res["device"] = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    res["info"]["device_capability"] = f"{major}.{minor}"
    res["device_arch"] = int(mod.device_arch())
    gen = torch.Generator().manual_seed(cfg["seed"])
    ok = True
    side = torch.cuda.Stream()
    for name, tol in cfg["tolerances"].items():
        atol, rtol = tol
        dtype = getattr(torch, name)
        x = torch.randn(8, 1000, generator=gen).to(device="cuda", dtype=dtype)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # the kernel must use torch's *current* stream
            out = mod.inclusive_scan(x)
        torch.cuda.current_stream().wait_stream(side)
        ref = torch.cumsum(x.float(), dim=-1).double()
        diff = (out.double() - ref).abs()
        res["max_abs_err"][name] = float(diff.max())
        within = bool((diff <= atol + rtol * ref.abs()).all())
        res["within_tol"][name] = within
        ok = ok and within
    torch.cuda.synchronize()
    res["passed"] = ok
    finish(0 if ok else 1)
except Exception as exc:
    traceback.print_exc()
    res["passed"] = False
    res["error"] = f"{type(exc).__name__}: {exc}"
    finish(1)
