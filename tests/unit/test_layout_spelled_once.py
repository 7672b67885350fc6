"""No server path or unit name is spelled outside lightfold.agent.layout.

Every string literal of src/ (f-strings with their {placeholders} shown as `{}`) and every line
of the jinja templates is checked. Docstrings, comments and template comments may describe the
layout; code must ask lightfold.agent.layout.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lightfold"
LAYOUT = SRC / "agent" / "layout.py"

# A path under one of lightfold's server directories, absolute or relative to "/" (`cd / && ... srv/x`).
SERVER_PATH = re.compile(r"(?<![\w.-])/?(srv(/|$)|(etc|usr/local/lib)/lightfold(?![\w-]))")
# A unit, nginx site/upstream or image name made from a name put in: lightfold-<app>@<slot>.service,
# lightfold-<op>-<app>, lightfold_<app> (nginx), lightfold-<app>:<id> (docker), a template unit.
UNIT_NAME = re.compile(r"lightfold[-_]\{|@\{\}\.service|@\.service")
# The sandbox package names machines, overlays and bridges of this computer, not of a server.
HOST_SIDE = SRC / "sandbox"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _text(node: ast.JoinedStr) -> str:
    return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal in a Python file but its docstrings."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstring_nodes(tree)
    inside_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append((node.lineno, _text(node)))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
              and id(node) not in inside_fstring):
            found.append((node.lineno, node.value))
    return sorted(found)


def template_lines(path: Path) -> list[tuple[int, str]]:
    text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)
    return [(i, re.sub(r"\{\{.*?\}\}", "{}", line)) for i, line in enumerate(text.splitlines(), 1)
            if not line.lstrip().startswith("#") or line.startswith("#!")]


def spelled(path: Path, lines: list[tuple[int, str]]) -> list[str]:
    patterns = [SERVER_PATH] if HOST_SIDE in path.parents else [SERVER_PATH, UNIT_NAME]
    return [f"{path.relative_to(SRC)}:{n}: {text.strip()[:100]!r}"
            for n, text in lines for line in text.splitlines() if any(p.search(line) for p in patterns)]


def offenders() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if path != LAYOUT:
            bad += spelled(path, literals(path))
    for path in sorted(SRC.rglob("*.j2")):
        bad += spelled(path, template_lines(path))
    return bad


def test_server_paths_and_unit_names_are_spelled_only_in_the_layout_module():
    assert offenders() == []


def test_the_check_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may say /srv/<app>/current and lightfold-<app>@blue.service."""\n'
        "# so may comments: /etc/lightfold/created\n"
        "def f(app, slot):\n"
        '    """/srv/<app>/releases"""\n'
        '    a = f"/srv/{app}/current"\n'
        '    b = f"lightfold-{app}@{slot}.service"\n'
        '    c = "cat /etc/lightfold/apps/%s/configured" % app\n'
        "    d = 'cd / && sha256sum srv/' + app\n"
        '    e = f"lightfold-{op}-{app}"\n'
        '    g = "/usr/local/lib/lightfold"\n'
        '    h = "/var/lib/machines, /srvx, /etc/lightfold-image and lightfold-agent are not the server\'s"\n'
    )
    hits = [line.split(":")[1] for line in spelled(SRC / "x.py", literals(sample))]
    assert hits == ["5", "6", "7", "8", "9", "10"]
    template = tmp_path / "t.conf.j2"
    template.write_text("# Generated for /srv/{{ app }}\nupstream lightfold_{{ app }} {\n"
                        "    include /etc/lightfold/apps/{{ app }}/upstream.conf;\n")
    assert [line.split(":")[1] for line in spelled(SRC / "t.conf.j2", template_lines(template))] == ["2", "3"]
