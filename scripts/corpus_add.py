#!/usr/bin/env python3
"""Add real public logs to tests/data/public-logs/ from a staging file (a collecting helper).

The staging file holds records, each:

    @@@ id=<failure id> url=<thread url> [group=<group>] [tags=a,b]
    why: <one line: what the thread's resolution says>
    ---
    <the log text exactly as the thread quotes it>

Each record becomes ``tests/data/public-logs/NNN-<id>.log`` (the next free number) and one
``[[log]]`` table appended to ``SOURCES.toml``. A record whose text is already in the corpus
(same text after whitespace normalisation) is skipped, so one thread quoted twice stays one entry.

Usage: python scripts/corpus_add.py STAGING_FILE [--dry-run]
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "public-logs"


def _norm(text: str) -> str:
    return hashlib.sha256(re.sub(r"\s+", " ", text).strip().encode()).hexdigest()


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse(staging: str) -> list[dict]:
    records = []
    for chunk in re.split(r"^@@@ ", staging, flags=re.M)[1:]:
        head, _, rest = chunk.partition("\n")
        fields = dict(kv.split("=", 1) for kv in head.split())
        why_line, _, body = rest.partition("\n---\n")
        assert why_line.startswith("why: "), f"record {head!r}: no 'why:' line"
        text = body.rstrip("\n") + "\n"
        records.append({**fields, "why": why_line[5:].strip(), "text": text})
    return records


def main(argv: list[str]) -> int:
    dry = "--dry-run" in argv
    src = Path([a for a in argv if not a.startswith("--")][0])
    CORPUS.mkdir(parents=True, exist_ok=True)
    existing = {_norm(p.read_text(encoding="utf-8")): p.name for p in CORPUS.glob("*.log")}
    numbers = [int(p.name[:3]) for p in CORPUS.glob("[0-9][0-9][0-9]-*.log")]
    nxt = max(numbers, default=0) + 1
    out = []
    for rec in parse(src.read_text(encoding="utf-8")):
        h = _norm(rec["text"])
        if h in existing:
            print(f"skip (duplicate of {existing[h]}): {rec['url']}")
            continue
        name = f"{nxt:03d}-{rec['id']}.log"
        nxt += 1
        existing[h] = name
        tags = [t for t in rec.get("tags", "").split(",") if t]
        out.append(
            f"\n[[log]]\nfile = {_toml_str(name)}\nid = {_toml_str(rec['id'])}\nurl = {_toml_str(rec['url'])}\n"
            f"group = {_toml_str(rec.get('group') or rec['url'])}\n"
            f"tags = [{', '.join(_toml_str(t) for t in tags)}]\nwhy = {_toml_str(rec['why'])}\n"
        )
        print(f"{name}  {rec['url']}")
        if not dry:
            (CORPUS / name).write_text(rec["text"], encoding="utf-8")
    if not dry and out:
        with open(CORPUS / "SOURCES.toml", "a", encoding="utf-8") as fh:
            fh.write("".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
