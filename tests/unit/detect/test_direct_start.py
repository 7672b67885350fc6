"""Which package.json start scripts the server may run without the package manager in between."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightfold.detect import detect


def project(tmp_path: Path, scripts: dict[str, str], lockfile: str = "package-lock.json", **extra: str) -> Path:
    (tmp_path / "package.json").write_text(json.dumps(
        {"name": "app", "scripts": scripts, "dependencies": {"express": "^4.21.0"}}))
    (tmp_path / lockfile).write_text("{}\n" if lockfile.endswith(".json") else "")
    (tmp_path / "server.js").write_text("require('express')().listen(process.env.PORT)\n")
    for name, text in extra.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_plain_start_script_runs_directly(tmp_path):
    d = detect(project(tmp_path, {"start": "node server.js"}))
    assert d.start == "npm run start"
    assert d.start_exec == {"npm run start": "node server.js"}


@pytest.mark.parametrize("scripts", [
    {"prestart": "node migrate.js", "start": "node server.js"},  # npm would run the hook first
    {"start": "node server.js", "poststart": "echo done"},
    {"start": "node server.js --name=$npm_package_name"},  # needs npm's variables
    {"start": "npm run build && node server.js"},  # calls the package manager itself
])
def test_scripts_that_need_the_package_manager_keep_it(tmp_path, scripts):
    d = detect(project(tmp_path, scripts))
    assert d.start_exec == {}


def test_yarn_plug_n_play_keeps_yarn(tmp_path):
    d = detect(project(tmp_path, {"start": "node server.js"}, lockfile="yarn.lock", **{".pnp.cjs": "//\n"}))
    assert d.start_exec == {}
