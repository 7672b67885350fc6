"""lightfold.release.agent_client: several agent requests in one exec (many_command run by a real
sh, with a stand-in agent that echoes its request), and the reply lines read back."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from lightfold.release import agent_client

# Reads one request from stdin like the agent, answers it on one line, exits 1 when it says ok: false.
ECHO_AGENT = shlex.join([sys.executable, "-c", (
    "import json,sys; r=json.load(sys.stdin); print(json.dumps({'ok': r.get('ok', True), 'got': r})); "
    "sys.exit(0 if r.get('ok', True) else 1)")])


def run(requests: list[dict]) -> subprocess.CompletedProcess:
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    return subprocess.run(agent_client.many_command(len(requests), ECHO_AGENT), shell=True, input=lines,
                          capture_output=True, text=True)


def test_each_agent_run_gets_exactly_its_own_request_and_values_survive_exactly():
    env = {"A": "line1\nline2", "B": "back\\slash \"quoted\" $(not run) `nor this` ü", "C": ""}
    requests = [{"op": "journal_mark", "release": "20260101120000"}, {"op": "write_env", "env": env}]
    res = run(requests)
    assert res.returncode == 0, res.stderr
    replies = agent_client._json_lines(res.stdout)
    assert [r["got"] for r in replies] == requests


def test_the_runs_stop_at_the_first_reply_that_is_not_ok():
    res = run([{"op": "a"}, {"op": "b", "ok": False}, {"op": "c"}])
    assert res.returncode == 1
    assert [r["got"]["op"] for r in agent_client._json_lines(res.stdout)] == ["a", "b"]


def test_the_command_runs_the_agent_once_per_request():
    assert agent_client.many_command(3, "AGENT").count("AGENT") == 3
    assert agent_client.many_command(1) == agent_client.many_command(1, agent_client.remote_command())
