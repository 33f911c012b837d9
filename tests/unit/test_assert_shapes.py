"""No assertion in tests/ that cannot fail because of how it is written.

``assert a and b or c`` reads as ``(a and b) or c``: once ``c`` holds, ``a`` and ``b`` are never checked (test_plan.py
had one). ``assert (x, "message")`` is a non-empty tuple: always true. Either shape must be written so that the
intent shows: parentheses around the ``and`` part when that is what is meant, or two assertions.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _parenthesized(src_lines: list[str], node: ast.AST) -> bool:
    line = src_lines[node.lineno - 1]
    before = line[: node.col_offset].rstrip()
    return before.endswith("(")


def weak_asserts(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Assert):
            continue
        test = node.test
        if isinstance(test, ast.Tuple) and test.elts:
            found.append(f"{path.name}:{node.lineno}: assert of a tuple is always true")
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
            for value in test.values:
                if isinstance(value, ast.BoolOp) and isinstance(value.op, ast.And) and not _parenthesized(lines, value):
                    found.append(f"{path.name}:{node.lineno}: `a and b or c` without parentheses: "
                                 f"{ast.get_source_segment(text, test)}")
    return found


def test_no_assert_in_tests_hides_behind_and_or_precedence():
    found = [w for f in sorted(TESTS.rglob("*.py")) for w in weak_asserts(f)]
    assert found == [], "\n".join(found)


def test_the_scan_finds_both_shapes(tmp_path):
    sample = tmp_path / "test_x.py"
    sample.write_text("def test():\n    assert a == 1 and b or c\n    assert (a and b) or c\n"
                      "    assert (x, 'never fails')\n    assert a or (b and c)\n")
    found = weak_asserts(sample)
    assert len(found) == 2 and ":2:" in found[0] and ":4:" in found[1]
