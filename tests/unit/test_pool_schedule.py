"""benchmarks/pool_schedule.py: the replay of a ninja log must give back the measured wall for the measured order,
and longest-first must be what LPT gives (so its answer "the order wins N s" can be trusted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pool_schedule", REPO / "benchmarks" / "pool_schedule.py")
assert _spec is not None and _spec.loader is not None
ps = importlib.util.module_from_spec(_spec)
sys.modules["pool_schedule"] = ps
_spec.loader.exec_module(ps)


def _log(tmp_path: Path, rows: list[tuple[int, int, str]]) -> Path:
    p = tmp_path / "cold.pool.ninja_log"
    lines = ["# ninja log v7"] + [f"{s}\t{e}\t0\tbuild/{name}.o\tabc" for s, e, name in rows]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_replay_of_the_measured_order_gives_the_measured_wall_and_lpt_beats_a_bad_order(tmp_path):
    # two slots: short units first, the long one last: wall 1+1+... measured as ninja ran it
    log = _log(tmp_path, [(0, 1000, "a"), (0, 1000, "b"), (1000, 2000, "c"), (1000, 5000, "long")])
    r = ps.analyse(log, slots=2)
    assert (r.units, r.wall, r.work, r.bound, r.longest_unit) == (4, 5.0, 7.0, 3.5, 4.0)
    assert r.replay_measured_order == 5.0  # the replay reproduces what ninja did
    assert r.replay_longest_first == 4.0  # long on one slot, a+b+c on the other


def test_a_rebuilt_output_counts_once_and_a_bad_slot_count_is_refused(tmp_path):
    log = _log(tmp_path, [(0, 9000, "a"), (0, 2000, "a")])
    assert [u.seconds for u in ps.read_ninja_log(log)] == [2.0]
    with pytest.raises(ValueError, match="slots"):
        ps.replay([1.0], 0)


def test_an_empty_log_is_an_error_not_a_zero(tmp_path):
    with pytest.raises(ValueError, match="no units"):
        ps.analyse(_log(tmp_path, []), slots=4)
