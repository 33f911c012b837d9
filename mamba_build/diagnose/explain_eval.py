"""Honest evaluation of `mamba-build explain` on labelled real logs (grouped cross-validation).

Corpora (each log carries the id that the *resolution* of its thread supports, not its loudest line):

* ``tests/data/public-logs/``: real logs from public issue threads (SOURCES.toml: file, id, url,
  group, tags, why). Nobody here wrote them.
* ``tests/data/public-logs-blind/``: a second, BLIND set of real public logs (same SOURCES format, refs
  ``blind:NNN``), collected by another person than the catalog's author and labelled (committed)
  before ``explain`` ever ran on them. Its first-contact score (the catalog as it was, nothing tuned
  on it) is recorded in ``FIRST_CONTACT.toml`` there and reported apart from the later,
  cross-validated score; patterns written from a blind log cite it (``from = ["blind:NNN"]``), so
  the grouped cross-validation holds them out exactly like the public corpus.
* ``tests/data/failure-logs/`` (LABELS.md table) and ``../shared/failure-logs/`` (id = file name):
  real logs made on the project's machines; reported separately.

Held-out scoring: a catalog pattern records the corpus entries it was written from (``from =
["public:013"]``). A log is scored with every pattern that cites a log of its *group* (its thread,
or the threads of one reporter's one problem) left out, so no pattern is scored on a log it was
derived from. Patterns that cite no public log (class knowledge: tool sources, project logs) stay in.

Scores: a log is ``correct`` when the root finding's id equals the label (``unknown`` labels: when
explain finds nothing), ``unknown`` when explain finds nothing for a labelled log, ``wrong`` when
it names another id. A wrong confident answer is worse than unknown, so both are counted apart.

CLI: ``python -m mamba_build.diagnose.explain_eval [--write docs/explain-evaluation.md] [--check]
[--record-first-contact]``
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from mamba_build.diagnose import explain as ex

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
PUBLIC = REPO / "tests" / "data" / "public-logs"
BLIND = REPO / "tests" / "data" / "public-logs-blind"
FIRST_CONTACT = BLIND / "FIRST_CONTACT.toml"
OURS = REPO / "tests" / "data" / "failure-logs"
SHARED = REPO.parent / "shared" / "failure-logs"
DOC = REPO / "docs" / "explain-evaluation.md"

# The gate the unit tests check (tests/unit/test_explain_corpus.py): held-out accuracy on the public
# corpus and the blind set together may not drop below MIN_ACCURACY; held-out wrong answers may not
# grow beyond MAX_WRONG on the public corpus, nor beyond MAX_WRONG_BLIND on the blind set. GOAL_ACCURACY
# is issue 16's goal. MIN_ACCURACY, the floor, is the level measured after the changes made from blind
# batch FLOOR_BATCH (rounded down), and the MAX_WRONG_* are the wrong answers measured then; each batch's
# level is recorded as gate_after in FIRST_CONTACT.toml. After batch 18 (no fix written from it): 662/958 = 69.1 %,
# wrong public 0 / blind 66 (its 11 first-contact wrong answers stay wrong held-out: no pattern cites them; no fix
# made from batches 15-17 answered a log of another thread held-out; blind:212's libstdc++ symbol, labelled
# abi-undefined-symbol by its collector, is answered glibcxx-missing as batch 12's collectors labelled the same
# symbol), so the gate catches any drop while the report shows the goal not met.
GOAL_ACCURACY = 0.90
MIN_ACCURACY = 0.685
MAX_WRONG = 0
MAX_WRONG_BLIND = 93
FLOOR_BATCH = 25  # the blind batch after whose changes MIN_ACCURACY was measured


@dataclass(frozen=True)
class Case:
    ref: str  # "public:013", "ours:07", "shared:02"
    path: Path
    label: str  # a catalog id, "unknown" (cause not in the catalog/log) or "none" (clean log)
    group: str
    url: str = ""
    tags: tuple[str, ...] = ()
    why: str = ""
    batch: int = 1  # the blind set's collection batch (1: before any change made from it)


@dataclass(frozen=True)
class Result:
    case: Case
    got: str  # root id, or "unknown"
    confidence: str  # "high"/"low"/"" (unknown)
    second: str  # the runner-up id or ""
    verdict: str  # "correct" | "wrong" | "unknown"


def public_cases(folder: Path = PUBLIC, prefix: str = "public") -> list[Case]:
    data = tomllib.loads((folder / "SOURCES.toml").read_text(encoding="utf-8"))
    out = []
    for row in data.get("log", []):
        num = row["file"].split("-", 1)[0]
        out.append(
            Case(
                f"{prefix}:{num}",
                folder / row["file"],
                row["id"],
                row.get("group") or row["url"],
                row["url"],
                tuple(row.get("tags", ())),
                row.get("why", ""),
                int(row.get("batch", 1)),
            )
        )
    return out


def blind_cases() -> list[Case]:
    """The blind set (tests/data/public-logs-blind/), refs ``blind:NNN``."""
    return public_cases(BLIND, "blind")


@dataclass(frozen=True)
class Batch:
    number: int
    catalog_commit: str  # the commit whose explain/catalog produced the batch's first contact
    labels_commit: str  # the commit that fixed the batch's labels before any scoring
    date: str
    about: str = ""  # how the batch was collected (by whom, after which changes), for the report
    misses: str = ""  # what its first-contact misses were (the classes and packages), for the report
    gate_after: float | None = None  # the gate's held-out level measured after the changes made from it


@dataclass(frozen=True)
class FirstContact:
    """The recorded first contact of the catalog with each batch of the blind set (FIRST_CONTACT.toml)."""

    batches: tuple[Batch, ...]
    rows: tuple[dict, ...]  # batch, file, label, got, confidence, second, verdict, note

    def batch(self, number: int) -> Batch:
        return next(b for b in self.batches if b.number == number)

    def summary(self, batch: int | None = None) -> Summary:
        rows = [r for r in self.rows if batch is None or r["batch"] == batch]
        return Summary(
            len(rows),
            sum(r["verdict"] == "correct" for r in rows),
            sum(r["verdict"] == "wrong" for r in rows),
            sum(r["verdict"] == "unknown" for r in rows),
        )


def load_first_contact(path: Path = FIRST_CONTACT) -> FirstContact | None:
    if not path.exists():
        return None
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    batches = tuple(
        Batch(
            int(b["number"]),
            b["catalog_commit"],
            b["labels_commit"],
            b["date"],
            b.get("about", ""),
            b.get("misses", ""),
            b.get("gate_after"),
        )
        for b in data.get("batch", ())
    )
    return FirstContact(tuple(sorted(batches, key=lambda b: b.number)), tuple(data.get("result", ())))


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def record_first_contact(
    results: list[Result], batch: Batch, notes: dict[str, str] | None = None, path: Path = FIRST_CONTACT
) -> None:
    """Record a batch's first contact in FIRST_CONTACT.toml (other batches are kept as they are).

    ``results``: the batch's logs explained by the catalog of ``batch.catalog_commit``;
    ``notes``: file -> why it missed (kept from an earlier record of the same file when not given).
    """
    old = load_first_contact(path)
    kept = [r for r in (old.rows if old else ()) if r["batch"] != batch.number]
    old_notes = {r["file"]: r.get("note", "") for r in (old.rows if old else ()) if r["batch"] == batch.number}
    notes = {**old_notes, **(notes or {})}
    before = next((b for b in (old.batches if old else ()) if b.number == batch.number), None)
    if before is not None:  # a re-record keeps what was written about the batch by hand
        batch = replace(
            batch,
            about=batch.about or before.about,
            misses=batch.misses or before.misses,
            gate_after=batch.gate_after if batch.gate_after is not None else before.gate_after,
        )
    batches = sorted(
        [b for b in (old.batches if old else ()) if b.number != batch.number] + [batch], key=lambda b: b.number
    )
    rows = kept + [
        {
            "batch": batch.number,
            "file": r.case.path.name,
            "label": r.case.label,
            "got": r.got,
            "confidence": r.confidence,
            "second": r.second,
            "verdict": r.verdict,
            "note": notes.get(r.case.path.name, "") if r.verdict != "correct" else "",
        }
        for r in results
    ]
    lines = [
        "# First contact of `mamba-build explain` with each batch of the blind set (written by",
        "# `python -m mamba_build.diagnose.explain_eval --record-first-contact`; `note` explains each miss).",
        "# A measurement, never updated after the catalog changes: the later, cross-validated score is",
        "# computed live (docs/explain-evaluation.md).",
        "",
    ]
    for b in batches:
        lines += [
            "[[batch]]",
            f"number = {b.number}",
            f"catalog_commit = {_toml_str(b.catalog_commit)}",
            f"labels_commit = {_toml_str(b.labels_commit)}",
            f"date = {_toml_str(b.date)}",
        ]
        lines += [f"about = {_toml_str(b.about)}"] if b.about else []
        lines += [f"misses = {_toml_str(b.misses)}"] if b.misses else []
        lines += [f"gate_after = {b.gate_after}"] if b.gate_after is not None else []
        lines.append("")
    for r in sorted(rows, key=lambda r: (r["batch"], r["file"])):
        lines += ["[[result]]", f"batch = {r['batch']}"]
        lines += [f"{k} = {_toml_str(r[k])}" for k in ("file", "label", "got", "confidence", "second", "verdict")]
        if r.get("note"):
            lines.append(f"note = {_toml_str(r['note'])}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def project_cases() -> list[Case]:
    out = []
    if (OURS / "LABELS.md").exists():
        text = (OURS / "LABELS.md").read_text(encoding="utf-8")
        for name, fid in re.findall(r"^\| (\S+\.log) \| ([a-z0-9-]+) \|", text, re.M):
            num = name.split("-", 1)[0]
            out.append(Case(f"ours:{num}", OURS / name, fid, f"ours:{name}"))
    if SHARED.is_dir():
        for p in sorted(SHARED.glob("*.log")):
            out.append(Case(f"shared:{p.name.split('-', 1)[0]}", p, re.sub(r"^\d+-", "", p.stem), f"shared:{p.name}"))
    return out


# labels under which answering "unknown" is right: a cause the catalog has no id for, or a clean log
NO_CAUSE_LABELS = ("unknown", "none")


def _verdict(label: str, got: str) -> str:
    if label in NO_CAUSE_LABELS:
        return "correct" if got == "unknown" else "wrong"
    if got == label:
        return "correct"
    return "unknown" if got == "unknown" else "wrong"


def evaluate(cases: list[Case], held_out: bool = True) -> list[Result]:
    """Explain every case; with ``held_out``, without the patterns written from its group's logs."""
    groups: dict[str, list[Case]] = {}
    for c in cases:
        groups.setdefault(c.group, []).append(c)
    results = []
    for members in groups.values():
        without = frozenset(c.ref for c in members) if held_out else frozenset()
        catalog = ex.load_catalog(without)
        for c in members:
            expl = ex.explain_file(c.path, catalog=catalog)
            root = expl.root
            got = root.id if root else "unknown"
            second = expl.second_candidate
            results.append(
                Result(c, got, root.confidence if root else "", second.id if second else "", _verdict(c.label, got))
            )
    order = {c.ref: i for i, c in enumerate(cases)}
    return sorted(results, key=lambda r: order[r.case.ref])


