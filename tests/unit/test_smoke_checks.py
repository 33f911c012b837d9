"""The smoke test's numerical checks, run for real with torch on the CPU against kernel stand-ins.

A stand-in is our reference computed another way (float64, the plain loop) and rounded to the kernel's
dtypes, as a correct kernel's result is; a mutant is that stand-in with one deliberate bug (an off-by-one in
the sequence index, a zeroed tail, a wrong sign, a NaN). Every mutant must fail, and fail the check that
names the broken thing; the correct stand-in must pass every check. The real kernels' mutants are
tests/unit/test_mutants.py (recipes on the real sources) and scripts/gpu/mutation_check.sh (on the GPU).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mamba_build.build.smoke import checks  # noqa: E402
from mamba_build.build.smoke import references as refs  # noqa: E402


def conv_standin(bug=None):
    def fn(x, weight, bias=None, activation=None):
        out = refs.causal_conv1d_ref(x.double(), weight.double(), bias.double(), activation).to(x.dtype)
        return bug(out) if bug else out
    return fn


def scan_standin(bug=None, grad_bug=None):
    def fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
        def wide(t):
            return t.to(torch.complex128) if t.is_complex() else t.double()

        if grad_bug is not None:
            D = grad_bug(D)
        out, last = refs.selective_scan_chunked(wide(u), wide(delta), wide(A), wide(B), wide(C), wide(D), wide(z),
                                                wide(delta_bias), delta_softplus, True, chunk=1)
        out, last = out.to(u.dtype), last.to(torch.complex64 if last.is_complex() else torch.float32)
        out = bug(out) if bug else out
        return (out, last) if return_last_state else out
    return fn


class _FlipGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return -g


def shift_by_one(out):  # out[t] = right[t - 1]: an off-by-one in the sequence index
    return torch.cat([torch.zeros_like(out[..., :1]), out[..., :-1]], dim=-1)


def zero_tail(out, n=16):
    keep = torch.ones(out.shape[-1], dtype=torch.bool, device=out.device)
    keep[-n:] = False
    return out * keep.to(out.dtype)


def wrong_sign(out):
    return -out


def one_nan(out):
    mask = torch.zeros_like(out, dtype=torch.bool)
    mask.view(-1)[mask.numel() // 2] = True
    return torch.where(mask, torch.full_like(out, float("nan")), out)


def run_conv(fn, dtypes=("float32", "bfloat16")):
    report = checks.Report()
    checks.check_causal_conv1d(report, refs, torch, fn=fn, device="cpu", dtypes=dtypes, seqlen=96)
    return {c["name"]: c for c in report.checks}


def run_scan(fn, dtypes=("float32", "bfloat16"), variants=("real",), seqlens=(100,)):
    report = checks.Report()
    checks.check_selective_scan(report, refs, torch, fn=fn, device="cpu", dtypes=dtypes, variants=variants,
                                seqlens=seqlens)
    return {c["name"]: c for c in report.checks}


def failing(result):
    return sorted(n for n, c in result.items() if c["status"] == "fail")


def test_correct_conv_standin_passes_every_dtype_and_layout():
    res = run_conv(conv_standin(), dtypes=checks.DTYPES)
    assert failing(res) == [], {n: c["detail"] for n, c in res.items() if c["status"] == "fail"}
    assert set(res) == {f"causal_conv1d {t} {d}" for t in checks.DTYPES for d in ("fwd", "bwd")}
    # every weight dtype and both layouts ran (the 18 instantiations split-bwd-units puts in 18 units)
    assert res["causal_conv1d bfloat16 bwd"]["detail"].startswith("6 cases ok")
    assert "float16 weight, channel-last" in res["causal_conv1d float32 fwd"]["detail"]


@pytest.mark.parametrize("bug, name", [(shift_by_one, "off-by-one"), (zero_tail, "zeroed tail"),
                                       (wrong_sign, "wrong sign"), (one_nan, "NaN")])
def test_conv_mutants_fail_their_check(bug, name):
    res = run_conv(conv_standin(bug))
    assert failing(res) == ["causal_conv1d bfloat16 bwd", "causal_conv1d bfloat16 fwd", "causal_conv1d float32 bwd",
                            "causal_conv1d float32 fwd"], name
    detail = res["causal_conv1d float32 fwd"]["detail"]
    assert ("non-finite" in detail) if name == "NaN" else ("elements off" in detail), detail


def test_correct_scan_standin_passes_real_and_complex():
    res = run_scan(scan_standin(), dtypes=checks.DTYPES, variants=("real", "complex"), seqlens=(100,))
    assert failing(res) == [], {n: c["detail"] for n, c in res.items() if c["status"] == "fail"}
    assert "L=100 (32x4)" in res["selective_scan bfloat16 complex bwd"]["detail"]


@pytest.mark.parametrize("bug, name", [(shift_by_one, "off-by-one"), (zero_tail, "zeroed tail"),
                                       (wrong_sign, "wrong sign"), (one_nan, "NaN")])
def test_scan_forward_mutants_fail_their_check(bug, name):
    res = run_scan(scan_standin(bug), dtypes=("float32",))
    assert "selective_scan float32 real fwd" in failing(res), name
    assert res["selective_scan float32 real fwd"]["detail"].startswith("L=100 (32x4): out"), res


def test_scan_backward_sign_mutant_fails_the_bwd_check_only():
    res = run_scan(scan_standin(grad_bug=_FlipGrad.apply), dtypes=("float32",))
    assert failing(res) == ["selective_scan float32 real bwd"]
    assert "dD:" in res["selective_scan float32 real bwd"]["detail"]


def test_bf16_scan_with_its_small_outputs_zeroed_fails_elementwise():
    """The issue's case: against a bound from the tensor's maximum (the old rule) it passed."""
    fn = scan_standin()
    gen = torch.Generator().manual_seed(5)
    inputs, _ = checks.scan_inputs(torch, gen, "bfloat16", "real", 256, "cpu")
    out = fn(*inputs[:6], z=inputs[6], delta_bias=inputs[7], delta_softplus=True)
    ref = refs.selective_scan_ref(*[t.float() for t in inputs[:6]], z=inputs[6].float(),
                                  delta_bias=inputs[7].float(), delta_softplus=True)
    old_bound = 1e-3 + 3e-2 * float(ref.abs().max())  # the old rule: atol + rtol * max|ref| for the whole tensor
    small = ref.abs() < 0.9 * old_bound
    broken = torch.where(small, torch.zeros_like(out), out)
    assert small.float().mean() > 0.3  # a third of the outputs and more
    assert float((broken.float() - ref).abs().max()) <= old_bound  # the old, max-based check passed it
    rtol, atol = checks.scan_tol("bfloat16", "out")
    res = checks.compare_tensor("out", broken, ref, rtol, atol)
    assert not res["ok"] and res["bad"] > 100 and "elements off" in res["detail"]
    assert checks.compare_tensor("out", out, ref, rtol, atol)["ok"]  # the unbroken one passes


def test_compare_names_the_worst_element_and_refuses_shapes_and_missing():
    ref = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    got = ref.clone()
    got[2, 1] += 1.0
    res = checks.compare_tensor("out", got, ref, 1e-3, 1e-3)
    assert not res["ok"] and res["bad"] == 1 and "[2, 1]" in res["detail"] and res["err"] == pytest.approx(1.0)
    assert not checks.compare_tensor("out", got[:2], ref, 1, 1)["ok"]
    assert "missing" in checks.compare_tensor("out", None, ref, 1, 1)["detail"]
    c = torch.tensor([1 + 1j, 2 - 1j])
    assert checks.compare_tensor("state", c, c, 0, 0)["ok"]
    assert not checks.compare_tensor("state", c * 1j, c, 1e-3, 1e-3)["ok"]


def test_tolerances_are_upstreams():
    assert checks.conv_tol("float32", "float32", "out") == (3e-4, 1e-3)
    assert checks.conv_tol("bfloat16", "float32", "dx") == (1e-2, 5e-2)
    assert checks.conv_tol("bfloat16", "float32", "dweight") == (1e-3, 1e-3)
    assert checks.conv_tol("float32", "bfloat16", "dweight") == (1e-2, 5e-2)
    assert checks.scan_tol("float32", "out") == (6e-4, 2e-3)
    assert checks.scan_tol("bfloat16", "ddelta") == (3e-2 * 5, 5e-2 * 10)
    assert checks.scan_tol("float16", "dA") == (3e-3, 5 * 5e-3)
    assert checks.scan_tol("float32", "dD") == (1e-3, 2e-3)
    rows = checks.tolerance_table()
    assert {r["direction"] for r in rows} == {"fwd", "bwd"} and len(rows) == 9 * 4 + 3 * 10 + 4 + 3


def test_seed_configurations_parameter_counts():
    assert refs.mamba_param_count(**checks.MAMBA_CONFIG) == checks.MAMBA_PARAMS == 7_968
    assert refs.mamba2_param_count(**checks.MAMBA2_CONFIG) == checks.MAMBA2_PARAMS == 6_468_320


def test_launch_shapes_cover_every_bwd_dispatch_branch():
    """selective_scan_bwd_cuda dispatches on L: <=128, <=256, <=512, <=1024, else (kChunkSize 128*16)."""
    bounds = [128, 256, 512, 1024]
    branch = [sum(L > b for b in bounds) for L in checks.SCAN_SEQLENS]
    assert sorted(branch) == [0, 1, 2, 3, 4]
    assert max(checks.SCAN_SEQLENS) > 128 * 16  # two chunks in the last shape


class _MambaStandin(torch.nn.Module):
    """The parameters of mamba_ssm's Mamba (v1) under their names; forward = our reference in float64."""

    def __init__(self, d_model, d_state, d_conv, expand, bug=None):
        super().__init__()
        import math

        d_inner, rank = expand * d_model, math.ceil(d_model / 16)
        self.in_proj = torch.nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d = torch.nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.x_proj = torch.nn.Linear(d_inner, rank + 2 * d_state, bias=False)
        self.dt_proj = torch.nn.Linear(rank, d_inner)
        self.A_log = torch.nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = torch.nn.Parameter(torch.ones(d_inner))
        self.out_proj = torch.nn.Linear(d_inner, d_model, bias=False)
        self.bug = bug

    def forward(self, x):
        out = refs.mamba_block_ref(self.double(), x.double()).float()
        self.float()
        return self.bug(out) if self.bug else out


