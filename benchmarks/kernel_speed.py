"""Kernel parity benchmark: are the CUDA kernels built by mamba-build as fast as upstream's own build?

What it measures: forward and backward GPU time of the raw extension ops (not the Python wrappers)
``causal_conv1d_cuda.causal_conv1d_fwd/_bwd`` (causal-conv1d 1.7.0) and ``selective_scan_cuda.fwd/bwd``
(mamba-ssm 2.3.2.post1), called with the arguments Mamba's own wrappers pass (channel-first x, SiLU;
variable B/C with one group, D, z, delta_bias and delta_softplus), in float32 and bfloat16, for three
shapes per op (``--quick``: one), for two or more builds of the same sources for the same arch.

How: every build is measured in its own child process (``--worker DIR``) that puts DIR first on
``sys.path``, imports torch and then the two extension modules and checks that both were loaded from
DIR. Rounds alternate between builds (A B A B ...) in fresh processes to cancel drift. In a round, per
(op, shape, dtype, direction): warmup calls, then ``--samples`` samples of N back-to-back calls between
two CUDA events (the launches are queued behind a ``torch.cuda._sleep`` so host overhead is not timed),
and the round's value is the median per-call time over the samples. Per row the report gives each
build's median over rounds, its spread ((max - min) / median over rounds), the ratio build / baseline
(the first ``--build`` is the baseline) and a verdict: ``parity`` when |ratio - 1| <= max(noise,
``--tolerance``) where noise is the larger of the two spreads, else ``slower`` or ``faster``.

Run (on a GPU machine; each DIR holds one build's unzipped wheels, or give the wheels themselves)::

    python benchmarks/kernel_speed.py --build upstream=/tmp/kb/upstream --build mamba-build=/tmp/kb/mb \\
        --rounds 5 --json /tmp/out/kernels.json --markdown /tmp/out/kernels.md
    python benchmarks/kernel_speed.py --build upstream=a.whl,b.whl --build mb=c.whl,d.whl --quick
    python benchmarks/kernel_speed.py --build upstream=up.whl --build mb=mb.whl --ops selective_scan  # one package

Exit status: 0 when no row is slower, 1 when some row is slower, 2 on a usage error or when a worker
fails (its build and the tail of its stderr are printed). Without a CUDA GPU the worker exits 2 with
"no CUDA GPU" and nothing is measured. A full run (2 builds, 5 rounds) should take about 2 minutes on
an H100 (an estimate, not yet measured: ~5 s of timed calls plus torch start-up per worker, 10 workers).
Stdlib only here; torch is imported only inside the worker.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mamba_build.hashing import sha256_file  # noqa: E402  (the project's one copy)

OP_MODULES = {"causal_conv1d": "causal_conv1d_cuda", "selective_scan": "selective_scan_cuda"}  # op -> its extension
OPS = tuple(OP_MODULES)
MODULES = tuple(OP_MODULES.values())
DTYPES = ("float32", "bfloat16")
DIRECTIONS = ("fwd", "bwd")
# (batch, dim, seqlen, width) for causal_conv1d; (batch, dim, seqlen, d_state) for selective_scan.
SHAPES = {
    "causal_conv1d": ((4, 2048, 2048, 4), (8, 4096, 4096, 4), (2, 1024, 16384, 4)),
    "selective_scan": ((4, 2048, 2048, 16), (2, 4096, 4096, 16), (8, 1536, 1024, 16)),
}
QUICK_SHAPES = {"causal_conv1d": ((4, 2048, 2048, 4),), "selective_scan": ((4, 2048, 2048, 16),)}
DEFAULTS = {"rounds": 5, "warmup": 5, "samples": 10}
QUICK_DEFAULTS = {"rounds": 2, "warmup": 3, "samples": 5}
TOLERANCE = 0.03
TARGET_SAMPLE_MS = 10.0  # auto --iters: enough calls for a sample of about this long
MIN_ITERS, MAX_ITERS = 5, 500
ESTIMATE_ITERS = 3  # calls timed once after warmup to pick the auto --iters
SLEEP_CYCLES_PER_ITER = 40_000  # ~20 us of GPU sleep (at ~2 GHz) per queued call: covers host launch time
WORKER_TIMEOUT_S = 300
DEVICE = "cuda"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
EXIT_OK, EXIT_SLOWER, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """Bad command line or inputs: exit 2."""


class WorkerError(Exception):
    """A worker process failed: exit 2, naming the build."""


@dataclass
class Build:
    name: str
    dir: Path | None = None
    wheels: tuple[Path, ...] = ()
    modules: dict[str, Path] = field(default_factory=dict)  # found in dir before running


# --------------------------------------------------------------------------------------------------
# Pure parts: parsing, cases, statistics, merging, rendering (no torch, no GPU)


def parse_build(spec: str) -> Build:
    """``NAME=DIR`` or ``NAME=WHEEL1.whl,WHEEL2.whl`` -> Build (paths not checked here)."""
    name, sep, value = spec.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise UsageError(f"--build {spec!r}: expected NAME=DIR or NAME=WHEEL.whl[,WHEEL.whl...]")
    if not NAME_RE.match(name):
        raise UsageError(f"--build {spec!r}: name {name!r} must be letters, digits and ._+- only")
    parts = [p.strip() for p in value.split(",")]
    if any(not p for p in parts):
        raise UsageError(f"--build {spec!r}: empty path in the list")
    wheels = [p for p in parts if p.endswith(".whl")]
    if wheels and len(wheels) != len(parts):
        raise UsageError(f"--build {spec!r}: give either one directory or only .whl files")
    if not wheels and len(parts) > 1:
        raise UsageError(f"--build {spec!r}: only one directory per build (or a list of .whl files)")
    if wheels:
        return Build(name, wheels=tuple(Path(p) for p in wheels))
    return Build(name, dir=Path(parts[0]))


def parse_builds(specs: list[str]) -> list[Build]:
    builds = [parse_build(s) for s in specs]
    if len(builds) < 2:
        raise UsageError("give at least two --build NAME=PATH (the first one is the baseline)")
    names = [b.name for b in builds]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise UsageError(f"duplicate build name(s): {', '.join(dups)}")
    return builds


def parse_ops(text: str) -> tuple[str, ...]:
    """``--ops causal_conv1d,selective_scan`` -> the ops to time (UsageError on an unknown or empty list)."""
    ops = tuple(dict.fromkeys(o.strip() for o in (text or "").split(",") if o.strip()))
    unknown = [o for o in ops if o not in OP_MODULES]
    if not ops or unknown:
        raise UsageError(f"--ops {text!r}: expected a comma-separated list of {', '.join(OPS)}")
    return ops


def modules_for(ops: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(OP_MODULES[o] for o in ops)


def find_extensions(root: Path, modules: tuple[str, ...] = MODULES) -> dict[str, Path]:
    """The extension .so files directly in ``root`` (where an unzipped wheel puts them)."""
    found: dict[str, Path] = {}
    for module in modules:
        hits = sorted(root.glob(f"{module}.*so")) + sorted(root.glob(f"{module}.so"))
        if hits:
            found[module] = hits[0]
    return found


def check_origin(files: dict[str, str | None], root: Path, modules: tuple[str, ...] = MODULES) -> list[str]:
    """Problems with where the extension modules were loaded from ([] when all come from root)."""
    problems = []
    for module in modules:
        where = files.get(module)
        if not where:
            problems.append(f"{module}: not loaded")
            continue
        try:
            Path(where).resolve().relative_to(root.resolve())
        except ValueError:
            problems.append(f"{module}: loaded from {where}, not from {root}")
    return problems


def cases(quick: bool, ops: tuple[str, ...] = OPS) -> list[dict]:
    """Every (op, shape, dtype, direction) to time, in the order a worker runs them."""
    shapes = QUICK_SHAPES if quick else SHAPES
    return [{"op": op, "shape": list(shape), "dtype": dtype, "direction": direction}
            for op in shapes if op in ops for shape in shapes[op] for dtype in DTYPES for direction in DIRECTIONS]


def case_key(row: dict) -> tuple:
    return (row["op"], tuple(row["shape"]), row["dtype"], row["direction"])


def auto_iters(estimate_ms: float, target_ms: float = TARGET_SAMPLE_MS) -> int:
    """Calls per sample so that one sample lasts about ``target_ms``."""
    if not estimate_ms > 0 or math.isinf(estimate_ms):
        return MAX_ITERS if estimate_ms == 0 else MIN_ITERS
    return max(MIN_ITERS, min(MAX_ITERS, math.ceil(target_ms / estimate_ms)))


def spread(values: list[float]) -> float:
    """(max - min) / median: the relative range over rounds (0 for a single value)."""
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med > 0 else 0.0


def verdict(ratio: float, noise: float, tolerance: float = TOLERANCE) -> str:
    """``ratio`` = build time / baseline time."""
    if abs(ratio - 1.0) <= max(noise, tolerance):
        return "parity"
    return "slower" if ratio > 1.0 else "faster"


def merge_rounds(results: list[dict]) -> dict[tuple, dict[str, list]]:
    """Worker results [{"build", "round", "rows"}] -> {case key: {build: [(round, ms or None, error)]}}."""
    merged: dict[tuple, dict[str, list]] = {}
    for res in sorted(results, key=lambda r: r["round"]):
        for row in res["rows"]:
            per_build = merged.setdefault(case_key(row), {})
            per_build.setdefault(res["build"], []).append((res["round"], row.get("ms"), row.get("error")))
    return merged


def compare(merged: dict[tuple, dict[str, list]], names: list[str], tolerance: float = TOLERANCE) -> list[dict]:
    """One row per (case, non-baseline build): medians, spreads, ratio, noise, verdict."""
    base, rows = names[0], []
    for key, per_build in merged.items():
        op, shape, dtype, direction = key
        base_stats = _build_stats(per_build.get(base, []))
        for name in names[1:]:
            stats = _build_stats(per_build.get(name, []))
            row = {"op": op, "shape": list(shape), "dtype": dtype, "direction": direction,
                   "baseline": base, "build": name,
                   "baseline_ms": base_stats["median"], "baseline_spread": base_stats["spread"],
                   "baseline_rounds_ms": base_stats["values"],
                   "build_ms": stats["median"], "build_spread": stats["spread"], "build_rounds_ms": stats["values"]}
            errors = base_stats["errors"] + stats["errors"]
            if errors or base_stats["median"] is None or stats["median"] is None:
                row.update(ratio=None, noise=None, threshold=None, verdict="error",
                           error="; ".join(errors) or "no measurement")
            else:
                noise = max(base_stats["spread"], stats["spread"])
                ratio = stats["median"] / base_stats["median"]
                row.update(ratio=ratio, noise=noise, threshold=max(noise, tolerance),
                           verdict=verdict(ratio, noise, tolerance))
            rows.append(row)
    return rows


def _build_stats(entries: list) -> dict:
    values = [ms for _, ms, err in entries if err is None and ms is not None]
    errors = sorted({f"round {rnd}: {err}" for rnd, _, err in entries if err is not None})
    if not values:
        return {"median": None, "spread": None, "values": [], "errors": errors}
    return {"median": statistics.median(values), "spread": spread(values), "values": values, "errors": errors}


def summarize(rows: list[dict]) -> dict[str, int]:
    counts = {"parity": 0, "faster": 0, "slower": 0, "error": 0}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return counts


def exit_code(rows: list[dict]) -> int:
    if not rows or any(r["verdict"] == "error" for r in rows):
        return EXIT_ERROR
    return EXIT_SLOWER if any(r["verdict"] == "slower" for r in rows) else EXIT_OK


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    return f"{ms:.2f}" if ms >= 10 else f"{ms:.3f}" if ms >= 1 else f"{ms:.4f}"


def fmt_pct(frac: float | None) -> str:
    return "n/a" if frac is None else f"{100 * frac:.1f}%"


def render_table(rows: list[dict]) -> str:
    """Markdown table, one line per case; per non-baseline build: its time, ratio and verdict."""
    if not rows:
        return "(no rows)"
    base = rows[0]["baseline"]
    others = list(dict.fromkeys(r["build"] for r in rows))
    head = ["op", "shape (batch, dim, seqlen, width / d_state)", "dtype", "dir", f"{base} ms (spread)"]
    for name in others:
        head += [f"{name} ms (spread)", f"{name} / {base}", "verdict"]
    align = ["---"] * 4 + ["---:"] + ["---:", "---:", "---"] * len(others)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    by_case: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        by_case.setdefault(case_key(row), {})[row["build"]] = row
    for key, per_build in by_case.items():
        op, shape, dtype, direction = key
        first = next(iter(per_build.values()))
        cells = [f"`{op}`", "(" + ", ".join(map(str, shape)) + ")", dtype, direction,
                 f"{fmt_ms(first['baseline_ms'])} ({fmt_pct(first['baseline_spread'])})"]
        for name in others:
            r = per_build.get(name)
            if r is None:
                cells += ["n/a", "n/a", "error"]
                continue
            ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.3f}"
            mark = f"**{r['verdict']}**" if r["verdict"] in ("slower", "error") else r["verdict"]
            cells += [f"{fmt_ms(r['build_ms'])} ({fmt_pct(r['build_spread'])})", ratio, mark]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    """The section for docs/benchmarks.md: context lines, the table, the tally."""
    m, s = report["machine"], report["settings"]
    base = report["builds"][0]["name"]
    iters = "auto (about 10 ms per sample)" if not s["iters"] else str(s["iters"])
    lines = [
        f"## Kernel speed: {', '.join(b['name'] for b in report['builds'][1:])} vs {base} (baseline)",
        "",
        f"- date: {report['date_utc']}; GPU: {m.get('gpu')} (sm_{m.get('capability', '?').replace('.', '')}), "
        f"torch {m.get('torch')} (CUDA {m.get('cuda')}), Python {m.get('python')}",
        f"- command: `{report['command']}`",
        f"- method: raw extension ops, each build in its own process, {s['rounds']} rounds alternating "
        f"{' / '.join(b['name'] for b in report['builds'])}; per round the median of {s['samples']} samples "
        f"(CUDA events, calls per sample: {iters}, after {s['warmup']} warmup calls); shown: median over "
        f"rounds in ms per call and its spread ((max - min) / median); verdict parity when "
        f"|ratio - 1| <= max(noise, {fmt_pct(s['tolerance'])}), noise = the larger spread",
    ]
    for b in report["builds"]:
        mods = ", ".join(f"`{Path(v['path']).name}` sha256 {v['sha256'][:12]}" for v in b["modules"].values())
        lines.append(f"- {b['name']}: {b['source']} ({mods})")
    lines += [""]
    lines += [render_table(report["rows"]), ""]
    c = report["summary"]
    lines.append(f"{len(report['rows'])} rows: {c['parity']} parity, {c['faster']} faster, {c['slower']} slower"
                 + (f", {c['error']} error" if c.get("error") else "") + f" (exit {report['exit_code']}).")
    lines += [f"- note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines) + "\n"


def tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------------
# Worker: one build, one process, one round (torch imported here only)


def worker_main(root: Path, out: Path, quick: bool, warmup: int, samples: int, iters: int,
                ops: tuple[str, ...] = OPS) -> int:
    result: dict = {"ok": False, "dir": str(root)}
    try:
        code = _worker(result, root, quick, warmup, samples, iters, ops)
    except BaseException as exc:  # noqa: BLE001 - report anything, even SystemExit from an extension
        traceback.print_exc(file=sys.stderr)
        result["error"] = f"{type(exc).__name__}: {exc}"
        code = EXIT_ERROR
    _write_json(out, result)
    if result.get("error"):
        print(f"kernel_speed worker: {result['error']}", file=sys.stderr)
    return code


def _worker(result: dict, root: Path, quick: bool, warmup: int, samples: int, iters: int,
            ops: tuple[str, ...] = OPS) -> int:
    sys.path.insert(0, str(root))
    import torch  # noqa: PLC0415 - only ever in the worker

    result["torch"] = torch.__version__
    if not torch.cuda.is_available():
        result["error"] = f"no CUDA GPU (torch {torch.__version__}: torch.cuda.is_available() is False)"
        return EXIT_ERROR
    modules = modules_for(ops)
    mods = {name: importlib.import_module(name) for name in modules}
    result["modules"] = {name: getattr(mod, "__file__", None) for name, mod in mods.items()}
    problems = check_origin(result["modules"], root, modules)
    if problems:
        result["error"] = "extension modules not from the build directory: " + "; ".join(problems)
        return EXIT_ERROR
    result["machine"] = _machine(torch)
    result["rows"] = run_cases(torch, mods, cases(quick, ops), warmup, samples, iters)
    result["ok"] = True
    return EXIT_OK


def _machine(torch) -> dict:
    major, minor = torch.cuda.get_device_capability(0)
    return {"gpu": torch.cuda.get_device_name(0), "capability": f"{major}.{minor}", "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version(), "host": platform.node()}


def run_cases(torch, mods: dict, todo: list[dict], warmup: int, samples: int, iters: int) -> list[dict]:
    """Time every case; inputs are made once per (op, shape, dtype) and shared by fwd and bwd."""
    rows: list[dict] = []
    groups: dict[tuple, list[dict]] = {}
    for case in todo:
        groups.setdefault((case["op"], tuple(case["shape"]), case["dtype"]), []).append(case)
    for (op, shape, dtype), group in groups.items():
        try:
            ops = make_ops(torch, mods, op, shape, getattr(torch, dtype))
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: recorded per row
            traceback.print_exc(file=sys.stderr)
            rows += [dict(c, ms=None, error=f"setup: {type(exc).__name__}: {exc}"[:500]) for c in group]
            continue
        for case in group:
            rows.append(_time_case(torch, case, ops[case["direction"]], warmup, samples, iters))
        del ops
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    return rows


def _time_case(torch, case: dict, fn, warmup: int, samples: int, iters: int) -> dict:
    try:
        n, times = time_op(torch, fn, warmup, samples, iters)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        return dict(case, ms=None, error=f"{type(exc).__name__}: {exc}"[:500])
    print(f"  {case['op']} {tuple(case['shape'])} {case['dtype']} {case['direction']}: "
          f"{statistics.median(times):.4f} ms ({n} calls x {samples})", file=sys.stderr)
    return dict(case, ms=statistics.median(times), samples_ms=times, iters=n, error=None)


def time_op(torch, fn, warmup: int, samples: int, iters: int) -> tuple[int, list[float]]:
    """Warm up, pick the calls per sample (``iters`` or auto), return (calls, [ms per call per sample])."""
    for _ in range(warmup):  # first calls load the kernels (lazy module loading), fill caches
        fn()
    torch.cuda.synchronize()
    n = iters if iters > 0 else auto_iters(_sample_ms(torch, fn, ESTIMATE_ITERS))
    return n, [_sample_ms(torch, fn, n) for _ in range(samples)]


def _sample_ms(torch, fn, n: int) -> float:
    """Mean GPU time per call of ``n`` back-to-back calls, between two CUDA events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    if hasattr(torch.cuda, "_sleep"):  # keep the GPU busy while the calls are queued
        torch.cuda._sleep(SLEEP_CYCLES_PER_ITER * n)
    start.record()
    for _ in range(n):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / n


