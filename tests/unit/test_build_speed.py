"""benchmarks/build_speed.py: the rusage wrapper, the compile-output parser, the table (pass/miss, lower
bounds), the report section, --report-only, and the whole orchestration against a fake Python."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("build_speed", REPO / "benchmarks" / "build_speed.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


bs = _load()


# ---------------------------------------------------------------------------------------------------------
# the wrapper


def test_wrapper_measures_peak_rss_of_a_child(tmp_path):
    res = bs.measure([sys.executable, "-c", "b = b'x' * (120 * 10**6); import time; time.sleep(0.1)"],
                     tmp_path / "rss.log")
    assert res["rc"] == 0 and not res["timed_out"]
    assert res["maxrss_kb"] * 1024 >= 100e6


def test_wrapper_measures_cpu_time_of_a_busy_child(tmp_path):
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
    res = bs.measure([sys.executable, "-c", busy], tmp_path / "cpu.log")
    assert res["rc"] == 0
    assert res["cpu_s"] >= 0.5 and res["user_s"] > 0
    assert res["wall_s"] >= 0.5


def test_wrapper_counts_grandchildren_and_does_not_accumulate(tmp_path):
    # the busy work happens in a grandchild: RUSAGE_CHILDREN of the wrapper covers the whole tree
    inner = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    outer = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {inner!r}], check=True)"
    first = bs.measure([sys.executable, "-c", outer], tmp_path / "a.log")
    assert first["cpu_s"] >= 0.45
    second = bs.measure([sys.executable, "-c", "pass"], tmp_path / "b.log")
    assert second["cpu_s"] < 0.4  # a fresh wrapper per command: nothing carried over


def test_wrapper_logs_output_and_exit_code(tmp_path):
    log = tmp_path / "x.log"
    res = bs.measure([sys.executable, "-c", "print('hello'); raise SystemExit(3)"], log)
    assert res["rc"] == 3
    text = log.read_text()
    assert "hello" in text and text.startswith("$ ") and "[exit 3" in text


def test_wrapper_timeout_kills_the_process_tree(tmp_path):
    start = time.monotonic()
    res = bs.measure(["sh", "-c", "sleep 60 & sleep 60"], tmp_path / "t.log", timeout=1)
    assert res["timed_out"] and time.monotonic() - start < 30
    assert "timed out" in (tmp_path / "t.log").read_text()


# ---------------------------------------------------------------------------------------------------------
# compile output

COMPILE_OUT = textwrap.dedent("""\
    mamba-build plan
      archs       9.0  [the visible GPUs]
    build   causal-conv1d 1.7.0 + mamba-ssm 2.3.2.post1 for 9.0 at the same time, one jobserver of 16 slots
      causal-conv1d [1/4]     19s causal_conv1d_update.cu\r  causal-conv1d [2/4]     27s causal_conv1d_fwd.cu
    \x1b[32mbuilt   all in 131s\x1b[0m
    built   causal_conv1d-1.7.0+cu13torch2.11cxx11abitrue-cp312-cp312-linux_x86_64.whl in 120s; inside: sm_90
    built   mamba_ssm-2.3.2.post1+cu13torch2.11cxx11abitrue-cp312-cp312-linux_x86_64.whl in 91s; inside: sm_90, compute_90
    smoke test: passed on the GPU
    """)


def test_parse_compile_output_cold_and_warm():
    got = bs.parse_compile_output(COMPILE_OUT)
    assert got["built_all_s"] == 131
    assert got["built"]["causal-conv1d"]["seconds"] == 120
    assert got["built"]["mamba-ssm"]["archs"] == ["sm_90", "compute_90"]
    assert got["cached"] == []
    warm = bs.parse_compile_output(
        "cached  causal_conv1d-1.7.0+cu13-cp312-cp312-linux_x86_64.whl (cache key 00adca60..., sha256 verified)\n"
        "cached  mamba_ssm-2.3.2.post1+cu13-cp312-cp312-linux_x86_64.whl (cache key 3b75..., sha256 verified)\n")
    assert len(warm["cached"]) == 2 and warm["built"] == {}
    assert bs.parse_compile_output("something else entirely\nbuilt differently now\n")["built"] == {}


# ---------------------------------------------------------------------------------------------------------
# the table


def _results(*, cold=140.0, warm=12.0, upstream=(800.0, 500.0), up_status="done", mode="sequential"):
    phases = {}
    if cold is not None:
        phases["cold"] = {"status": "done", "rc": 0, "wall_s": cold, "cpu_s": 1500.0, "maxrss_kb": 6_000_000,
                          "built": {"causal-conv1d": {"seconds": 100.0, "archs": ["sm_90"]},
                                    "mamba-ssm": {"seconds": 90.0, "archs": ["sm_90"]}}, "built_all_s": 110.0,
                          "wheels": {"causal-conv1d": {"file": "c.whl", "bytes": 25_400_000},
                                     "mamba-ssm": {"file": "m.whl", "bytes": 39_400_000}}, "cached": []}
    if warm is not None:
        phases["warm"] = {"status": "done", "rc": 0, "wall_s": warm, "cpu_s": 8.0, "maxrss_kb": 1_900_000,
                          "cached": ["causal_conv1d-1.7.0-x.whl", "mamba_ssm-2.3.2.post1-x.whl"], "built": {},
                          "wheels": {}}
    if upstream is not None:
        pk = {}
        for name, wall in zip(("causal-conv1d", "mamba-ssm"), upstream, strict=False):  # upstream may hold one
            pk[name] = {"status": "done", "rc": 0, "wall_s": wall, "cpu_s": wall * 10, "maxrss_kb": 3_000_000,
                        "wheel": {"file": f"{name}.whl", "bytes": 200_000_000}}
        phases["upstream"] = {"status": up_status, "mode": mode, "packages": pk,
                              "wall_s": sum(upstream) if mode == "sequential" else max(upstream),
                              "cpu_s": sum(upstream) * 10, "maxrss_kb": 3_000_000}
    return {"schema": 1, "command": "python benchmarks/build_speed.py --sdists .carry/sdists --out /tmp/bench",
            "started": "2026-11-23 10:00:00 UTC", "finished": "2026-11-23 10:30:00 UTC",
            "settings": {"packages": ["causal-conv1d", "mamba-ssm"], "upstream_mode": mode,
                         "sdists": {"causal-conv1d": {"file": "causal_conv1d-1.7.0.tar.gz"},
                                    "mamba-ssm": {"file": "mamba_ssm-2.3.2.post1.tar.gz"}}},
            "machine": {"hostname": "h100", "cpu_model": "Xeon", "cpus": 16, "cpus_usable": 16, "mem_gib": 125.0,
                        "gpus": ["GPU 0: NVIDIA H100 80GB HBM3"], "nvcc": "Cuda compilation tools, release 13.0, V13.0.88",
                        "cuda_home": "/usr/local/cuda-13.0", "torch": "2.11.0+cu130", "python": "3.12.3"},
            "phases": phases}


def _line(text: str, start: str) -> str:
    return next(ln for ln in text.splitlines() if ln.startswith(start))


def test_table_pass_and_miss():
    text = bs.render_table(_results(cold=140.0, warm=12.0, upstream=(800.0, 500.0)))
    assert "| **upstream default, total** (sequential) | **1300 s (21:40)** |" in text
    assert "| mamba-build cold, causal-conv1d 1.7.0: build (sm_90) | 100 s (1:40) |" in text
    assert "25.4 MB" in text and "5.72 GiB" in text
    assert "**pass**" in _line(text, "- cold build")
    speed = _line(text, "- speedup")
    assert "9.3x" in speed and "**pass**" in speed
    warm = _line(text, "- warm rebuild")
    assert "12.0 s" in warm and "**miss**" in warm


def test_table_upstream_subset_is_a_lower_bound_of_both():
    res = _results(cold=140.0, upstream=(1200.0,))
    res["settings"]["upstream_packages"] = ["causal-conv1d"]
    speed = _line(bs.render_table(res), "- speedup")
    assert speed.startswith("- speedup >= 8.6x = upstream causal-conv1d alone 1200 s") and "lower bound" in speed
    assert "**pass**" in speed
    res = _results(cold=160.0, upstream=(1200.0,))
    res["settings"]["upstream_packages"] = ["causal-conv1d"]
    assert "**not established**" in _line(bs.render_table(res), "- speedup")


def test_table_misses_when_cold_is_slow_and_speedup_low():
    text = bs.render_table(_results(cold=200.0, warm=4.0, upstream=(900.0, 500.0)))
    assert "**miss**" in _line(text, "- cold build")
    assert "7.0x" in _line(text, "- speedup") and "**miss**" in _line(text, "- speedup")
    assert "**pass**" in _line(text, "- warm rebuild")


def test_table_lower_bound_when_upstream_did_not_finish():
    res = _results(cold=140.0, upstream=None)
    res["phases"]["upstream"] = {
        "status": "running", "mode": "sequential",
        "packages": {"causal-conv1d": {"status": "running", "elapsed_s": 907.0},
                     "mamba-ssm": {"status": "not started"}}}
    text = bs.render_table(res)
    assert "> 907 s (15:07), did not finish" in text
    speed = _line(text, "- speedup")
    assert "> 6.5x" in speed and "not established" in speed
    res["phases"]["upstream"]["packages"]["causal-conv1d"] = {"status": "timeout", "wall_s": 1200.0, "timed_out": True}
    res["phases"]["upstream"]["status"] = "timeout"
    speed = _line(bs.render_table(res), "- speedup")
    assert "> 8.6x" in speed and "**pass**" in speed


def test_table_sequential_lower_bound_adds_finished_packages():
    res = _results(cold=100.0, upstream=(700.0, 300.0))
    res["phases"]["upstream"]["status"] = "running"
    res["phases"]["upstream"]["packages"]["mamba-ssm"] = {"status": "running", "elapsed_s": 150.0}
    assert "> 850 s (14:10), did not finish" in bs.render_table(res)


def test_table_concurrent_total_is_the_longest():
    text = bs.render_table(_results(cold=100.0, upstream=(900.0, 500.0), mode="concurrent"))
    assert "(concurrent) | **900 s (15:00)**" in text and "9.0x" in text


def test_table_not_run_and_failed():
    text = bs.render_table(_results(cold=140.0, warm=None, upstream=None))
    assert "| upstream default | not run |" in text
    assert "not measured (upstream not run)" in text
    assert "warm rebuild under 10 s: not run" in text
    res = _results()
    res["phases"]["cold"].update(status="failed", rc=6)
    text = bs.render_table(res)
    assert "failed (exit 6)" in text and "**miss**" in _line(text, "- cold build")
    assert "no successful cold build" in _line(text, "- speedup")
    res = _results()
    res["phases"]["upstream"]["packages"]["mamba-ssm"].update(status="failed", rc=1)
    res["phases"]["upstream"]["status"] = "failed"
    assert "upstream's build failed" in _line(bs.render_table(res), "- speedup")


def test_report_has_machine_date_command_and_notes():
    text = bs.render_report(_results())
    assert "NVIDIA H100 80GB HBM3" in text and "2026-11-23 10:00:00 UTC" in text
    assert "`python benchmarks/build_speed.py --sdists .carry/sdists --out /tmp/bench`" in text
    assert "no network" in text and "sequential" in text


# ---------------------------------------------------------------------------------------------------------
# the report section and --report-only


def test_report_section_replacement_is_idempotent_and_keeps_the_rest(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n\n<!-- bench:other -->\nkeep me\n<!-- /bench:other -->\n\n## tail\nend\n")
    bs.write_section("h100-build-speed", "first body", doc)
    once = doc.read_text()
    assert once.rstrip().endswith("<!-- /bench:h100-build-speed -->") and "first body" in once
    bs.write_section("h100-build-speed", "second body", doc)
    bs.write_section("h100-build-speed", "second body", doc)
    twice = doc.read_text()
    assert "first body" not in twice and twice.count("<!-- bench:h100-build-speed -->") == 1
    assert "keep me" in twice and "## tail\nend" in twice and "intro" in twice
    bs.write_section("h100-build-speed", "second body", doc)
    assert doc.read_text() == twice


def test_report_only_from_results_json(tmp_path, capsys):
    out = tmp_path / "bench"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(_results()))
    doc = tmp_path / "doc.md"
    doc.write_text("# Benchmarks\n\ntext before\n")
    assert bs.main(["--report-only", str(out), "--report", str(doc), "--section", "h100-build-speed"]) == 0
    table = (out / "table.md").read_text()
    assert "9.3x" in table and "9.3x" in capsys.readouterr().out
    text = doc.read_text()
    assert "text before" in text and "<!-- bench:h100-build-speed -->" in text and "9.3x" in text
    bs.main(["--report-only", str(out), "--report", str(doc), "--section", "h100-build-speed"])
    assert doc.read_text() == text


def test_report_only_renders_partial_results(tmp_path):
    res = _results(warm=None, upstream=None)
    res["finished"] = None
    res["phases"]["cold"] = {"status": "running", "elapsed_s": 60.0}
    (tmp_path / "results.json").write_text(json.dumps(res))
    assert bs.main(["--report-only", str(tmp_path)]) == 0
    table = (tmp_path / "table.md").read_text()
    assert "> 60.0 s, did not finish" in table and "(unfinished)" in table and "upstream default | not run" in table


def test_extra_compile_args_may_start_with_dashes():
    args = bs.parse_args(["--sdists", "s", "--out", "o", "--extra-compile-args", "--no-install --jobs 4",
                          "--kernel-args", "--quick", "--arch", "9.0"])
    assert args.extra_compile_args == "--no-install --jobs 4" and args.kernel_args == "--quick" and args.arch == "9.0"
    with pytest.raises(SystemExit):
        bs.parse_args(["--sdists", "s", "--out", "o", "--phases", "cold,bogus"])


# ---------------------------------------------------------------------------------------------------------
# the whole orchestration, with a fake Python standing in for compile and pip

FAKE_PY = textwrap.dedent("""\
    #!{python}
    import json, os, sys, time, zipfile
    from pathlib import Path
    args = sys.argv[1:]
    if args[:1] == ["-c"] and "torch.__version__" in args[1]:  # the machine probe: no need to import torch
        print(json.dumps({{"python": "3.11", "torch": "2.99.0+fake", "missing_modules": []}}))
        raise SystemExit(0)
    if args[:1] == ["-c"] or (args and args[0].endswith(".py")):
        os.execv({python!r}, [{python!r}, *args])
    def wheel(directory, dist, version):
        Path(directory).mkdir(parents=True, exist_ok=True)
        w = Path(directory) / f"{{dist}}-{{version}}-cp311-cp311-linux_x86_64.whl"
        with zipfile.ZipFile(w, "w") as zf:
            zf.writestr(f"{{dist}}/__init__.py", "x = 1\\n" * 1000)
        return w
    if args[:3] == ["-m", "mamba_build", "compile"]:
        if "--dry-run" in args:
            print(json.dumps({{"cuda_home": "/nonexistent-cuda", "archs": ["9.0"], "jobs": 2, "schedule": "pool",
                              "compiler": {{"cxx": "/usr/bin/g++"}}, "install": False}}))
            raise SystemExit(0)
        wd = args[args.index("--wheel-dir") + 1]
        cache = Path(os.environ["MAMBA_BUILD_CACHE"]); cache.mkdir(parents=True, exist_ok=True)
        hit = (cache / "hit").exists()
        for spec in [args[i + 1] for i, a in enumerate(args) if a == "--source"]:
            name = spec.split("=")[0]; dist = name.replace("-", "_")
            w = wheel(wd, dist, "1.0")
            print(f"cached  {{w.name}} (cache key 0123..., sha256 verified)" if hit else f"built   {{w.name}} in 1s; inside: sm_90")
        (cache / "hit").write_text("1")
        raise SystemExit(0)
    if args[:3] == ["-m", "pip", "wheel"]:
        assert "MAX_JOBS" not in os.environ and os.environ["CUDA_HOME"] == "/nonexistent-cuda"
        forced = [k for k in os.environ if k.endswith("FORCE_BUILD")]
        assert len(forced) == 1, forced
        name = Path.cwd().name.rsplit("-", 1)[0]
        if os.environ.get("FAKE_UPSTREAM_SLEEP"):
            time.sleep(float(os.environ["FAKE_UPSTREAM_SLEEP"]))
        wheel(args[args.index("-w") + 1], name, "1.0")
        raise SystemExit(0)
    raise SystemExit("fake python: unexpected " + repr(args))
    """)


def _sdists(tmp_path: Path) -> Path:
    d = tmp_path / "sdists"
    d.mkdir()
    for pkg in bs.PACKAGES.values():
        top = pkg.sdist[: -len(".tar.gz")]
        with tarfile.open(d / pkg.sdist, "w:gz") as tf:
            data = b"from setuptools import setup\nsetup()\n"
            info = tarfile.TarInfo(f"{top}/setup.py")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return d


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_orchestration_end_to_end_with_a_fake_python(tmp_path, monkeypatch, mode):
    fake = tmp_path / "fakepy"
    fake.write_text(FAKE_PY.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("MAX_JOBS", "99")  # upstream must not see it
    out = tmp_path / "out"
    doc = tmp_path / "doc.md"
    rc = bs.main(["--sdists", str(_sdists(tmp_path)), "--out", str(out), "--python", str(fake),
                  "--upstream-mode", mode, "--report", str(doc), "--section", "build-speed"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    ph = res["phases"]
    assert ph["cold"]["status"] == "done" and set(ph["cold"]["built"]) == {"causal-conv1d", "mamba-ssm"}
    assert ph["warm"]["status"] == "done" and len(ph["warm"]["cached"]) == 2
    assert ph["upstream"]["status"] == "done" and ph["upstream"]["mode"] == mode
    for name in ("causal-conv1d", "mamba-ssm"):
        up = ph["upstream"]["packages"][name]
        assert up["status"] == "done" and up["wheel"]["bytes"] > 0 and up["cpu_s"] is not None
        assert "FORCE_BUILD=TRUE" in up["command"] and "CUDA_HOME=/nonexistent-cuda" in up["command"]
    assert ph["cold"]["wheels"]["mamba-ssm"]["bytes"] > 0
    assert "MAMBA_BUILD_CACHE=" in ph["cold"]["command"] and "--source mamba-ssm=" in ph["cold"]["command"]
    assert res["machine"]["hostname"] and res["settings"]["sdists"]["mamba-ssm"]["sha256"]
    k = ph["kernels"]
    if (REPO / "benchmarks" / "kernel_speed.py").exists():
        assert k["status"] in ("done", "failed", "timeout")
    else:
        assert k["status"] == "skipped" and "kernel_speed.py" in k["note"]
    assert (out / "done").exists() and not (out / "current").exists()
    assert (out / "cold.log").read_text().startswith("$ MAMBA_BUILD_CACHE=")
    table = (out / "table.md").read_text()
    assert "upstream default, total** (" + mode in table
    assert "<!-- bench:build-speed -->" in doc.read_text()


def test_kernels_skipped_without_upstream_wheels(tmp_path):
    fake = tmp_path / "fakepy"
    fake.write_text(FAKE_PY.format(python=sys.executable))
    fake.chmod(0o755)
    out = tmp_path / "out"
    bs.main(["--sdists", str(_sdists(tmp_path)), "--out", str(out), "--python", str(fake),
             "--phases", "cold,kernels", "--packages", "causal-conv1d"])
    k = json.loads((out / "results.json").read_text())["phases"]["kernels"]
    assert k["status"] == "skipped"
    table = (out / "table.md").read_text()
    assert "skipped" in table and "upstream default | not run" in table


def test_upstream_phase_timeout_leaves_a_lower_bound(tmp_path, monkeypatch):
    fake = tmp_path / "fakepy"
    fake.write_text(FAKE_PY.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("FAKE_UPSTREAM_SLEEP", "30")
    out = tmp_path / "out"
    start = time.monotonic()
    bs.main(["--sdists", str(_sdists(tmp_path)), "--out", str(out), "--python", str(fake),
             "--phases", "cold,upstream", "--timeout-upstream", "2"])
    assert time.monotonic() - start < 40
    up = json.loads((out / "results.json").read_text())["phases"]["upstream"]
    assert up["status"] == "timeout"
    assert up["packages"]["causal-conv1d"]["status"] == "timeout"
    assert up["packages"]["mamba-ssm"]["status"].startswith("not started")
    table = (out / "table.md").read_text()
    assert "did not finish" in table and "at the lower bound" in table  # the fake cold build took < 1 s


def test_target_lines_for_a_phase_cut_off_early():
    res = _results(warm=None, upstream=None)
    res["phases"]["cold"] = {"status": "running", "elapsed_s": 60.0}
    assert "not established" in _line(bs.render_table(res), "- cold build")
    res["phases"]["cold"]["elapsed_s"] = 200.0
    assert "**miss** (> 200 s (3:20), did not finish)" in _line(bs.render_table(res), "- cold build")


def test_wrapper_counts_the_killed_tree_on_timeout(tmp_path):
    # on a timeout the whole tree is killed; its orphans come back to the wrapper (a subreaper), which reaps
    # and counts them: the CPU time of a cut-off upstream build is not lost
    inner = "import time\nt = time.process_time()\nwhile time.process_time() - t < 30: pass"
    outer = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {inner!r}]); time.sleep(60)"
    res = bs.measure([sys.executable, "-c", outer], tmp_path / "o.log", timeout=2)
    assert res["timed_out"] and res["cpu_s"] >= 1.0


def _fake_python(tmp_path: Path) -> Path:
    fake = tmp_path / "fakepy"
    fake.write_text(FAKE_PY.format(python=sys.executable))
    fake.chmod(0o755)
    return fake


def test_kernels_aa_times_the_cold_wheels_against_themselves(tmp_path):
    out = tmp_path / "out"
    bs.main(["--sdists", str(_sdists(tmp_path)), "--out", str(out), "--python", str(_fake_python(tmp_path)),
             "--phases", "cold,kernels-aa"])
    k = json.loads((out / "results.json").read_text())["phases"]["kernels-aa"]
    cmd = k["command"]
    assert f"--build mamba-build={out / 'kb-aa' / 'mamba-build'}" in cmd
    assert f"--build mamba-build-again={out / 'kb-aa' / 'mamba-build-again'}" in cmd
    assert "--ops causal_conv1d,selective_scan" in cmd and cmd.endswith("--quick")  # the default --kernel-aa-args
    for label in ("mamba-build", "mamba-build-again"):  # both sides unzipped from the same cold wheels
        assert sorted(p.name for p in (out / "kb-aa" / label).iterdir()) == ["causal_conv1d", "mamba_ssm"]
    # the fake wheels hold no extension: kernel_speed.py refuses them (exit 2), recorded as a failure
    assert k["status"] == "failed" and k["rc"] == 2 and k["log"] == "kernels-aa.log"
    assert "noise floor" in (out / "table.md").read_text()


def test_kernels_compare_only_the_packages_upstream_finished(tmp_path):
    out = tmp_path / "out"
    up = out / "wheels-upstream" / "mamba-ssm"
    up.mkdir(parents=True)
    with zipfile.ZipFile(up / "mamba_ssm-2.3.2.post1-cp311-cp311-linux_x86_64.whl", "w") as zf:
        zf.writestr("mamba_ssm/__init__.py", "")
    bs.main(["--sdists", str(_sdists(tmp_path)), "--out", str(out), "--python", str(_fake_python(tmp_path)),
             "--phases", "cold,kernels", "--kernel-args", "--rounds 3"])
    k = json.loads((out / "results.json").read_text())["phases"]["kernels"]
    assert "--ops selective_scan --json" in k["command"] and k["command"].endswith("--rounds 3")
    assert f"--build upstream={out / 'kb' / 'upstream'}" in k["command"]
    assert k["left_out"] == ["causal-conv1d"]
    assert "no upstream wheel of causal-conv1d" in k["note"]
    assert "no upstream wheel of causal-conv1d" in (out / "table.md").read_text()
    assert [p.name for p in (out / "kb" / "upstream").iterdir()] == ["mamba_ssm"]


def test_phases_run_in_their_fixed_order_and_unknown_ones_are_refused():
    assert bs.PHASES == ("cold", "warm", "kernels-aa", "upstream", "kernels")
    with pytest.raises(SystemExit):
        bs.parse_args(["--sdists", "x", "--out", "y", "--phases", "cold,kernels-ab"])


def test_deadline_cuts_the_upstream_phase_to_leave_the_kernels_reserve(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_UPSTREAM_SLEEP", "60")
    out = tmp_path / "out"
    start = time.monotonic()
    bs.main(["--sdists", str(_sdists(tmp_path)), "--out", str(out), "--python", str(_fake_python(tmp_path)),
             "--phases", "cold,upstream", "--upstream-mode", "concurrent", "--timeout-upstream", "600",
             "--deadline-s", "14", "--reserve-kernels-s", "10"])
    assert time.monotonic() - start < 45  # not the 60 s the fake upstream build sleeps, nor the 600 s limit
    res = json.loads((out / "results.json").read_text())
    up = res["phases"]["upstream"]
    assert up["status"] == "timeout" and up["timeout_s"] <= 4.0
    assert "--deadline-s 14 less --reserve-kernels-s 10" in up["timeout_reason"]
    assert all(p["status"] == "timeout" for p in up["packages"].values())
    assert res["settings"]["deadline_s"] == 14.0
    assert "upstream's time limit" in (out / "table.md").read_text()


def test_merge_adds_a_later_runs_upstream_package_and_kernel_table():
    first = _results(cold=134.0, upstream=(835.0,))
    first["settings"]["upstream_packages"] = ["causal-conv1d"]
    first["phases"]["kernels"] = {"status": "done", "markdown": "| causal_conv1d | parity |", "note": "only causal-conv1d"}
    second = _results(cold=None, warm=None, upstream=(481.0,))
    ms = second["phases"]["upstream"]["packages"].pop("causal-conv1d")
    second["phases"]["upstream"]["packages"]["mamba-ssm"] = ms
    second["phases"]["kernels"] = {"status": "done", "markdown": "| selective_scan | parity |"}
    second["command"] = "python benchmarks/build_speed.py --phases upstream,kernels --upstream-packages mamba-ssm"
    merged = bs.merge_runs(first, second)
    assert first["phases"]["upstream"]["packages"].keys() == {"causal-conv1d"}  # inputs untouched
    up = merged["phases"]["upstream"]
    assert up["status"] == "done" and up["mode"] == "sequential" and up["wall_s"] == 835.0 + 481.0
    text = bs.render_report(merged)
    assert "speedup = upstream total 1316 s" in text and "9.8x" in _line(text, "- speedup")
    assert "| causal_conv1d | parity |" in text and "| selective_scan | parity |" in text
    assert "merged with the run of `python benchmarks/build_speed.py --phases upstream,kernels" in text


# ---------------------------------------------------------------------------------------------------------
# issue 17: repeated cold runs, the CPU-work bound, upstream's arch list, runs that are not the same run


def test_repeated_cold_runs_report_the_median_and_the_spread():
    runs = [_results(cold=w, warm=None, upstream=None) for w in (150.0, 130.0, 171.0)]
    res = bs.add_repeats(runs[0], runs[1:])
    text = bs.render_report(res)
    line = _line(text, "- cold build")
    assert "median of 3 cold runs: 150 s (2:30)" in line and "spread (max - min) 41 s" in line
    assert "**pass**" not in line and "**miss**" in line  # 150 is not under 150
    assert text.count("- cold run ") == 3
    assert bs.add_repeats(runs[1], [])["cold_repeats"][0]["wall_s"] == 130.0


def test_cold_wall_against_the_cpu_work_bound():
    res = _results(cold=140.0, warm=None, upstream=None)  # 1500 CPU s on 16 CPUs: bound 93.75 s
    res["plan"] = {"predicted_build_s": 613.0, "cpu_bound_s": 613.0, "cpu_work_s": 9810.0, "jobs": 16,
                   "nvcc_threads": 1, "split_units": True}
    text = bs.render_table(res)
    line = _line(text, "- CPU-work bound")
    assert "1500 CPU s / 16 CPUs = 93.8 s" in line and "1.49" in line and "**miss**" in line
    assert "build ~613 s" in _line(text, "- the plan predicted")
    res["phases"]["cold"]["wall_s"] = 100.0
    assert "**pass**" in _line(bs.render_table(res), "- CPU-work bound")


def test_targets_of_an_arch_equal_run():
    res = _results(cold=700.0, warm=None, upstream=(835.0, 481.0))
    res["targets"] = {"cold_s": None, "speedup": 3.0}
    text = bs.render_table(res)
    assert _line(text, "- cold build") == "- cold build (both packages, whole command): 700 s (11:40)"
    speed = _line(text, "- speedup")
    assert "(target >= 3x)" in speed and "1.9x" in speed and "**miss**" in speed
    args = bs.parse_args(["--sdists", "s", "--out", "o", "--target-cold-s", "0", "--target-speedup", "3"])
    assert args.target_cold_s is None and args.target_speedup == 3.0


def _sdist(path: Path, archs: list[int]) -> Path:
    body = "\n".join(f'cc_flag.append("arch=compute_{a},code=sm_{a}")' for a in archs)
    data = f"import os\ncc_flag = []\n{body}\n".encode()
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(f"{path.name.split('.tar')[0]}/setup.py")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path


def test_upstream_arch_list_is_read_from_the_sdists(tmp_path):
    nine = [75, 80, 87, 90, 100, 120, 103, 110, 121]
    a = _sdist(tmp_path / "a-1.0.tar.gz", nine)
    b = _sdist(tmp_path / "b-2.0.tar.gz", nine)
    assert bs.upstream_arch_list([a, b]) == "7.5,8.0,8.7,9.0,10.0,12.0,10.3,11.0,12.1"
    with pytest.raises(SystemExit, match="different arch lists"):
        bs.upstream_arch_list([a, _sdist(tmp_path / "c-1.0.tar.gz", [80, 90])])


def test_merging_another_days_run_says_it_is_not_the_same_run():
    first = _results(cold=700.0, warm=None, upstream=None)
    first["started"], first["finished"] = "2026-12-05 10:00:00 UTC", "2026-12-05 10:20:00 UTC"
    other = _results(cold=None, warm=None, upstream=(835.0, 481.0))
    other["machine"]["hostname"] = "other-h200"
    text = bs.render_report(bs.merge_runs(first, other))
    merged = _line(text, "- merged with the run of")
    assert "a different run: 2026-11-23 10:00:00 UTC on other-h200" in merged and "NOT from the same run" in merged
    first["phases"]["kernels"] = None
    other["phases"]["kernels"] = {"status": "done", "markdown": "| causal_conv1d | parity |"}
    merged = bs.merge_runs({**first, "phases": {"cold": first["phases"]["cold"]}}, other)
    assert merged["finished"] == first["finished"]  # another day's end is not this run's
    assert "NOT this run's" in merged["phases"]["kernels"]["markdown"]
