"""nvcc --threads: planned only where slots would otherwise idle, and the plan's reasons never contradict its choice.

Issue 17: the 9-arch plan chose `--threads 4` with 16 jobs while its own reason line said nvcc's threads would
only oversubscribe the CPUs; the 2-arch plan chose `--threads 2`, and `--nvcc-threads 1` built 27 % faster.
"""

from __future__ import annotations

import pytest

from mamba_build.build import jobserver
from mamba_build.build.jobserver import NinjaInfo
from mamba_build.diagnose.probes.system import Resources
from mamba_build.plan import costs
from mamba_build.plan.build_plan import CompileOptions, resolve_plan
from mamba_build.render import describe_plan
from tests.unit.envs import make_env, toolkit

PINNED = {"causal-conv1d": "1.7.0", "mamba-ssm": "2.3.2.post1"}
UPSTREAM = "7.5,8.0,8.7,9.0,10.0,12.0,10.3,11.0,12.1"  # causal-conv1d 1.7.0's / mamba-ssm 2.3.2.post1's setup.py, CUDA 13
TK = toolkit("13.0", archs=(75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121))


@pytest.fixture
def plan_for(monkeypatch):
    monkeypatch.setattr(jobserver, "find_ninja",
                        lambda python, path_env=None: NinjaInfo("/v/bin/ninja", (1, 13, 2), "1.13.2"))

    def make(cpus: int, arch: str, packages=("causal-conv1d", "mamba-ssm"), nvcc_js=True, **kw):
        # nvcc_js: whether the toolkit's nvcc has --jobserver (nvcc 13.0 has; the pool's jobserver can pace it)
        monkeypatch.setattr(jobserver, "nvcc_supports_jobserver", lambda nvcc: nvcc_js)
        env = make_env(resources=Resources(cpus, 512.0, 500.0, 500.0, "/tmp"), toolkits=(TK,))
        kw.setdefault("sources", {p: "/src/fixture" for p in packages if p not in PINNED})
        return resolve_plan(CompileOptions(arch=arch, packages=packages,
                                           versions={p: PINNED[p] for p in packages if p in PINNED}, **kw), env)
    return make


def test_without_a_jobserver_for_nvcc_the_h200_plans_of_the_issue_take_one_thread(plan_for):
    nine = plan_for(16, UPSTREAM, nvcc_js=False)  # was --threads 4 with 16 jobs
    assert nine.jobs == 16 and nine.nvcc_threads == 1 and nine.split_compile is None and not nine.nvcc_jobserver
    assert "the total work bounds the build" in nine.nvcc_threads_reason
    two = plan_for(16, "8.0,9.0+PTX", nvcc_js=False)  # was --threads 2; --nvcc-threads 1: 271 s instead of 372 s
    assert two.nvcc_threads == 1 and "oversubscribe" in two.nvcc_threads_reason
    assert plan_for(16, "9.0", nvcc_js=False).nvcc_threads == 1
    seq = plan_for(16, UPSTREAM, schedule="sequential")  # no pool, no jobserver (MAX_JOBS): nothing paces threads
    assert not seq.nvcc_jobserver and "paced" not in seq.nvcc_threads_reason


def test_with_the_pools_jobserver_nvcc_takes_one_thread_per_arch_paced_by_it(plan_for):
    """At nine archs the H200's last units ran alone for minutes with most slots idle (docs/benchmarks.md, "The
    H200 run of issue 17"): their archs can fill those slots, and the jobserver keeps them from taking a busy one
    (tests/integration/test_nvcc_jobserver_real.py: nvcc waits for a free slot)."""
    nine = plan_for(16, UPSTREAM)
    assert nine.nvcc_threads == 9 and nine.nvcc_jobserver and nine.schedule == "pool" and nine.split_compile is None
    assert "paced by the pool's jobserver" in nine.nvcc_threads_reason and "oversubscribe" not in nine.nvcc_threads_reason
    assert "oversubscribe" not in nine.split_reason and "paced by the pool's jobserver" in nine.split_reason
    assert "nvcc's threads (nvcc --jobserver) share one jobserver of 16 slots" in nine.schedule_reason
    env = nine.env_for(nine.packages[0], makeflags="-j16 --jobserver-auth=fifo:/tmp/x")
    assert env["NVCC_APPEND_FLAGS"].split() == ["--jobserver"] and "MAX_JOBS" not in env
    two = plan_for(16, "8.0,9.0+PTX")
    assert two.nvcc_threads == 2 and two.nvcc_jobserver
    native = plan_for(16, "9.0")  # one arch: nothing to pace
    assert native.nvcc_threads == 1 and not native.nvcc_jobserver
    forced = plan_for(16, UPSTREAM, nvcc_threads=3)  # the user's number, still paced
    assert forced.nvcc_threads == 3 and forced.nvcc_threads_reason == "--nvcc-threads" and forced.nvcc_jobserver
    one = plan_for(16, UPSTREAM, nvcc_threads=1)
    assert one.nvcc_threads == 1 and not one.nvcc_jobserver


