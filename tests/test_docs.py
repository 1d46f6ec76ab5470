"""The documentation stays true: its quick start, links, file paths, module names, code
map and config reference match the tree."""

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "reacher"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE_MAP = ROOT / "docs" / "architecture.md"


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _ids(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _prose(page: Path) -> str:
    """The page without its fenced code blocks: a `](` or a path inside example code is
    code, not a claim about the tree."""
    return re.sub(r"^```.*?^```", "", _text(page), flags=re.S | re.M)


def test_quick_start_is_exactly_make_demo_and_make_test():
    readme = _text(ROOT / "README.md")
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    assert block.split("\n")[:-1] == ["make demo", "make test"]


def test_config_reference_is_generated_from_the_dataclass():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_table.py"), "--check"])
    assert result.returncode == 0, "docs/configuration.md's config table is stale: run python scripts/config_table.py"


def test_config_check_fails_on_a_stale_table(tmp_path, monkeypatch):
    """The check above can fail: a table with a field missing is not what the script writes."""
    spec = importlib.util.spec_from_file_location("config_table", ROOT / "scripts" / "config_table.py")
    config_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config_table)
    page = _text(config_table.PAGE)
    assert config_table.render(page) == page
    stale = re.sub(r"^\| `seed` \|.*\n", "", page, flags=re.M)
    assert stale != page and config_table.render(stale) != stale
    copy = tmp_path / "configuration.md"
    copy.write_text(stale, encoding="utf-8")
    monkeypatch.setattr(config_table, "PAGE", copy)
    monkeypatch.setattr(sys, "argv", ["config_table.py", "--check"])
    assert config_table.main() == 1