def make_ops(torch, mods: dict, op: str, shape: tuple, dtype) -> dict:
    return (_conv_ops if op == "causal_conv1d" else _scan_ops)(torch, mods, shape, dtype)


def _conv_ops(torch, mods: dict, shape: tuple, dtype) -> dict:
    """causal_conv1d as ``causal_conv1d_fn(x, w, b, activation="silu")`` calls it (cpp_functions.py)."""
    ext = mods["causal_conv1d_cuda"]
    batch, dim, seqlen, width = shape
    dev = DEVICE
    x = torch.randn(batch, dim, seqlen, device=dev, dtype=dtype)
    weight = (torch.randn(dim, width, device=dev) / width ** 0.5).to(dtype)
    bias = torch.randn(dim, device=dev, dtype=dtype)
    dout = torch.randn(batch, dim, seqlen, device=dev, dtype=dtype)
    out, dx = torch.empty_like(x), torch.empty_like(x)
    dweight = torch.zeros(dim, width, device=dev, dtype=torch.float32)  # accumulated into, as upstream
    dbias = torch.zeros(dim, device=dev, dtype=torch.float32)

    def fwd():
        # causal_conv1d_fwd(x, weight, bias, seq_idx, initial_states, out, final_states_out, silu)
        ext.causal_conv1d_fwd(x, weight, bias, None, None, out, None, True)

    def bwd():
        # causal_conv1d_bwd(x, weight, bias, dout, seq_idx, initial_states, dfinal_states,
        #                   dx, dweight, dbias, dinitial_states, silu)
        ext.causal_conv1d_bwd(x, weight, bias, dout, None, None, None, dx, dweight, dbias, None, True)

    return {"fwd": fwd, "bwd": bwd}