def test_block_check_compares_output_input_and_every_parameter_gradient():
    report = checks.Report()
    checks.check_mamba_block(report, refs, torch, cls=_MambaStandin, device="cpu", seqlen=64)
    res = {c["name"]: c for c in report.checks}
    assert [c["status"] for c in report.checks] == ["ok", "ok", "ok"], report.checks
    assert res["Mamba block float32 parameters"]["detail"] == "7,968 parameters"
    assert "dA_log ok" in res["Mamba block float32 bwd"]["detail"] and "dx ok" in res["Mamba block float32 bwd"]["detail"]
    broken = checks.Report()
    checks.check_mamba_block(broken, refs, torch, cls=lambda **kw: _MambaStandin(**kw, bug=zero_tail), device="cpu",
                             seqlen=64)
    assert [c["name"] for c in broken.checks if c["status"] == "fail"] == ["Mamba block float32 fwd",
                                                                          "Mamba block float32 bwd"]


def test_mamba2_is_skipped_not_failed_without_triton(monkeypatch):
    import importlib

    real = importlib.import_module

    def no_triton(name, *a, **kw):
        if name == "triton":
            raise ImportError("no triton here")
        return real(name, *a, **kw)

    monkeypatch.setattr(importlib, "import_module", no_triton)
    report = checks.Report()
    checks.check_mamba2_block(report, refs, torch)
    (c,) = report.checks
    assert c["status"] == "skipped" and c["optional"] is True and c["detail"].startswith("triton does not import")