def test_threads_where_the_longest_unit_would_leave_slots_idle(plan_for):
    # causal-conv1d alone, 9 archs, 16 slots: 18 split units, 9 of them ~43 s per arch: the work per slot (~200 s)
    # is shorter than such a unit one arch at a time (~370 s), so its archs run a few at a time: the fewest
    # threads that bring the unit within the work per slot
    alone = plan_for(16, UPSTREAM, packages=("causal-conv1d",), nvcc_js=False)
    t = alone.nvcc_threads
    assert t > 1 and "the longest unit bounds the build" in alone.nvcc_threads_reason
    assert alone.split_compile is None and f"at --threads {t}" in alone.split_reason
    terms = [costs.bound(("causal-conv1d",), 16, split_units=True, archs=alone.archs, nvcc_threads=n) for n in (1, t - 1, t)]
    assert terms[0][0] > terms[0][1] and terms[1][0] > terms[1][1] >= terms[2][0]  # minimal: t - 1 is not enough
    # the user's number wins, and says so
    forced = plan_for(16, UPSTREAM, nvcc_threads=3, nvcc_js=False)
    assert forced.nvcc_threads == 3 and forced.nvcc_threads_reason == "--nvcc-threads" and not forced.nvcc_jobserver


@pytest.mark.parametrize("cpus", [2, 4, 8, 16, 32, 64])
@pytest.mark.parametrize("arch", ["9.0", "8.0,9.0+PTX", "8.0,8.6,9.0,10.0", UPSTREAM])
@pytest.mark.parametrize("packages", [("causal-conv1d",), ("mamba-ssm",), ("causal-conv1d", "mamba-ssm")])
@pytest.mark.parametrize("schedule", ["pool", "sequential"])
@pytest.mark.parametrize("nvcc_js", [True, False])
def test_reasons_and_choices_cannot_contradict(plan_for, cpus, arch, packages, schedule, nvcc_js):
    plan = plan_for(cpus, arch, packages, schedule=schedule, nvcc_js=nvcc_js)
    threads, why, split_why = plan.nvcc_threads, plan.nvcc_threads_reason, plan.split_reason
    assert why, "every thread count carries its reason"
    work_bound = "the total work bounds the build" in why
    unit_bound = "the longest unit bounds the build" in why
    paced = "paced by the pool's jobserver" in why
    assert not (work_bound and unit_bound) and not (paced and (work_bound or unit_bound))
    # threads only where the pool's jobserver paces them (one per arch), or where one unit bounds the build
    assert (threads > 1) == (unit_bound or paced)
    if paced:
        assert plan.schedule == "pool" and nvcc_js and plan.nvcc_jobserver and threads == len(plan.archs)
    if threads > 1 and plan.schedule == "pool" and nvcc_js:
        assert plan.nvcc_jobserver  # never unpaced threads where a jobserver could pace them
    if work_bound or "oversubscribe" in why:
        assert threads == 1
    if threads > 1 and not paced:  # unit-bound threads: the split-compile line must not claim the opposite bound
        assert "the total work bounds the build" not in split_why
    if plan.split_compile is not None:  # split-compile on: one unit bounds the build even at these threads
        assert not work_bound
    if len(plan.archs) == 1:
        assert threads == 1
    text = describe_plan(plan)
    assert f"--threads {threads}  [{why}]" in text
    assert f"predicted   build ~{plan.predicted_build_s:.0f} s, CPU-work bound {plan.cpu_bound_s:.0f} s" in text


def test_the_prediction_is_the_larger_of_the_two_bounds(plan_for):
    plan = plan_for(16, UPSTREAM)
    assert plan.cpu_work_s == pytest.approx(plan.cpu_bound_s * plan.jobs)
    longest, spread = costs.bound(("causal-conv1d", "mamba-ssm"), 16, split_units=plan.split_units,
                                  archs=plan.archs, nvcc_threads=plan.nvcc_threads)
    assert plan.predicted_build_s == pytest.approx(max(longest, spread)) and spread == pytest.approx(plan.cpu_bound_s)
    assert "CPU work" in plan.prediction_reason and "16 slots" in plan.prediction_reason
    unknown = plan_for(16, "9.0", packages=("mb-fixture",))
    assert unknown.predicted_build_s is None and "no measured costs" in unknown.prediction_reason


def test_arch_weights_and_lanes():
    assert costs.arch_weights(3) == [1.0, 1.0, 1.0]
    table = costs.arch_factors()
    assert table["9.0"] == 1.0 and len(table) >= 9
    assert costs.arch_weights(["9.0+PTX"]) == costs.arch_weights(["9.0"]) == [1.0]
    mean = sum(table.values()) / len(table)
    assert costs.arch_weights(["9.9"]) == [pytest.approx(mean)]  # no measured factor: the mean
    # archs dealt largest first to the least loaded thread
    assert costs.lanes([1.0] * 9, 4) == 3.0 and costs.lanes([1.0] * 9, 9) == 1.0 and costs.lanes([1.0] * 9, 1) == 9.0
    assert costs.lanes([3.0, 2.0, 2.0, 1.0], 2) == 4.0
    # a unit's host passes run once whatever the archs: only its per-arch share scales
    c = costs.Cost(total=100, longest=50, total_per_arch=0.8, longest_per_arch=0.9)
    assert c.at(3.0, 1.0).total == pytest.approx(20 + 80 * 3) and c.at(3.0, 2.0).longest == pytest.approx(5 + 45 * 2)


def test_the_table_says_which_share_of_each_cost_recurs_per_arch():
    for p in costs.package_costs().values():
        for c in filter(None, (p.whole, p.split)):
            assert 0 < c.total_per_arch <= 1 and 0 < c.longest_per_arch <= 1
            nine = c.at(sum(costs.arch_weights(UPSTREAM.split(","))), 1.0)
            assert c.total * 6 < nine.total < c.total * 9  # nine archs: most of the work, not all, nine times
