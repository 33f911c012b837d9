"""Fill Triton's caches for the smoke test's Mamba2 check while the wheels build (a child of ``compile``).

mamba-ssm's Mamba2 block runs Triton kernels (the SSD chunked scan, the gated RMSNorm) that Triton compiles on their
first call and autotunes in every new process: ~100 s on a machine whose Triton cache is empty, 12 s when it only
autotunes (docs/benchmarks.md, "Where the smoke test's time goes"). Those kernels are Python source in mamba-ssm's
source tree, not part of the extensions being built, so this child runs the check's own Mamba2 block
(``checks.check_mamba2_block``: the same configuration, seed, shapes, dtype and calls) from the source tree before
the wheels exist. Triton keeps what it compiled in its on-disk cache (``~/.triton/cache`` or ``$TRITON_CACHE_DIR``),
and, with ``TRITON_CACHE_AUTOTUNING=1`` (set by the parent for this child and for the smoke test's), which
configuration won; the smoke test's child reads both. Triton's cache key is the kernel's source and its call's
specialisation (dtypes, shapes' divisibility, strides), not the file it was loaded from.

Nothing here is a check: its numbers are not looked at. The smoke test runs the block again from the built wheels
against the reference; whatever this child did not compile, the smoke test compiles itself, as it did before.
The two extension modules the block calls do not exist yet, so:

* ``mamba_ssm`` is imported as a bare package over the source tree: its ``__init__`` (which imports
  ``selective_scan_cuda``) does not run; ``mamba_ssm.modules.mamba2`` and the Triton ops need no extension;
* ``causal_conv1d`` is a stand-in: its conv functions are ``references.causal_conv1d_ref`` (plain torch) behind the
  signatures of causal-conv1d's ``cpp_functions`` (1.5 and later), returning tensors of the layout the CUDA
  functions return (``empty_like`` of the input), so the Triton kernels after them see the same shapes and strides.

A mamba-ssm or causal-conv1d whose API differs makes the warm-up fail, which costs nothing but the time it saves.
The outcome is one record (the child protocol, ``$MAMBA_BUILD_RESULT``):
``{"warmup": "done" | "skipped" | "failed", "detail": str, "seconds": float}``.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import os
import sys
import threading
import time
import traceback
import types
from pathlib import Path


def causal_conv1d_stand_in(torch, conv_ref) -> types.ModuleType:
    """A ``causal_conv1d`` package (with ``causal_conv1d.cpp_functions``) computed by ``conv_ref`` in plain torch."""

    def activation(silu: bool) -> str | None:
        return "silu" if silu else None

    def fwd(x, weight, bias, seq_idx, initial_states, final_states_out, silu_activation):
        out = torch.empty_like(x)  # the CUDA function's layout: channel-last input, channel-last output
        out.copy_(conv_ref(x, weight, bias, activation=activation(silu_activation)))
        return out

    def bwd(x, weight, bias, dout, seq_idx, initial_states, dfinal_states, dx, return_dinitial_states, silu_activation):
        with torch.enable_grad():  # called from an autograd backward, where grad mode is off
            leaves = [t.detach().requires_grad_() for t in (x, weight, bias) if t is not None]
            out = conv_ref(*leaves[:2], leaves[2] if bias is not None else None, activation=activation(silu_activation))
            grads = torch.autograd.grad(out, leaves, dout)
        if dx is None:
            dx = torch.empty_like(x)
        dx.copy_(grads[0])
        return dx, grads[1].type_as(weight), grads[2].type_as(bias) if bias is not None else None, None

    def update(*args, **kwargs):
        raise NotImplementedError("the warm-up's causal_conv1d stand-in has no update (decoding is not warmed)")

    def conv_fn(x, weight, bias=None, seq_idx=None, initial_states=None, return_final_states=False,
                final_states_out=None, activation=None):  # fmt: skip
        return conv_ref(x, weight, bias, activation=activation)

    pkg = types.ModuleType("causal_conv1d")
    pkg.__path__ = []  # a package: its submodules come from sys.modules
    pkg.causal_conv1d_fn, pkg.causal_conv1d_update = conv_fn, update  # type: ignore[attr-defined]
    cpp = types.ModuleType("causal_conv1d.cpp_functions")
    cpp.causal_conv1d_fwd_function = fwd  # type: ignore[attr-defined]
    cpp.causal_conv1d_bwd_function = bwd  # type: ignore[attr-defined]
    cpp.causal_conv1d_update_function = update  # type: ignore[attr-defined]
    pkg.cpp_functions = cpp  # type: ignore[attr-defined]
    return pkg


def bare_package(name: str, directory: Path) -> types.ModuleType:
    """Package ``name`` over ``directory`` without running its ``__init__``: its submodules import from there."""
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(directory)]
    return importlib.util.module_from_spec(spec)


def install_stand_ins(source: Path, torch, conv_ref) -> None:
    """``mamba_ssm`` (bare, over ``source/mamba_ssm``) and the ``causal_conv1d`` stand-in, in ``sys.modules``."""
    cc = causal_conv1d_stand_in(torch, conv_ref)
    sys.modules["causal_conv1d"] = cc
    sys.modules["causal_conv1d.cpp_functions"] = cc.cpp_functions
    sys.modules["mamba_ssm"] = bare_package("mamba_ssm", Path(source) / "mamba_ssm")


def warm(source: Path, device: str = "cuda") -> list[dict]:
    """Run the smoke test's Mamba2 check from ``source`` (mamba-ssm's source tree); its check records (unread)."""
    import torch
    from checks import Report, _load_references, check_mamba2_block  # type: ignore[import-not-found]

    refs = _load_references()
    install_stand_ins(source, torch, refs.causal_conv1d_ref)
    from mamba_ssm.modules.mamba2 import Mamba2  # type: ignore[import-not-found]

    report = Report(None)
    check_mamba2_block(report, refs, torch, cls=Mamba2, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    return report.checks


STOPPED = 3  # exit status when told to stop (the stop file appeared) or when the parent is gone


def watch(stop_file: Path | None, poll: float = 0.2) -> None:
    """Exit at once (STOPPED) when ``stop_file`` appears or the parent process is gone: the parent removes the
    source tree this child reads when its run ends."""
    parent = os.getppid()

    def loop() -> None:
        while True:
            if os.getppid() != parent or (stop_file is not None and stop_file.exists()):
                os._exit(STOPPED)
            time.sleep(poll)

    threading.Thread(target=loop, daemon=True, name="watch-parent").start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True, help="mamba-ssm's source tree (holds mamba_ssm/)")
    ap.add_argument("--stop-file", type=Path, default=None, help="exit at once when this file appears")
    args = ap.parse_args(argv)
    watch(args.stop_file)
    from _mb_child import emit  # copied next to this script (stage._copy_scripts): the child protocol

    start = time.monotonic()

    def outcome(status: str, detail: str) -> int:
        emit({"warmup": status, "detail": detail, "seconds": round(time.monotonic() - start, 1)})
        return 0

    if not (args.source / "mamba_ssm" / "modules" / "mamba2.py").is_file():
        return outcome("skipped", f"no mamba_ssm/modules/mamba2.py under {args.source}: no Mamba2 to warm")
    try:
        import torch

        if not torch.cuda.is_available():
            return outcome("skipped", "no GPU: the smoke test runs no Mamba2 block")
        import triton  # noqa: F401
    except BaseException as exc:  # noqa: BLE001
        return outcome("skipped", f"{type(exc).__name__}: {exc}"[:300])
    try:
        checks = warm(args.source)
    except BaseException as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        return outcome("failed", f"{type(exc).__name__}: {exc}"[:300])
    ran = [c for c in checks if c["status"] != "skipped"]
    errors = [c for c in checks if "fwd+bwd" in c["name"]]  # check_mamba2_block's "it raised" entry
    if errors or not ran:
        return outcome("failed", "; ".join(f"{c['name']}: {c['detail']}" for c in errors or checks)[:300])
    return outcome("done", f"Mamba2 block fwd+bwd ran from the source tree ({len(ran)} check records, unread)")


if __name__ == "__main__":
    sys.exit(main())
