"""lightfold.agent.bundle.detached_command, run by a real sh with stand-ins for systemctl and
systemd-run on PATH: it waits for the previous run of the op's unit, then starts exactly one
process, the agent, in the unit, with the request on its stdin and its output as the exec's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightfold.agent import layout
from lightfold.agent.bundle import detached_command
from lightfold.release.agent_client import is_early_reply


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """systemctl: is-active says active for the first $ACTIVE_POLLS calls. systemd-run: records
    its options and runs the command after them (as --pipe does, with this exec's stdio); the
    "python3" it is given is this interpreter, which echoes its stdin as the agent's reply."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(
        "#!/bin/sh\nn=$(cat \"$POLLS\" 2>/dev/null || echo 0); echo $((n+1)) > \"$POLLS\"\n"
        "[ \"$n\" -lt \"${ACTIVE_POLLS:-0}\" ]\n")
    (bin_dir / "systemd-run").write_text(
        "#!/bin/sh\nfor a; do case $a in --*) echo \"$a\" >> \"$RUN_ARGS\"; shift;; *) break;; esac; done\n"
        "exec \"$@\"\n")
    (bin_dir / "python3").write_text(
        f"#!/bin/sh\nexec {sys.executable} -c 'import sys, json; print(json.dumps("
        "{\"ok\": True, \"early\": True, \"got\": json.load(sys.stdin)}))'\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


def run(fake_bin: Path, tmp_path: Path, active_polls: int, wait_seconds: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "POLLS": str(tmp_path / "polls"),
           "RUN_ARGS": str(tmp_path / "run-args"), "ACTIVE_POLLS": str(active_polls)}
    return subprocess.run(detached_command("rollback", "web", wait_seconds), shell=True, env=env, text=True,
                          input=json.dumps({"op": "rollback", "app": "web", "secret": "stays off argv"}),
                          capture_output=True, timeout=30)


def test_the_agent_runs_in_the_ops_unit_with_the_request_on_stdin(fake_bin, tmp_path):
    res = run(fake_bin, tmp_path, active_polls=0)
    assert res.returncode == 0, res.stderr
    reply = json.loads(res.stdout)
    assert reply["got"]["secret"] == "stays off argv" and is_early_reply(res.stdout.strip())
    args = (tmp_path / "run-args").read_text().splitlines()
    assert f"--unit={layout.op_unit('rollback', 'web')}" in args
    assert {"--wait", "--pipe", "--collect"} <= set(args)
    assert res.stderr == ""


def test_it_waits_for_the_previous_run_saying_so_once(fake_bin, tmp_path):
    res = run(fake_bin, tmp_path, active_polls=3)
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stderr.splitlines()]
    assert events == [{"event": "step", "msg": "waiting for the previous lightfold-rollback-web to finish"}]
    assert json.loads(res.stdout)["ok"]


def test_a_unit_that_stays_busy_gets_the_agents_error_reply(fake_bin, tmp_path):
    res = run(fake_bin, tmp_path, active_polls=1000, wait_seconds=0.4)
    assert res.returncode == 1
    reply = json.loads(res.stdout)
    assert not reply["ok"] and reply["error"] == "a rollback of web is still running (lightfold-rollback-web)"
    assert not (tmp_path / "run-args").exists()


def test_only_an_early_reply_line_stops_the_wait():
    assert is_early_reply('{"ok": true, "early": true}')
    assert not is_early_reply('{"ok": true}') and not is_early_reply("early") and not is_early_reply("{bad")
