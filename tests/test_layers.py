"""The package's folders are its architecture: each imports only from its own folder or the
layers below it (README, "How it works")."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reacher"
# The root's shared vocabulary sits below everything; its entry points above everything.
BASE = {"config", "errors", "files", "envids", "limits"}
TOP = {"__init__", "__main__", "api", "cli"}
# folder -> the folders it may import from (besides its own and BASE)
BELOW = {
    "base": set(),
    "sim": set(),
    "task": {"sim"},
    "ddpg": set(),
    "run": {"sim", "task", "ddpg"},
    "tools": {"sim", "task", "ddpg", "run"},
}


def _layer(module: str) -> str:
    """'reacher.sim.arm' -> 'sim'; 'reacher.config' -> 'base'; 'reacher.cli' -> 'top'."""
    parts = module.split(".")[1:]
    if not parts:
        return "package"
    if parts[0] in BELOW:
        return parts[0]
    return "base" if parts[0] in BASE else "top"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        yield path, ".".join(rel.parts)


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("reacher"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reacher"):
            if node.module == "reacher":  # from reacher import config, ...
                yield from (f"reacher.{a.name}" for a in node.names)
            else:
                yield node.module


def test_no_import_runs_back_up():
    wrong = []
    for path, module in _modules():
        layer = _layer(module)
        if layer in ("top", "package"):
            continue
        allowed = {layer, "base", "package"} | BELOW[layer]
        for imported in _imports(path):
            if _layer(imported) not in allowed:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, wrong


@pytest.mark.parametrize("path", [p for p, _ in _modules()], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_says_what_it_is(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.strip(), f"{path.name} has no docstring saying what it is"


def test_errors_have_one_home():
    """Every error class reacher raises (a subclass of a ValueError, OSError, ... or of
    another error) lives in reacher/errors.py, so any layer can raise or catch it. An
    exception that is a module's own control flow (a plain Exception subclass: a signal's
    stop, a private refusal) stays where it is used."""
    elsewhere = []
    for path, module in _modules():
        if module == "reacher.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases]
            if node.name.endswith("Error") or any(b.endswith("Error") for b in bases):
                elsewhere.append(f"{module}.{node.name}")
    assert not elsewhere, elsewhere
