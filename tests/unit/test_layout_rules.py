"""Rules about the shape of the source tree: the module-level import graph of src/lightfold has no
circle; lightfold's packages (cli, release, providers, remote, ...) form layers, counting every
import, also those inside functions (which are how heavy libraries load late, and are allowed); and
no source file is longer than 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "lightfold"
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_imports(path: Path) -> set[str]:
    """Every absolute lightfold import in `path`, wherever it stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("lightfold.")}


def package_of(module: str) -> str:
    """`lightfold.release.push` -> `lightfold.release`; a top-level module is its own package."""
    return ".".join(module.split(".")[:2])


def module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The lightfold modules `path` imports when it is imported: top-level statements, including
    those under `if`/`try` at top level, but not inside functions, classes or `if TYPE_CHECKING`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:  # `from pkg import module` imports the module, else pkg itself
                    found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    # Importing a.b.c runs a and a.b first; the importing module's own packages are already
    # being imported by then, so only an explicit import of one of them is an edge.
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    edges = set()
    for target in found:
        parts = target.split(".")
        edges.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p not in own)
        edges.add(target)
    return {m for m in edges if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: module_level_imports(path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph (as a path that returns to its start), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        on_path = {start}
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                on_path.discard(node)
                done.add(node)
                continue
            nxt = todo.pop()
            if nxt in on_path:
                path = [n for n, _ in stack]
                return path[path.index(nxt):] + [nxt]
            if nxt not in done:
                stack.append((nxt, sorted(graph[nxt])))
                on_path.add(nxt)
        done.add(start)
    return None


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_module_level_imports_form_no_circle():
    graph = import_graph()
    assert "lightfold.cli" in graph and graph["lightfold.providers.hetzner"]  # the graph is real
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_packages_form_layers_counting_imports_inside_functions():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = {package_of(m) for m in files}
    layers: dict[str, set[str]] = {p: set() for p in known}
    for name, path in files.items():
        for target in all_imports(path):
            # `from lightfold import config` names the module lightfold.config
            to = package_of(target) if package_of(target) in known else None
            if to and to != package_of(name) and to != "lightfold":
                layers[package_of(name)].add(to)
    assert "lightfold.release" in layers["lightfold.cli"]  # the graph is real
    cycle = find_cycle(layers)
    assert cycle is None, "packages import each other: " + " -> ".join(cycle)


def test_no_source_file_is_longer_than_600_lines():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the tree is really there
    long = {f"{p.relative_to(SRC)}: {n}" for p in files
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these along their seams (at most {MAX_LINES} lines each): {sorted(long)}"
