"""mamba_build.plan.costs: the predicted build time that decides --split-units, on the measured data table."""

from __future__ import annotations

import pytest

from mamba_build.plan import costs
from mamba_build.plan.costs import Cost, choose_split_units, predict

BOTH = ("causal-conv1d", "mamba-ssm")


def test_predict_is_the_longest_unit_or_the_work_over_the_slots():
    a, b = Cost(total=300, longest=250), Cost(total=600, longest=80)
    assert predict([a], 1) == 300
    assert predict([a], 2) == 250  # the longest unit bounds it
    assert predict([a, b], 2) == 450  # the work does
    assert predict([a, b], 16) == 250
    assert predict([], 4) == 0.0
    # 3 archs: three times the work; a unit compiles its archs nvcc --threads at a time
    assert predict([a], 16, archs=3, nvcc_threads=1) == 750
    assert predict([a], 16, archs=3, nvcc_threads=4) == 250
    assert predict([a], 16, archs=9, nvcc_threads=4) == 750  # ceil(9 / 4) = 3 rounds of the longest unit


def test_the_data_table_says_what_splitting_does():
    table = costs.package_costs()
    assert set(table) == set(BOTH)
    cc = table["causal-conv1d"]
    assert cc.split is not None and cc.version == "1.7.0"
    assert cc.split.total > cc.whole.total  # every split unit parses the shared code again
    assert cc.split.longest < cc.whole.longest / 4
    ms = table["mamba-ssm"]  # split-bwd-launch: each bwd file in two units by launch shape
    assert ms.split is not None and ms.split.total > ms.whole.total and ms.split.longest < ms.whole.longest
    for p in table.values():
        assert 0 < p.whole.longest <= p.whole.total


@pytest.mark.parametrize("packages, slots, pool, expected", [
    (("causal-conv1d",), 2, True, True),    # measured on 2 cores: 216 s split vs 280 s whole
    (("causal-conv1d",), 1, True, False),   # one slot: only the extra work remains
    (BOTH, 2, True, False),                 # both in one pool of 2: the work bounds the build
    (BOTH, 2, False, True),                 # one after the other: causal-conv1d's own build is bound by its unit
    (BOTH, 3, True, False),
    (BOTH, 4, True, True),
    (BOTH, 16, True, True),                 # the 16-core GPU machine
])
def test_choice(packages, slots, pool, expected):
    choice = choose_split_units(packages, slots, pool=pool)
    assert choice is not None and choice.split is expected
    assert (choice.split_s < choice.whole_s) is expected
    assert f"{slots} slots" in choice.reason and "build_costs.toml" in choice.reason
    assert ("longest unit bounds" in choice.reason) is expected


def test_mamba_ssm_alone_and_unknown_packages():
    assert choose_split_units(("mamba-ssm",), 16, pool=True).split is True  # 43 s split vs 80 s whole
    assert choose_split_units(("mamba-ssm",), 1, pool=True).split is False  # one slot: only the extra work
    assert choose_split_units(("causal-conv1d", "some-other-package"), 16, pool=True) is None


def test_many_archs_with_few_nvcc_threads_make_the_longest_unit_matter_more():
    # both packages on 4 slots: split for one arch; for 9 archs at nvcc --threads 1 the work dominates ...
    assert choose_split_units(BOTH, 4, pool=True, archs=1).split is True
    nine = choose_split_units(BOTH, 4, pool=True, archs=9, nvcc_threads=1)
    assert nine.split is True and "9 archs" in nine.reason
    # ... and 2 slots stay bound by the work whatever the archs
    assert choose_split_units(BOTH, 2, pool=True, archs=9, nvcc_threads=4).split is False


def test_pool_order_by_longest_unit_unknown_last():
    assert costs.pool_order(["mamba-ssm", "causal-conv1d"], split_units=False)[0] == ("causal-conv1d", "mamba-ssm")
    # split, both longest units are 43 s: a tie keeps the order given
    assert costs.pool_order(["mamba-ssm", "causal-conv1d"], split_units=True)[0] == ("mamba-ssm", "causal-conv1d")
    order, why = costs.pool_order(["mb-fixture", "mamba-ssm"], split_units=True)
    assert order == ("mamba-ssm", "mb-fixture") and "mb-fixture (no measured costs)" in why
    assert costs.pool_order(["mamba-ssm"], split_units=True) == (("mamba-ssm",), "")


def test_unit_costs_order_the_pool_longest_first():
    cost = costs.unit_cost_of()
    # causal-conv1d: the channellast instantiations (the target and parts 01-08) before the plain ones
    assert cost("causal-conv1d", "/t/csrc/causal_conv1d_bwd.cu") == cost("causal-conv1d", "/t/csrc/causal_conv1d_bwd.mbpart08.cu")
    assert cost("causal-conv1d", "/t/csrc/causal_conv1d_bwd.mbpart09.cu") < cost("causal-conv1d", "/t/csrc/causal_conv1d_bwd.mbpart01.cu")
    # mamba-ssm: the complex bwd halves first, then the fwd units, the host file last
    c = {n: cost("mamba-ssm", f"/t/csrc/selective_scan/{n}") for n in (
        "selective_scan_bwd_fp32_complex.cu", "selective_scan_bwd_bf16_complex.mbpart01.cu",
        "selective_scan_fwd_fp16.cu", "selective_scan_bwd_fp16_real.mbpart01.cu", "selective_scan.cpp")}
    assert list(c.values()) == sorted(c.values(), reverse=True) and min(c.values()) > 0
    assert cost("mamba-ssm", "/t/csrc/unknown.cu") == 0 and cost("no-such-package", "/x.cu") == 0


def test_bound_says_whether_one_unit_or_the_work_bounds_the_build():
    longest, spread = costs.bound(BOTH, 16, split_units=True)
    assert longest == 43 and spread == pytest.approx((422 + 668) / 16)  # the work: no need for split-compile
    longest, spread = costs.bound(("causal-conv1d",), 16, split_units=False)
    assert longest == 276 and spread < longest  # one whole unit: split-compile shortens it
    assert costs.bound(("mb-fixture",), 16, split_units=True) is None
