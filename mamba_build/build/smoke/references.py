"""Our own pure-PyTorch references for the Mamba kernels, written from the math.

They take the same arguments as the packages' Python entry points, so the smoke test can call
both with the same tensors:

* ``causal_conv1d_fn(x, weight, bias=None, activation=None)`` (package ``causal_conv1d``)
* ``selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
  return_last_state=False)`` (``mamba_ssm.ops.selective_scan_interface``)

They are plain differentiable torch code (autograd gives the backward), compute in float32
(float64 when given float64) and return the input's dtype, like the kernels. This file must run
in the *target* Python with only torch available (it is executed next to ``checks.py``), so it
imports nothing from mamba_build.

Math
----
Causal depthwise conv1d, x: (batch, dim, L), weight: (dim, W)::

    out[b, d, t] = bias[d] + sum_{k=0}^{W-1} weight[d, k] * x[b, d, t - (W - 1) + k]

with x[..., s] = 0 for s < 0 (the last tap multiplies the current step); then optionally
``silu``.

Selective scan, u, delta: (batch, dim, L), A: (dim, N); B, C either (dim, N) (fixed over time),
(batch, N, L) or (batch, G, N, L) (variable; channel d uses group d // (dim / G)).
With delta <- delta + delta_bias[d], then softplus(delta) if delta_softplus::

    h[b, d, n, -1] = 0
    h[b, d, n, t]  = exp(delta[b,d,t] * A[d,n]) * h[b,d,n,t-1] + delta[b,d,t] * B[.., n, t] * u[b,d,t]
    y[b, d, t]     = sum_n C[.., n, t] * h[b, d, n, t]  +  D[d] * u[b, d, t]
    y              = y * silu(z)          (when z is given)

``return_last_state=True`` also returns h[:, :, :, L-1] (batch, dim, N).

Complex A (a complex64 (dim, N)): h is complex and stands for N pairs of conjugate states, so
y[b, d, t] = 2 Re(sum_n C h) + D u; fixed B, C are complex (dim, N), variable ones real with real and
imaginary parts interleaved along the last dim (batch, [G,] N, 2L), as mamba_ssm takes them.

Mamba2's block (``mamba2_block_ref``) is this scan with one A, delta and D per head, then
RMSNorm(y * silu(z)) per group.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "causal_conv1d_ref",
    "selective_scan_ref",
    "mamba_block_ref",
    "mamba_param_count",
    "mamba2_block_ref",
    "mamba2_param_count",
    "scale_add_ref",
]


def _compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def causal_conv1d_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, activation: str | None = None
) -> torch.Tensor:
    """Causal depthwise conv1d over the last dim of x (batch, dim, L) with weight (dim, W)."""
    if activation not in (None, "silu", "swish"):
        raise NotImplementedError(f"activation must be None, 'silu' or 'swish', not {activation!r}")
    if x.dim() != 3 or weight.dim() != 2 or weight.shape[0] != x.shape[1]:
        raise ValueError(f"expected x (batch, dim, L) and weight (dim, W); got {tuple(x.shape)}, {tuple(weight.shape)}")
    dtype_in = x.dtype
    cdt = _compute_dtype(x, weight, bias)
    xf, wf = x.to(cdt), weight.to(cdt)
    seqlen, width = xf.shape[-1], wf.shape[-1]
    out = torch.zeros_like(xf)
    for k in range(width):
        shift = width - 1 - k  # tap k reads x[t - shift]
        if shift >= seqlen:
            continue
        shifted = F.pad(xf[..., : seqlen - shift], (shift, 0)) if shift else xf
        out = out + wf[:, k, None] * shifted
    if bias is not None:
        out = out + bias.to(cdt)[:, None]
    if activation in ("silu", "swish"):
        out = F.silu(out)
    return out.to(dtype_in)


def _expand_bc(M: torch.Tensor, batch: int, dim: int, seqlen: int) -> tuple[torch.Tensor, bool]:
    """B or C as (batch, dim, N, L) when variable, (dim, N) when fixed; returns (tensor, variable)."""
    if M.dim() == 2:
        return M, False
    if M.dim() == 3:  # (batch, N, L): shared by all channels
        return M[:, None, :, :], True
    if M.dim() == 4:  # (batch, G, N, L): channel d uses group d // (dim // G)
        groups = M.shape[1]
        if dim % groups:
            raise ValueError(f"dim {dim} is not a multiple of the {groups} groups of B/C")
        return M.repeat_interleave(dim // groups, dim=1), True
    raise ValueError(f"B/C must have 2, 3 or 4 dims, not {M.dim()}")


def _bc_at(M: torch.Tensor, variable: bool, t0: int, t1: int) -> torch.Tensor:
    """B or C for steps t0..t1-1 as (batch, dim, T, N) when variable, else (dim, 1, N)."""
    return M[..., t0:t1].transpose(-1, -2) if variable else M[:, None, :]


def selective_scan_ref(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """Reference selective scan; signature of mamba_ssm's ``selective_scan_fn`` (real or complex A)."""
    return selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def selective_scan_chunked(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False, chunk=None
):
    """:func:`selective_scan_ref` with the chunk length chosen (None: from the tensor sizes).

    The recurrence is evaluated ``chunk`` steps at a time in closed form (the sequential loop of the
    module docstring, unrolled: h[t] = exp(S[t] - S[s0-1]) h[s0-1] + sum_{s0<=s<=t} exp(S[t] - S[s]) x[s], with
    S the running sum of delta*A inside the chunk); ``chunk=1`` is the plain loop. Every exponent is <= 0
    (A's real part is negative, delta positive), so nothing overflows."""
    dtype_in = u.dtype
    cdt = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    u_, dt = u.to(cdt), delta.to(cdt)
    batch, dim, seqlen = u_.shape
    if delta_bias is not None:
        dt = dt + delta_bias.to(cdt)[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    complex_ = A.is_complex()
    ctype = (torch.complex128 if cdt == torch.float64 else torch.complex64) if complex_ else cdt
    A_ = A.to(ctype)
    B_, b_var = _expand_bc(_as_complex_bc(B, cdt) if complex_ else B.to(cdt), batch, dim, seqlen)
    C_, c_var = _expand_bc(_as_complex_bc(C, cdt) if complex_ else C.to(cdt), batch, dim, seqlen)
    dstate = A_.shape[1]
    if chunk is None:  # the (T, T) step matrix of a chunk: ~4M elements on a GPU, ~32K on a CPU (fewer, larger ops
        budget = (1 << 22) if u_.is_cuda else (1 << 15)  # pay on a GPU; less memory traffic on a CPU)
        chunk = max(1, min(64, int(math.sqrt(budget / max(1, batch * dim * dstate)))))
    h = u_.new_zeros(batch, dim, dstate, dtype=ctype)
    ys = []
    for t0 in range(0, seqlen, chunk):
        t1 = min(seqlen, t0 + chunk)
        dt_c = dt[:, :, t0:t1, None]  # (b, d, T, 1)
        S = torch.cumsum(dt_c * A_[:, None, :], dim=2)  # (b, d, T, N)
        x = dt_c * _bc_at(B_, b_var, t0, t1) * u_[:, :, t0:t1, None]  # (b, d, T, N)
        seg = S[:, :, :, None, :] - S[:, :, None, :, :]  # (b, d, T(t), T(s), N)
        steps = t1 - t0
        pos = torch.arange(steps, device=u_.device)
        keep = (pos[:, None] >= pos[None, :])[None, None, :, :, None]  # s <= t
        decay = torch.exp(seg.masked_fill(~keep, float("-inf")))  # 0 where s > t
        hs = torch.exp(S) * h[:, :, None, :] + (decay * x[:, :, None, :, :]).sum(3)  # (b, d, T, N)
        yc = (hs * _bc_at(C_, c_var, t0, t1)).sum(-1)  # (b, d, T)
        ys.append(2 * yc.real if complex_ else yc)  # complex A: the state and its conjugate
        h = hs[:, :, -1]
    y = torch.cat(ys, dim=-1)  # (batch, dim, L)
    if D is not None:
        y = y + D.to(cdt)[:, None] * u_
    if z is not None:
        y = y * F.silu(z.to(cdt))
    out = y.to(dtype_in)
    return (out, h) if return_last_state else out


def _as_complex_bc(M: torch.Tensor, cdt: torch.dtype) -> torch.Tensor:
    """Complex A: fixed B/C are complex (dim, N); variable ones are real with (real, imag) interleaved
    along L (batch, [G,] N, 2L), as mamba_ssm takes them."""
    if M.is_complex():
        return M.to(torch.complex128 if cdt == torch.float64 else torch.complex64)
    M = M.to(cdt)
    return torch.view_as_complex(M.reshape(*M.shape[:-1], M.shape[-1] // 2, 2).contiguous())


def mamba_param_count(
    d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank: int | None = None
) -> int:
    """Parameters of mamba_ssm's ``Mamba`` block (v1, default biases): 116,480 for (128, 16, 4, 2)."""
    d_inner = expand * d_model
    dt_rank = dt_rank or math.ceil(d_model / 16)
    return (
        d_model * 2 * d_inner  # in_proj, no bias
        + d_inner * d_conv
        + d_inner  # depthwise conv1d weight + bias
        + d_inner * (dt_rank + 2 * d_state)  # x_proj, no bias
        + dt_rank * d_inner
        + d_inner  # dt_proj weight + bias
        + d_inner * d_state
        + d_inner  # A_log, D
        + d_inner * d_model
    )  # out_proj, no bias


def mamba_block_ref(block, hidden_states: torch.Tensor) -> torch.Tensor:
    """Forward of a mamba_ssm ``Mamba`` (v1) block from its parameters, with our references.

    hidden_states: (batch, L, d_model). Uses block.in_proj, conv1d, x_proj, dt_proj, A_log, D,
    out_proj (the attribute names of ``mamba_ssm.modules.mamba_simple.Mamba``).
    """
    batch, seqlen, _ = hidden_states.shape
    xz = F.linear(hidden_states, block.in_proj.weight, block.in_proj.bias).transpose(1, 2)  # (b, 2*d_inner, L)
    x, z = xz.chunk(2, dim=1)
    conv_w = block.conv1d.weight.squeeze(1)  # (d_inner, d_conv)
    x = causal_conv1d_ref(x, conv_w, block.conv1d.bias, activation="silu")
    x_dbl = F.linear(x.transpose(1, 2), block.x_proj.weight, block.x_proj.bias)  # (b, L, r + 2N)
    d_state = block.A_log.shape[1]
    dt_rank = x_dbl.shape[-1] - 2 * d_state
    dt, Bm, Cm = torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)
    delta = F.linear(dt, block.dt_proj.weight).transpose(1, 2)  # (b, d_inner, L); bias goes in delta_bias
    A = -torch.exp(block.A_log.float())
    y = selective_scan_ref(
        x,
        delta,
        A,
        Bm.transpose(1, 2),
        Cm.transpose(1, 2),
        block.D.float(),
        z=z,
        delta_bias=block.dt_proj.bias.float(),
        delta_softplus=True,
    )
    return F.linear(y.transpose(1, 2), block.out_proj.weight, block.out_proj.bias)


def mamba2_param_count(
    d_model: int, d_state: int = 128, d_conv: int = 4, expand: int = 2, headdim: int = 64, ngroups: int = 1
) -> int:
    """Parameters of mamba_ssm's ``Mamba2`` block (default biases, rmsnorm, D per head): 6,468,320 for
    (1024, 64, 4, 2)."""
    d_inner = expand * d_model
    nheads = d_inner // headdim
    conv_dim = d_inner + 2 * ngroups * d_state
    return (
        d_model * (2 * d_inner + 2 * ngroups * d_state + nheads)  # in_proj [z, x, B, C, dt], no bias
        + conv_dim * d_conv
        + conv_dim  # depthwise conv1d weight + bias
        + 3 * nheads  # dt_bias, A_log, D
        + d_inner  # the gated RMSNorm's weight
        + d_inner * d_model
    )  # out_proj, no bias


def mamba2_block_ref(block, hidden_states: torch.Tensor) -> torch.Tensor:
    """Forward of a mamba_ssm ``Mamba2`` block from its parameters, with our references.

    The SSM of Mamba2 is the selective scan with one scalar A, delta and D per head (shared by the head's
    ``headdim`` channels) and B, C in ``ngroups`` groups; then y * silu(z) is RMS-normalised per group
    (``norm_before_gate=False``) and projected out. Attribute names of ``mamba_ssm.modules.mamba2.Mamba2``."""
    batch, seqlen, _ = hidden_states.shape
    d_ssm, ngroups, d_state = block.d_ssm, block.ngroups, block.d_state
    nheads, headdim = block.nheads, block.headdim
    zxbcdt = F.linear(hidden_states, block.in_proj.weight, block.in_proj.bias)
    z, xBC, dt = torch.split(zxbcdt, [d_ssm, d_ssm + 2 * ngroups * d_state, nheads], dim=-1)
    xBC = causal_conv1d_ref(
        xBC.transpose(1, 2), block.conv1d.weight.squeeze(1), block.conv1d.bias, activation="silu"
    )  # (b, conv_dim, L)
    x, Bm, Cm = torch.split(xBC, [d_ssm, ngroups * d_state, ngroups * d_state], dim=1)
    A = (-torch.exp(block.A_log.float())).repeat_interleave(headdim)[:, None].expand(d_ssm, d_state)
    D = block.D.float()
    if D.shape[0] == nheads:
        D = D.repeat_interleave(headdim)
    y = selective_scan_ref(
        x,
        dt.transpose(1, 2).repeat_interleave(headdim, dim=1),
        A,
        Bm.reshape(batch, ngroups, d_state, seqlen),
        Cm.reshape(batch, ngroups, d_state, seqlen),
        D,
        delta_bias=block.dt_bias.float().repeat_interleave(headdim),
        delta_softplus=True,
    )
    y = y.transpose(1, 2) * F.silu(z)  # (b, L, d_ssm)
    group = block.norm.group_size or d_ssm
    yg = y.reshape(batch, seqlen, d_ssm // group, group)
    y = (yg * torch.rsqrt(yg.square().mean(-1, keepdim=True) + block.norm.eps)).reshape(batch, seqlen, d_ssm)
    y = y * block.norm.weight
    return F.linear(y, block.out_proj.weight, block.out_proj.bias)


def scale_add_ref(x: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """mamba-build's own fixture extension (csrc/fixture, ``mb_fixture_cuda.scale_add``): x + alpha * y,
    computed in float64 and rounded once to the inputs' dtype."""
    return (x.double() + alpha * y.double()).to(x.dtype)
