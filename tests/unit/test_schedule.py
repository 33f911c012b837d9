"""The build schedule: one jobserver shared by every build (with the real ninja), running builds
at the same time (stop on the first failure, Ctrl-C kills all), and how the plan chooses."""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from mamba_build import runner
from mamba_build.build import jobserver
from mamba_build.build.jobserver import JobServer, NinjaInfo
from mamba_build.diagnose.probes.system import Resources
from mamba_build.errors import UsageError
from mamba_build.plan.build_plan import CompileOptions, resolve_plan
from tests.unit.envs import make_env

PINNED = {"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}


def _real_ninja() -> NinjaInfo:
    info = jobserver.find_ninja(sys.executable)
    assert info.joins_jobserver, f"the project's venv must have ninja >= 1.13 (Makefile installs it): {info}"
    return info


def _sleep_project(root: Path, name: str, n: int, trace: Path) -> Path:
    d = root / name
    d.mkdir()
    rule = (f"rule s\n  command = echo + >> {trace}; sleep 0.6; echo - >> {trace}; touch $out\n")
    (d / "build.ninja").write_text(rule + "".join(f"build {name}{i}: s\n" for i in range(n)))
    return d


def _max_concurrency(trace: Path) -> int:
    level = peak = 0
    for line in trace.read_text().split():
        level += 1 if line == "+" else -1
        peak = max(peak, level)
    return peak


def _run_ninjas(dirs, extra_env, args=()):
    jobs = [runner.StreamJob([_real_ninja().path, *args, "-C", str(d)], d / "log", extra_env=extra_env)
            for d in dirs]
    return runner.stream_many(jobs, timeout=120)


def test_two_real_ninjas_share_one_jobserver(tmp_path):
    trace = tmp_path / "trace"
    dirs = [_sleep_project(tmp_path, n, 4, trace) for n in ("a", "b")]
    with JobServer(slots=3, clients=2, directory=tmp_path) as js:
        assert js.tokens == 1 and js.queued() == 1
        many = _run_ninjas(dirs, {"MAKEFLAGS": js.makeflags})
        assert js.queued() == 1  # every token came back
    assert many.first_failure is None and all(r.ok for r in many.results)
    assert "Jobserver mode detected" in (dirs[0] / "log").read_text()
    assert _max_concurrency(trace) == 3  # 8 jobs, both builds, never more than the 3 slots
    assert not (tmp_path / "jobserver.fifo").exists()


def test_a_finished_client_hands_its_slot_to_the_others(tmp_path):
    """Each client builds on one implicit slot; when one ends, its slot must go to the fifo, or the
    other package builds the rest on fewer slots than the pool has (seen on 2 cores: mamba-ssm's last
    300 s on one core once causal-conv1d was done)."""
    short, long = tmp_path / "short-trace", tmp_path / "long-trace"
    dirs = [_sleep_project(tmp_path, "a", 1, short), _sleep_project(tmp_path, "b", 6, long)]
    with JobServer(slots=2, clients=2, directory=tmp_path) as js:
        assert js.queued() == 0  # both slots are the clients' implicit ones
        jobs = [runner.StreamJob([_real_ninja().path, "-C", str(d)], d / "log", extra_env={"MAKEFLAGS": js.makeflags},
                                 on_exit=js.client_done) for d in dirs]
        many = runner.stream_many(jobs, timeout=120)
        assert js.queued() == 1  # the first client's slot; the last one's is not needed any more
    assert all(r.ok for r in many.results)
    assert _max_concurrency(short) == 1
    assert _max_concurrency(long) == 2  # b got a's slot once a was done
    assert _max_concurrency(short) + _max_concurrency(long) <= 3


def test_client_done_counts_the_clients(tmp_path):
    with JobServer(slots=4, clients=3, directory=tmp_path) as js:
        assert js.queued() == 1
        js.client_done()
        assert js.queued() == 2
        js.client_done()
        js.client_done()  # the last one: nobody is left to use its slot
        js.client_done()  # more calls than clients change nothing
        assert js.queued() == 3


def test_ninja_given_j_ignores_the_jobserver(tmp_path):
    """Why the pool leaves MAX_JOBS unset: torch passes it as `ninja -j`, which overrides the pool."""
    trace = tmp_path / "trace"
    dirs = [_sleep_project(tmp_path, n, 4, trace) for n in ("a", "b")]
    with JobServer(slots=2, clients=2, directory=tmp_path) as js:
        _run_ninjas(dirs, {"MAKEFLAGS": js.makeflags}, args=("-j4",))
    assert _max_concurrency(trace) > 2


def test_jobserver_refuses_nonsense():
    with pytest.raises(ValueError):
        JobServer(0, 1, Path("/tmp"))


def test_ninja_version_parsing():
    assert jobserver.parse_ninja_version("1.13.2.git.kitware.jobserver-pipe-1") == (1, 13, 2)
    assert NinjaInfo("/x", (1, 11, 1), "1.11.1").joins_jobserver is False
    assert NinjaInfo("/x", (1, 13), "1.13").joins_jobserver is True
    assert jobserver.parse_ninja_version("garbage") is None


def test_stream_many_stops_the_others_on_the_first_failure(tmp_path):
    start = time.monotonic()
    many = runner.stream_many([
        runner.StreamJob(["sh", "-c", "sleep 0.3; echo broken; exit 3"], tmp_path / "a.log"),
        runner.StreamJob(["sh", "-c", "sleep 60"], tmp_path / "b.log"),
    ], timeout=120)
    assert time.monotonic() - start < 20
    assert many.first_failure == 0
    assert many.results[0].returncode == 3 and "broken" in many.results[0].stdout
    assert not many.results[1].ok  # killed, not left running
    assert "rc=3" in (tmp_path / "a.log").read_text()


def test_stream_many_ctrl_c_kills_every_build(tmp_path):
    pids = tmp_path / "pids"
    jobs = [runner.StreamJob(["sh", "-c", f"echo $$ >> {pids}; sleep 60"], tmp_path / f"{i}.log") for i in range(2)]
    # interrupt_main does nothing while SIGINT is ignored or default (as an earlier test may leave it)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            runner.stream_many(jobs, timeout=120)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    time.sleep(0.5)
    for pid in map(int, pids.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _plan(monkeypatch, ninja=(1, 13, 2), nvcc_js=True, **kw):
    monkeypatch.setattr(jobserver, "find_ninja",
                        lambda python, path_env=None: NinjaInfo("/v/bin/ninja", ninja, ".".join(map(str, ninja))))
    monkeypatch.setattr(jobserver, "nvcc_supports_jobserver", lambda nvcc: nvcc_js)
    kw.setdefault("versions", dict(PINNED))
    kw.setdefault("arch", "9.0")
    env = kw.pop("env", None) or make_env()
    return resolve_plan(CompileOptions(**kw), env)


def test_pool_with_a_jobserver_capable_ninja(monkeypatch):
    both = _plan(monkeypatch)  # units split: the work bounds the build, so no split-compile and no jobserver
    assert both.schedule == "pool" and both.split_compile is None and not both.nvcc_jobserver
    assert "16 units at a time" in both.schedule_reason and "one ninja" in both.schedule_reason
    plan = _plan(monkeypatch, packages=("causal-conv1d",), split_units=False)  # one 276 s unit bounds it
    assert plan.schedule == "pool" and plan.nvcc_jobserver and plan.ninja == "/v/bin/ninja"
    assert plan.split_compile == 0 and plan.jobs == 16  # slots bound memory: no split-compile reduction
    assert "share one jobserver of 16 slots" in plan.schedule_reason
    pkg = plan.packages[0]
    env = plan.env_for(pkg, makeflags="-j16 --jobserver-auth=fifo:/tmp/x")
    assert "MAX_JOBS" not in env and env["MAKEFLAGS"].startswith("-j16")
    assert env["NVCC_APPEND_FLAGS"] == "--jobserver"
    assert env["PATH"].split(os.pathsep)[1] == "/v/bin"  # that ninja is the one torch runs
    assert plan.env_for(pkg)["MAX_JOBS"] == "16" and "MAKEFLAGS" not in plan.env_for(pkg)


def test_old_ninja_falls_back_to_sequential_or_refuses_pool(monkeypatch):
    plan = _plan(monkeypatch, ninja=(1, 11, 1))
    assert plan.schedule == "sequential" and "needs >= 1.13" in plan.schedule_reason
    with pytest.raises(UsageError) as err:
        _plan(monkeypatch, ninja=(1, 11, 1), schedule="pool")
    assert "ninja>=1.13" in err.value.fix


def test_sequential_and_no_ninja(monkeypatch):
    assert _plan(monkeypatch, schedule="sequential").schedule == "sequential"
    plan = _plan(monkeypatch, use_ninja=False)
    assert plan.schedule == "sequential" and "ninja off" in plan.schedule_reason


def test_split_units_follow_the_predicted_build_time(monkeypatch):
    big = _plan(monkeypatch)
    assert big.split_units is True and "16 slots" in big.split_units_reason
    two = _plan(monkeypatch, env=make_env(resources=Resources(2, 24.0, 22.0, 100.0, "/tmp")))
    assert two.schedule == "pool" and two.split_units is False
    assert "2 slots" in two.split_units_reason and "the total work bounds the build" in two.split_units_reason
    # causal-conv1d alone on two slots: its longest unit bounds the build (measured 216 s split vs 280 s whole)
    alone = _plan(monkeypatch, packages=("causal-conv1d",), env=make_env(resources=Resources(2, 24.0, 22.0, 100.0, "/tmp")))
    assert alone.split_units is True and "longest unit bounds" in alone.split_units_reason
    # one after the other, each package has both slots to itself: causal-conv1d's build is split again
    seq = _plan(monkeypatch, schedule="sequential", env=make_env(resources=Resources(2, 24.0, 22.0, 100.0, "/tmp")))
    assert seq.split_units is True and "one after the other" in seq.split_units_reason
    assert _plan(monkeypatch, split_units=False).split_units is False
    assert _plan(monkeypatch, env=make_env(resources=Resources(2, 24.0, 22.0, 100.0, "/tmp")),
                 split_units=True).split_units is True


def test_without_nvcc_jobserver_split_compile_jobs_still_fit_memory(monkeypatch):
    env = make_env(resources=Resources(16, 32.0, 30.0, 100.0, "/tmp"))
    plan = _plan(monkeypatch, nvcc_js=False, env=env)
    assert plan.schedule == "pool" and not plan.nvcc_jobserver
    assert plan.jobs * 6.1 <= 30.0  # the split-compile memory rule applies again
    no_js = plan.with_(nvcc_jobserver=False)
    assert no_js.env_for(plan.packages[0], "-j4").get("NVCC_APPEND_FLAGS") is None


def _timed_project(root: Path, name: str, n: int, seconds: float, trace: Path) -> Path:
    d = root / name
    d.mkdir()
    rule = (f"rule s\n  command = echo {name}+ $$(date +%s.%N) >> {trace}; sleep {seconds}; "
            f"echo {name}- $$(date +%s.%N) >> {trace}; touch $out\n")
    (d / "build.ninja").write_text(rule + "".join(f"build {name}{i}: s\n" for i in range(n)))
    return d


def _events(trace: Path) -> list[tuple[float, str]]:
    return sorted((float(t), k) for k, t in (line.split() for line in trace.read_text().splitlines()))


def _peak(events, name: str, before: float | None = None) -> int:
    level = peak = 0
    for t, k in events:
        if before is not None and t >= before:
            break
        if k.startswith(name):
            level += 1 if k.endswith("+") else -1
            peak = max(peak, level)
    return peak


def test_a_ninja_started_after_the_fifo_drained_waits_for_its_own_units(tmp_path):
    """Why the pool runs one ninja (ninja 1.13.2, real): ``short`` drains the fifo first; ``long``, started
    0.3 s later, runs on its one implicit slot until its first unit ends, although short's slots are free
    long before that."""
    trace = tmp_path / "trace"
    short = _timed_project(tmp_path, "short", 8, 0.5, trace)
    long = _timed_project(tmp_path, "long", 4, 3.0, trace)
    ninja = _real_ninja().path
    with JobServer(slots=6, clients=2, directory=tmp_path) as js:
        env = {"MAKEFLAGS": js.makeflags}
        many = runner.stream_many([
            runner.StreamJob([ninja, "-C", str(short)], short / "log", extra_env=env, on_exit=js.client_done),
            runner.StreamJob(["sh", "-c", f"sleep 0.3; exec {ninja} -C {long}"], long / "log", extra_env=env,
                             on_exit=js.client_done)], timeout=120)
    assert all(r.ok for r in many.results)
    ev = _events(trace)
    short_done = max(t for t, k in ev if k == "short-")
    first_long_end = min(t for t, k in ev if k == "long-")
    assert short_done < first_long_end - 1.0  # short's slots were free for more than a second ...
    assert _peak(ev, "long", before=first_long_end) == 1  # ... and long still ran one unit at a time


def test_a_gated_job_is_not_started_once_the_pool_stops(tmp_path):
    marker = tmp_path / "ran"

    def gate(stopping):
        while not stopping():
            time.sleep(0.05)

    many = runner.stream_many([
        runner.StreamJob(["sh", "-c", "sleep 0.3; exit 2"], tmp_path / "a.log"),
        runner.StreamJob(["sh", "-c", f"touch {marker}"], tmp_path / "b.log", gate=gate)], timeout=60)
    assert many.first_failure == 0
    assert many.results[1].returncode is None and "not started" in many.results[1].stderr
    assert not marker.exists()


def test_pool_order_puts_the_longest_units_first(monkeypatch):
    big = _plan(monkeypatch)  # 16 slots, both split: the longest units tie at 43 s, the order given stays
    assert big.split_units and big.pool_order == ("causal-conv1d", "mamba-ssm")
    assert big.pool_order_reason.startswith("causal-conv1d (43 s), then mamba-ssm (43 s)")
    whole = _plan(monkeypatch, split_units=False)
    assert whole.pool_order == ("causal-conv1d", "mamba-ssm")  # 276 s first
    two = _plan(monkeypatch, env=make_env(resources=Resources(2, 24.0, 22.0, 100.0, "/tmp")))
    assert not two.split_units and two.pool_order == ("causal-conv1d", "mamba-ssm")  # whole: 276 s first
    assert _plan(monkeypatch, packages=("mamba-ssm",)).pool_order == ()
    assert _plan(monkeypatch, schedule="sequential").pool_order == ()


def _pool_projects(tmp_path, plan, shapes, trace, fail=None):
    """Stand-ins for each package's "pip wheel": a script that writes build/temp.x/build.ninja (as torch's
    cpp_extension does), runs `ninja -v` there (PATH finds the pool's shim first, as for torch) and leaves a
    wheel. Each unit appends its start and end to ``trace``."""
    from types import SimpleNamespace

    from mamba_build.build import pipeline

    pending = []
    for pkg in plan.packages:
        tree = tmp_path / pkg.name
        n, secs = shapes[pkg.name]
        (tree / "src").mkdir(parents=True)
        (tree / "build" / "temp.x").mkdir(parents=True)
        rule = (f"rule s\n  command = echo {pkg.name}+ $$(date +%s.%N) >> {trace}; sleep {secs}; "
                f"echo {pkg.name}- $$(date +%s.%N) >> {trace}; "
                + (f"test $$(basename $in) != {fail} && " if fail else "") + "touch $out\n")
        edges = ""
        for i in range(n):
            (tree / "src" / f"{pkg.name}-{i}.cu").write_text("")
            edges += f"build {tree}/build/temp.x/u{i}.o: s {tree}/src/{pkg.name}-{i}.cu\n"
        (tree / "ninja.txt").write_text(rule + edges)
        pending.append(pipeline.PendingBuild(pkg, SimpleNamespace(tree=tree, version="0"), "k", {},
                                             tmp_path / "logs" / f"build-{pkg.name}.log", tmp_path / f"{pkg.name}-out"))
    return pending


def _fake_pip(monkeypatch):
    from mamba_build.build import pipeline

    script = ("sleep 0.3; cp ninja.txt build/temp.x/build.ninja && (cd build/temp.x && ninja -v -j 2) && "
              "touch \"$1/pkg-0-py3-none-any.whl\"")
    monkeypatch.setattr(pipeline, "_pip_wheel_argv", lambda plan, tree, out: ["sh", "-c", script, "pip", str(out)])


def test_build_pool_runs_every_package_in_one_ninja_longest_first(monkeypatch, tmp_path):
    """build_pool's wiring, with the real ninja: both packages' units in one ninja of 6 slots. mamba-ssm's 4
    long units are the expensive ones (the cost table says so here), so they start first; the pool keeps 6
    units running while there are 6 to run (two ninjas sharing a jobserver did not)."""
    from mamba_build.build import pipeline
    from mamba_build.plan import costs

    ninja = _real_ninja().path
    trace = tmp_path / "trace"
    plan = _plan(monkeypatch, split_compile=-1).with_(jobs=6, ninja=ninja, python=sys.executable)
    assert plan.schedule == "pool" and not plan.nvcc_jobserver
    pending = _pool_projects(tmp_path, plan, {"causal-conv1d": (10, 0.4), "mamba-ssm": (4, 1.5)}, trace)
    monkeypatch.setattr(costs, "unit_cost_of", lambda: (lambda pkg, src: 10.0 if pkg == "mamba-ssm" else 1.0))
    _fake_pip(monkeypatch)
    lines = []
    done = pipeline.build_pool(plan, pending, tmp_path, show_progress=False, log=lines.append)
    assert [w.parent.name for w, _ in done] == ["causal-conv1d-out", "mamba-ssm-out"]  # pending's order
    assert len(lines) == 1 and lines[0].startswith("pool    one ninja for causal-conv1d + mamba-ssm: 14 units, "
                                                   "longest first: mamba-ssm-0.cu (10 s)")
    ev = _events(trace)
    starts = [k for _, k in sorted(ev) if k.endswith("+")]
    # the long units first: all 4 among the first 6 started (listed in the user's order, causal-conv1d's 10
    # short units would have taken those 6 slots)
    assert starts[:6].count("mamba-ssm+") == 4
    assert _peak(ev, "") == 6  # every slot busy, never more
    logs = tmp_path / "logs"
    assert (logs / "pool.ninja_log").is_file() and len((logs / "pool.ninja_log").read_text().splitlines()) == 15
    own = (logs / "ninja-causal-conv1d.log").read_text()
    assert "[10/10]" in own and "mamba-ssm-0.cu" not in own  # its own units, its own counts


def test_build_pool_blames_the_package_whose_unit_failed(monkeypatch, tmp_path):
    from mamba_build.build import pipeline
    from mamba_build.errors import BuildError

    ninja = _real_ninja().path
    plan = _plan(monkeypatch, split_compile=-1).with_(jobs=4, ninja=ninja, python=sys.executable)
    pending = _pool_projects(tmp_path, plan, {"causal-conv1d": (3, 0.2), "mamba-ssm": (3, 0.2)}, tmp_path / "trace",
                             fail="mamba-ssm-1.cu")
    _fake_pip(monkeypatch)
    with pytest.raises(BuildError) as err:
        pipeline.build_pool(plan, pending, tmp_path, show_progress=False)
    assert "building mamba-ssm" in str(err.value) and "ninja-mamba-ssm.log" in err.value.fix
    assert "FAILED:" in (tmp_path / "logs" / "ninja-mamba-ssm.log").read_text()
    assert not list((tmp_path / "causal-conv1d-out").glob("*.whl"))  # the other package stopped, no wheel