def _scan_ops(torch, mods: dict, shape: tuple, dtype) -> dict:
    """selective_scan as ``selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus=True)``."""
    ext = mods["selective_scan_cuda"]
    batch, dim, seqlen, dstate = shape
    dev = DEVICE
    u = torch.randn(batch, dim, seqlen, device=dev, dtype=dtype)
    delta = (0.5 * torch.rand(batch, dim, seqlen, device=dev)).to(dtype)
    A = -0.5 * torch.rand(dim, dstate, device=dev) - 0.1  # fp32, as Mamba's -exp(A_log.float())
    B = torch.randn(batch, 1, dstate, seqlen, device=dev, dtype=dtype)  # "b dstate l -> b 1 dstate l"
    C = torch.randn(batch, 1, dstate, seqlen, device=dev, dtype=dtype)
    D = torch.randn(dim, device=dev)  # fp32
    z = torch.randn(batch, dim, seqlen, device=dev, dtype=dtype)
    delta_bias = 0.5 * torch.rand(dim, device=dev) - 0.25  # fp32
    dout = torch.randn(batch, dim, seqlen, device=dev, dtype=dtype)
    out, x, *_ = ext.fwd(u, delta, A, B, C, D, z, delta_bias, True)  # saved for bwd, as the wrapper does

    def fwd():
        # fwd(u, delta, A, B, C, D, z, delta_bias, delta_softplus) -> out, x, out_z
        ext.fwd(u, delta, A, B, C, D, z, delta_bias, True)

    def bwd():
        # bwd(u, delta, A, B, C, D, z, delta_bias, dout, x, out, dz, delta_softplus, recompute_out_z)
        ext.bwd(u, delta, A, B, C, D, z, delta_bias, dout, x, out, None, True, False)

    return {"fwd": fwd, "bwd": bwd}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------------------------------