@dataclass(frozen=True)
class Summary:
    n: int
    correct: int
    wrong: int
    unknown: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


def summarize(results: list[Result]) -> Summary:
    return Summary(
        len(results),
        sum(r.verdict == "correct" for r in results),
        sum(r.verdict == "wrong" for r in results),
        sum(r.verdict == "unknown" for r in results),
    )


def per_id(results: list[Result]) -> dict[str, Summary]:
    ids: dict[str, list[Result]] = {}
    for r in results:
        ids.setdefault(r.case.label, []).append(r)
    return {k: summarize(v) for k, v in sorted(ids.items())}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render(
    public_ho: list[Result],
    public_all: list[Result],
    project: list[Result],
    seconds: float,
    blind_ho: list[Result] | None = None,
    first: FirstContact | None = None,
) -> str:
    s, a = summarize(public_ho), summarize(public_all)
    cat = ex.load_catalog()
    n_specs = sum(len(e.patterns) for e in cat.entries)
    cited = sum(1 for e in cat.entries for m in e.meta if any(c.startswith("public:") for c in m.cites))
    cited_blind = sum(1 for e in cat.entries for m in e.meta if any(c.startswith("blind:") for c in m.cites))
    blind_ho = blind_ho or []
    groups = len({r.case.group for r in public_ho})
    lines = [
        "# `mamba-build explain` on real logs nobody here wrote",
        "",
        "GENERATED by `python -m mamba_build.diagnose.explain_eval --write docs/explain-evaluation.md`; do not edit.",
        "The unit test `tests/unit/test_explain_corpus.py` recomputes these numbers and fails when the",
        f"held-out accuracy of the public corpus and the blind set together drops below {_pct(MIN_ACCURACY)}, "
        f"or the held-out wrong answers exceed {MAX_WRONG} (public) or {MAX_WRONG_BLIND} "
        f"(blind; both the counts measured after the changes made from blind batch {FLOOR_BATCH}).",
        _goal_sentence(summarize(public_ho + blind_ho).accuracy, first),
        "",
        "## How it is measured",
        "",
        f"* Corpus: {s.n} real logs quoted in {groups} groups of public issue threads "
        "(`tests/data/public-logs/`, sources and the reason for each label in `SOURCES.toml`). "
        "Each label is the cause the thread's resolution supports, not the loudest line.",
        f"* Catalog: {n_specs} trigger patterns in {len(cat.entries)} entries; {cited} of them record that "
        'they were written from public logs (`from = ["public:NNN"]`), '
        f'{cited_blind} from blind-set logs (`from = ["blind:NNN"]`), the others encode the failure '
        "class from the tool that prints the message (`src:`), or predate the corpus.",
        f"* Blind set: {len(blind_ho)} more real logs (`tests/data/public-logs-blind/`), collected and labelled "
        "by another person than the catalog's author, labels committed before explain ran on them; "
        "scored first with the catalog as it was (the first contact, recorded once), then held out "
        "like the public corpus. Both are reported below, apart.",
        "* Held-out (grouped cross-validation, leave one group out): each log is explained by a catalog "
        "without every pattern that cites any log of its group (its thread, or one reporter's problem in "
        "several threads). This is the number that counts.",
        "* A log is *correct* when explain's root cause is the label (for the logs labelled `unknown`, "
        "whose cause the log does not show: when explain names nothing); *unknown* when explain names "
        "nothing for a labelled log; *wrong* when it names another cause. A wrong confident answer is "
        "worse than unknown, so they are counted apart.",
        f"* Run time of the whole evaluation: {seconds:.1f} s.",
        "",
        "## Result",
        "",
        "| | logs | correct | wrong | unknown | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
        f"| public corpus, held-out | {s.n} | {s.correct} | {s.wrong} | {s.unknown} | **{_pct(s.accuracy)}** |",
        f"| public corpus, all patterns (for reference) | {a.n} | {a.correct} | {a.wrong} | {a.unknown} "
        f"| {_pct(a.accuracy)} |",
    ]
    if first:
        for bt in first.batches:
            f = first.summary(bt.number)
            what = (
                "nothing tuned on it" if bt.number == 1 else f"after the changes made from {_batches_before(bt.number)}"
            )
            lines.append(
                f"| blind set batch {bt.number}, first contact (catalog of {bt.catalog_commit}, {what}) | "
                f"{f.n} | {f.correct} | {f.wrong} | {f.unknown} | **{_pct(f.accuracy)}** |"
            )
    if blind_ho:
        b, g = summarize(blind_ho), summarize(public_ho + blind_ho)
        lines.append(
            f"| blind set, held-out (grouped CV, today's catalog) | {b.n} | {b.correct} | {b.wrong} | "
            f"{b.unknown} | {_pct(b.accuracy)} |"
        )
        lines.append(
            f"| public + blind, held-out (the gate) | {g.n} | {g.correct} | {g.wrong} | {g.unknown} | "
            f"**{_pct(g.accuracy)}** |"
        )
    if project:
        p = summarize(project)
        lines.append(
            f"| project logs (made here: tests/data/failure-logs, ../shared), held-out | {p.n} | {p.correct} | "
            f"{p.wrong} | {p.unknown} | {_pct(p.accuracy)} |"
        )
    lines += [
        "",
        "## Per id (public corpus, held-out)",
        "",
        "| id | logs | correct | wrong | unknown | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for fid, m in per_id(public_ho).items():
        lines.append(f"| {fid} | {m.n} | {m.correct} | {m.wrong} | {m.unknown} | {_pct(m.accuracy)} |")
    missing = sorted(set(cat.ids) - {r.case.label for r in public_ho})
    if missing:
        lines += [
            "",
            "Catalog ids without a public log: "
            + ", ".join(f"`{i}`" for i in missing)
            + " (covered by the project logs below, see docs/explain.md).",
        ]
    lines += _misses("## Wrong answers (held-out)", [r for r in public_ho if r.verdict == "wrong"])
    lines += _misses("## Unknown (held-out)", [r for r in public_ho if r.verdict == "unknown"])
    if project:
        lines += [
            "",
            "## Project logs (made here)",
            "",
            "| log | label | explain said | verdict |",
            "|---|---|---|---|",
        ]
        for r in project:
            lines.append(f"| {r.case.ref} {r.case.path.name} | {r.case.label} | {r.got} | {r.verdict} |")
    if first:
        lines += _goal_table(first)
        lines += _first_contact_section(first, blind_ho)
    if blind_ho:
        lines += _blind_now_section(blind_ho)
    lines += _catalog_table(cat, public_ho + blind_ho, project)
    tags: dict[str, int] = {}
    for r in public_ho:
        for t in r.case.tags:
            tags[t] = tags.get(t, 0) + 1
    lines += [
        "",
        "## Formats in the corpus",
        "",
        ", ".join(f"{t}: {n}" for t, n in sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))) + ".",
    ]
    return "\n".join(lines) + "\n"


