"""The blind set (tests/data/public-logs-blind/): real public logs collected and labelled by another
developer than the catalog's author, labels committed before `explain` ever ran on them.

These tests keep the set honest: complete and consistent, disjoint from the public corpus (no thread
in both, so no pattern written from one corpus is scored on the same thread in the other), every
label a catalog id, and the recorded first contact (FIRST_CONTACT.toml, the unchanged catalog's
score) complete, with a reason for every miss. The whole evaluation runs in about a second.
"""

from __future__ import annotations

import re

from mamba_build.diagnose import explain as ex
from mamba_build.diagnose import explain_eval as ev

BLIND = ev.blind_cases()


def _thread(url: str) -> str:
    return url.split("#", 1)[0].rstrip("/")


def test_blind_set_is_complete_and_consistent():
    files = sorted(p.name for p in ev.BLIND.glob("*.log"))
    assert files == sorted(c.path.name for c in BLIND), "SOURCES.toml and the .log files disagree"
    assert len(BLIND) >= 40
    ids = set(ex.load_catalog().ids) | {"unknown"}
    for c in BLIND:
        assert c.ref.startswith("blind:"), c.ref
        assert c.label in ids, f"{c.path.name}: {c.label!r} is not a catalog id"
        assert c.url.startswith(("https://", "http://")), c.path.name  # a page served over http keeps its address
        assert c.why, f"{c.path.name}: no reason for the label"
        assert c.path.name.split("-", 1)[1] == f"{c.label}.log", f"{c.path.name}: file name and id differ"
        assert c.path.read_text(encoding="utf-8").strip(), c.path.name
    assert len({c.label for c in BLIND}) >= 20, "the blind set should spread over many ids"


def test_blind_set_is_disjoint_from_the_public_corpus():
    public = ev.public_cases()
    public_threads = {_thread(c.url) for c in public} | {_thread(c.group) for c in public}
    for c in BLIND:
        assert _thread(c.url) not in public_threads, f"{c.path.name}: its thread is in the public corpus"
        assert _thread(c.group) not in public_threads, f"{c.path.name}: its group is in the public corpus"


def test_first_contact_is_recorded_for_every_blind_log():
    first = ev.load_first_contact()
    assert first is not None, "tests/data/public-logs-blind/FIRST_CONTACT.toml is missing"
    assert [b.number for b in first.batches] == sorted({c.batch for c in BLIND}), "a batch without its record"
    for b in first.batches:
        assert re.fullmatch(r"[0-9a-f]{7,40}", b.catalog_commit) and re.fullmatch(r"[0-9a-f]{7,40}", b.labels_commit)
    by_file = {r["file"]: r for r in first.rows}
    assert sorted(by_file) == sorted(c.path.name for c in BLIND), "the record and the blind set disagree"
    for c in BLIND:
        row = by_file[c.path.name]
        assert row["batch"] == c.batch, c.path.name
        assert row["label"] == c.label, f"{c.path.name}: label changed after the first contact"
        assert row["verdict"] == ev._verdict(row["label"], row["got"]), c.path.name
        if row["verdict"] != "correct":
            assert row.get("note"), f"{c.path.name}: a first-contact miss needs its explanation (note)"
    s = first.summary()
    assert s.n == s.correct + s.wrong + s.unknown == len(BLIND)


def test_the_first_batch_was_scored_by_the_catalog_before_any_blind_pattern():
    """Batch 1's first contact is that of the catalog before the blind set existed (984d389)."""
    first = ev.load_first_contact()
    assert first.batch(1).catalog_commit == "984d389"
    assert first.summary(1) == ev.Summary(56, 48, 5, 3)


def test_the_third_batch_was_scored_by_the_catalog_before_any_pattern_written_from_it():
    """Batch 3 (i16c): labels committed in dbc61db, then scored by main's catalog of f437c10, before any
    catalog regex citing a batch-3 log existed (those came in later commits)."""
    first = ev.load_first_contact()
    b3 = first.batch(3)
    assert (b3.catalog_commit, b3.labels_commit) == ("f437c10", "dbc61db") and b3.about
    assert first.summary(3) == ev.Summary(39, 27, 4, 8)
    assert sum(1 for c in BLIND if c.batch == 3) == 39


def test_report_shows_the_first_contact():
    text = ev.DOC.read_text(encoding="utf-8")
    first = ev.load_first_contact()
    assert "## Blind set, first contact" in text
    for b in first.batches:
        s = first.summary(b.number)
        assert f"| {s.n} | {s.correct} | {s.wrong} | {s.unknown} | **{ev._pct(s.accuracy)}** |" in text, b


def test_re_recording_a_batch_keeps_what_was_written_about_it(tmp_path):
    """`misses` and `gate_after` are written by hand after the first contact; a re-record keeps them."""
    path = tmp_path / "FIRST_CONTACT.toml"
    path.write_text(ev.FIRST_CONTACT.read_text(encoding="utf-8"), encoding="utf-8")
    before = ev.load_first_contact(path).batch(11)
    assert before.misses and before.gate_after is not None
    results = [r for r in ev.evaluate([c for c in BLIND if c.batch == 11], held_out=False)]
    ev.record_first_contact(results, ev.Batch(11, before.catalog_commit, before.labels_commit, before.date), path=path)
    after = ev.load_first_contact(path).batch(11)
    assert (after.about, after.misses, after.gate_after) == (before.about, before.misses, before.gate_after)


def test_goal_sentence_comes_from_the_recorded_levels():
    """The report's "not met since" is the first batch whose recorded level is below the goal, and the
    count of batches whose first contact was below it is computed, not written."""
    first = ev.load_first_contact()
    since = ev.goal_not_met_since(first)
    assert since is not None
    assert all(b.gate_after is None or b.gate_after >= ev.GOAL_ACCURACY for b in first.batches if b.number < since)
    text = ev._goal_sentence(0.5, first)
    assert f"since the changes made from blind batch {since}" in text and "50.0 % today" in text
    below = sum(first.summary(b.number).accuracy < ev.GOAL_ACCURACY for b in first.batches)
    assert f"{below} of the {len(first.batches)} blind batches" in text
    assert ev._goal_sentence(ev.GOAL_ACCURACY, first).endswith("met.")
    lifted = ev.FirstContact(tuple(ev.replace(b, gate_after=0.95) for b in first.batches), first.rows)
    assert ev.goal_not_met_since(lifted) is None