# Parent: prepare builds, run the rounds, report




def unpack_wheels(build: Build, into: Path) -> Path:
    """Unzip the build's wheels into a fresh directory under ``into``; returns it."""
    target = Path(tempfile.mkdtemp(prefix=f"{build.name}-", dir=into))
    for wheel in build.wheels:
        try:
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(target)
        except (OSError, zipfile.BadZipFile) as exc:
            raise UsageError(f"build {build.name!r}: cannot unzip {wheel}: {exc}") from exc
    return target


def prepare(build: Build, scratch: Path, modules: tuple[str, ...] = MODULES) -> None:
    """Check the build's paths, unzip its wheels, find the .so files of ``modules`` (UsageError if any lacks)."""
    missing = [str(w) for w in build.wheels if not w.is_file()]
    if missing:
        raise UsageError(f"build {build.name!r}: no such wheel: {', '.join(missing)}")
    if build.wheels:
        build.dir = unpack_wheels(build, scratch)
    assert build.dir is not None
    if not build.dir.is_dir():
        raise UsageError(f"build {build.name!r}: {build.dir} is not a directory")
    build.dir = build.dir.resolve()
    build.modules = find_extensions(build.dir, modules)
    lacking = [m for m in modules if m not in build.modules]
    if lacking:
        raise UsageError(f"build {build.name!r}: no {' / '.join(f'{m}*.so' for m in lacking)} in {build.dir}")


