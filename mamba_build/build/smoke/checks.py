"""The smoke test that runs in a CHILD Python against freshly built (staged) wheels.

Run as a script by :mod:`mamba_build.build.smoke.stage` with the staging dir first on ``PYTHONPATH``::

    python checks.py --staging DIR --expect causal_conv1d --expect mamba_ssm

It imports what was installed (only the packages named by ``--expect``; each must resolve
from inside ``--staging``, not from an older install elsewhere), and with a GPU compares forward
and backward with our own references (``references.py``, next to this file). It answers the way every child
script of mamba-build does (``mamba_build/child.py``): JSON values, one per line, appended at once to the file
``$MAMBA_BUILD_RESULT`` by ``_mb_child.emit`` (copied next to this file), never on stdout, where torch, triton
and the extensions print what they like. While it runs it emits ``{"header": {...}}`` (torch, GPU),
``{"running": NAME}`` before each check and ``{"check": {...}}`` after it (each with ``"t"``, seconds since the
checks began), so a child that dies in a kernel
(a segfault, an illegal address that kills the process) still tells the parent which checks passed and which
one was running; at the end ``{"result": RESULT}``::

    RESULT = {"gpu": bool, "device": str|null, "torch": str, "python": str, "expected": [str],
              "checks": [{"name", "status", "detail", "max_abs_err", "tol"[, "optional"]}, ...]}

status: ``ok``, ``fail``, ``skipped`` (numerical check without a GPU) -- without a GPU the
import checks are ``ok`` and the numbers are ``skipped``: that is "import only", never a pass. On a GPU
only a check marked ``optional`` (Mamba2 where triton does not import) may be skipped. ``max_abs_err`` and
``tol`` are |kernel - ref| and its bound at the check's worst element (the largest ratio of the two).

What runs (every launch shape and every unit the recipes touch)
--------------------------------------------------------------
* ``causal_conv1d {itype} fwd|bwd``: x in fp32, fp16, bf16 x weight in fp32, fp16, bf16 x channel-first and
  channel-last x: the 18 instantiations ``split-bwd-units`` puts in 18 units (and the fwd ones), width 4,
  L = 600 (more than one chunk of the fp32 kernel, several of the channel-last one).
* ``selective_scan {itype} {real|complex} fwd|bwd``: itype fp32, fp16, bf16, real and complex A, at
  L = 100, 256, 512, 1000, 2100: the five launch shapes of the kernels' dispatch (kNThreads x kNItems =
  32x4, 32x8, 32x16, 64x16, 128x16; ``split-bwd-launch`` moves 32x16 and 64x16 into their own unit), odd and
  even lengths, and two chunks of 2048 at L = 2100. A failing check's detail names the L that failed.
* ``Mamba block float32``: the seed configuration ``Mamba(d_model=16, d_state=64, d_conv=4, expand=2)``
  (7,968 parameters), fwd, d input and every parameter's gradient against ``mamba_block_ref``.
* ``Mamba2 block float32`` where triton and causal-conv1d import:
  ``Mamba2(d_model=1024, d_state=64, d_conv=4, expand=2)``
  (6,468,320 parameters; its first call compiles triton kernels, ~26 s on the H200), fwd and d input.

Tolerances
----------
Every ELEMENT must satisfy ``|kernel - ref| <= atol + rtol * |ref|`` (``torch.allclose``'s rule, the one
upstream's tests use), never a bound taken from the whole tensor's maximum: with such a bound a bf16 scan
whose small outputs were zeroed would pass. The (rtol, atol) pairs are upstream's own, per input dtype and
per tensor (forward outputs, input gradients, weight gradients):

* causal-conv1d 1.7.0 ``tests/test_causal_conv1d.py`` (in its PyPI sdist): out and dx fp32 (3e-4, 1e-3),
  fp16 (3e-3, 5e-3), bf16 (1e-2, 5e-2); dweight and dbias (1e-3, 1e-3). Upstream keeps weights in fp32;
  with fp16/bf16 weights dweight/dbias are stored rounded to 16 bits (relative 2^-11 / 2^-8), so their pair
  is the weight dtype's own when wider.
* mamba-ssm ``tests/ops/test_selective_scan.py`` (state-spaces/mamba on GitHub; the PyPI sdists ship no
  ``tests/ops``): out and last state fp32 (6e-4, 2e-3), fp16 (3e-3, 5e-3), bf16 (3e-2, 5e-2) =: (r, a);
  weights (rw, aw) = (max(1e-3, r), max(1e-3, a)) (with z, as here); du (2r, 2a), ddelta (5r, 10a),
  dA (rw, 5aw), variable dB and dC (r, a), dD, dz, ddelta_bias (rw, aw).
* Mamba block (fp32): out as the scan's fp32 out (6e-4, 2e-3), d input and parameter gradients as du
  (1.2e-3, 4e-3) -- the block is in_proj, causal conv1d, the scan, out_proj in fp32 (torch's fp32 matmul,
  no TF32).
* Mamba2 block (fp32): out (2e-2, 2e-2), d input (5e-2, 5e-2): its chunked scan runs in triton, whose
  ``tl.dot`` on fp32 uses TF32 tensor cores by default (10-bit mantissa: ~5e-4 per product, summed over
  chunks of 256) -- still far below what a wrong sign, a shifted index or a zeroed tail make (O(1)).

The references run in float32 on float32 copies of the same (possibly 16-bit) inputs: the inputs are the
same numbers, so what the kernel may differ by is its own rounding (16-bit outputs, fp32 sums in another
order), which these bounds cover.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Upstream's (rtol, atol) per input dtype (see the module docstring).
CONV_TOL = {"float32": (3e-4, 1e-3), "float16": (3e-3, 5e-3), "bfloat16": (1e-2, 5e-2)}
CONV_WEIGHT_TOL = (1e-3, 1e-3)
SCAN_TOL = {"float32": (6e-4, 2e-3), "float16": (3e-3, 5e-3), "bfloat16": (3e-2, 5e-2)}
SCAN_WEIGHT_TOL = (1e-3, 1e-3)
BLOCK_TOL = {
    ("mamba", "fwd"): (6e-4, 2e-3),
    ("mamba", "bwd"): (1.2e-3, 4e-3),
    ("mamba2", "fwd"): (2e-2, 2e-2),
    ("mamba2", "bwd"): (5e-2, 5e-2),
}
DTYPES = ("float32", "float16", "bfloat16")
NO_GPU_SKIP = "no GPU: import only, numbers not checked"  # why a numerical check is skipped on a machine without GPU
CONV_SEQLEN, CONV_WIDTH = 600, 4
# bwd launch shape (kNThreads x kNItems) of selective_scan's dispatch per L (selective_scan_bwd_kernel.cuh)
SCAN_SEQLENS = {100: "32x4", 256: "32x8", 512: "32x16", 1000: "64x16", 2100: "128x16, 2 chunks"}
MAMBA_CONFIG = {"d_model": 16, "d_state": 64, "d_conv": 4, "expand": 2}
MAMBA_PARAMS = 7_968
MAMBA2_CONFIG = {"d_model": 1024, "d_state": 64, "d_conv": 4, "expand": 2}
MAMBA2_PARAMS = 6_468_320
# The fixture's kernel rounds x + alpha*y (fp32) once to its dtype; the reference rounds the exact value once:
# they may differ by the fp32 sum's own rounding, which a 16-bit rounding can turn into one unit in the last place
# (fp16 2**-10, bf16 2**-7 of the value). A wrong alpha, a dropped term or an index shift is O(1).
SCALE_ADD_TOL = {"float32": (1e-6, 1e-6), "float16": (1e-3, 1e-3), "bfloat16": (8e-3, 8e-3)}


def conv_tol(itype: str, wtype: str, tensor: str) -> tuple[float, float]:
    """(rtol, atol) of one causal_conv1d tensor: out/dx by the input dtype, dweight/dbias by the weights'."""
    if tensor in ("out", "dx"):
        return CONV_TOL[itype]
    r, a = CONV_TOL[wtype] if wtype != "float32" else (0.0, 0.0)
    return max(CONV_WEIGHT_TOL[0], r), max(CONV_WEIGHT_TOL[1], a)


