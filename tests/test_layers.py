"""The import arrows of ARCHITECTURE.md, read from the code (grimp builds the import graph).

channels → engine (bots.core) → nlu → kernel (kanal); bridge → kernel. The composition root
(``kanal.app``) may import every part and nothing imports it but an entry point (a
``__main__``). No module cycles inside a part, channels do not know each other. TYPE_CHECKING
imports count: a circle hidden behind one is still a circle.
"""

from __future__ import annotations

from collections.abc import Iterable

import grimp
import pytest

PARTS = ("kanal", "bots", "bridge", "nlu")
ROOT = "kanal.app"


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _entry(module: str) -> bool:
    return module.rsplit(".", 1)[-1] == "__main__"


def _kernel(module: str) -> bool:
    return _in(module, "kanal") and not _in(module, ROOT) and not _entry(module)


def _channel(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "bots" and len(parts) > 1 and parts[1] != "core":
        return "bots." + parts[1]
    return None


# (what, source predicate, forbidden target predicate)
RULES = (
    ("bridge imports nothing from bots/", lambda m: _in(m, "bridge"), lambda t: _in(t, "bots")),
    ("bridge imports nothing from nlu/", lambda m: _in(m, "bridge"), lambda t: _in(t, "nlu")),
    ("nlu imports nothing from bots/", lambda m: _in(m, "nlu"), lambda t: _in(t, "bots")),
    ("nlu imports nothing from bridge/", lambda m: _in(m, "nlu"), lambda t: _in(t, "bridge")),
    ("bots/ import nothing from bridge/", lambda m: _in(m, "bots"), lambda t: _in(t, "bridge")),
    (
        "the kernel imports no part above it",
        _kernel,
        lambda t: any(_in(t, p) for p in ("bots", "bridge", "nlu", ROOT)),
    ),
    (
        "nothing but an entry point imports the composition root",
        lambda m: not _in(m, ROOT),
        lambda t: _in(t, ROOT),
    ),
)


def violations(graph: grimp.ImportGraph) -> list[str]:
    found: list[str] = []
    modules = sorted(graph.modules)
    for module in modules:
        if _entry(module):
            continue  # python -m …: an entry point composes like the root does
        imported = graph.find_modules_directly_imported_by(module)
        for what, source, forbidden in RULES:
            if not source(module):
                continue
            for target in sorted(imported):
                if forbidden(target):
                    found.append(f"{what}: {module} -> {target}")
        channel = _channel(module)
        for target in sorted(imported):
            other = _channel(target)
            if channel and other and other != channel:
                found.append(f"channels do not import each other: {module} -> {target}")
    for package in PARTS:
        found += [f"import cycle in {package}: {' -> '.join(c)}" for c in _cycles(graph, package)]
    return found


def _cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Module cycles inside one part (direct imports between its own modules)."""
    nodes = [m for m in graph.modules if _in(m, package) and not _entry(m)]
    edges = {
        m: sorted(
            t
            for t in graph.find_modules_directly_imported_by(m)
            if _in(t, package) and not _entry(t) and t != m
        )
        for m in nodes
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in edges.get(m, []):
            # A package's __init__ re-exporting its own modules is not a cycle of substance.
            if _in(m, t) and m != t:
                continue
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(nodes):
        if m not in state:
            visit(m)
    return cycles


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PARTS, cache_dir=None)


def _show(found: Iterable[str]) -> str:
    return "\n".join(found)


def test_the_code_keeps_the_arrows(graph: grimp.ImportGraph) -> None:
    found = violations(graph)
    assert not found, _show(found)


@pytest.mark.parametrize(
    ("importer", "imported", "rule"),
    [
        ("bridge.status", "bots.core.engine", "bridge imports nothing from bots/"),
        ("nlu.client", "bots.core.prompts", "nlu imports nothing from bots/"),
        ("bots.core.engine", "bridge.submitter", "bots/ import nothing from bridge/"),
        ("kanal.streams", "bots.core.sessions", "the kernel imports no part above it"),
        ("bots.console.worker", "kanal.app.runtime", "nothing but an entry point imports"),
        ("bots.core.steps", "bots.core.engine", "import cycle in bots"),
        ("kanal.media", "kanal.mediastore", "import cycle in kanal"),
    ],
)
def test_an_arrow_that_comes_back_fails(importer: str, imported: str, rule: str) -> None:
    mutated = grimp.build_graph(*PARTS, cache_dir=None)
    mutated.add_import(importer=importer, imported=imported)
    found = violations(mutated)
    assert any(f.startswith(rule) for f in found), _show(found)
