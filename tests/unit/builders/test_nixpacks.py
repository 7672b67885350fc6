"""Translating `nixpacks plan` JSON (recorded fixtures in nixpacks' plan format) into our
install/build/start."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from lightfold.builders import nixpacks
from lightfold.errors import LightfoldError

PLANS = Path(__file__).resolve().parents[2] / "fixtures" / "builders" / "nixpacks"


def plan(name: str) -> str:
    return (PLANS / f"{name}.json").read_text()


def test_node_plan():
    t = nixpacks.translate(plan("node-npm"))
    assert (t.install, t.build, t.start) == ("npm ci", "npm run build", "npm run start")
    assert t.variables["NODE_ENV"] == "production"
    assert any("nodejs_18" in n for n in t.notes)  # Nix packages are not installed: said, not hidden


def test_python_plan_uses_our_venv_instead_of_opt_venv():
    t = nixpacks.translate(plan("python-pip"))
    assert t.install == "pip install -r requirements.txt"
    assert t.build is None and t.start == "gunicorn app:app"


def test_phases_run_in_dependency_order_and_placeholders_are_dropped():
    t = nixpacks.translate(plan("custom-phases"))
    assert t.install == "npm install -g corepack && corepack enable && pnpm i --frozen-lockfile"
    assert t.build == "pnpm run build && pnpm run assets"  # assets dependsOn build
    assert t.start == "node dist/server.js"


def test_a_dependency_cycle_is_an_error():
    with pytest.raises(LightfoldError, match="depends on itself"):
        nixpacks.translate({"phases": {"a": {"dependsOn": ["b"], "cmds": ["x"]},
                                       "b": {"dependsOn": ["a"], "cmds": ["y"]}}})


def test_output_that_is_not_json_is_a_clear_error():
    with pytest.raises(LightfoldError, match="not JSON") as e:
        nixpacks.translate("Error: no provider matched")
    assert "--builder native" in e.value.fix


def test_apply_replaces_the_detection_commands_on_a_copy():
    d = SimpleNamespace(install="npm install", build=None, start="node index.js", runtime="node")
    out = nixpacks.apply(d, nixpacks.translate(plan("node-npm")))
    assert (out.install, out.build, out.start) == ("npm ci", "npm run build", "npm run start")
    assert d.install == "npm install"


def test_the_project_files_build_and_start_win_over_the_plan():
    d = SimpleNamespace(install="npm install", build="make", start="node s.js", runtime="node",
                        manifest_keys={"start": "Procfile", "build": "lightfold.toml"})
    out = nixpacks.apply(d, nixpacks.translate(plan("node-npm")))
    assert (out.install, out.build, out.start) == ("npm ci", "make", "node s.js")


def test_plan_command_runs_as_the_app_user():
    cmd = nixpacks.plan_command("/srv/shop/releases/1", "lf-shop")
    assert cmd == "runuser -u lf-shop -- nixpacks plan /srv/shop/releases/1"
