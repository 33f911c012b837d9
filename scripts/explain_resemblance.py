#!/usr/bin/env python3
"""Would answering by resemblance help `explain` on the logs its catalog leaves unknown? (issue 16, measured)

An experiment, not a feature: for every log of the public corpus and the blind set that explain answers
"unknown" held-out (grouped cross-validation, as docs/explain-evaluation.md), take the k most similar logs
of OTHER groups (cosine of TF-IDF vectors over words and word pairs) and, when all k carry one label and
the k-th is at least as similar as a threshold, answer that label. Labels of the log's own group are never
used; document frequencies are counted over every log's text (no labels). Prints a Markdown table of what
the fallback would add: correct answers, wrong answers on labelled logs, and logs labelled unknown that it
would turn wrong, with the held-out accuracy and wrong count that would result.

    PYTHONPATH=. .venv/bin/python scripts/explain_resemblance.py        # about 20 s on the 2-core machine
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mamba_build.diagnose import explain_eval as ev  # noqa: E402

WORD = re.compile(r"[A-Za-z_]{3,}")
# lines that report a failure, for the second feature set (the rest of a log is mostly pip/env noise)
FAILURE_LINE = re.compile(
    r"error|fatal|fail|undefined|cannot|can't|not found|no module|no such|unable|killed|unsupported|mismatch"
    r"|requires?|warning",
    re.I,
)
KS = (1, 2, 3)
THRESHOLDS = (0.2, 0.3, 0.4, 0.5)


def _features(text: str, lines_only: bool) -> set[str]:
    out: set[str] = set()
    for line in text.splitlines() if lines_only else [text]:
        if lines_only and not FAILURE_LINE.search(line):
            continue
        words = [w.lower() for w in WORD.findall(line)]
        out.update(words)
        out.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
    return out


def _vectors(feats: dict[str, set[str]]) -> dict[str, dict[str, float]]:
    df: Counter[str] = Counter()
    for f in feats.values():
        df.update(f)
    n = len(feats)
    idf = {t: math.log(n / c) for t, c in df.items() if c >= 2}
    out = {}
    for ref, f in feats.items():
        v = {t: idf[t] for t in f if t in idf}
        norm = math.sqrt(sum(w * w for w in v.values())) or 1.0
        out[ref] = {t: w / norm for t, w in v.items()}
    return out


def _cos(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def _label(r: ev.Result) -> str:
    return "unknown" if r.case.label in ev.NO_CAUSE_LABELS else r.case.label


def main() -> int:
    results = ev.evaluate(ev.public_cases() + ev.blind_cases(), held_out=True)
    base = ev.summarize(results)
    texts = {r.case.ref: r.case.path.read_text(encoding="utf-8", errors="replace") for r in results}
    print(
        f"held-out today: {base.correct}/{base.n} = {100 * base.accuracy:.1f} %, {base.wrong} wrong, "
        f"{sum(r.got == 'unknown' for r in results)} logs answered unknown\n"
    )
    for name, lines_only in (("whole log", False), ("failure lines only", True)):
        vec = _vectors({ref: _features(t, lines_only) for ref, t in texts.items()})
        ranked = []
        for r in results:
            if r.got != "unknown":
                continue
            near = sorted(
                ((_cos(vec[r.case.ref], vec[o.case.ref]), _label(o)) for o in results if o.case.group != r.case.group),
                reverse=True,
            )[: max(KS)]
            ranked.append((r, near))
        print(f"### Features: {name}\n")
        print(
            "| k nearest agree | similarity >= | correct added | wrong (labelled) | labelled unknown turned wrong "
            "| held-out accuracy | wrong |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for k in KS:
            for th in THRESHOLDS:
                gain = wrong = broke = 0
                for r, near in ranked:
                    top = near[:k]
                    labels = {lab for _, lab in top}
                    if len(labels) != 1 or top[-1][0] < th:
                        continue
                    guess = labels.pop()
                    if guess == "unknown":
                        continue
                    if guess == _label(r):
                        gain += 1
                    elif _label(r) == "unknown":
                        broke += 1
                    else:
                        wrong += 1
                acc = (base.correct + gain - broke) / base.n
                print(f"| {k} | {th} | {gain} | {wrong} | {broke} | {100 * acc:.1f} % | {base.wrong + wrong + broke} |")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
