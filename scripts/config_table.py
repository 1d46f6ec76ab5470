"""Regenerate the configuration reference, docs/configuration.md, from reacher.config.Config.

    python scripts/config_table.py          # rewrite docs/configuration.md in place
    python scripts/config_table.py --check  # exit 1 if docs/configuration.md is out of date
"""

import sys
from pathlib import Path

from reacher.config import fields

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"
PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def table() -> str:
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for f in fields():
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        rows.append(f"| `{f.name}` | `{default!r}` | {f.metadata['help']} |".replace("`''`", "`\"\"`"))
    return "\n".join(rows)


def render(page: str) -> str:
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main() -> int:
    path = PAGE
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in sys.argv:
        return 0 if new == text else 1
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