def test_makefile_targets_the_readme_promises():
    makefile = _text(ROOT / "Makefile")
    for target in ("demo:", "test:", "bench:"):
        assert re.search(rf"^{target}", makefile, re.M), target
    assert "torch==2.13.0" in _text(ROOT / "constraints.txt")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    heading = re.sub(r"[`*]", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", _prose(page), re.M)}


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page)):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_file():
            broken.append(f"{target}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=_ids)
def test_every_relative_link_points_at_a_file_that_exists(page):
    assert not _broken_links(page)


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n[a](missing.md) [b](#title) [c](#nowhere) [d](https://x.org/y)\n")
    assert _broken_links(page) == [f"missing.md: no file {tmp_path / 'missing.md'}",
                                   "#nowhere: no heading #nowhere in page.md"]


_PATH = re.compile(r"(?<![\w/.-])((?:reacher|tests|scripts|examples|assets|docs|videos)/[\w./-]*[\w/])")
# the pages' placeholders: videos/NAME.mp4, videos/NAME_curve.png, RUN/policy.onnx
_PLACEHOLDER = re.compile(r"(^|/)(NAME|RUN|DIR|OUT|FILE|ARM)(?=[._/]|$)")


def _missing_paths(text: str) -> list[str]:
    """Files (a name with a suffix) and folders (a trailing slash) named in `text`."""
    named = {m for m in _PATH.findall(text) if m.endswith("/") or "." in m.rsplit("/", 1)[-1]}
    return sorted(p for p in named if not _PLACEHOLDER.search(p) and not (ROOT / p).exists())


@pytest.mark.parametrize("page", PAGES, ids=_ids)
def test_every_file_the_docs_name_exists(page):
    """`reacher/task/reward.py`, `examples/arms/panda.xml`, `scripts/bench_arms.py`: the
    files a page names are in the tree (ids such as reacher/Reach-v0 have no suffix)."""
    assert not _missing_paths(_text(page))


def test_a_stale_path_is_found():
    text = ("see `reacher/env.py`, reacher/task/reward.py, videos/NAME_curve.png, reacher/Reach-v0, "
            "reacher/sim/, reacher/learn/ and examples/arms/README.md.")
    assert _missing_paths(text) == ["reacher/env.py", "reacher/learn/"]
    assert _missing_paths("examples/arms/READ_ME.md") == ["examples/arms/READ_ME.md"]


def _module_file(parts: list[str]) -> Path | None:
    base = PACKAGE.parent.joinpath(*parts)
    for file in (base.with_suffix(".py"), base / "__init__.py"):
        if file.is_file():
            return file
    return None


def _top_level_names(file: Path) -> set[str]:
    names = set()
    for node in ast.parse(file.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _unknown_dotted_names(text: str) -> list[str]:
    """`reacher.task.randomize.wrap`, `reacher.load_policy`: the module exists and
    defines the name (the package's own names are its lazily loaded API)."""
    import reacher

    unknown = []
    for dotted in sorted(set(re.findall(r"(?<![\w/.])reacher(?:\.\w+)+", text))):
        parts = dotted.split(".")
        # the longest prefix that is a module; what follows must be defined in it
        depth = max(i for i in range(1, len(parts) + 1) if _module_file(parts[:i]))
        rest = parts[depth:]
        if not rest:
            continue
        if depth == 1:
            known = rest[0] in dir(reacher)
        else:
            known = rest[0] in _top_level_names(_module_file(parts[:depth]))
        if not known:
            unknown.append(dotted)
    return unknown


@pytest.mark.parametrize("page", PAGES, ids=_ids)
def test_every_module_and_name_the_docs_name_exists(page):
    assert not _unknown_dotted_names(_text(page))


def test_a_stale_module_name_is_found():
    text = "reacher.task.randomize.wrap, reacher.load_policy, reacher.adapt.resolve, reacher.run.gate"
    assert _unknown_dotted_names(text) == ["reacher.adapt.resolve"]


def _subpackages() -> list[str]:
    return sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def _modules() -> list[str]:
    """'sim/arm.py', 'config.py': every module of the package, by its path in it."""
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))


def test_code_map_names_every_subpackage():
    assert _subpackages(), "no subpackages found"
    for page in (CODE_MAP, ROOT / "README.md"):
        text = _text(page)
        missing = [s for s in _subpackages() if f"reacher/{s}/" not in text]
        assert not missing, f"{page.name} does not name {missing}"


def test_code_map_names_every_module():
    """The map lists each folder's modules under its own heading (`**`reacher/sim/`**`)
    and the root's under "The base" and "Entry points"."""
    text = _text(CODE_MAP)
    listed = set()
    for folder, body in re.findall(r"\*\*`reacher/([\w/]+?)/`\*\*(.*?)(?=\n\n)", text, re.S):
        listed |= {f"{folder}/{m}" for m in re.findall(r"`(\w+\.py)`", body)}
    for body in re.findall(r"\*\*(?:The base|Entry points)\*\*(.*?)(?=\n\n|\*\*`)", text, re.S):
        listed |= set(re.findall(r"`(\w+\.py)`", body))
    missing = [m for m in _modules() if m not in listed and not m.endswith("/__init__.py")]
    assert not missing, f"docs/architecture.md's 'Every module' does not name {missing}"
    gone = sorted(listed - set(_modules()))
    assert not gone, f"docs/architecture.md names modules that are not there: {gone}"


def _layer_rule_in_the_map() -> dict[str, set[str]]:
    rule = {}
    for folder, allowed in re.findall(r"^\| `reacher/(\w+)/` \| ([^|]*) \|$", _text(CODE_MAP), re.M):
        rule[folder] = set() if allowed.strip() == "nothing" else {a.strip() for a in allowed.split(",")}
    return rule


def test_code_map_states_the_layering_that_test_layers_enforces():
    spec = importlib.util.spec_from_file_location("test_layers", ROOT / "tests" / "test_layers.py")
    layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layers)
    enforced = {k: v for k, v in layers.BELOW.items() if k != "base"}
    assert _layer_rule_in_the_map() == enforced


def test_every_page_is_reachable_from_the_index():
    """A page nobody links to is a page nobody reads: docs/README.md lists them all."""
    index = _text(ROOT / "docs" / "README.md")
    unlisted = [p.name for p in PAGES[1:] if p.name != "README.md" and f"]({p.name})" not in index]
    assert not unlisted, f"docs/README.md does not link {unlisted}"


def _commands() -> list[str]:
    import argparse

    from reacher.cli import build_parser

    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def test_readme_lists_every_command():
    """The README's command table has a row for each `reacher` subcommand, linking its page."""
    rows = re.findall(r"^\| `reacher (\w+)[^`]*` \|.*\]\((docs/[\w.#-]+)\) \|$", _text(ROOT / "README.md"), re.M)
    assert _commands() and sorted(name for name, _ in rows) == _commands()
