"""Push's deploy lock with the requests that follow it in one exec: the liveness shell runs the
agent once on several request lines (`--lines`, `"pid": "holder"`), then lives as long as its
stdin — run here by a real sh against a temp root, as sshd would run it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from types import SimpleNamespace

from tests.unit.agent.conftest import NEW_RID, OLD_RID

from lightfold.agent import layout
from lightfold.agent.lock import process_alive
from lightfold.release import agent_client
from lightfold.release.locking import holder_with_requests_command


def start_holder(root, agent_dir, requests: list[tuple[str, dict]]) -> tuple[subprocess.Popen, list[dict]]:
    agent = shlex.join([sys.executable, "-c", layout.agent_entry(str(agent_dir))])
    cmd = holder_with_requests_command(SimpleNamespace(username="root"), len(requests), agent)
    proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "LIGHTFOLD_ROOT": str(root), "PYTHONDONTWRITEBYTECODE": "1"})
    proc.stdin.write(agent_client.request_lines(requests, "web"))
    proc.stdin.flush()
    replies = []
    for _ in requests:
        line = proc.stdout.readline()
        if not line:
            break
        replies.append(json.loads(line))
    return proc, replies


def lock(holder: str, release: str) -> tuple[str, dict]:
    return ("lock", {"holder": holder, "lock_op": "push", "release": release, "ttl": 600, "pid": "holder"})


def wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process_alive(pid)


def test_lock_mark_and_env_in_one_agent_run_held_by_the_shell_until_its_stdin_closes(root, agent_dir, app_json,
                                                                                     agent_call):
    app_json()
    env = {"SECRET": "a\nb $(not run) 'q'", "EMPTY": ""}
    requests = [lock("alice@laptop", NEW_RID),
                *agent_client.mark_building_requests(NEW_RID, {"commit": "abc", "dirty": False}, env)]
    proc, replies = start_holder(root, agent_dir, requests)
    try:
        assert [r["op"] for r in replies] == ["lock", "journal_mark", "write_env"]
        assert all(r["ok"] for r in replies), replies
        pid = replies[0]["lock"]["pid"]
        assert isinstance(pid, int) and process_alive(pid)  # the shell, not the agent (which has exited)
        assert (root / f"srv/web/env/{NEW_RID}.env").exists()
        entry = next(e for e in agent_call({"op": "releases", "app": "web"})["releases"] if e["id"] == NEW_RID)
        assert entry["status"] == "building" and entry["commit"] == "abc"
        busy = agent_call({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600})
        assert not busy["ok"] and "alice@laptop" in busy["error"]
    finally:
        proc.stdin.close()
    assert wait_gone(pid)
    proc.wait(5)
    took = agent_call({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600})
    assert took["acquired"] and "is gone" in (took["replaced_stale"] or "")


def test_a_busy_lock_stops_the_run_and_the_shell(root, agent_dir, app_json, agent_call):
    app_json()
    assert agent_call({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600})["acquired"]
    requests = [lock("alice@laptop", OLD_RID),
                *agent_client.mark_building_requests(OLD_RID, {"commit": "abc"}, {"A": "1"})]
    proc, replies = start_holder(root, agent_dir, requests)
    assert proc.wait(10) != 0  # no `exec cat`: nothing holds a lock it did not take
    assert len(replies) == 1 and not replies[0]["ok"] and replies[0]["busy"]
    assert not (root / f"srv/web/env/{OLD_RID}.env").exists()
    assert all(e["id"] != OLD_RID for e in agent_call({"op": "releases", "app": "web"}).get("releases", []))


def test_lines_mode_refuses_a_detachable_op(root, agent_dir, app_json):
    app_json()
    agent = [sys.executable, "-c", layout.agent_entry(str(agent_dir)), "--lines", "1"]
    p = subprocess.run(agent, input=json.dumps({"op": "activate", "app": "web", "release": NEW_RID}) + "\n",
                       capture_output=True, text=True, env={**os.environ, "LIGHTFOLD_ROOT": str(root)})
    assert p.returncode == 1 and "cannot run with --lines" in json.loads(p.stdout)["error"]


def test_a_lock_that_waited_for_a_finishing_switch_ends_the_run_before_what_was_decided_before_it(
        root, agent_dir, app_json, agent_call, lay):
    """The requests after the lock were decided before it: after a wait (another deploy may have
    gone live meanwhile) the caller decides again and sends them itself."""
    from lightfold.agent.lock import mark_lock_finishing, read_lock

    app_json()
    agent_call({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600})
    mark_lock_finishing(lay, read_lock(lay), 0.6)  # bob's switch only has its smoke window left

    def bob_finishes():
        time.sleep(0.3)
        agent_call({"op": "unlock", "app": "web", "holder": "bob@ci"})

    import threading

    threading.Thread(target=bob_finishes).start()
    requests = [lock("alice@laptop", NEW_RID),
                *agent_client.mark_building_requests(NEW_RID, {"commit": "abc"}, {"A": "1"})]
    proc, replies = start_holder(root, agent_dir, requests)
    try:
        assert [(r["op"], r["ok"], bool(r.get("skipped"))) for r in replies] == [
            ("lock", True, False), ("journal_mark", True, True), ("write_env", True, True)]
        assert replies[0]["waited"]
        assert process_alive(replies[0]["lock"]["pid"])  # the lock is held: the shell lives on
        assert not (root / f"srv/web/env/{NEW_RID}.env").exists()
    finally:
        proc.stdin.close()
        proc.wait(5)