def goal_not_met_since(first: FirstContact | None) -> int | None:
    """The first blind batch after whose changes the gate's level was below the goal (None: never)."""
    for bt in first.batches if first else ():
        if bt.gate_after is not None and bt.gate_after < GOAL_ACCURACY:
            return bt.number
    return None


def _goal_sentence(now: float, first: FirstContact | None) -> str:
    """Issue 16's goal against today's level, from the numbers (the batch table below gives the history)."""
    head = f"Issue 16's goal is {_pct(GOAL_ACCURACY)} on held-out real logs: "
    if now >= GOAL_ACCURACY:
        return head + "met."
    since = goal_not_met_since(first)
    below = sum(first.summary(bt.number).accuracy < GOAL_ACCURACY for bt in first.batches) if first else 0
    return head + (
        f"**not met**: {_pct(now)} today"
        + (f", below the goal since the changes made from blind batch {since}" if since else "")
        + f". {below} of the {len(first.batches) if first else 0} blind batches met the catalog below the goal "
        "at their first contact; the classes a batch's misses revealed entered the catalog citing the logs that "
        "revealed them, so the grouped cross-validation leaves them out there and only later batches can show "
        "whether they generalise. "
        "The table 'The goal, batch by batch' below gives each batch's first contact, what its misses were and "
        "the level measured after the changes made from it (all from `FIRST_CONTACT.toml`)."
    )