def run_worker(build: Build, rnd: int, args, scratch: Path) -> dict:
    out = scratch / f"worker-{build.name}-{rnd}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(build.dir), "--out", str(out),
           "--warmup", str(args.warmup), "--samples", str(args.samples), "--iters", str(args.iters),
           "--ops", ",".join(args.ops)]
    if args.quick:
        cmd.append("--quick")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                              env=dict(os.environ, PYTHONWARNINGS="ignore"))
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise WorkerError(_worker_failure(build, rnd, f"timed out after {args.timeout} s", stderr)) from exc
    data = _read_json(out)
    if proc.returncode != 0 or not data.get("ok"):
        reason = data.get("error") or f"exit {proc.returncode}"
        raise WorkerError(_worker_failure(build, rnd, f"{reason} (exit {proc.returncode})", proc.stderr))
    data.update(build=build.name, round=rnd, wall_s=round(time.monotonic() - t0, 2))
    return data


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _worker_failure(build: Build, rnd: int, reason: str, stderr: str) -> str:
    return (f"worker for build {build.name!r} ({build.dir}), round {rnd}, failed: {reason}\n"
            f"--- worker stderr (tail) ---\n{tail(stderr)}")


def run_rounds(builds: list[Build], args, scratch: Path) -> list[dict]:
    """Round r runs every build once, in --build order: A B A B ..., each in a fresh process."""
    results = []
    for rnd in range(1, args.rounds + 1):
        for build in builds:
            res = run_worker(build, rnd, args, scratch)
            print(f"round {rnd}/{args.rounds} {build.name}: {res['wall_s']:.1f} s", file=sys.stderr)
            results.append(res)
    return results


