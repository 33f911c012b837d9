"""The warm-up's causal-conv1d stand-in (mamba_build/build/smoke/triton_warmup.py): the Triton kernels after the
conv specialise on its output's shape and strides, so it must return the layout the CUDA function returns, and
numbers that are the reference's. And the plan's decision, with its reason."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mamba_build.build.smoke import stage, triton_warmup
from mamba_build.plan.build_plan import CompileOptions, _triton_warmup

torch = pytest.importorskip("torch", reason="the stand-in is torch code (tests/unit runs without torch too)")


def _refs():
    from mamba_build.build.smoke import checks

    return checks._load_references()


def _channel_last(b=2, d=6, L=9):
    return torch.randn(b, L, d, dtype=torch.float64).transpose(1, 2)  # (b, d, L), stride(1) == 1


@pytest.mark.parametrize("silu", [True, False])
def test_the_stand_in_fwd_keeps_the_input_layout_and_computes_the_reference(silu):
    refs = _refs()
    cpp = triton_warmup.causal_conv1d_stand_in(torch, refs.causal_conv1d_ref).cpp_functions
    x, w, b = _channel_last(), torch.randn(6, 4, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    out = cpp.causal_conv1d_fwd_function(x, w, b, None, None, None, silu)
    assert out.shape == x.shape and out.stride() == x.stride() and out.stride(1) == 1
    torch.testing.assert_close(out, refs.causal_conv1d_ref(x, w, b, activation="silu" if silu else None))


def test_the_stand_in_bwd_gives_autograds_gradients_into_the_given_dx():
    refs = _refs()
    cpp = triton_warmup.causal_conv1d_stand_in(torch, refs.causal_conv1d_ref).cpp_functions
    x, w, b = _channel_last(), torch.randn(6, 4, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    dout = torch.randn_like(x)
    given = torch.empty_like(x)
    with torch.no_grad():  # as inside an autograd backward
        dx, dw, db, dinit = cpp.causal_conv1d_bwd_function(x, w, b, dout, None, None, None, given, False, True)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    refs.causal_conv1d_ref(*leaves, activation="silu").backward(dout)
    assert dx is given and dinit is None
    for got, want in zip((dx, dw, db), leaves, strict=True):
        torch.testing.assert_close(got, want.grad)


def test_the_stand_in_has_no_decoding_update():
    pkg = triton_warmup.causal_conv1d_stand_in(torch, _refs().causal_conv1d_ref)
    with pytest.raises(NotImplementedError, match="no update"):
        pkg.causal_conv1d_update(None)


def test_the_stop_file_ends_the_child_at_once(tmp_path):
    """compile removes the source tree the child reads when its run ends: the stop file must end it."""
    stop = tmp_path / "stop"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import triton_warmup as t; "
        "t.watch(__import__('pathlib').Path(sys.argv[2]), poll=0.05); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(stage.SMOKE_DIR), str(stop)])
    time.sleep(1.0)
    assert proc.poll() is None
    stop.write_text("stop\n")
    assert proc.wait(10) == triton_warmup.STOPPED


@pytest.mark.parametrize(
    ("opt", "gpu", "packages", "on", "says"),
    [
        (True, True, ["causal-conv1d", "mamba-ssm"], True, "TRITON_CACHE_AUTOTUNING=1"),
        (True, False, ["mamba-ssm"], False, "no GPU"),
        (True, True, ["causal-conv1d"], False, "mamba-ssm is not built"),
        (False, True, ["mamba-ssm"], False, "--no-triton-warmup"),
    ],
)
def test_the_plan_says_whether_the_warmup_runs_and_why(opt, gpu, packages, on, says):
    got = _triton_warmup(CompileOptions(triton_warmup=opt), gpu, packages)
    assert got["triton_warmup"] is on and says in got["triton_warmup_reason"]


def test_the_smoke_childs_autotune_cache_respects_the_users_setting(monkeypatch):
    monkeypatch.delenv(stage.TRITON_AUTOTUNE_CACHE, raising=False)
    assert stage.triton_env() == {"TRITON_CACHE_AUTOTUNING": "1"}
    monkeypatch.setenv(stage.TRITON_AUTOTUNE_CACHE, "0")
    assert stage.triton_env() == {} and os.environ["TRITON_CACHE_AUTOTUNING"] == "0"
