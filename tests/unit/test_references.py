"""Our pure-PyTorch references against naive scalar loops (float64, tiny shapes, CPU).

The loops below are deliberately the most literal reading of the math in
mamba_build/build/smoke/references.py's docstring: one Python float at a time.
"""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from mamba_build.build.smoke.references import (  # noqa: E402
    causal_conv1d_ref,
    mamba_param_count,
    selective_scan_ref,
)

F64 = torch.float64


def silu(v: float) -> float:
    return v / (1.0 + math.exp(-v))


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def naive_conv(x, w, b=None, act=None):
    batch, dim, seqlen = x.shape
    width = w.shape[1]
    out = torch.zeros(batch, dim, seqlen, dtype=F64)
    for bi in range(batch):
        for d in range(dim):
            for t in range(seqlen):
                acc = float(b[d]) if b is not None else 0.0
                for k in range(width):
                    s = t - (width - 1) + k
                    if s >= 0:
                        acc += float(w[d, k]) * float(x[bi, d, s])
                out[bi, d, t] = silu(acc) if act else acc
    return out


def naive_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, softplus_=False):
    batch, dim, seqlen = u.shape
    n = A.shape[1]

    def bc(M, bi, d, k, t):
        if M.dim() == 2:
            return float(M[d, k])
        if M.dim() == 3:
            return float(M[bi, k, t])
        groups = M.shape[1]
        return float(M[bi, d // (dim // groups), k, t])

    out = torch.zeros(batch, dim, seqlen, dtype=F64)
    last = torch.zeros(batch, dim, n, dtype=F64)
    for bi in range(batch):
        for d in range(dim):
            h = [0.0] * n
            for t in range(seqlen):
                dt = float(delta[bi, d, t]) + (float(delta_bias[d]) if delta_bias is not None else 0.0)
                if softplus_:
                    dt = softplus(dt)
                y = 0.0
                for k in range(n):
                    h[k] = math.exp(dt * float(A[d, k])) * h[k] + dt * bc(B, bi, d, k, t) * float(u[bi, d, t])
                    y += h[k] * bc(C, bi, d, k, t)
                if D is not None:
                    y += float(D[d]) * float(u[bi, d, t])
                if z is not None:
                    y *= silu(float(z[bi, d, t]))
                out[bi, d, t] = y
            for k in range(n):
                last[bi, d, k] = h[k]
    return out, last


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("with_bias,act", [(False, None), (True, None), (True, "silu"), (False, "swish")])
def test_causal_conv1d_matches_loops(gen, width, with_bias, act):
    x = torch.randn(2, 3, 7, generator=gen, dtype=F64)
    w = torch.randn(3, width, generator=gen, dtype=F64)
    b = torch.randn(3, generator=gen, dtype=F64) if with_bias else None
    got = causal_conv1d_ref(x, w, b, activation=act)
    assert got.dtype == F64 and got.shape == x.shape
    torch.testing.assert_close(got, naive_conv(x, w, b, act), rtol=1e-12, atol=1e-12)


def test_causal_conv1d_is_causal(gen):
    """Changing x at step t changes no output before t."""
    x = torch.randn(1, 2, 10, generator=gen, dtype=F64)
    w = torch.randn(2, 4, generator=gen, dtype=F64)
    y0 = causal_conv1d_ref(x, w)
    x2 = x.clone()
    x2[..., 6] += 1.0
    y1 = causal_conv1d_ref(x2, w)
    assert torch.equal(y0[..., :6], y1[..., :6])
    assert not torch.equal(y0[..., 6], y1[..., 6])


def test_causal_conv1d_width_longer_than_sequence(gen):
    x = torch.randn(1, 2, 2, generator=gen, dtype=F64)
    w = torch.randn(2, 4, generator=gen, dtype=F64)
    torch.testing.assert_close(causal_conv1d_ref(x, w), naive_conv(x, w), rtol=1e-12, atol=1e-12)


def test_causal_conv1d_keeps_low_precision_dtype(gen):
    x = torch.randn(1, 4, 8, generator=gen).to(torch.bfloat16)
    w = torch.randn(4, 4, generator=gen).to(torch.bfloat16)
    assert causal_conv1d_ref(x, w, activation="silu").dtype == torch.bfloat16


def test_causal_conv1d_rejects_unknown_activation(gen):
    with pytest.raises(NotImplementedError):
        causal_conv1d_ref(torch.zeros(1, 1, 3), torch.zeros(1, 2), activation="relu")


def test_causal_conv1d_gradcheck(gen):
    x = torch.randn(1, 2, 5, generator=gen, dtype=F64, requires_grad=True)
    w = torch.randn(2, 3, generator=gen, dtype=F64, requires_grad=True)
    b = torch.randn(2, generator=gen, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: causal_conv1d_ref(x, w, b, activation="silu"), (x, w, b))


def _scan_inputs(gen, bc_kind, batch=2, dim=4, seqlen=6, n=3, groups=2):
    u = torch.randn(batch, dim, seqlen, generator=gen, dtype=F64)
    delta = torch.rand(batch, dim, seqlen, generator=gen, dtype=F64) * 0.5
    A = -torch.rand(dim, n, generator=gen, dtype=F64) - 0.1
    if bc_kind == "fixed":
        B = torch.randn(dim, n, generator=gen, dtype=F64)
        C = torch.randn(dim, n, generator=gen, dtype=F64)
    elif bc_kind == "variable":
        B = torch.randn(batch, n, seqlen, generator=gen, dtype=F64)
        C = torch.randn(batch, n, seqlen, generator=gen, dtype=F64)
    else:  # grouped
        B = torch.randn(batch, groups, n, seqlen, generator=gen, dtype=F64)
        C = torch.randn(batch, groups, n, seqlen, generator=gen, dtype=F64)
    D = torch.randn(dim, generator=gen, dtype=F64)
    z = torch.randn(batch, dim, seqlen, generator=gen, dtype=F64)
    delta_bias = torch.randn(dim, generator=gen, dtype=F64) * 0.3
    return u, delta, A, B, C, D, z, delta_bias


@pytest.mark.parametrize("bc_kind", ["fixed", "variable", "grouped"])
@pytest.mark.parametrize("full", [False, True])
def test_selective_scan_matches_loops(gen, bc_kind, full):
    u, delta, A, B, C, D, z, delta_bias = _scan_inputs(gen, bc_kind)
    if full:
        out, last = selective_scan_ref(u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=True,
                                       return_last_state=True)
        exp_out, exp_last = naive_scan(u, delta, A, B, C, D, z, delta_bias, softplus_=True)
        torch.testing.assert_close(last, exp_last, rtol=1e-12, atol=1e-12)
    else:
        out = selective_scan_ref(u, delta, A, B, C)
        exp_out, _ = naive_scan(u, delta, A, B, C)
    assert out.shape == u.shape and out.dtype == F64
    torch.testing.assert_close(out, exp_out, rtol=1e-12, atol=1e-12)


def test_selective_scan_keyword_signature_matches_upstream():
    """Same parameter names and defaults as mamba_ssm's selective_scan_fn."""
    import inspect

    params = inspect.signature(selective_scan_ref).parameters
    assert list(params) == ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "delta_softplus",
                            "return_last_state"]
    assert params["delta_softplus"].default is False and params["return_last_state"].default is False
    assert list(inspect.signature(causal_conv1d_ref).parameters) == ["x", "weight", "bias", "activation"]


def test_selective_scan_bf16_returns_input_dtype(gen):
    u, delta, A, B, C, D, z, delta_bias = _scan_inputs(gen, "variable")
    out, last = selective_scan_ref(u.bfloat16(), delta.bfloat16(), A.float(), B.bfloat16(), C.bfloat16(),
                                   D.float(), z=z.bfloat16(), delta_bias=delta_bias.float(),
                                   delta_softplus=True, return_last_state=True)
    assert out.dtype == torch.bfloat16 and last.dtype == torch.float32


@pytest.mark.parametrize("bc_kind", ["fixed", "variable", "grouped"])
def test_selective_scan_gradcheck(gen, bc_kind):
    inputs = tuple(t.requires_grad_() for t in _scan_inputs(gen, bc_kind, batch=1, dim=2, seqlen=4, n=2, groups=2))

    def fn(u, delta, A, B, C, D, z, delta_bias):
        out, last = selective_scan_ref(u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=True,
                                       return_last_state=True)
        return out, last

    assert torch.autograd.gradcheck(fn, inputs)


def test_mamba_param_count():
    assert mamba_param_count(128, 16, 4, 2) == 116_480


def test_mamba_block_ref_against_composed_math(gen):
    """mamba_block_ref on a stand-in module with Mamba's attribute names, vs the loops."""
    nn = torch.nn
    d_model, d_state, d_conv, expand, dt_rank = 4, 2, 3, 2, 1
    d_inner = expand * d_model
    torch.manual_seed(0)

    class FakeMamba(nn.Module):
        def __init__(self):
            super().__init__()
            self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False, dtype=F64)
            self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, dtype=F64)
            self.x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False, dtype=F64)
            self.dt_proj = nn.Linear(dt_rank, d_inner, bias=True, dtype=F64)
            self.A_log = nn.Parameter(torch.rand(d_inner, d_state, dtype=F64))
            self.D = nn.Parameter(torch.ones(d_inner, dtype=F64))
            self.out_proj = nn.Linear(d_inner, d_model, bias=False, dtype=F64)

    from mamba_build.build.smoke.references import mamba_block_ref

    m = FakeMamba()
    hs = torch.randn(1, 5, d_model, generator=gen, dtype=F64)
    got = mamba_block_ref(m, hs)
    # Slow path written out independently: torch's own conv1d (padding, then crop) and the loops.
    xz = m.in_proj(hs).transpose(1, 2)
    x, z = xz.chunk(2, dim=1)
    x = torch.nn.functional.silu(m.conv1d(x)[..., :5])
    dbl = m.x_proj(x.transpose(1, 2))
    dt, Bm, Cm = torch.split(dbl, [dt_rank, d_state, d_state], dim=-1)
    delta = (dt @ m.dt_proj.weight.T).transpose(1, 2)
    y, _ = naive_scan(x.detach(), delta.detach(), -torch.exp(m.A_log.detach()), Bm.transpose(1, 2).detach(),
                      Cm.transpose(1, 2).detach(), m.D.detach(), z.detach(), m.dt_proj.bias.detach(), softplus_=True)
    expected = m.out_proj(y.transpose(1, 2))
    torch.testing.assert_close(got.detach(), expected.detach(), rtol=1e-10, atol=1e-10)


