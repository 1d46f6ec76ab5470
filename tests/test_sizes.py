"""Modules small enough to read in one sitting (issue 21's goals): no module over 400
lines, no class over 200 (its docstring aside), every module's first line saying what it is."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reacher"
MAX_MODULE_LINES, MAX_CLASS_LINES = 400, 200


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_400_lines_and_no_class_over_200():
    too_long = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(PACKAGE))
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                doc = ast.get_docstring(node)
                lines = node.end_lineno - node.lineno + 1 - (doc.count("\n") + 1 if doc else 0)
                if lines > MAX_CLASS_LINES:
                    too_long.append(f"{name}: class {node.name} {lines} lines")
    assert not too_long, too_long


def test_every_module_says_what_it_is():
    silent = [str(p.relative_to(PACKAGE)) for p in _modules()
              if p.name != "__main__.py" and not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert not silent, silent