def _goal_table(first: FirstContact) -> list[str]:
    lines = [
        "",
        "## The goal, batch by batch",
        "",
        "| batch | logs | first contact | wrong | unknown | its misses | held-out level after its changes |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for bt in first.batches:
        f = first.summary(bt.number)
        level = _pct(bt.gate_after) if bt.gate_after is not None else "-"
        lines.append(
            f"| {bt.number} | {f.n} | {_pct(f.accuracy)} | {f.wrong} | {f.unknown} | "
            f"{(bt.misses or '-').replace('|', '/')} | {level} |"
        )
    return lines


def _id_table(rows: list[tuple[str, Summary]]) -> list[str]:
    out = ["| id | logs | correct | wrong | unknown | accuracy |", "|---|---:|---:|---:|---:|---:|"]
    for fid, m in rows:
        out.append(f"| {fid} | {m.n} | {m.correct} | {m.wrong} | {m.unknown} | {_pct(m.accuracy)} |")
    return out


def _cited_regexes(cat, prefix: str) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    """(entry id, kind, regex, citations, note) of every catalog regex that cites a ``prefix:`` log."""
    out = []
    for e in cat.entries:
        # the triggers first, then the conditions and lists, each in the walk's order (sorted is stable)
        lists = sorted(ex.entry_cited_lists(e), key=lambda item: item[0] not in ex.TRIGGER_KINDS)
        for kind, pats, cites, note in lists:
            for q, c in zip(pats, cites, strict=True):
                if any(x.startswith(prefix) for x in c):
                    out.append((e.id, kind, q.pattern, c, note))
    for p, c in zip(cat.facts, cat.fact_cites, strict=True):
        if any(x.startswith(prefix) for x in c):
            out.append(("(facts)", "fact", p.pattern, c, ""))
    return out


def _batches_before(number: int) -> str:
    """'batch 1', 'batches 1 and 2', 'batches 1, 2 and 3' ...: the batches whose misses changed the catalog."""
    nums = [str(n) for n in range(1, number)]
    return "batch 1" if number == 2 else f"batches {', '.join(nums[:-1])} and {nums[-1]}"


def _first_contact_section(first: FirstContact, blind_ho: list[Result]) -> list[str]:
    by_file = {r.case.path.name: r.case for r in blind_ho}
    lines = [
        "",
        "## Blind set, first contact",
        "",
        "Real logs from public threads that are not in the public corpus (`tests/data/public-logs-blind/`, "
        "sources and the reason for each label in its `SOURCES.toml`), collected by developers other than "
        "the catalog's author (batches 1 and 2 a second developer, later batches as each says), "
        "who had read the catalog's ids and cause/fix sentences but not its patterns, and who labelled "
        "each log from its thread's resolution (or, without one, from what the log itself establishes). "
        "Each batch's labels were committed before explain ran on any of its logs; the first contact is "
        "recorded in `tests/data/public-logs-blind/FIRST_CONTACT.toml` and never recomputed.",
    ]
    for bt in first.batches:
        f = first.summary(bt.number)
        rows = [r for r in first.rows if r["batch"] == bt.number]
        ids: dict[str, list[dict]] = {}
        for r in rows:
            ids.setdefault(r["label"], []).append(r)
        per = [
            (
                k,
                Summary(
                    len(v),
                    sum(x["verdict"] == "correct" for x in v),
                    sum(x["verdict"] == "wrong" for x in v),
                    sum(x["verdict"] == "unknown" for x in v),
                ),
            )
            for k, v in sorted(ids.items())
        ]
        score = f"{f.correct}/{f.n} = {_pct(f.accuracy)}, {f.wrong} wrong, {f.unknown} unknown.**"
        scored = f"labels committed in {bt.labels_commit}; scored by the unchanged explain of " + (
            f"{bt.catalog_commit} ({bt.date})"
        )
        if bt.number == 1:
            head = f"{f.n} logs; {scored}. **This is the honest number: {score}"
        elif bt.about:
            head = f"{f.n} logs {bt.about}; {scored}: **{score}"
        elif bt.number == 2:
            head = (
                f"{f.n} logs collected after the changes made from batch 1 (most of them of the classes batch 1 "
                f"revealed, found in other trackers, CUDA versions and message formats), to test whether "
                f"those changes generalise; labels committed in {bt.labels_commit}; scored by the explain of "
                f"{bt.catalog_commit} ({bt.date}): **{score}"
            )
        else:  # a later batch recorded without its `about`: say only what is known of it
            head = f"{f.n} logs collected after the changes made from {_batches_before(bt.number)}; {scored}: **{score}"
        lines += ["", f"### Batch {bt.number}", "", head, ""]
        lines += _id_table(per)
        for title, verdict in (("wrong answers", "wrong"), ("unknown", "unknown")):
            miss = [r for r in rows if r["verdict"] == verdict]
            lines += ["", f"Batch {bt.number}, {title} at first contact:", ""]
            if not miss:
                lines.append("None.")
                continue
            lines += ["| log | label | explain said | why it missed | thread |", "|---|---|---|---|---|"]
            for r in miss:
                case = by_file.get(r["file"])
                url = case.url if case else ""
                got = r["got"] + (f" ({r['confidence']})" if r.get("confidence") else "")
                lines.append(
                    f"| {r['file']} | {r['label']} | {got} | {r.get('note', '').replace('|', chr(92) + '|')} | {url} |"
                )
    return lines


def _blind_now_section(blind_ho: list[Result]) -> list[str]:
    b = summarize(blind_ho)
    cited = _cited_regexes(ex.load_catalog(), "blind:")
    lines = [
        "",
        "## Blind set, held-out with today's catalog (grouped cross-validation)",
        "",
        "Each blind log is explained by the catalog without every pattern that cites a log of its "
        'group (`from = ["blind:NNN"]`), so a pattern written after the first contact from one '
        "thread is never scored on that thread. This number is no longer blind (the misses above "
        "guided the changes); the first contact is.",
        "",
        f"**{b.correct}/{b.n} = {_pct(b.accuracy)}, {b.wrong} wrong, {b.unknown} unknown.**",
        "",
    ]
    lines += _id_table(list(per_id(blind_ho).items()))
    lines += [
        "",
        "### Catalog regexes written after the first contact",
        "",
        "Each cites the blind log whose miss revealed its failure class (and the tool source it was "
        "checked against), so the cross-validation above leaves it out for that log's group. Changes "
        "to explain's reading itself (code, not data) cannot be left out: docs/explain.md lists them.",
        "",
    ]
    if cited:
        lines += ["| entry | kind | regex | from | note |", "|---|---|---|---|---|"]
        for fid, kind, pat, cites, note in cited:
            pat_md = pat.replace("|", "\\|").replace("`", "'")
            lines.append(
                f"| {fid} | {kind} | `{pat_md}` | {'; '.join(cites).replace('|', '/')} | {note.replace('|', '/')} |"
            )
    else:
        lines.append("None.")
    lines += _misses("### Wrong (blind, held-out)", [r for r in blind_ho if r.verdict == "wrong"])
    lines += _misses("### Unknown (blind, held-out)", [r for r in blind_ho if r.verdict == "unknown"])
    return lines


def _misses(heading: str, rows: list[Result]) -> list[str]:
    """A report section listing the logs explain missed: heading, then their table (or "None.")."""
    lines = ["", heading, ""]
    if not rows:
        return lines + ["None."]
    lines += ["| log | label | explain said | confidence | thread |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.case.path.name} | {r.case.label} | {r.got} | {r.confidence or '-'} | {r.case.url} |")
    return lines


def _catalog_table(cat, public: list[Result], project: list[Result]) -> list[str]:
    """Every id: its logs in both corpora and the doctor checks that see it before it happens."""
    from mamba_build import tables

    notes = {f["id"]: f.get("doctor_note", "") for f in tables.load("failures")["failure"]}
    n_pub: dict[str, int] = {}
    n_proj: dict[str, int] = {}
    for rows, counts in ((public, n_pub), (project, n_proj)):
        for r in rows:
            counts[r.case.label] = counts.get(r.case.label, 0) + 1
    lines = [
        "",
        "## Catalog: logs per id, and what `mamba-build doctor` sees before a build",
        "",
        "`doctor` lists the check ids (`family:` = every check of that family) from the entry's `doctor` "
        "field in `mamba_build/data/failures.toml`; `-` = not knowable from the machine (the note says why).",
        "",
        "| id | phase | public + blind logs | project logs | doctor checks | note |",
        "|---|---|---:|---:|---|---|",
    ]
    for e in cat.entries:
        checks = ", ".join(f"`{c}`" for c in e.doctor) or "-"
        lines.append(
            f"| {e.id} | {e.phase} | {n_pub.get(e.id, 0)} | {n_proj.get(e.id, 0)} | {checks} | {notes.get(e.id, '')} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mamba_build.diagnose.explain_eval", description=__doc__.split("\n")[0])
    ap.add_argument("--write", metavar="FILE", help="write the Markdown report there")
    ap.add_argument("--check", action="store_true", help="exit 1 when below MIN_ACCURACY or above MAX_WRONG")
    ap.add_argument(
        "--record-first-contact",
        nargs=3,
        metavar=("BATCH", "CATALOG_COMMIT", "LABELS_COMMIT"),
        help="score one batch of the blind set with the catalog as it is and record it in "
        "tests/data/public-logs-blind/FIRST_CONTACT.toml (once, before any change made from it)",
    )
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    cases = public_cases()
    ho = evaluate(cases, held_out=True)
    allp = evaluate(cases, held_out=False)
    proj = evaluate(project_cases(), held_out=True)
    blind = evaluate(blind_cases(), held_out=True) if (BLIND / "SOURCES.toml").exists() else []
    if a.record_first_contact:
        number, catalog_commit, labels_commit = a.record_first_contact
        batch = [r for r in blind if r.case.batch == int(number)]
        record_first_contact(batch, Batch(int(number), catalog_commit, labels_commit, time.strftime("%Y-%m-%d")))
        b = summarize(batch)
        print(
            f"first contact recorded: {b.correct}/{b.n} correct ({_pct(b.accuracy)}), {b.wrong} wrong, "
            f"{b.unknown} unknown -> {FIRST_CONTACT}",
            file=sys.stderr,
        )
        return 0
    seconds = time.monotonic() - t0
    text = render(ho, allp, proj, seconds, blind, load_first_contact())
    if a.write:
        Path(a.write).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    s, b, g = summarize(ho), summarize(blind), summarize(ho + blind)
    print(
        f"held-out: public {s.correct}/{s.n} ({_pct(s.accuracy)}, {s.wrong} wrong, {s.unknown} unknown), "
        f"blind {b.correct}/{b.n} ({b.wrong} wrong, {b.unknown} unknown), together {_pct(g.accuracy)} "
        f"in {seconds:.1f} s",
        file=sys.stderr,
    )
    if a.check and (g.accuracy < MIN_ACCURACY or s.wrong > MAX_WRONG or b.wrong > MAX_WRONG_BLIND):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