def scan_tol(itype: str, tensor: str) -> tuple[float, float]:
    """(rtol, atol) of one selective_scan tensor, as upstream's test_selective_scan (with z)."""
    r, a = SCAN_TOL[itype]
    rw, aw = max(SCAN_WEIGHT_TOL[0], r), max(SCAN_WEIGHT_TOL[1], a)
    return {
        "out": (r, a),
        "last_state": (r, a),
        "du": (2 * r, 2 * a),
        "ddelta": (5 * r, 10 * a),
        "dA": (rw, 5 * aw),
        "dB": (r, a),
        "dC": (r, a),
    }.get(tensor, (rw, aw))


def tolerance_table() -> list[dict]:
    """Every (check, dtype, direction, tensor) -> (rtol, atol), for the docs and the JSON report."""
    rows = []
    for it in DTYPES:
        for wt in DTYPES:
            for t in ("out", "dx", "dweight", "dbias"):
                rows.append(
                    {
                        "check": "causal_conv1d",
                        "dtype": f"{it} x, {wt} weight",
                        "direction": "fwd" if t == "out" else "bwd",
                        "tensor": t,
                        "rtol_atol": conv_tol(it, wt, t),
                    }
                )
        for t in ("out", "last_state", "du", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias"):
            rows.append(
                {
                    "check": "selective_scan",
                    "dtype": it,
                    "direction": "fwd" if t in ("out", "last_state") else "bwd",
                    "tensor": t,
                    "rtol_atol": scan_tol(it, t),
                }
            )
    for (block, direction), tol in BLOCK_TOL.items():
        rows.append(
            {"check": f"{block} block", "dtype": "float32", "direction": direction, "tensor": "all", "rtol_atol": tol}
        )
    for dtype, tol in SCALE_ADD_TOL.items():
        rows.append(
            {
                "check": "mb_fixture_cuda scale_add",
                "dtype": dtype,
                "direction": "fwd",
                "tensor": "out",
                "rtol_atol": tol,
            }
        )
    return rows


# package -> (python module, raw CUDA extension module)
PACKAGES = {
    "causal_conv1d": ("causal_conv1d", "causal_conv1d_cuda"),
    "mamba_ssm": ("mamba_ssm", "selective_scan_cuda"),
}


def _load_references():
    """references.py from next to this file (works whether or not mamba_build is importable)."""
    path = Path(__file__).resolve().parent / "references.py"
    spec = importlib.util.spec_from_file_location("mamba_build_smoke_references", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Report:
    """The checks done so far; each one is also handed to ``sink`` (the child protocol's ``emit``) at once."""

    def __init__(self, sink: Callable[[Any], None] | None = None) -> None:
        self.checks: list[dict] = []
        self.sink = sink

    def running(self, name: str) -> None:
        """Say which check starts: if the process dies in it, the parent names it."""
        if self.sink is not None:
            self.sink({"running": name})

    def add(
        self,
        name: str,
        status: str,
        detail: str = "",
        max_abs_err: float | None = None,
        tol: float | None = None,
        optional: bool = False,
    ) -> None:
        """``optional``: a skipped check that does not make a GPU run incomplete (Mamba2 without triton)."""
        entry = {"name": name, "status": status, "detail": detail, "max_abs_err": max_abs_err, "tol": tol}
        if optional:
            entry["optional"] = True
        self.checks.append(entry)
        if self.sink is not None:
            self.sink({"check": entry})


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
    report.running(name)
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


def _fmt_index(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def compare_tensor(label: str, got, ref, rtol: float, atol: float) -> dict:
    """Element-wise ``|got - ref| <= atol + rtol * |ref|`` (torch.allclose's rule; complex: the modulus).

    Returns {"ok", "bad" (elements off), "total", "err" and "bound" at the worst element (the largest
    err/bound), "detail"}. Missing tensors, shape mismatches and non-finite values fail."""
    import torch

    res: dict[str, Any] = {"ok": False, "bad": 0, "total": 0, "err": None, "bound": None}
    if got is None or ref is None:
        return {**res, "detail": f"{label}: missing"}
    if tuple(got.shape) != tuple(ref.shape):
        return {**res, "detail": f"{label}: shape {tuple(got.shape)} != {tuple(ref.shape)}"}
    wide = torch.complex128 if (got.is_complex() or ref.is_complex()) else torch.float64
    g, r = got.detach().to(wide), ref.detach().to(wide)
    total = g.numel()
    res["total"] = total
    if total == 0:
        return {**res, "ok": True, "err": 0.0, "bound": atol, "detail": f"{label}: empty"}
    finite = torch.isfinite(g) if not g.is_complex() else (torch.isfinite(g.real) & torch.isfinite(g.imag))
    if not bool(finite.all()):
        n = int((~finite).sum())
        first = _fmt_index(torch.nonzero(~finite)[0].tolist())
        return {**res, "bad": n, "detail": f"{label}: {n} of {total} elements non-finite (first at {first})"}
    err = (g - r).abs()
    bound = atol + rtol * r.abs()
    off = err > bound
    ratio = err / bound
    k = int(torch.argmax(ratio.reshape(-1)))
    idx: list[int] = []
    rest = k
    for size in reversed(tuple(g.shape)):  # torch.unravel_index is torch >= 2.2 only
        rest, i = divmod(rest, size)
        idx.insert(0, i)
    worst_err, worst_bound = float(err.reshape(-1)[k]), float(bound.reshape(-1)[k])
    bad = int(off.sum())
    res.update(ok=bad == 0, bad=bad, err=worst_err, bound=worst_bound)
    if bad:
        gv, rv = g.reshape(-1)[k], r.reshape(-1)[k]
        fmt = (lambda v: f"{complex(v):.4g}") if g.is_complex() else (lambda v: f"{float(v):.4g}")
        res["detail"] = (
            f"{label}: {bad} of {total} elements off (rtol {rtol:g}, atol {atol:g}); worst at "
            f"{_fmt_index(idx)}: {fmt(gv)} vs {fmt(rv)} (|d| {worst_err:.3g} > {worst_bound:.3g})"
        )
    else:
        res["detail"] = f"{label} ok (worst |d| {worst_err:.3g} <= {worst_bound:.3g})"
    return res


def compare(pairs) -> tuple[bool, float | None, float | None, str]:
    """pairs: [(label, kernel_tensor, ref_tensor, (rtol, atol))]. Returns (ok, err, bound, detail) with err and
    bound at the worst element of all (the largest err/bound)."""
    ok, worst, parts = True, (-1.0, None, None), []
    for label, got, ref, (rtol, atol) in pairs:
        res = compare_tensor(label, got, ref, rtol, atol)
        ok = ok and res["ok"]
        parts.append(res["detail"])
        if res["err"] is not None and res["bound"]:
            ratio = res["err"] / res["bound"]
            if ratio > worst[0]:
                worst = (ratio, res["err"], res["bound"])
        elif not res["ok"]:
            worst = (math.inf, None, None) if worst[0] < math.inf else worst
    return ok, worst[1], worst[2], "; ".join(parts)


class CheckGroup:
    """One reported check made of several cases (shapes, dtypes): fails when any case fails, and its detail
    names each failing case (the passing ones are summed up)."""

    def __init__(self, name: str):
        self.name = name
        self.failed: list[str] = []
        self.passed: list[str] = []
        self.worst: tuple[float, float | None, float | None] = (-1.0, None, None)

    def case(self, label: str, ok: bool, err, bound, detail: str) -> None:
        (self.passed if ok else self.failed).append(f"{label}: {detail}" if not ok else label)
        if err is not None and bound:
            if err / bound > self.worst[0]:
                self.worst = (err / bound, err, bound)

    def error(self, label: str, exc: BaseException) -> None:
        self.failed.append(f"{label}: {_short_exc(exc)}")

    def emit(self, report: Report) -> None:
        if self.failed:
            detail = " | ".join(self.failed) + (f" | ok: {', '.join(self.passed)}" if self.passed else "")
        else:
            detail = f"{len(self.passed)} cases ok: {', '.join(self.passed)}"
        report.add(self.name, "fail" if self.failed else "ok", detail, self.worst[1], self.worst[2])


def _leaf(t, requires_grad=True):
    return t.detach().clone().requires_grad_(requires_grad)


def _groups(names):
    return {n: CheckGroup(n) for n in names}


def _errored(label: str, exc: BaseException, *groups: CheckGroup) -> None:
    """A case that raised (an extension error, a launch failure): it fails every check it belongs to."""
    traceback.print_exc(file=sys.stderr)
    for g in groups:
        g.error(label, exc)


def _emit(groups: dict, report: Report) -> None:
    for g in groups.values():
        g.emit(report)


def check_causal_conv1d(
    report: Report, refs, torch, fn=None, device: str = "cuda", dtypes=DTYPES, seqlen: int = CONV_SEQLEN
) -> None:
    """Every (x dtype, weight dtype, layout) of causal_conv1d_fn, fwd and bwd, against causal_conv1d_ref."""
    if fn is None:
        from causal_conv1d import causal_conv1d_fn as fn  # type: ignore

    gen = torch.Generator(device="cpu").manual_seed(0)
    batch, dim, width = 2, 64, CONV_WIDTH
    for itype in dtypes:
        groups = _groups([f"causal_conv1d {itype} fwd", f"causal_conv1d {itype} bwd"])
        fwd, bwd = groups.values()
        for wtype in DTYPES:
            for layout in ("channel-first", "channel-last"):
                label = f"{wtype} weight, {layout}"
                try:
                    it, wt = getattr(torch, itype), getattr(torch, wtype)
                    if layout == "channel-first":
                        x0 = torch.randn(batch, dim, seqlen, generator=gen).to(device, it)
                    else:  # (batch, L, dim) memory seen as (batch, dim, L): stride(1) == 1
                        x0 = torch.randn(batch, seqlen, dim, generator=gen).to(device, it).transpose(1, 2)
                    w0 = (torch.randn(dim, width, generator=gen) / width**0.5).to(device, wt)
                    b0 = torch.randn(dim, generator=gen).to(device, wt)
                    g0 = torch.randn(batch, dim, seqlen, generator=gen).to(device, it)
                    x, w, b = _leaf(x0), _leaf(w0), _leaf(b0)
                    out = fn(x, w, b, activation="silu")
                    out.backward(g0)
                    xr, wr, br = _leaf(x0.float()), _leaf(w0.float()), _leaf(b0.float())
                    ref = refs.causal_conv1d_ref(xr, wr, br, activation="silu")
                    ref.backward(g0.float())
                    if device == "cuda":
                        torch.cuda.synchronize()
                    fwd.case(label, *compare([("out", out, ref, conv_tol(itype, wtype, "out"))]))
                    bwd.case(
                        label,
                        *compare(
                            [
                                (t, k.grad, r.grad, conv_tol(itype, wtype, t))
                                for t, k, r in (("dx", x, xr), ("dweight", w, wr), ("dbias", b, br))
                            ]
                        ),
                    )
                except BaseException as exc:  # noqa: BLE001
                    _errored(label, exc, fwd, bwd)
        _emit(groups, report)


SCAN_GRADS = ("du", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias")


def scan_inputs(
    torch, gen, itype: str, variant: str, seqlen: int, device: str, batch: int = 2, dim: int = 16, dstate: int = 16
):
    """Inputs in the kernel's types: u, delta, B, C, z in itype; A, D, delta_bias in fp32 (A complex64 for the
    complex variant, whose variable B, C interleave real and imaginary parts along L: (batch, N, 2L))."""
    it = getattr(torch, itype)
    u = torch.randn(batch, dim, seqlen, generator=gen).to(device, it)
    delta = (0.5 * torch.rand(batch, dim, seqlen, generator=gen)).to(device, it)
    if variant == "real":
        A = (-0.5 * torch.rand(dim, dstate, generator=gen) - 0.1).to(device)
        bc_len = seqlen
    else:
        A = torch.complex(
            -0.5 * torch.rand(dim, dstate, generator=gen) - 0.1, torch.randn(dim, dstate, generator=gen)
        ).to(device)  # |delta * Im A| mostly < pi
        bc_len = 2 * seqlen
    B = torch.randn(batch, dstate, bc_len, generator=gen).to(device, it)
    C = torch.randn(batch, dstate, bc_len, generator=gen).to(device, it)
    D = torch.randn(dim, generator=gen).to(device)
    z = torch.randn(batch, dim, seqlen, generator=gen).to(device, it)
    delta_bias = (0.5 * torch.rand(dim, generator=gen) - 0.25).to(device)
    g = torch.randn(batch, dim, seqlen, generator=gen).to(device, it)
    return (u, delta, A, B, C, D, z, delta_bias), g


def check_selective_scan(
    report: Report,
    refs,
    torch,
    fn=None,
    device: str = "cuda",
    dtypes=DTYPES,
    variants=("real", "complex"),
    seqlens=tuple(SCAN_SEQLENS),
) -> None:
    """selective_scan_fn fwd (out, last state) and bwd (every input's gradient) against selective_scan_ref, per
    dtype and A's kind, at every launch shape's L."""
    if fn is None:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as fn  # type: ignore

    gen = torch.Generator(device="cpu").manual_seed(1)
    for itype in dtypes:
        for variant in variants:
            groups = _groups([f"selective_scan {itype} {variant} fwd", f"selective_scan {itype} {variant} bwd"])
            fwd, bwd = groups.values()
            for seqlen in seqlens:
                label = f"L={seqlen}" + (f" ({SCAN_SEQLENS[seqlen]})" if seqlen in SCAN_SEQLENS else "")
                try:
                    inputs, g0 = scan_inputs(torch, gen, itype, variant, seqlen, device)
                    leaves = [_leaf(t) for t in inputs]
                    out, last = fn(
                        *leaves[:6], z=leaves[6], delta_bias=leaves[7], delta_softplus=True, return_last_state=True
                    )
                    out.backward(g0)
                    rleaves = [_leaf(t.float() if not t.is_complex() else t) for t in inputs]
                    ref, ref_last = refs.selective_scan_ref(
                        *rleaves[:6], z=rleaves[6], delta_bias=rleaves[7], delta_softplus=True, return_last_state=True
                    )
                    ref.backward(g0.float())
                    if device == "cuda":
                        torch.cuda.synchronize()
                    fwd.case(
                        label,
                        *compare(
                            [
                                ("out", out, ref, scan_tol(itype, "out")),
                                ("last_state", last, ref_last, scan_tol(itype, "last_state")),
                            ]
                        ),
                    )
                    bwd.case(
                        label,
                        *compare(
                            [
                                (t, k.grad, r.grad, scan_tol(itype, t))
                                for t, k, r in zip(SCAN_GRADS, leaves, rleaves, strict=True)
                            ]
                        ),
                    )
                except BaseException as exc:  # noqa: BLE001
                    _errored(label, exc, fwd, bwd)
            _emit(groups, report)


def _block_check(
    report: Report,
    torch,
    name: str,
    block,
    ref_fn,
    expect_params: int,
    x0,
    g0,
    tol_key: str,
    param_grads: bool,
    device: str,
) -> None:
    """A block's parameter count, fwd, d input (and every parameter's gradient) against ``ref_fn(block, x)``."""
    n_params = sum(p.numel() for p in block.parameters())
    report.add(
        f"{name} parameters",
        "ok" if n_params == expect_params else "fail",
        f"{n_params:,} parameters" + ("" if n_params == expect_params else f", expected {expect_params:,}"),
    )
    params = dict(block.named_parameters())
    x = _leaf(x0)
    out = block(x)
    out.backward(g0)
    kgrads = {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in params.items()}
    block.zero_grad(set_to_none=True)
    xr = _leaf(x0)
    ref = ref_fn(block, xr)
    ref.backward(g0)
    if device == "cuda":
        torch.cuda.synchronize()
    fwd_tol, bwd_tol = BLOCK_TOL[(tol_key, "fwd")], BLOCK_TOL[(tol_key, "bwd")]
    f = compare([("out", out, ref, fwd_tol)])
    pairs = [("dx", x.grad, xr.grad, bwd_tol)]
    if param_grads:
        pairs += [(f"d{n}", kgrads[n], p.grad, bwd_tol) for n, p in params.items()]
    b = compare(pairs)
    report.add(f"{name} fwd", "ok" if f[0] else "fail", f[3], f[1], f[2])
    report.add(f"{name} bwd", "ok" if b[0] else "fail", b[3], b[1], b[2])


def check_mamba_block(report: Report, refs, torch, cls=None, device: str = "cuda", seqlen: int = 300) -> None:
    """The seed configuration of Mamba (v1) in fp32."""
    name = "Mamba block float32"
    try:
        if cls is None:
            from mamba_ssm import Mamba as cls  # type: ignore

        torch.manual_seed(2)
        block = cls(**MAMBA_CONFIG).to(device)
        x0 = torch.randn(2, seqlen, MAMBA_CONFIG["d_model"], device=device)
        g0 = torch.randn(2, seqlen, MAMBA_CONFIG["d_model"], device=device)
        _block_check(report, torch, name, block, refs.mamba_block_ref, MAMBA_PARAMS, x0, g0, "mamba", True, device)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        report.add(f"{name} fwd+bwd", "fail", _short_exc(exc))


def check_mamba2_block(report: Report, refs, torch, cls=None, device: str = "cuda") -> None:
    """The seed configuration of Mamba2 in fp32, where triton imports (its scan is triton code)."""
    name = "Mamba2 block float32"
    if cls is None:
        for dep, why in (
            ("triton", "its scan is triton code"),
            ("causal_conv1d", "its fused path calls causal-conv1d"),
        ):
            try:
                importlib.import_module(dep)
            except BaseException as exc:  # noqa: BLE001
                report.add(
                    name,
                    "skipped",
                    f"{dep} does not import ({type(exc).__name__}): Mamba2 needs it ({why})",
                    optional=True,
                )
                return
    try:
        if cls is None:
            from mamba_ssm import Mamba2 as cls  # type: ignore

        torch.manual_seed(3)
        block = cls(**MAMBA2_CONFIG).to(device)
        x0 = torch.randn(2, 256, MAMBA2_CONFIG["d_model"], device=device)
        g0 = torch.randn(2, 256, MAMBA2_CONFIG["d_model"], device=device)
        _block_check(report, torch, name, block, refs.mamba2_block_ref, MAMBA2_PARAMS, x0, g0, "mamba2", False, device)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        report.add(f"{name} fwd+bwd", "fail", _short_exc(exc))


def check_scale_add(report: Report, refs, torch, module, device: str = "cuda") -> None:
    """mamba-build's fixture extension (csrc/fixture; the integration tests' package): ``scale_add(x, y, alpha)``
    in every dtype it dispatches against x + alpha*y, on an odd length (a tail block) and a non-contiguous input
    (the binding makes it contiguous); and CPU tensors must be refused (its TORCH_CHECK), not read as device
    memory."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    group = CheckGroup(f"{module.__name__} scale_add")
    for dtype in DTYPES:
        for shape in ("10001", "strided 64x99"):
            label = f"{dtype}, {shape}"
            try:
                dt = getattr(torch, dtype)
                if shape == "10001":
                    x = torch.randn(10001, generator=gen).to(device, dt)
                else:  # every other column of a (64, 198): a non-contiguous view
                    x = torch.randn(64, 198, generator=gen).to(device, dt)[:, ::2]
                y = torch.randn(tuple(x.shape), generator=gen).to(device, dt)
                out = module.scale_add(x, y, -0.75)
                if device == "cuda":
                    torch.cuda.synchronize()
                ref = refs.scale_add_ref(x, y, -0.75)
                group.case(label, *compare([("out", out, ref, SCALE_ADD_TOL[dtype])]))
            except BaseException as exc:  # noqa: BLE001
                _errored(label, exc, group)
    if device == "cuda":  # a CPU pointer handed to the kernel would be an illegal address, not an error message
        try:
            module.scale_add(torch.ones(3), torch.ones(3), 1.0)
            group.case("cpu tensors refused", False, None, None, "accepted CPU tensors")
        except RuntimeError:
            group.case("cpu tensors refused", True, None, None, "")
    group.emit(report)


# extension modules that belong to no Mamba package but have a reference here: module name -> check
MODULE_CHECKS: dict[str, Callable[..., None]] = {"mb_fixture_cuda": check_scale_add}


def run_checks(
    expect: list[str],
    staging: Path | None,
    extra_imports: list[str] | None = None,
    sink: Callable[[Any], None] | None = None,
) -> dict:
    """Every check of ``expect``; ``sink`` gets the header, each check as it starts and ends (see the module doc)."""
    report = Report(sink)
    result: dict = {
        "gpu": False,
        "device": None,
        "torch": None,
        "python": platform.python_version(),
        "expected": expect,
        "checks": report.checks,
    }
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
    if sink is not None:
        sink({"header": {k: v for k, v in result.items() if k != "checks"}})
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

    for mod in extra_imports or []:  # extension modules of no Mamba package: numbers where we hold a reference
        module = check_import(report, mod, staging)
        if module is None:
            continue
        if mod not in MODULE_CHECKS:
            report.add(f"{mod} numbers", "skipped", "no reference for this module: import only")
        elif not gpu:
            report.add(f"{mod} numbers", "skipped", NO_GPU_SKIP)
        else:
            report.running(f"{mod} numbers")
            MODULE_CHECKS[mod](report, refs, torch, module)

    suites: dict[str, list[Callable[..., Any]]] = {
        "causal_conv1d": [check_causal_conv1d],
        "mamba_ssm": [check_selective_scan, check_mamba_block, check_mamba2_block],
    }
    for pkg in expect:
        for fn in suites.get(pkg, []):
            label = fn.__name__.replace("check_", "")
            if not imported.get(pkg):
                report.add(label, "skipped", f"{pkg} did not import")
            elif not gpu:
                report.add(label, "skipped", NO_GPU_SKIP)
            else:
                report.running(label)
                fn(report, refs, torch)
    return result


ABORTED = 3  # exit status of a pre-started child that was told to give up (nothing tested, nothing printed)
# third-party modules the packages import (not from staging): a pre-started child imports them while the build runs
WARM_MODULES = ("einops", "triton", "transformers")


def warm_up(imports: list | None = None, own: list | None = None) -> None:
    """What costs seconds and does not depend on the wheels: torch, the packages' third-party imports, CUDA's
    context. ``imports``: ``[module, [names]]`` that ``import <package>`` runs outside the packages (read from
    their source trees by mamba_build/build/smoke/import_graph.py; ``from module import names``, in order).
    ``own``: the packages' top-level names, which must come from staging: if a third-party import pulled in another
    copy of one, it is dropped from ``sys.modules`` again (the checks' imports then resolve from staging, and
    fail if they do not). Failures are left for the checks to report."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.zeros(1, device="cuda").sum().item()
    except BaseException:  # noqa: BLE001
        return
    for module, names in [*((m, []) for m in WARM_MODULES), *(imports or [])]:
        try:
            mod = importlib.import_module(module)
            for name in names:  # a lazy module (transformers) loads a name's submodule on first access
                if not hasattr(mod, name):
                    importlib.import_module(f"{module}.{name}")
        except BaseException:  # noqa: BLE001 (absent or broken: the package's own import says so later)
            pass
    for name in own or []:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def wait_for_go(path: Path, timeout: float) -> dict | None:
    """Block until the parent writes ``path`` (JSON: staging, expect, imports; or abort); None: abort, the
    parent is gone, or the wait timed out."""
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
    ap.add_argument(
        "--wait-for",
        type=Path,
        default=None,
        help="pre-started: warm up (torch, CUDA), then wait for this JSON file (staging, expect, imports)",
    )
    ap.add_argument("--wait-timeout", type=float, default=7200.0)
    ap.add_argument(
        "--warm-imports",
        type=Path,
        default=None,
        help="pre-started: JSON {imports: [[module, [names]]], own: [top-level names]} to import while waiting",
    )
    ap.add_argument("--expect", action="append", default=[], help="package to check: causal_conv1d, mamba_ssm")
    ap.add_argument("--staging", type=Path, default=None, help="modules must resolve from here")
    ap.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        help="another extension module to import (no numerical check)",
    )
    args = ap.parse_args(argv)
    from _mb_child import emit as _emit  # copied next to this script (stage._copy_scripts): the child protocol

    start = time.monotonic()  # reset when a pre-started child is told to go: the checks begin then

    def emit(value: dict) -> None:  # each record says when (seconds since the checks began): smoke.log times them
        _emit({**value, "t": round(time.monotonic() - start, 2)})

    if args.wait_for is not None:
        warm = json.loads(args.warm_imports.read_text(encoding="utf-8")) if args.warm_imports else {}
        warm_up(warm.get("imports"), warm.get("own"))
        go = wait_for_go(args.wait_for, args.wait_timeout)
        if go is None:
            return ABORTED
        args.staging, args.expect, args.imports = Path(go["staging"]), list(go["expect"]), list(go["imports"])
        sys.path.insert(0, str(args.staging))
        importlib.invalidate_caches()
        start = time.monotonic()
    try:
        result = run_checks(args.expect, args.staging, args.imports, sink=emit)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        result = {
            "gpu": False,
            "device": None,
            "torch": None,
            "python": platform.python_version(),
            "expected": args.expect,
            "checks": [
                {
                    "name": "smoke script",
                    "status": "fail",
                    "detail": _short_exc(exc),
                    "max_abs_err": None,
                    "tol": None,
                }
            ],
        }
    emit({"result": result})
    failed = any(c["status"] == "fail" for c in result["checks"])
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
