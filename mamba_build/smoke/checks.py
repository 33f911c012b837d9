"""The smoke test that runs in a CHILD Python against freshly built (staged) wheels.

Run as a script by :mod:`mamba_build.smoke.stage` with the staging dir first on ``PYTHONPATH``::

    python checks.py --staging DIR --expect causal_conv1d --expect mamba_ssm

It imports what was installed (only the packages named by ``--expect``; each must resolve
from inside ``--staging``, not from an older install elsewhere), and with a GPU compares forward
and backward with our own references (``references.py``, next to this file). It prints ONE JSON
object on stdout (everything else goes to stderr)::

    {"gpu": bool, "device": str|null, "torch": str, "python": str,
     "checks": [{"name", "status", "detail", "max_abs_err", "tol"}, ...]}

status: ``ok``, ``fail``, ``skipped`` (numerical check without a GPU) -- without a GPU the
import checks are ``ok`` and the numbers are ``skipped``: that is "import only", never a pass.

Tolerances. Each output/gradient tensor is compared as ``max|kernel - ref| <= atol + rtol *
max|ref|`` (``tol`` in the JSON is that bound for the worst tensor, ``max_abs_err`` its error).
The reference runs in float32 on float32 copies of the same (possibly bf16) inputs, so bf16
bounds cover bf16 rounding of inputs inside the kernel and of its outputs (eps 2^-8 = 3.9e-3)
plus accumulation over L; gradients go through one more rounded pass, hence the wider bounds.

=================================  =======  ======  ======
check                              dtype    atol    rtol
=================================  =======  ======  ======
causal_conv1d fwd                  fp32     1e-5    1e-4
causal_conv1d bwd (dx, dw, db)     fp32     1e-5    3e-4
causal_conv1d fwd                  bf16     1e-3    1e-2
causal_conv1d bwd                  bf16     1e-3    3e-2
selective_scan fwd (+last state)   fp32     1e-5    1e-3
selective_scan bwd (all inputs)    fp32     1e-5    3e-3
selective_scan fwd                 bf16     1e-3    3e-2
selective_scan bwd                 bf16     1e-3    6e-2
Mamba block fwd                    fp32     1e-5    5e-3
Mamba block bwd (d input)          fp32     1e-5    1e-2
=================================  =======  ======  ======

The Mamba block check also asserts the parameter count of ``Mamba(d_model=128, d_state=16,
d_conv=4, expand=2)``: 116,480, on a (2, 64, 128) input.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import platform
import sys
import traceback
from pathlib import Path

# (atol, rtol) per (check, dtype, direction); see the module docstring.
TOLERANCES: dict[tuple[str, str, str], tuple[float, float]] = {
    ("causal_conv1d", "float32", "fwd"): (1e-5, 1e-4),
    ("causal_conv1d", "float32", "bwd"): (1e-5, 3e-4),
    ("causal_conv1d", "bfloat16", "fwd"): (1e-3, 1e-2),
    ("causal_conv1d", "bfloat16", "bwd"): (1e-3, 3e-2),
    ("selective_scan", "float32", "fwd"): (1e-5, 1e-3),
    ("selective_scan", "float32", "bwd"): (1e-5, 3e-3),
    ("selective_scan", "bfloat16", "fwd"): (1e-3, 3e-2),
    ("selective_scan", "bfloat16", "bwd"): (1e-3, 6e-2),
    ("mamba_block", "float32", "fwd"): (1e-5, 5e-3),
    ("mamba_block", "float32", "bwd"): (1e-5, 1e-2),
}
MAMBA_PARAMS = 116_480

# package -> (python module, raw CUDA extension module)
PACKAGES = {
    "causal_conv1d": ("causal_conv1d", "causal_conv1d_cuda"),
    "mamba_ssm": ("mamba_ssm", "selective_scan_cuda"),
}


def _load_references():
    """references.py from next to this file (works whether or not mamba_build is importable)."""
    path = Path(__file__).resolve().parent / "references.py"
    spec = importlib.util.spec_from_file_location("mamba_build_smoke_references", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


class Report:
    def __init__(self) -> None:
        self.checks: list[dict] = []

    def add(self, name: str, status: str, detail: str = "", max_abs_err: float | None = None,
            tol: float | None = None) -> None:
        self.checks.append({"name": name, "status": status, "detail": detail,
                            "max_abs_err": max_abs_err, "tol": tol})


def _short_exc(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 1500 else text[:1500] + "..."


def _under(path: str | None, root: Path) -> bool:
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def check_import(report: Report, module: str, staging: Path | None) -> object | None:
    name = f"import {module}"
    try:
        mod = importlib.import_module(module)
    except BaseException as exc:  # noqa: BLE001 - an extension can raise anything, even SystemExit
        missing = getattr(exc, "name", None)
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and missing and missing.split(".")[0] not in (module, "torch"):
            hint = f" (dependency {missing!r} is missing from the environment: wheels are installed with --no-deps)"
        traceback.print_exc(file=sys.stderr)
        report.add(name, "fail", _short_exc(exc) + hint)
        return None
    where = getattr(mod, "__file__", None)
    if staging is not None and not _under(where, staging):
        report.add(name, "fail", f"resolved to {where}, not to the staged build in {staging}")
        return None
    report.add(name, "ok", f"from {where}")
    return mod


def compare(pairs, atol: float, rtol: float):
    """pairs: [(label, kernel_tensor, ref_tensor)]. Returns (ok, worst_err, worst_bound, detail)."""
    ok = True
    worst = (-1.0, 0.0, 0.0)  # (ratio, err, bound)
    parts = []
    for label, got, ref in pairs:
        if got is None or ref is None:
            ok = False
            parts.append(f"{label}: missing")
            continue
        if tuple(got.shape) != tuple(ref.shape):
            ok = False
            parts.append(f"{label}: shape {tuple(got.shape)} != {tuple(ref.shape)}")
            continue
        g, r = got.detach().double(), ref.detach().double()
        if not bool(g.isfinite().all()):
            ok = False
            parts.append(f"{label}: non-finite values")
            continue
        err = float((g - r).abs().max()) if g.numel() else 0.0
        bound = atol + rtol * (float(r.abs().max()) if r.numel() else 0.0)
        if err > bound:
            ok = False
        ratio = err / bound if bound > 0 else float("inf")
        if ratio > worst[0]:
            worst = (ratio, err, bound)
        parts.append(f"{label} {err:.3g}/{bound:.3g}")
    return ok, worst[1], worst[2], "; ".join(parts)


def _leaf(t, requires_grad=True):
    return t.detach().clone().requires_grad_(requires_grad)


def check_causal_conv1d(report: Report, refs, torch) -> None:
    from causal_conv1d import causal_conv1d_fn  # type: ignore

    gen = torch.Generator(device="cpu").manual_seed(0)
    batch, dim, seqlen, width = 2, 64, 128, 4
    for dtype_name in ("float32", "bfloat16"):
        dtype = getattr(torch, dtype_name)
        name = f"causal_conv1d {dtype_name}"
        try:
            x0 = torch.randn(batch, dim, seqlen, generator=gen).to("cuda", dtype)
            w0 = (torch.randn(dim, width, generator=gen) / width ** 0.5).to("cuda", dtype)
            b0 = torch.randn(dim, generator=gen).to("cuda", dtype)
            g0 = torch.randn(batch, dim, seqlen, generator=gen).to("cuda", dtype)
            x, w, b = _leaf(x0), _leaf(w0), _leaf(b0)
            out = causal_conv1d_fn(x, w, b, activation="silu")
            out.backward(g0)
            xr, wr, br = _leaf(x0.float()), _leaf(w0.float()), _leaf(b0.float())
            ref = refs.causal_conv1d_ref(xr, wr, br, activation="silu")
            ref.backward(g0.float())
            torch.cuda.synchronize()
            f_ok, f_err, f_tol, f_det = compare([("out", out, ref)], *TOLERANCES[("causal_conv1d", dtype_name, "fwd")])
            b_ok, b_err, b_tol, b_det = compare([("dx", x.grad, xr.grad), ("dweight", w.grad, wr.grad),
                                                 ("dbias", b.grad, br.grad)],
                                                *TOLERANCES[("causal_conv1d", dtype_name, "bwd")])
            report.add(f"{name} fwd", "ok" if f_ok else "fail", f_det, f_err, f_tol)
            report.add(f"{name} bwd", "ok" if b_ok else "fail", b_det, b_err, b_tol)
        except BaseException as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            report.add(f"{name} fwd+bwd", "fail", _short_exc(exc))


def check_selective_scan(report: Report, refs, torch) -> None:
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # type: ignore

    gen = torch.Generator(device="cpu").manual_seed(1)
    batch, dim, seqlen, dstate = 2, 32, 256, 16
    for dtype_name in ("float32", "bfloat16"):
        dtype = getattr(torch, dtype_name)
        name = f"selective_scan {dtype_name}"
        try:
            # Inputs in the kernel's types: u, delta, B, C, z in dtype; A, D, delta_bias in fp32.
            u0 = torch.randn(batch, dim, seqlen, generator=gen).to("cuda", dtype)
            delta0 = (0.5 * torch.rand(batch, dim, seqlen, generator=gen)).to("cuda", dtype)
            A0 = (-0.5 * torch.rand(dim, dstate, generator=gen) - 0.1).to("cuda")
            B0 = torch.randn(batch, dstate, seqlen, generator=gen).to("cuda", dtype)
            C0 = torch.randn(batch, dstate, seqlen, generator=gen).to("cuda", dtype)
            D0 = torch.randn(dim, generator=gen).to("cuda")
            z0 = torch.randn(batch, dim, seqlen, generator=gen).to("cuda", dtype)
            db0 = (0.5 * torch.rand(dim, generator=gen) - 0.25).to("cuda")
            g0 = torch.randn(batch, dim, seqlen, generator=gen).to("cuda", dtype)
            leaves = [_leaf(t) for t in (u0, delta0, A0, B0, C0, D0, z0, db0)]
            out, last = selective_scan_fn(*leaves[:6], z=leaves[6], delta_bias=leaves[7], delta_softplus=True,
                                          return_last_state=True)
            out.backward(g0)
            rleaves = [_leaf(t.float()) for t in (u0, delta0, A0, B0, C0, D0, z0, db0)]
            ref, ref_last = refs.selective_scan_ref(*rleaves[:6], z=rleaves[6], delta_bias=rleaves[7],
                                                    delta_softplus=True, return_last_state=True)
            ref.backward(g0.float())
            torch.cuda.synchronize()
            f_ok, f_err, f_tol, f_det = compare([("out", out, ref), ("last_state", last, ref_last)],
                                                *TOLERANCES[("selective_scan", dtype_name, "fwd")])
            labels = ("du", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias")
            b_ok, b_err, b_tol, b_det = compare([(lab, k.grad, r.grad) for lab, k, r in zip(labels, leaves, rleaves)],
                                                *TOLERANCES[("selective_scan", dtype_name, "bwd")])
            report.add(f"{name} fwd", "ok" if f_ok else "fail", f_det, f_err, f_tol)
            report.add(f"{name} bwd", "ok" if b_ok else "fail", b_det, b_err, b_tol)
        except BaseException as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            report.add(f"{name} fwd+bwd", "fail", _short_exc(exc))


def check_mamba_block(report: Report, refs, torch) -> None:
    name = "Mamba block float32"
    try:
        from mamba_ssm import Mamba  # type: ignore

        torch.manual_seed(2)
        block = Mamba(d_model=128, d_state=16, d_conv=4, expand=2).to("cuda")
        n_params = sum(p.numel() for p in block.parameters())
        if n_params != MAMBA_PARAMS:
            report.add(f"{name} parameters", "fail", f"{n_params:,} parameters, expected {MAMBA_PARAMS:,}")
        else:
            report.add(f"{name} parameters", "ok", f"{n_params:,} parameters")
        x0 = torch.randn(2, 64, 128, device="cuda")
        g0 = torch.randn(2, 64, 128, device="cuda")
        x = _leaf(x0)
        out = block(x)
        out.backward(g0)
        param_grads_ok = all(p.grad is not None and bool(p.grad.isfinite().all()) for p in block.parameters())
        xr = _leaf(x0)
        ref = refs.mamba_block_ref(block, xr)
        ref.backward(g0)
        torch.cuda.synchronize()
        f_ok, f_err, f_tol, f_det = compare([("out", out, ref)], *TOLERANCES[("mamba_block", "float32", "fwd")])
        b_ok, b_err, b_tol, b_det = compare([("dx", x.grad, xr.grad)], *TOLERANCES[("mamba_block", "float32", "bwd")])
        if not param_grads_ok:
            b_ok = False
            b_det += "; some parameter gradients are missing or non-finite"
        report.add(f"{name} fwd", "ok" if f_ok else "fail", f_det, f_err, f_tol)
        report.add(f"{name} bwd", "ok" if b_ok else "fail", b_det, b_err, b_tol)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        report.add(f"{name} fwd+bwd", "fail", _short_exc(exc))


def run_checks(expect: list[str], staging: Path | None, extra_imports: list[str] | None = None) -> dict:
    report = Report()
    result: dict = {"gpu": False, "device": None, "torch": None, "python": platform.python_version(),
                    "expected": expect, "checks": report.checks}
    try:
        import torch
    except BaseException as exc:  # noqa: BLE001
        report.add("import torch", "fail", _short_exc(exc))
        return result
    result["torch"] = torch.__version__
    try:
        gpu = bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        gpu = False
    result["gpu"] = gpu
    if gpu:
        result["device"] = torch.cuda.get_device_name(0)
    refs = _load_references()

    imported: dict[str, bool] = {}
    for pkg in expect:
        if pkg not in PACKAGES:
            report.add(f"import {pkg}", "fail", f"unknown package {pkg!r}")
            continue
        py_mod, ext_mod = PACKAGES[pkg]
        # The raw extension first: its error (undefined symbol, wrong CUDA) is the precise one.
        ext_ok = check_import(report, ext_mod, staging) is not None
        py_ok = check_import(report, py_mod, staging) is not None
        imported[pkg] = ext_ok and py_ok

    for mod in extra_imports or []:  # extension modules we hold no reference for: import only
        if check_import(report, mod, staging) is not None:
            report.add(f"{mod} numbers", "skipped", "no reference for this module: import only")

    suites = {"causal_conv1d": [check_causal_conv1d], "mamba_ssm": [check_selective_scan, check_mamba_block]}
    for pkg in expect:
        for fn in suites.get(pkg, []):
            label = fn.__name__.replace("check_", "")
            if not imported.get(pkg):
                report.add(label, "skipped", f"{pkg} did not import")
            elif not gpu:
                report.add(label, "skipped", "no GPU: import only, numbers not checked")
            else:
                fn(report, refs, torch)
    return result


ABORTED = 3  # exit status of a pre-started child that was told to give up (nothing tested, nothing printed)
# third-party modules the packages import (not from staging): a pre-started child imports them while the build runs
WARM_MODULES = ("einops", "triton", "transformers")


def warm_up() -> None:
    """What costs seconds and does not depend on the wheels: torch, the packages' third-party imports, CUDA's
    context. Failures are left for the checks to report."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.zeros(1, device="cuda").sum().item()
    except BaseException:  # noqa: BLE001
        return
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 (absent or broken: the package's own import says so later)
            pass


def wait_for_go(path: Path, timeout: float) -> dict | None:
    """Block until the parent writes ``path`` (JSON: staging, expect, imports; or abort); None: abort, the
    parent is gone, or the wait timed out."""
    import time

    parent, deadline = os.getppid(), time.monotonic() + timeout
    while not path.exists():
        if os.getppid() != parent or time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    try:
        go = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return None if go.get("abort") else go


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wait-for", type=Path, default=None,
                    help="pre-started: warm up (torch, CUDA), then wait for this JSON file (staging, expect, imports)")
    ap.add_argument("--wait-timeout", type=float, default=7200.0)
    ap.add_argument("--expect", action="append", default=[], help="package to check: causal_conv1d, mamba_ssm")
    ap.add_argument("--staging", type=Path, default=None, help="modules must resolve from here")
    ap.add_argument("--import", dest="imports", action="append", default=[],
                    help="another extension module to import (no numerical check)")
    args = ap.parse_args(argv)
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # the JSON object is the only thing on stdout
        if args.wait_for is not None:
            warm_up()
            go = wait_for_go(args.wait_for, args.wait_timeout)
            if go is None:
                return ABORTED
            args.staging, args.expect, args.imports = Path(go["staging"]), list(go["expect"]), list(go["imports"])
            sys.path.insert(0, str(args.staging))
            importlib.invalidate_caches()
        try:
            result = run_checks(args.expect, args.staging, args.imports)
        except BaseException as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            result = {"gpu": False, "device": None, "torch": None, "python": platform.python_version(),
                      "expected": args.expect, "checks": [{"name": "smoke script", "status": "fail",
                                                           "detail": _short_exc(exc), "max_abs_err": None,
                                                           "tol": None}]}
    real_stdout.write(json.dumps(result) + "\n")
    real_stdout.flush()
    failed = any(c["status"] == "fail" for c in result["checks"])
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