def build_report(builds: list[Build], results: list[dict], args, argv: list[str]) -> dict:
    rows = compare(merge_rounds(results), [b.name for b in builds], args.tolerance)
    report = {
        "tool": "benchmarks/kernel_speed.py",
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", "benchmarks/kernel_speed.py", *argv]),
        "machine": results[0].get("machine", {}),
        "settings": {k: getattr(args, k) for k in ("rounds", "warmup", "samples", "iters", "tolerance", "quick", "ops")},
        "builds": [_build_info(b, results) for b in builds],
        "rows": rows,
        "summary": summarize(rows),
        "exit_code": exit_code(rows),
        "notes": _notes(builds, results),
        "workers": [{k: r.get(k) for k in ("build", "round", "wall_s", "dir", "modules", "machine", "rows")}
                    for r in results],
    }
    return report


def _build_info(build: Build, results: list[dict]) -> dict:
    loaded = next(r["modules"] for r in results if r["build"] == build.name)
    source = f"wheels {', '.join(str(w) for w in build.wheels)}" if build.wheels else f"directory {build.dir}"
    return {"name": build.name, "dir": str(build.dir), "source": source, "wheels": [str(w) for w in build.wheels],
            "modules": {m: {"path": p, "sha256": sha256_file(Path(p))} for m, p in loaded.items()}}