def test_a_case_that_raises_fails_both_directions_and_says_why():
    def boom(*args, **kwargs):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    res = run_conv(boom, dtypes=("float32",))
    assert failing(res) == ["causal_conv1d float32 bwd", "causal_conv1d float32 fwd"]
    assert "float32 weight, channel-first: RuntimeError: CUDA error: no kernel image" in res["causal_conv1d float32 fwd"]["detail"]


class _Fixture:
    """A stand-in for mb_fixture_cuda: scale_add as the kernel computes it (fp32, rounded once), or with a bug."""

    __name__ = "mb_fixture_cuda"

    def __init__(self, bug=None):
        self.bug = bug

    def scale_add(self, x, y, alpha):
        if self.bug == "contiguous memory":  # reads the view's storage as if it were contiguous
            x = torch.as_strided(x, x.shape, torch.empty(x.shape).stride(), x.storage_offset())
        if self.bug == "sign":
            alpha = -alpha
        out = (x.float() + alpha * y.float()).to(x.dtype)
        if self.bug == "tail":  # the last block not launched
            out.view(-1)[-7:] = 0
        return out


def run_fixture(module):
    report = checks.Report()
    checks.check_scale_add(report, refs, torch, module, device="cpu")
    (check,) = report.checks
    return check


def test_the_fixture_check_passes_the_kernels_rounding_in_every_dtype():
    check = run_fixture(_Fixture())
    assert check["name"] == "mb_fixture_cuda scale_add" and check["status"] == "ok", check["detail"]
    assert check["detail"].startswith("6 cases ok") and "bfloat16, strided 64x99" in check["detail"]


@pytest.mark.parametrize(
    "bug, failing_case",
    [("sign", "float32, 10001"), ("tail", "float16, 10001"), ("contiguous memory", "bfloat16, strided 64x99")],
)
def test_the_fixture_check_fails_a_broken_kernel_and_names_the_case(bug, failing_case):
    check = run_fixture(_Fixture(bug))
    assert check["status"] == "fail" and failing_case + ": out:" in check["detail"]


def test_the_fixture_is_checked_only_on_a_gpu_and_other_modules_are_import_only(monkeypatch, tmp_path):
    import sys
    import types

    for name in ("mb_fixture_cuda", "some_other_ext"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = checks.run_checks([], None, ["mb_fixture_cuda", "some_other_ext"])
    got = {c["name"]: (c["status"], c["detail"]) for c in res["checks"]}
    assert got["mb_fixture_cuda numbers"] == ("skipped", "no GPU: import only, numbers not checked")
    assert got["some_other_ext numbers"] == ("skipped", "no reference for this module: import only")
    assert set(checks.MODULE_CHECKS) == {"mb_fixture_cuda"}

