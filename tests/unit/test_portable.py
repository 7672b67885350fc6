"""Everything but `--provider local` works without root, off Linux and without the sandbox's host
tools (systemd-nspawn, mmdebstrap, iproute2, apt-cacher-ng, nftables): every other module imports,
and `detect` and `config` run, in a process that sees itself as an ordinary user's (uid 501, as
on a Mac), has an empty PATH and cannot import lightfold.sandbox (the one package that needs
Linux); and code outside the sandbox reaches it only on local-target paths."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import lightfold

SRC = Path(lightfold.__file__).parent
SANDBOX_ONLY = ("lightfold.sandbox", "lightfold.providers.local")

# Run first in each child process: not root, and no sandbox package.
AS_A_USER = r"""
import importlib.abc, os, sys

SANDBOX_ONLY = ("lightfold.sandbox", "lightfold.providers.local")

class NoSandbox(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in SANDBOX_ONLY or name.startswith(tuple(s + "." for s in SANDBOX_ONLY)):
            raise ModuleNotFoundError(f"{name} needs Linux and root", name=name)
        return None

sys.meta_path.insert(0, NoSandbox())
os.getuid = os.geteuid = lambda: 501
"""

PORTABLE_IMPORT = AS_A_USER + r"""
import importlib, json

failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as e:
        failed[name] = f"{type(e).__name__}: {e}"
print(json.dumps(failed))
"""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def portable_modules() -> list[str]:
    names = sorted(module_name(p) for p in SRC.rglob("*.py") if p.name != "__main__.py")
    return [n for n in names if not any(n == s or n.startswith(s + ".") for s in SANDBOX_ONLY)]


def user_env(tmp_path: Path) -> dict[str, str]:
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty), "HOME": str(tmp_path), "LIGHTFOLD_HOME": str(tmp_path / "lf"),
            "LIGHTFOLD_NO_KEYRING": "1", "LIGHTFOLD_NO_HELP_CACHE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            # the source tree under test (a worktree's), not only the one the venv has installed
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {})}


def test_every_module_but_the_sandbox_imports_without_root_tools_or_linux(tmp_path):
    names = portable_modules()
    assert "lightfold.cli.app" in names and "lightfold.providers.hetzner" in names and len(names) > 60
    proc = subprocess.run([sys.executable, "-c", PORTABLE_IMPORT, *names], env=user_env(tmp_path),
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {}


# (module, function) pairs that import the sandbox lazily, each only for a target whose provider is local.
LOCAL_ONLY_PATHS = {
    ("lightfold.cli.server_cmds", "ssh"),            # checks the machine runs before `ssh` execs
    ("lightfold.release.operate", "sync"),           # records a local machine's id
}


def sandbox_imports(path: Path) -> set[tuple[str, str]]:
    found = set()
    tree = ast.parse(path.read_text())
    top = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for func in top + [m for c in tree.body if isinstance(c, ast.ClassDef) for m in c.body
                       if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]:
        for node in ast.walk(func):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(t == s or t.startswith(s + ".") for t in targets for s in SANDBOX_ONLY):
                found.add((module_name(path), func.name))
    return found


def test_outside_the_sandbox_only_local_target_paths_import_it():
    found = set().union(*(sandbox_imports(SRC.parent / (n.replace(".", "/") + ".py"))
                          for n in portable_modules() if (SRC.parent / (n.replace(".", "/") + ".py")).exists()))
    assert found == LOCAL_ONLY_PATHS


def test_detect_and_config_run_as_a_user_with_an_empty_path(tmp_path):
    project = tmp_path / "shop"
    project.mkdir()
    (project / "package.json").write_text('{"name": "shop", "scripts": {"start": "node server.js"}}')
    (project / "server.js").write_text("require('http').createServer().listen(process.env.PORT)\n")
    cli = AS_A_USER + "from lightfold.cli import main\nsys.argv[0] = 'lightfold'\nmain()\n"
    for args in (["detect", "--json", str(project)], ["config", "set", "deploy.port", "3000", "-t", "shop"],
                 ["config", "show", "--json"]):
        proc = subprocess.run([sys.executable, "-c", cli, *args], env=user_env(tmp_path), cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (args, proc.stderr)
    assert json.loads(proc.stdout)["targets"]["shop"]["deploy"]["port"] == 3000
