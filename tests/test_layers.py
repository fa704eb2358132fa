"""The layers of CONTRIBUTING.md, checked on the source: which module may import which.

Every ``import`` of a mailpost module counts, at module level or inside a function (a run
time edge), except those under ``if TYPE_CHECKING:``. The edges that still go up a layer
and the cycles that remain are listed below with what they are; the test fails on any new
one, and on a listed one that is gone (so that the list shrinks as they are fixed).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

#: Top to bottom: a module may import its own layer and the layers above it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "mailpost.exceptions",
            "mailpost._deprecation",
            "mailpost._delivery",
            "mailpost._django",
            "mailpost.utils",
            "mailpost._config",
            "mailpost._capture",
        ),
    ),
    (
        "compose",
        (
            "mailpost.message",
            "mailpost._mime",
            "mailpost._mime_parts",
            "mailpost._mime_compat",
            "mailpost._headers",
        ),
    ),
    ("configure", ("mailpost.handler", "mailpost._urls", "mailpost.backends.base")),
    ("send", ("mailpost._api", "mailpost._admins")),
    (
        "transport",
        (
            "mailpost.backends",
            "mailpost._smtp",
            "mailpost._suppressions",
            "mailpost._preview_store",
        ),
    ),
    ("deliver", ("mailpost.spool",)),
    (
        "integrate",
        (
            "mailpost",
            "mailpost.__main__",
            "mailpost.integrations",
            "mailpost._cli",
            "mailpost.testing",
            "mailpost.events",
            "mailpost.templates",
            "mailpost.preview",
            "mailpost.log",
        ),
    ),
]

#: Upward edges that are part of the design.
ALLOWED = {
    ("mailpost.message", "mailpost._api"): "the spec's EmailMessage.send() looks up a mailer",
    ("mailpost.backends.spool", "mailpost.spool.backend"): "the spec-style dotted path",
    ("mailpost.backends.locmem", "mailpost"): "the spec's outbox is an attribute of the package "
    "(tests rebind it); locmem appends to the list that is there at send time",
}

#: Upward edges still to remove, with what each is (none left: keep it that way).
KNOWN: dict[tuple[str, str], str] = {}

#: Import cycles still to break (issue 11).
KNOWN_CYCLES: list[set[str]] = []


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_only(child):
                for other in child.orelse:
                    visit_one(other)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        visit(node)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {t for t in _imports(ast.parse(path.read_text()), modules) if t in modules} - {name}
        for name, path in modules.items()
    }


def _layer(module: str) -> int:
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS (and CONTRIBUTING.md)"
    return best[0]


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_every_module_is_in_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_no_import_goes_up_a_layer_beyond_the_listed_ones() -> None:
    graph = _graph()
    upward = {(a, b) for a, targets in graph.items() for b in targets if _layer(b) > _layer(a)}
    assert upward - ALLOWED.keys() - KNOWN.keys() == set()
    assert (ALLOWED.keys() | KNOWN.keys()) - upward == set(), "fixed: remove it from the list"


def test_no_import_cycle_beyond_the_listed_ones() -> None:
    """Apart from the allowed upward edges (EmailMessage.send() looks up a mailer, so the
    spec itself makes message -> _api -> handler -> backends -> message a loop)."""
    graph = _graph()
    for source, target in ALLOWED:
        graph[source].discard(target)
    cycles = _cycles(graph)
    assert sorted(map(sorted, cycles)) == sorted(map(sorted, KNOWN_CYCLES))


def test_the_checker_sees_an_upward_edge_and_a_cycle() -> None:
    graph = {"mailpost.message": {"mailpost.spool.worker"}, "mailpost.spool.worker": set()}
    assert _layer("mailpost.spool.worker") > _layer("mailpost.message")
    graph["mailpost.spool.worker"] = {"mailpost.message"}
    assert _cycles(graph) == [{"mailpost.message", "mailpost.spool.worker"}]