def _notes(builds: list[Build], results: list[dict]) -> list[str]:
    notes = []
    gpus = sorted({r.get("machine", {}).get("gpu") for r in results})
    if len(gpus) > 1:
        notes.append(f"workers saw different GPUs: {gpus}")
    shas = {b.name: tuple(sha256_file(b.modules[m]) for m in sorted(b.modules)) for b in builds}
    names = list(shas)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if shas[a] == shas[b]:
                notes.append(f"builds {a} and {b} have byte-identical extension modules")
    return notes


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="append", default=[], metavar="NAME=PATH",
                    help="NAME=DIR (unzipped wheels) or NAME=A.whl,B.whl; the first is the baseline; twice or more")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per build (default 5, --quick 2)")
    ap.add_argument("--iters", type=int, default=0, help="calls per sample (default 0: auto, ~10 ms per sample)")
    ap.add_argument("--samples", type=int, default=None, help="timed samples per round (default 10, --quick 5)")
    ap.add_argument("--warmup", type=int, default=None, help="warmup calls per case (default 5, --quick 3)")
    ap.add_argument("--quick", action="store_true", help="one shape per op, fewer rounds and samples")
    ap.add_argument("--ops", default=",".join(OPS),
                    help=f"ops to time (default {','.join(OPS)}); a build needs only these ops' extensions")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE, help="smallest |ratio - 1| called a difference")
    ap.add_argument("--timeout", type=float, default=WORKER_TIMEOUT_S, help="seconds per worker process")
    ap.add_argument("--json", type=Path, default=None, help="write the full report here")
    ap.add_argument("--markdown", type=Path, default=None, help="write the markdown section here")
    ap.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    defaults = QUICK_DEFAULTS if args.quick else DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.rounds < 1 or args.samples < 1 or args.warmup < 0 or args.iters < 0 or args.tolerance < 0:
        raise UsageError("--rounds and --samples must be >= 1, --warmup, --iters and --tolerance >= 0")
    args.ops = parse_ops(args.ops)
    if args.worker is not None and args.out is None:
        raise UsageError("--worker needs --out FILE")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = parse_args(argv)
        except SystemExit as exc:  # argparse: --help (0) or a bad option (2, message already printed)
            return exc.code if isinstance(exc.code, int) else EXIT_ERROR
        if args.worker is not None:
            return worker_main(args.worker, args.out, args.quick, args.warmup, args.samples, args.iters, args.ops)
        builds = parse_builds(args.build)
        return run_parent(builds, args, argv)
    except UsageError as exc:
        print(f"kernel_speed: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def run_parent(builds: list[Build], args, argv: list[str]) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="kernel_speed-"))
    try:
        for build in builds:
            prepare(build, scratch, modules_for(args.ops))
        try:
            results = run_rounds(builds, args, scratch)
        except WorkerError as exc:
            print(f"kernel_speed: error: {exc}", file=sys.stderr)
            if args.json:
                _write_json(args.json, {"tool": "benchmarks/kernel_speed.py", "error": str(exc), "rows": [],
                                        "exit_code": EXIT_ERROR})
            return EXIT_ERROR
        report = build_report(builds, results, args, argv)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = render_markdown(report)
    print(text, end="")
    if args.json:
        _write_json(args.json, report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    if report["exit_code"] == EXIT_ERROR:
        print("kernel_speed: error: some rows could not be measured (see 'error' in the rows)", file=sys.stderr)
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
