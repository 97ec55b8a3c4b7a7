"""localcluster's modules import each other without cycles (also between its parts, e.g.
dns and node), and localcluster imports nothing of the operator or the harness."""

from __future__ import annotations

import ast
from pathlib import Path

import localcluster

ROOT = Path(localcluster.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts).removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module name `path` imports (at any level, TYPE_CHECKING blocks included);
    `from pkg import mod` counts as importing pkg.mod."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def _graph(group: int | None) -> dict[str, set[str]]:
    """Module -> modules it imports; with `group`, names cut to that many parts (so
    `localcluster.node.pod` counts as `localcluster.node` for group=2)."""
    modules = _modules()

    def key(name: str) -> str:
        return ".".join(name.split(".")[:group]) if group else name

    graph: dict[str, set[str]] = {key(m): set() for m in modules}
    for module, path in modules.items():
        imported = _imports(path)
        # `from pkg import mod` reaches pkg/__init__ only to find mod: count mod alone.
        packages = {n.rpartition(".")[0] for n in imported if n in modules}
        for name in imported - packages:
            if name in modules and key(name) != key(module):
                graph[key(module)].add(key(name))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for nxt in sorted(graph[node]):
            if found := visit(nxt):
                return found
        visiting.pop()
        done.add(node)
        return None

    return next((c for n in sorted(graph) if (c := visit(n))), None)


def test_no_import_cycles_between_modules() -> None:
    assert _cycle(_graph(None)) is None


def test_no_import_cycles_between_top_level_parts() -> None:
    assert _cycle(_graph(2)) is None


def test_localcluster_imports_neither_the_operator_nor_the_harness() -> None:
    for module, path in _modules().items():
        outside = {n for n in _imports(path) if n.split(".")[0] in ("etcd_operator", "harness")}
        assert not outside, f"{module} imports {sorted(outside)}"
