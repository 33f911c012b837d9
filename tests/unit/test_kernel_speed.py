"""benchmarks/kernel_speed.py without a GPU: parsing, statistics/verdicts, merging, rendering, the worker's
no-GPU exit, and the raw-op argument conventions against fake extension modules (CPU tensors)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "kernel_speed.py"
SO = "cpython-312-x86_64-linux-gnu.so"


def _load():
    spec = importlib.util.spec_from_file_location("kernel_speed_under_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = mod  # dataclasses look the module up by name
    spec.loader.exec_module(mod)
    return mod


ks = _load()


def _run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def _fake_build_dir(root: Path) -> Path:
    root.mkdir(parents=True)
    for mod in ks.MODULES:
        (root / f"{mod}.{SO}").write_bytes(b"not a real extension " + mod.encode())
    return root


# ---------------------------------------------------------------- --build NAME=PATH


def test_parse_build_directory_and_wheels():
    b = ks.parse_build("upstream=/tmp/kb/upstream")
    assert (b.name, b.dir, b.wheels) == ("upstream", Path("/tmp/kb/upstream"), ())
    w = ks.parse_build("mamba-build=/w/causal_conv1d-1.7.0.whl,/w/mamba_ssm-2.3.2.post1.whl")
    assert w.name == "mamba-build" and w.dir is None
    assert w.wheels == (Path("/w/causal_conv1d-1.7.0.whl"), Path("/w/mamba_ssm-2.3.2.post1.whl"))


@pytest.mark.parametrize("spec", ["upstream", "=/tmp/x", "upstream=", "bad name=/tmp/x", "a=x.whl,/tmp/dir",
                                  "a=/d1,/d2", "a=x.whl,,y.whl"])
def test_parse_build_malformed_is_usage_error(spec):
    with pytest.raises(ks.UsageError):
        ks.parse_build(spec)


def test_parse_builds_needs_two_distinct_names():
    with pytest.raises(ks.UsageError, match="at least two"):
        ks.parse_builds(["a=/x"])
    with pytest.raises(ks.UsageError, match="duplicate"):
        ks.parse_builds(["a=/x", "a=/y"])
    assert [b.name for b in ks.parse_builds(["a=/x", "b=/y"])] == ["a", "b"]


def test_malformed_build_exits_2_with_message(capsys):
    assert ks.main(["--build", "nonsense", "--build", "b=/tmp"]) == 2
    assert "expected NAME=DIR" in capsys.readouterr().err


def test_bad_option_and_bad_counts_exit_2(capsys):
    assert ks.main(["--no-such-option"]) == 2
    assert ks.main(["--build", "a=/x", "--build", "b=/y", "--rounds", "0"]) == 2
    assert "--rounds" in capsys.readouterr().err


def test_missing_directory_or_extension_is_usage_error(tmp_path, capsys):
    good = _fake_build_dir(tmp_path / "good")
    assert ks.main(["--build", f"a={good}", "--build", f"b={tmp_path / 'nope'}"]) == 2
    assert "build 'b'" in capsys.readouterr().err
    half = tmp_path / "half"
    half.mkdir()
    (half / f"causal_conv1d_cuda.{SO}").write_bytes(b"x")
    assert ks.main(["--build", f"a={good}", "--build", f"b={half}"]) == 2
    err = capsys.readouterr().err
    assert "selective_scan_cuda*.so" in err and "causal_conv1d_cuda*.so" not in err



def test_ops_restrict_the_cases_and_the_extensions_a_build_needs(tmp_path, capsys):
    assert ks.parse_ops("selective_scan") == ("selective_scan",)
    assert ks.parse_ops(" causal_conv1d , selective_scan,causal_conv1d") == ("causal_conv1d", "selective_scan")
    for bad in ("", "selective", "causal_conv1d,bogus", ","):
        with pytest.raises(ks.UsageError, match="--ops"):
            ks.parse_ops(bad)
    only_scan = ks.cases(quick=False, ops=("selective_scan",))
    assert len(only_scan) == 3 * 2 * 2 and {c["op"] for c in only_scan} == {"selective_scan"}
    # a build holding only selective_scan_cuda is enough for --ops selective_scan ...
    half = tmp_path / "half"
    half.mkdir()
    (half / f"selective_scan_cuda.{SO}").write_bytes(b"x")
    build = ks.parse_build(f"a={half}")
    ks.prepare(build, tmp_path, ks.modules_for(("selective_scan",)))
    assert list(build.modules) == ["selective_scan_cuda"]
    # ... but not for the default (both ops)
    with pytest.raises(ks.UsageError, match="causal_conv1d_cuda"):
        ks.prepare(ks.parse_build(f"a={half}"), tmp_path)
    assert ks.main(["--build", f"a={half}", "--build", f"b={half}", "--ops", "nope"]) == 2
    assert "--ops 'nope'" in capsys.readouterr().err
    assert ks.check_origin({"selective_scan_cuda": str(half / f"selective_scan_cuda.{SO}")}, half,
                           ks.modules_for(("selective_scan",))) == []

def test_wheels_are_unzipped_and_extensions_found(tmp_path):
    wheels = []
    for mod in ks.MODULES:
        whl = tmp_path / f"{mod}-1.0-cp312-cp312-linux_x86_64.whl"
        with zipfile.ZipFile(whl, "w") as zf:
            zf.writestr(f"{mod}.{SO}", b"elf")
            zf.writestr(f"{mod}_pkg/__init__.py", "")
        wheels.append(str(whl))
    build = ks.parse_build("mb=" + ",".join(wheels))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    ks.prepare(build, scratch)
    assert build.dir is not None and build.dir.parent == scratch.resolve()
    assert {m: p.name for m, p in build.modules.items()} == {m: f"{m}.{SO}" for m in ks.MODULES}
    broken = ks.parse_build(f"x={tmp_path / 'missing.whl'}")
    with pytest.raises(ks.UsageError, match="no such wheel"):
        ks.prepare(broken, scratch)


def test_check_origin(tmp_path):
    root = tmp_path / "build"
    inside = {m: str(root / f"{m}.{SO}") for m in ks.MODULES}
    assert ks.check_origin(inside, root) == []
    elsewhere = dict(inside, selective_scan_cuda="/usr/lib/python3/site-packages/selective_scan_cuda.so")
    problems = ks.check_origin(elsewhere, root)
    assert len(problems) == 1 and "selective_scan_cuda: loaded from /usr/lib" in problems[0]
    assert ks.check_origin({}, root) == [f"{m}: not loaded" for m in ks.MODULES]


# ---------------------------------------------------------------- cases, statistics, verdicts


def test_cases_cover_shapes_dtypes_directions():
    full = ks.cases(quick=False)
    assert len(full) == 2 * 3 * 2 * 2
    keys = {ks.case_key(c) for c in full}
    assert ("causal_conv1d", (8, 4096, 4096, 4), "bfloat16", "bwd") in keys
    assert ("selective_scan", (2, 4096, 4096, 16), "float32", "fwd") in keys
    quick = ks.cases(quick=True)
    assert len(quick) == 2 * 1 * 2 * 2 and {c["op"] for c in quick} == {"causal_conv1d", "selective_scan"}


def test_spread_and_auto_iters():
    assert ks.spread([1.0, 1.02, 0.98]) == pytest.approx(0.04)
    assert ks.spread([3.0]) == 0.0
    assert ks.auto_iters(0.02) == ks.MAX_ITERS  # 20 us kernel: 500 calls (capped)
    assert ks.auto_iters(0.1) == 100
    assert ks.auto_iters(6.0) == ks.MIN_ITERS


@pytest.mark.parametrize("ratio, noise, expected", [
    (1.10, 0.01, "slower"),   # 10% slower, 1% noise
    (1.01, 0.02, "parity"),   # 1% within 2% noise
    (0.90, 0.01, "faster"),
    (1.025, 0.005, "parity"),  # under the 3% floor
    (1.04, 0.005, "slower"),  # over the floor, noise small
    (1.05, 0.06, "parity"),   # noisy rounds: 5% is within the 6% spread
    (1.0, 0.0, "parity"),
])
def test_verdict(ratio, noise, expected):
    assert ks.verdict(ratio, noise) == expected


def _worker_result(build, rnd, ms_by_key, error=None):
    rows = []
    for (op, shape, dtype, direction), ms in ms_by_key.items():
        rows.append({"op": op, "shape": list(shape), "dtype": dtype, "direction": direction,
                     "ms": None if error else ms, "error": error})
    return {"build": build, "round": rnd, "rows": rows, "modules": {}, "machine": {"gpu": "G"}}


KEY = ("selective_scan", (4, 2048, 2048, 16), "bfloat16", "fwd")
KEY2 = ("causal_conv1d", (4, 2048, 2048, 4), "float32", "bwd")


def _results(base_ms, build_ms, base_ms2=None, build_ms2=None):
    out = []
    for rnd, (a, b) in enumerate(zip(base_ms, build_ms, strict=True), start=1):
        a2 = base_ms2[rnd - 1] if base_ms2 else 0.1
        b2 = build_ms2[rnd - 1] if build_ms2 else 0.1
        out.append(_worker_result("upstream", rnd, {KEY: a, KEY2: a2}))
        out.append(_worker_result("mamba-build", rnd, {KEY: b, KEY2: b2}))
    return out


def test_merge_rounds_groups_per_case_and_build_in_round_order():
    results = _results([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    merged = ks.merge_rounds(list(reversed(results)))
    assert set(merged) == {KEY, KEY2}
    assert [ms for _, ms, _ in merged[KEY]["upstream"]] == [1.0, 1.1, 0.9]
    assert [rnd for rnd, _, _ in merged[KEY]["mamba-build"]] == [1, 2, 3]


def test_ten_percent_slower_row_is_flagged_and_exit_1():
    base = [1.00, 1.01, 0.99, 1.00, 1.005]
    slow = [x * 1.10 for x in base]
    rows = ks.compare(ks.merge_rounds(_results(base, slow)), ["upstream", "mamba-build"])
    row = next(r for r in rows if ks.case_key(r) == KEY)
    assert row["verdict"] == "slower" and row["ratio"] == pytest.approx(1.10)
    assert row["baseline_ms"] == pytest.approx(1.0) and row["build_ms"] == pytest.approx(1.10)
    assert row["noise"] == pytest.approx(0.02)
    assert next(r for r in rows if ks.case_key(r) == KEY2)["verdict"] == "parity"
    assert ks.exit_code(rows) == 1
    assert ks.summarize(rows) == {"parity": 1, "faster": 0, "slower": 1, "error": 0}


def test_one_percent_within_two_percent_noise_is_parity_and_exit_0():
    base = [1.00, 1.02, 0.98, 1.00, 1.00]  # spread 4%
    build = [1.01, 1.01, 1.01, 1.01, 1.01]
    rows = ks.compare(ks.merge_rounds(_results(base, build)), ["upstream", "mamba-build"])
    assert {r["verdict"] for r in rows} == {"parity"}
    assert ks.exit_code(rows) == 0


def test_faster_row_does_not_fail():
    rows = ks.compare(ks.merge_rounds(_results([1.0] * 3, [0.8] * 3)), ["upstream", "mamba-build"])
    assert next(r for r in rows if ks.case_key(r) == KEY)["verdict"] == "faster"
    assert ks.exit_code(rows) == 0


def test_case_error_in_one_build_is_an_error_row_and_exit_2():
    results = _results([1.0] * 2, [1.0] * 2)
    results[3] = _worker_result("mamba-build", 2, {KEY: 1.0, KEY2: 0.1}, error="RuntimeError: boom")
    rows = ks.compare(ks.merge_rounds(results), ["upstream", "mamba-build"])
    assert {r["verdict"] for r in rows} == {"error"}
    assert "round 2: RuntimeError: boom" in rows[0]["error"]
    assert ks.exit_code(rows) == 2
    assert ks.exit_code([]) == 2


# ---------------------------------------------------------------- rendering


def _report(rows):
    return {"date_utc": "2026-01-01 00:00 UTC", "command": "python benchmarks/kernel_speed.py ...",
            "machine": {"gpu": "NVIDIA H100 80GB HBM3", "capability": "9.0", "torch": "2.11.0+cu130",
                        "cuda": "13.0", "python": "3.12.3"},
            "settings": {"rounds": 5, "warmup": 5, "samples": 10, "iters": 0, "tolerance": 0.03, "quick": False},
            "builds": [{"name": n, "source": f"directory /tmp/{n}",
                        "modules": {m: {"path": f"/tmp/{n}/{m}.{SO}", "sha256": "ab" * 32} for m in ks.MODULES}}
                       for n in ("upstream", "mamba-build")],
            "rows": rows, "summary": ks.summarize(rows), "exit_code": ks.exit_code(rows), "notes": []}


def test_markdown_table():
    base = [1.00, 1.01, 0.99]
    rows = ks.compare(ks.merge_rounds(_results(base, [x * 1.1 for x in base])), ["upstream", "mamba-build"])
    text = ks.render_markdown(_report(rows))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| op"))
    assert "upstream ms (spread)" in header and "mamba-build / upstream" in header and "verdict" in header
    body = [line for line in lines if line.startswith("| `")]
    assert len(body) == 2
    slow = next(line for line in body if "selective_scan" in line)
    assert "(4, 2048, 2048, 16)" in slow and "bfloat16" in slow and "| fwd |" in slow
    assert "1.100" in slow and "**slower**" in slow and "1.000 (2.0%)" in slow
    assert "2 rows: 1 parity, 0 faster, 1 slower (exit 1)." in text
    assert "NVIDIA H100 80GB HBM3 (sm_90)" in text and "sha256 abababababab" in text
    # a table: every row has as many cells as the header
    assert {line.count("|") for line in body} == {header.count("|")}


def test_fmt_ms():
    assert ks.fmt_ms(0.04123) == "0.0412"
    assert ks.fmt_ms(2.3456) == "2.346"
    assert ks.fmt_ms(12.345) == "12.35"
    assert ks.fmt_ms(None) == "n/a"


# ---------------------------------------------------------------- timing loop and raw-op arguments (fakes)


class _FakeCuda:
    """Events read a clock that each timed call advances by ``ms_per_call``."""

    def __init__(self, ms_per_call):
        self.clock, self.ms, self.calls, self.slept = 0.0, ms_per_call, 0, []
        outer = self

        class Event:
            def __init__(self, enable_timing=False):
                self.t = None

            def record(self):
                self.t = outer.clock

            def synchronize(self):
                pass

            def elapsed_time(self, other):
                return other.t - self.t

        self.Event = Event

    def synchronize(self):
        pass

    def _sleep(self, cycles):
        self.slept.append(cycles)

    def call(self):
        self.calls += 1
        self.clock += self.ms


class _FakeTorch:
    def __init__(self, ms_per_call):
        self.cuda = _FakeCuda(ms_per_call)


def test_time_op_fixed_iters():
    torch = _FakeTorch(2.0)
    n, times = ks.time_op(torch, torch.cuda.call, warmup=2, samples=3, iters=4)
    assert n == 4 and times == [2.0, 2.0, 2.0]
    assert torch.cuda.calls == 2 + 3 * 4
    assert torch.cuda.slept == [4 * ks.SLEEP_CYCLES_PER_ITER] * 3


def test_time_op_auto_iters():
    torch = _FakeTorch(0.125)  # exact in binary: 10 ms / 0.125 ms = 80 calls per sample
    n, times = ks.time_op(torch, torch.cuda.call, warmup=2, samples=3, iters=0)
    assert n == 80 and times == pytest.approx([0.125] * 3)
    assert torch.cuda.calls == 2 + ks.ESTIMATE_ITERS + 3 * 80


class _FakeConvExt:
    """The pybind11 signatures of causal-conv1d 1.7.0 csrc/causal_conv1d.cpp and some of its TORCH_CHECKs."""

    def __init__(self):
        self.calls = []

    def causal_conv1d_fwd(self, x, weight, bias_, seq_idx_, initial_states_, out, final_states_out_,
                          silu_activation):
        assert x.dim() == 3 and x.stride(2) == 1 and weight.shape == (x.shape[1], weight.shape[-1])
        assert 2 <= weight.shape[-1] <= 4 and bias_.dtype == weight.dtype and out.shape == x.shape
        assert seq_idx_ is None and initial_states_ is None and final_states_out_ is None
        assert silu_activation is True
        self.calls.append("fwd")

    def causal_conv1d_bwd(self, x, weight, bias_, dout, seq_idx_, initial_states_, dfinal_states_, dx, dweight,
                          dbias_, dinitial_states_, silu_activation):
        import torch

        assert dout.shape == x.shape and dx.dtype == x.dtype and dx.stride(2) == 1
        assert dweight.dtype == torch.float32 and dweight.shape == weight.shape
        assert (bias_ is None) == (dbias_ is None) and dbias_.dtype == torch.float32
        assert seq_idx_ is None and initial_states_ is None and dfinal_states_ is None and dinitial_states_ is None
        assert silu_activation is True
        self.calls.append("bwd")


class _FakeScanExt:
    """The pybind11 signatures of mamba-ssm 2.3.2.post1 csrc/selective_scan/selective_scan.cpp (+ checks)."""

    def __init__(self):
        self.calls = []

    def _check(self, u, delta, A, B, C, D_, z_, delta_bias_):
        import torch

        batch, dim, seqlen = u.shape
        assert delta.dtype == u.dtype and z_.dtype == u.dtype and A.dtype == torch.float32
        assert B.dim() == 4 and B.shape == (batch, 1, A.shape[1], seqlen) and B.dtype == u.dtype
        assert C.shape == B.shape and C.dtype == u.dtype
        assert D_.dtype == torch.float32 and delta_bias_.dtype == torch.float32 and D_.shape == (dim,)
        return batch, dim, seqlen, A.shape[1]

    def fwd(self, u, delta, A, B, C, D_, z_, delta_bias_, delta_softplus):
        import torch

        batch, dim, seqlen, dstate = self._check(u, delta, A, B, C, D_, z_, delta_bias_)
        assert delta_softplus is True
        self.calls.append("fwd")
        n_chunks = (seqlen + 2047) // 2048
        return [torch.empty_like(delta), torch.empty(batch, dim, n_chunks, 2 * dstate), torch.empty_like(z_)]

    def bwd(self, u, delta, A, B, C, D_, z_, delta_bias_, dout, x_, out_, dz_, delta_softplus, recompute_out_z):
        import torch

        batch, dim, seqlen, dstate = self._check(u, delta, A, B, C, D_, z_, delta_bias_)
        assert dout.dtype == u.dtype and out_.shape == u.shape and out_.dtype == u.dtype
        assert x_.dtype == torch.float32 and x_.shape == (batch, dim, (seqlen + 2047) // 2048, 2 * dstate)
        assert dz_ is None and delta_softplus is True and recompute_out_z is False
        self.calls.append("bwd")
        return []


@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_raw_op_arguments_match_the_cpp_signatures(monkeypatch, dtype_name):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(ks, "DEVICE", "cpu")
    dtype = getattr(torch, dtype_name)
    mods = {"causal_conv1d_cuda": _FakeConvExt(), "selective_scan_cuda": _FakeScanExt()}
    conv = ks.make_ops(torch, mods, "causal_conv1d", (2, 16, 32, 4), dtype)
    conv["fwd"](), conv["bwd"]()
    assert mods["causal_conv1d_cuda"].calls == ["fwd", "bwd"]
    scan = ks.make_ops(torch, mods, "selective_scan", (2, 16, 4100, 8), dtype)  # 3 chunks of 2048
    scan["fwd"](), scan["bwd"]()
    assert mods["selective_scan_cuda"].calls == ["fwd", "fwd", "bwd"]  # one fwd made bwd's saved inputs


# ---------------------------------------------------------------- processes (no GPU here)


def _has_gpu() -> bool:
    torch = pytest.importorskip("torch")
    return bool(torch.cuda.is_available())


def test_importing_the_script_does_not_import_torch():
    code = (f"import importlib.util, sys; s = importlib.util.spec_from_file_location('k', {str(SCRIPT)!r}); "
            "m = importlib.util.module_from_spec(s); sys.modules['k'] = m; s.loader.exec_module(m); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_worker_without_gpu_exits_2_and_reports_no_numbers(tmp_path):
    if _has_gpu():
        pytest.skip("a CUDA GPU is visible")
    build = _fake_build_dir(tmp_path / "b")
    out = tmp_path / "w.json"
    proc = _run("--worker", str(build), "--out", str(out), "--quick")
    assert proc.returncode == 2
    assert "no CUDA GPU" in proc.stderr
    data = json.loads(out.read_text())
    assert data["ok"] is False and "no CUDA GPU" in data["error"] and "rows" not in data


def test_parent_without_gpu_names_the_failing_build_and_exits_2(tmp_path):
    if _has_gpu():
        pytest.skip("a CUDA GPU is visible")
    a, b = _fake_build_dir(tmp_path / "a"), _fake_build_dir(tmp_path / "b")
    report, md = tmp_path / "out" / "k.json", tmp_path / "out" / "k.md"
    proc = _run("--build", f"upstream={a}", "--build", f"mamba-build={b}", "--quick",
                "--json", str(report), "--markdown", str(md))
    assert proc.returncode == 2
    assert "worker for build 'upstream'" in proc.stderr and "round 1" in proc.stderr
    assert "--- worker stderr (tail) ---" in proc.stderr and "no CUDA GPU" in proc.stderr
    assert proc.stdout == ""  # no table without measurements
    data = json.loads(report.read_text())
    assert data["rows"] == [] and data["exit_code"] == 2 and "no CUDA GPU" in data["error"]
    assert not md.exists()


def test_build_report_records_builds_sha256_and_rows(tmp_path):
    dirs = {n: _fake_build_dir(tmp_path / n) for n in ("upstream", "mamba-build")}
    builds = ks.parse_builds([f"{n}={d}" for n, d in dirs.items()])
    for b in builds:
        b.modules = ks.find_extensions(b.dir)
    results = _results([1.0, 1.0], [1.0, 1.0])
    for r in results:
        r["modules"] = {m: str(dirs[r["build"]] / f"{m}.{SO}") for m in ks.MODULES}
    args = ks.parse_args(["--quick"])
    report = ks.build_report(builds, results, args, ["--quick"])
    json.dumps(report)  # serialisable as is
    assert [b["name"] for b in report["builds"]] == ["upstream", "mamba-build"]
    mod = report["builds"][1]["modules"]["selective_scan_cuda"]
    assert mod["path"].endswith(f"mamba-build/selective_scan_cuda.{SO}")
    assert mod["sha256"] == ks.sha256_file(Path(mod["path"]))
    assert report["exit_code"] == 0 and len(report["rows"]) == 2 and report["machine"] == {"gpu": "G"}
    assert report["settings"]["rounds"] == 2 and report["settings"]["quick"] is True
    # the fake builds hold the same bytes: said in a note, and in the markdown
    assert any("byte-identical" in n for n in report["notes"])
    assert "byte-identical" in ks.render_markdown(report)
