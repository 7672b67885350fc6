"""The deploy lock: exclusive, tells who holds it, goes stale when its holder dies or ages out."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest


def test_lock_then_busy_names_the_holder_then_unlock(agent_cli):
    got, _, code = agent_cli({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600,
                              "release": "20260101120000"})
    assert code == 0 and got["acquired"] and got["lock"]["holder"] == "alice@laptop"

    busy, _, code = agent_cli({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600})
    assert code == 1 and not busy["ok"] and busy["busy"]
    assert "locked by alice@laptop" in busy["error"] and "20260101120000" in busy["error"]
    assert busy["lock"]["holder"] == "alice@laptop" and busy["fix"]

    refused, _, code = agent_cli({"op": "unlock", "app": "web", "holder": "bob@ci"})
    assert code == 1 and "locked by alice@laptop" in refused["error"]

    freed, _, code = agent_cli({"op": "unlock", "app": "web", "holder": "alice@laptop"})
    assert code == 0 and freed["released"]
    again, _, _ = agent_cli({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600})
    assert again["acquired"]


def test_force_unlock_breaks_someone_elses_lock(agent_cli, root):
    agent_cli({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600})
    forced, _, code = agent_cli({"op": "unlock", "app": "web", "holder": "bob@ci", "force": True})
    assert code == 0 and forced["released"] and forced["lock"]["holder"] == "alice@laptop"
    audit = [json.loads(x) for x in (root / "srv/web/.lightfold/audit.log").read_text().splitlines()]
    assert audit[-1]["op"] == "unlock" and audit[-1]["forced"] is True


def test_unlock_without_a_lock_is_a_no_op(agent_cli):
    result, _, code = agent_cli({"op": "unlock", "app": "web"})
    assert code == 0 and result["released"] is False


def test_lock_held_by_a_dead_process_is_stale(agent_cli):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        got, _, _ = agent_cli({"op": "lock", "app": "web", "holder": "ci@server", "pid": holder.pid, "ttl": 600})
        assert got["acquired"]
        busy, _, _ = agent_cli({"op": "lock", "app": "web", "holder": "bob@laptop", "ttl": 600})
        assert busy["busy"]
    finally:
        holder.kill()
        holder.wait()
    taken, events, code = agent_cli({"op": "lock", "app": "web", "holder": "bob@laptop", "ttl": 600})
    assert code == 0 and taken["acquired"]
    assert f"holder process {holder.pid} is gone" in taken["replaced_stale"]
    assert any("stale" in e["msg"] for e in events)


def test_zombie_holder_counts_as_dead(agent, lay):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.3)  # exited but not yet reaped: kill(pid, 0) still succeeds
    try:
        assert not agent.process_alive(zombie.pid, agent.proc_start_time(zombie.pid))
    finally:
        zombie.wait()


def test_reused_pid_does_not_keep_a_lock_alive(agent):
    import os

    assert agent.process_alive(os.getpid(), agent.proc_start_time(os.getpid()))
    assert not agent.process_alive(os.getpid(), "1")


def test_lock_older_than_ttl_is_stale(agent, lay):
    mine, _, _ = agent.try_acquire(lay, "alice@laptop", "deploy", None, 600, None)
    assert mine is not None
    assert agent.lock_staleness(mine, time.time(), None) is None
    assert "older than the 600s TTL" in agent.lock_staleness(mine, time.time() + 601, None)
    # The asker's TTL wins over the holder's.
    assert agent.lock_staleness(mine, time.time() + 61, 60) is not None


def test_wait_seconds_gets_the_lock_once_the_holder_releases(agent_cli, root):
    agent_cli({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600})

    def release_soon():
        time.sleep(0.7)
        return agent_cli({"op": "unlock", "app": "web", "holder": "alice@laptop"})

    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(release_soon)
        started = time.monotonic()
        got, _, code = agent_cli({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600, "wait_seconds": 5})
        waited = time.monotonic() - started
    assert fut.result()[0]["released"]
    assert code == 0 and got["acquired"] and 0.5 < waited < 5


def test_wait_seconds_gives_up_and_reports_the_holder(agent_cli):
    agent_cli({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600, "op_name": "deploy"})
    started = time.monotonic()
    busy, _, code = agent_cli({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600, "wait_seconds": 1})
    assert code == 1 and busy["busy"] and time.monotonic() - started >= 1


def test_only_one_of_many_racing_lockers_wins(agent_cli):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda i: agent_cli({"op": "lock", "app": "web", "holder": f"user{i}@host", "ttl": 600}), range(8)))
    winners = [r for r, _, _ in results if r["ok"]]
    assert len(winners) == 1
    holder = winners[0]["lock"]["holder"]
    assert all(r["lock"]["holder"] == holder for r, _, _ in results if not r["ok"])


@pytest.mark.parametrize("holder", [None, ""])
def test_lock_needs_a_holder(agent_cli, holder):
    result, _, code = agent_cli({"op": "lock", "app": "web", "holder": holder})
    assert code == 1 and "holder" in result["error"]


def test_switch_refuses_while_someone_else_holds_the_deploy_lock(agent, lay):
    agent.try_acquire(lay, "alice@laptop", "deploy", None, 600, None)
    with pytest.raises(agent.AgentError, match="locked by alice@laptop"):
        agent.check_deploy_lock(lay, {"holder": "bob@ci"})
    agent.check_deploy_lock(lay, {"holder": "alice@laptop"})
