"""The agent as a package: the files configure uploads use only the standard library and each other,
run from where they land, and agree with the laptop side's protocol and layout modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from lightfold.agent import core, layout, main, protocol
from lightfold.agent.bundle import PACKAGE_DIR, agent_files, agent_modules

STDLIB = sys.stdlib_module_names


def imports_of(source: str) -> list[tuple[int, str]]:
    """(level, module) of every import in a module, function-level ones included; level 0 is
    absolute, `from . import x` is (1, "x"), `from .core import y` is (1, "core")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module:
                found.append((node.level, node.module))
            else:
                found += [(node.level, a.name) for a in node.names]
    return found


def test_the_uploaded_modules_import_only_the_standard_library_and_each_other():
    uploaded = {p.stem for p in agent_modules()}
    assert {"__init__", "layout", "core", "main", "switch", "ops"} <= uploaded
    bad = []
    for path in agent_modules():
        for level, module in imports_of(path.read_text()):
            top = module.split(".")[0]
            if level == 0 and top not in STDLIB and top != "__future__":
                bad.append(f"{path.name}: import {module}")
            if level == 1 and top not in uploaded:
                bad.append(f"{path.name}: from .{module} (not uploaded)")
            if level > 1:
                bad.append(f"{path.name}: from {'.' * level}{module} (outside the package)")
    assert not bad, bad


def test_every_module_of_the_package_is_stdlib_only():
    """The laptop-only ones too (bundle, protocol): nothing but the stdlib and lightfold.agent."""
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for level, module in imports_of(path.read_text()):
            ok = level > 0 or module.split(".")[0] in STDLIB or module == "__future__" \
                or module == "lightfold.agent" or module.startswith("lightfold.agent.")
            assert ok, f"{path.name}: {module}"


def test_the_installed_agent_loads_nothing_but_the_standard_library(tmp_path):
    """Run from its upload, in an isolated interpreter (no site, no PYTHONPATH), importing every
    module: what lands in sys.modules is the stdlib and the agent package."""
    for name, data in agent_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    names = ", ".join(f"{layout.AGENT_PACKAGE}.{p.stem}" for p in agent_modules() if p.stem != "__init__")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import {names}; import json; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    foreign = [m for m in loaded if m.split(".")[0] not in {*STDLIB, "__main__", layout.AGENT_PACKAGE}]
    assert not foreign, foreign
    assert "lightfold" not in loaded and "agent.protocol" not in loaded


def test_the_agent_copies_agree_with_the_protocol_module():
    assert core.AGENT_VERSION == protocol.PROTOCOL_VERSION
    assert core.DETACHABLE_OPS == protocol.DETACHABLE_OPS
    assert core.RELEASE_INFO_FIELDS == protocol.RELEASE_INFO_FIELDS
    assert set(main.OPS) == set(protocol.OPS)


def test_the_detached_rerun_finds_this_package_where_it_is():
    parent, package = main.where_this_package_is()
    assert package == "lightfold.agent" and (PACKAGE_DIR.parent.parent / "lightfold").samefile(
        f"{parent}/lightfold")
    assert layout.agent_entry() == ("import sys; sys.path.insert(0, '/usr/local/lib/lightfold'); "
                                    "from agent.main import main; sys.exit(main())")
