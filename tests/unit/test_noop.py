"""The no-op fast path: which command lines it answers, and that its local key changes with every
local input a deploy decides from (real git), and only with those."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.unit.test_project import git, write

from lightfold.cli.fastpath import parse
from lightfold.release import noop


@pytest.mark.parametrize(("argv", "expected"), [
    (["deploy"], {"command": "deploy", "path": None, "target": None, "provider": None, "wait": None,
                  "as_json": False}),
    (["deploy", "./web", "-t", "prod", "--json"],
     {"command": "deploy", "path": "./web", "target": "prod", "provider": None, "wait": None, "as_json": True}),
    (["deploy", "--target=prod", "--provider", "local", "--no-wait"],
     {"command": "deploy", "path": None, "target": "prod", "provider": "local", "wait": False, "as_json": False}),
    (["push", "--target", "prod"], {"command": "push", "path": None, "target": "prod", "wait": None,
                                    "as_json": False}),
    (["push", "--json", "--wait"], {"command": "push", "path": None, "target": None, "wait": True,
                                    "as_json": True}),
    (["rollback", "--to", "20260101120000", "--lock-wait=5"],
     {"command": "rollback", "path": None, "target": None, "to": "20260101120000", "lock_wait": 5,
      "as_json": False}),
])
def test_plain_forms_are_answered_before_typer(argv, expected):
    assert parse(argv) == expected


@pytest.mark.parametrize("argv", [
    ["deploy", "--force"], ["deploy", "-f"], ["deploy", "--builder", "native"], ["deploy", "--debug"],
    ["deploy", "--help"], ["deploy", "-t"], ["deploy", "a", "b"], ["deploy", "-t=prod"],
    ["deploy", "-t", "a", "-t", "b"], ["push", "--provider", "local"], ["deploy", "--region", "x"],
    ["push", "--lock-wait", "5"], ["rollback", "./web"], ["rollback", "--lock-wait", "soon"], ["status"], [],
    ["rollback", "--help"], ["rollback", "--provider", "local"], ["push", "--wait", "--no-wait"],
    ["rollback", "--no-wait"], ["push", "--batch", "2"],
])
def test_everything_else_goes_to_typer(argv):
    assert parse(argv) is None


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"package.json": "{}\n", "server.js": "x\n", ".gitignore": ".env\nnode_modules/\n"})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    return root


CONFIG = {"project_path": "/x", "provider": "local", "deploy": {"env_vars": {"A": "1"}}}


def key(project: Path, config: dict = CONFIG) -> str | None:
    return noop.local_key("app", project, config)


def test_key_is_stable_when_nothing_changes(project):
    assert key(project) is not None
    assert key(project) == key(project)


@pytest.mark.parametrize("change", [
    lambda p: (p / "server.js").write_text("y\n"),  # an uncommitted edit
    lambda p: (p / "server.js").write_text("y\n") or git(p, "commit", "-qam", "two"),  # a commit
    lambda p: (p / "new.js").write_text("z\n"),  # an untracked file (it ships)
    lambda p: (p / "server.js").unlink(),  # a deletion
    lambda p: (p / ".env").write_text("SECRET=1\n"),  # the .env (ignored by git, read by deploy)
    lambda p: (p / ".lightfoldignore").write_text("server.js\n"),
])
def test_key_changes_with_every_local_input(project, change):
    before = key(project)
    change(project)
    assert key(project) != before


def test_key_changes_when_a_dirty_file_changes_again(project):
    (project / "server.js").write_text("y\n")
    first = key(project)
    (project / "server.js").write_text("w\n")  # still "modified" for git status: the content decides
    assert key(project) != first


def test_key_changes_with_the_target_config(project):
    other = json.loads(json.dumps(CONFIG))
    other["deploy"]["env_vars"]["A"] = "2"
    assert key(project, other) != key(project)


def test_ignored_files_do_not_change_the_key(project):
    before = key(project)
    (project / "node_modules").mkdir()
    (project / "node_modules" / "dep.js").write_text("x\n")
    assert key(project) == before


def test_no_key_outside_git(tmp_path):
    (tmp_path / "index.html").write_text("hi\n")
    assert key(tmp_path) is None


def test_stamp_command_reads_the_server_decisions_and_names_the_domain(tmp_path):
    cmd = noop.stamp_command("web", "example.test")
    for part in ("etc/lightfold/apps/*/app.json", "etc/lightfold/apps/web/configured",
                 "etc/lightfold/apps/web/upstream.conf", "srv/web/.lightfold/releases.json",
                 "srv/web/.lightfold/switch.json", "srv/web/current", "srv/web/slots/blue",
                 "etc/letsencrypt/live/example.test/fullchain.pem"):
        assert part in cmd
    assert "letsencrypt" not in noop.stamp_command("web", None)
    # it is valid shell that succeeds even where nothing exists (here: this machine's /)
    out = subprocess.run(["sh", "-c", noop.stamp_command("no-such-app-xyz", None)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "srv/no-such-app-xyz/current -> \n" in out.stdout


def test_check_declines_without_a_record(tmp_path, monkeypatch, project):
    monkeypatch.setenv("LIGHTFOLD_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.json").write_text(json.dumps(
        {"version": 1, "targets": {"app": {**CONFIG, "project_path": str(project)}}}))
    assert noop.check("app", project) is None  # no state at all
    (tmp_path / "home" / "state").mkdir()
    (tmp_path / "home" / "state" / "app.json").write_text(json.dumps({"created": True}))
    assert noop.check("app", project) is None  # no record yet
    assert noop.check("other", project) is None  # unknown target


def test_check_declines_when_the_server_cannot_confirm(tmp_path, monkeypatch, project):
    """Same local key, but the server does not answer: the full path decides (and explains)."""
    monkeypatch.setenv("LIGHTFOLD_HOME", str(tmp_path / "home"))
    target = {**CONFIG, "project_path": str(project)}
    (tmp_path / "home" / "state").mkdir(parents=True)
    (tmp_path / "home" / "config.json").write_text(json.dumps({"version": 1, "targets": {"app": target}}))
    rec = noop.record(noop.local_key("app", project, target), "stamp", "true",
                      {"ip": "127.0.0.1", "port": 9, "username": "root", "key": str(tmp_path / "none")},
                      "express", "20260101000000", "http://127.0.0.1/")
    (tmp_path / "home" / "state" / "app.json").write_text(json.dumps({"created": True, "noop": rec}))
    assert noop.check("app", project) is None


def test_a_command_line_is_checked_once_per_process(monkeypatch):
    """A plain deploy that `main` could not skip goes on to the Typer command, which must not run
    the same check (an ssh exec) again."""
    from lightfold.cli import fastpath

    calls = []
    monkeypatch.setattr(fastpath, "_checked", False)
    monkeypatch.setattr(noop, "check", lambda *a, **k: calls.append(a))
    assert fastpath.skip("deploy", "app", Path("."), None, False) is False
    assert fastpath.skip("deploy", "app", Path("."), None, False) is False
    assert len(calls) == 1
