"""`mamba-build explain` on the public corpus: real logs from public issue threads, scored held-out.

The corpus (tests/data/public-logs/, SOURCES.toml) holds logs nobody here wrote, each labelled with
the cause its thread's resolution supports. The catalog's patterns record the logs they were written
from; every log is explained by a catalog without the patterns written from its group (grouped
cross-validation). These tests fail when the held-out accuracy drops below
``explain_eval.MIN_ACCURACY`` or the wrong answers grow beyond ``explain_eval.MAX_WRONG``, and keep
the corpus and the provenance records consistent. The whole evaluation takes about a second.
"""

from __future__ import annotations

import re

import pytest

from mamba_build.diagnose import explain as ex
from mamba_build.diagnose import explain_eval as ev

CASES = ev.public_cases()


def test_corpus_is_complete_and_consistent():
    files = sorted(p.name for p in ev.PUBLIC.glob("*.log"))
    assert files == sorted(c.path.name for c in CASES), "SOURCES.toml and the .log files disagree"
    assert len(CASES) >= 80
    ids = set(ex.load_catalog().ids) | {"unknown"}
    for c in CASES:
        assert c.label in ids, f"{c.path.name}: {c.label!r} is not a catalog id"
        assert c.url.startswith("https://"), c.path.name
        assert c.why, f"{c.path.name}: no reason for the label"
        assert c.path.name.split("-", 1)[1] == f"{c.label}.log", f"{c.path.name}: file name and id differ"
        assert c.path.read_text(encoding="utf-8").strip(), c.path.name
    counts = {i: sum(c.label == i for c in CASES) for i in ids}
    thin = {i: n for i, n in counts.items() if n < 3 and i != "unknown"}
    # public threads with a log of these were not found; they are covered by logs made here (docs/explain.md)
    assert set(thin) <= {"extension-missing-from-wheel", "torch-cpu-only"}, thin


def test_every_cited_corpus_entry_exists():
    refs = ex.corpus_refs()
    known = {c.ref for c in CASES} | {c.ref for c in ev.project_cases()} | {c.ref for c in ev.blind_cases()}
    for ref in refs:
        if ref.startswith(("public:", "blind:", "ours:", "shared:")):
            assert ref in known or ref.startswith("shared:"), f"a pattern cites {ref}, which is not in the corpus"
        else:
            assert re.match(r"(src|seen):\s?\S", ref), f"provenance {ref!r} is neither a corpus entry nor a source"


def test_leaving_a_group_out_removes_exactly_its_patterns():
    full = ex.load_catalog()
    cited = {ref for ref in ex.corpus_refs() if ref.startswith("public:")}
    assert cited, "no pattern records a public log; the held-out score would equal the plain score"
    ref = sorted(cited)[0]
    without = ex.load_catalog(frozenset({ref}))
    n_full = sum(len(e.patterns) for e in full.entries)
    n_without = sum(len(e.patterns) for e in without.entries)
    dropped = sum(1 for e in full.entries for m in e.meta if ref in m.cites)
    assert n_full - n_without == dropped >= 1
    assert all(ref not in m.cites for e in without.entries for m in e.meta)


@pytest.fixture(scope="module")
def held_out():
    return ev.evaluate(CASES, held_out=True)


@pytest.fixture(scope="module")
def blind_held_out():
    return ev.evaluate(ev.blind_cases(), held_out=True)


def test_held_out_accuracy_does_not_drop(held_out, blind_held_out):
    """The gate: public corpus and blind set together, each log scored without its group's patterns."""
    s, b, g = ev.summarize(held_out), ev.summarize(blind_held_out), ev.summarize(held_out + blind_held_out)
    wrong = [(r.case.path.name, r.case.label, r.got) for r in held_out + blind_held_out if r.verdict == "wrong"]
    assert g.accuracy >= ev.MIN_ACCURACY, (g, wrong)
    assert s.wrong <= ev.MAX_WRONG, wrong
    assert b.wrong <= ev.MAX_WRONG_BLIND, wrong


def test_unknown_labels_stay_unknown(held_out):
    """Logs whose cause is not in the log (only pip's wrappers): no guess."""
    for r in held_out:
        if r.case.label == "unknown":
            assert r.got == "unknown", (r.case.path.name, r.got)


def test_each_id_with_public_logs_is_mostly_recognised(held_out):
    for fid, m in ev.per_id(held_out).items():
        if fid != "unknown" and m.n >= 3:
            assert m.correct >= m.n - 2, (fid, m)


def test_project_logs_still_pass():
    res = ev.evaluate(ev.project_cases(), held_out=True)
    bad = [(r.case.path.name, r.case.label, r.got) for r in res if r.verdict != "correct"]
    assert not bad, bad


def test_report_is_current():
    """docs/explain-evaluation.md shows the numbers of this catalog (regenerate it when they change)."""
    text = ev.DOC.read_text(encoding="utf-8")
    s = ev.summarize(ev.evaluate(CASES, held_out=True))
    row = f"| public corpus, held-out | {s.n} | {s.correct} | {s.wrong} | {s.unknown} |"
    assert row in text, f"regenerate: python -m mamba_build.diagnose.explain_eval --write {ev.DOC.relative_to(ev.REPO)}"
