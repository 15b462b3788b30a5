"""The domain apps import each other in one direction only, read from the source.

integrations (tenants, integrations, the engine) is at the bottom: it never
imports alerts (alerts react to its committed events). What shows data of
several apps at once (the portal and the JSON API, the admin site) lives
above them, outside these apps. Imports inside functions count too: they
hide a cycle, they do not remove it.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ("integrations", "issues", "alerts", "audit")


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def app_edges():
    """{(from app, to app): [file:module, ...]} for imports between different domain apps."""
    edges = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for module in imported_modules(path):
                target = module.split(".")[0]
                if target in APPS and target != app:
                    edges.setdefault((app, target), []).append(f"{path.relative_to(ROOT)}: {module}")
    return edges


def find_cycle(edges):
    graph = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    visiting, done = [], set()

    def visit(node):
        if node in visiting:
            return visiting[visiting.index(node):] + [node]
        if node in done:
            return None
        visiting.append(node)
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_integrations_never_imports_alerts():
    edges = app_edges()
    assert edges.get(("integrations", "alerts"), []) == []


def test_no_cycle_between_the_domain_apps():
    edges = app_edges()
    cycle = find_cycle(edges)
    details = [] if not cycle else [f"{a} -> {b}: {edges[(a, b)][:3]}" for a, b in zip(cycle, cycle[1:])]
    assert cycle is None, details


def test_the_graph_reader_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from alerts import rules\n")
    assert list(imported_modules(module)) == ["alerts"]