def naive_complex_scan(u, delta, A, B, C, D, z, delta_bias):
    """Complex A, variable B/C given as (batch, N, 2L) real with (re, im) interleaved: one complex at a time."""
    import cmath

    batch, dim, seqlen = u.shape
    n = A.shape[1]
    out = torch.zeros(batch, dim, seqlen, dtype=F64)
    for bi in range(batch):
        for d in range(dim):
            h = [0j] * n
            for t in range(seqlen):
                dt = softplus(float(delta[bi, d, t]) + float(delta_bias[d]))
                y = 0.0
                for k in range(n):
                    b = complex(float(B[bi, k, 2 * t]), float(B[bi, k, 2 * t + 1]))
                    c = complex(float(C[bi, k, 2 * t]), float(C[bi, k, 2 * t + 1]))
                    h[k] = cmath.exp(dt * complex(A[d, k])) * h[k] + dt * b * float(u[bi, d, t])
                    y += 2 * (h[k] * c).real
                y += float(D[d]) * float(u[bi, d, t])
                out[bi, d, t] = y * silu(float(z[bi, d, t]))
    return out


def test_complex_scan_matches_the_loop(gen):
    u, delta, A, B, C, D, z, delta_bias = _scan_inputs(gen, "variable")
    A = torch.complex(A, torch.randn(A.shape, generator=gen, dtype=F64))
    B2 = torch.randn(B.shape[0], B.shape[1], 2 * B.shape[2], generator=gen, dtype=F64)
    C2 = torch.randn(C.shape[0], C.shape[1], 2 * C.shape[2], generator=gen, dtype=F64)
    got = selective_scan_ref(u, delta, A, B2, C2, D, z=z, delta_bias=delta_bias, delta_softplus=True)
    torch.testing.assert_close(got, naive_complex_scan(u, delta, A, B2, C2, D, z, delta_bias), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("chunk", [1, 2, 5, 64])
def test_chunked_scan_equals_the_loop_values_and_gradients(gen, chunk):
    from mamba_build.build.smoke.references import selective_scan_chunked

    inputs = [t.requires_grad_() for t in _scan_inputs(gen, "grouped", seqlen=13)]
    out1, last1 = selective_scan_chunked(*inputs[:6], inputs[6], inputs[7], True, True, chunk=1)
    outc, lastc = selective_scan_chunked(*inputs[:6], inputs[6], inputs[7], True, True, chunk=chunk)
    torch.testing.assert_close(outc, out1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lastc, last1, rtol=1e-12, atol=1e-12)
    g1 = torch.autograd.grad((out1 * 1.3).sum() + last1.sum(), inputs)
    gc = torch.autograd.grad((outc * 1.3).sum() + lastc.sum(), inputs)
    for a, b in zip(gc, g1, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
