"""The deploy lock: exclusive, tells who holds it, goes stale when its holder dies or ages out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.unit.agent.conftest import NEW_RID, OLD_RID, blue_live_and_systemd_ok

from lightfold.agent.core import AgentError, now_iso
from lightfold.agent.files import write_json
from lightfold.agent.lock import (
    acquire_lock,
    adopt_lock,
    check_deploy_lock,
    flocked,
    lock_staleness,
    mark_lock_finishing,
    proc_start_time,
    process_alive,
    read_lock,
    release_lock,
    try_acquire,
)
from lightfold.agent.main import first_early_result


def test_lock_then_busy_names_the_holder_then_unlock(agent_call):
    got = agent_call({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600, "lock_op": "deploy",
                      "release": "20260101120000"})
    assert got["acquired"] and got["lock"]["holder"] == "alice@laptop"

    busy = agent_call({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600})
    assert not busy["ok"] and busy["busy"]
    assert "locked by alice@laptop (deploy of 20260101120000" in busy["error"]
    assert busy["lock"]["holder"] == "alice@laptop" and busy["fix"]

    refused = agent_call({"op": "unlock", "app": "web", "holder": "bob@ci"})
    assert "locked by alice@laptop" in refused["error"]

    freed = agent_call({"op": "unlock", "app": "web", "holder": "alice@laptop"})
    assert freed["released"]
    again = agent_call({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600})
    assert again["acquired"]


def test_force_unlock_breaks_someone_elses_lock(agent_call, root):
    agent_call({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600})
    forced = agent_call({"op": "unlock", "app": "web", "holder": "bob@ci", "force": True})
    assert forced["released"] and forced["lock"]["holder"] == "alice@laptop"
    audit = [json.loads(x) for x in (root / "srv/web/.lightfold/audit.log").read_text().splitlines()]
    assert audit[-1]["op"] == "unlock" and audit[-1]["forced"] is True


def test_unlock_without_holder_or_force_leaves_the_lock(agent_call):
    agent_call({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600})
    refused = agent_call({"op": "unlock", "app": "web"})
    assert not refused["ok"] and "--force" in refused["fix"]


def test_unlock_without_a_lock_is_a_no_op(agent_call):
    result = agent_call({"op": "unlock", "app": "web"})
    assert result["released"] is False


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


def test_zombie_holder_counts_as_dead(lay):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.3)  # exited but not yet reaped: kill(pid, 0) still succeeds
    try:
        assert not process_alive(zombie.pid, proc_start_time(zombie.pid))
    finally:
        zombie.wait()


def test_reused_pid_does_not_keep_a_lock_alive():
    import os

    assert process_alive(os.getpid(), proc_start_time(os.getpid()))
    assert not process_alive(os.getpid(), "1")


def test_lock_older_than_ttl_is_stale(lay):
    mine, _, _ = try_acquire(lay, "alice@laptop", "deploy", None, 600, None)
    assert mine is not None
    assert lock_staleness(mine, time.time(), None) is None
    assert "older than the 600s TTL" in lock_staleness(mine, time.time() + 601, None)
    # The asker's TTL wins over the holder's.
    assert lock_staleness(mine, time.time() + 61, 60) is not None


def test_wait_seconds_gets_the_lock_once_the_holder_releases(agent_call, root):
    agent_call({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600})

    def release_soon():
        time.sleep(0.4)
        return agent_call({"op": "unlock", "app": "web", "holder": "alice@laptop"})

    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(release_soon)
        started = time.monotonic()
        got = agent_call({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600, "wait_seconds": 5})
        waited = time.monotonic() - started
    assert fut.result()["released"]
    assert got["acquired"] and 0.3 < waited < 5


def test_wait_seconds_gives_up_and_reports_the_holder(agent_call):
    agent_call({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600, "lock_op": "deploy"})
    started = time.monotonic()
    busy = agent_call({"op": "lock", "app": "web", "holder": "bob@ci", "ttl": 600, "wait_seconds": 0.5})
    assert busy["busy"] and time.monotonic() - started >= 0.5


def test_only_one_of_many_racing_lockers_wins(agent_cli):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda i: agent_cli({"op": "lock", "app": "web", "holder": f"user{i}@host", "ttl": 600}), range(8)))
    winners = [r for r, _, _ in results if r["ok"]]
    assert len(winners) == 1
    holder = winners[0]["lock"]["holder"]
    assert all(r["lock"]["holder"] == holder for r, _, _ in results if not r["ok"])


@pytest.mark.parametrize("holder", [None, ""])
def test_lock_needs_a_holder(agent_call, holder):
    result = agent_call({"op": "lock", "app": "web", "holder": holder})
    assert "holder" in result["error"]


def test_switch_refuses_while_someone_else_holds_the_deploy_lock(lay):
    try_acquire(lay, "alice@laptop", "deploy", None, 600, None)
    with pytest.raises(AgentError, match="locked by alice@laptop"):
        check_deploy_lock(lay, {"holder": "bob@ci"})
    check_deploy_lock(lay, {"holder": "alice@laptop"})


def test_a_rollback_holding_its_own_lock_refuses_while_someone_else_deploys(agent_call, app_json):
    """rollback {lock: true} takes the deploy lock in the switching process; a held lock stops it
    before anything moves, naming the holder."""
    app_json()
    agent_call({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600, "lock_op": "push"})
    got = agent_call({"op": "rollback", "app": "web", "holder": "bob@ci", "lock": True, "ttl": 600})
    assert not got["ok"] and got["busy"]
    assert "locked by alice@laptop (push" in got["error"]


def test_a_lock_taken_for_a_process_is_released_only_if_still_its_own(lay):
    mine, replaced, waited = acquire_lock(lay, "bob@ci", "rollback", None, 600, None, 0)
    assert replaced is None and waited is False
    release_lock(lay, mine)
    assert read_lock(lay) is None
    # someone else's lock (taken after ours went stale and was replaced) survives our release
    mine, _, _ = acquire_lock(lay, "bob@ci", "rollback", None, 600, None, 0)
    release_lock(lay, mine)
    theirs, _, _ = acquire_lock(lay, "alice@laptop", "push", None, 600, None, 0)
    release_lock(lay, mine)
    assert read_lock(lay)["holder"] == "alice@laptop" == theirs["holder"]


def test_the_relay_spots_an_early_result_only_on_a_complete_line():
    early = json.dumps({"ok": True, "early": True, "release": "20260101120000"}).encode()
    assert first_early_result(early) is None  # the line is not finished yet
    assert first_early_result(early + b"\n")["release"] == "20260101120000"
    assert first_early_result(b'{"ok": true, "release": "x"}\n') is None  # a final result
    assert first_early_result(b"not json\n" + early + b"\n")["early"] is True


def test_a_lock_whose_switch_is_finishing_is_waited_for_not_refused(lay):
    """After an early rollback answer the lock says how long the smoke window and drain take; a
    deploy asking meanwhile (even without --lock-wait) waits for it."""
    mine, _, _ = acquire_lock(lay, "bob@ci", "rollback", None, 600, None, 0)
    mark_lock_finishing(lay, mine, 0.6)
    t0 = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(acquire_lock, lay, "alice@laptop", "push", None, 600, None, 0)
        time.sleep(0.3)
        release_lock(lay, mine)
        got, _, waited = later.result(timeout=10)
    assert got["holder"] == "alice@laptop" and waited and time.monotonic() - t0 < 5
    # without the mark, the same request refuses at once
    with pytest.raises(AgentError, match="locked by alice@laptop"):
        acquire_lock(lay, "carol@ci", "push", None, 600, None, 0)


def test_after_waiting_for_a_finishing_switch_a_plain_holder_is_refused_at_once(lay):
    """The automatic wait is for a smoke window only: if another deploy takes the lock first,
    the next one is refused (naming it) unless it asked for --lock-wait."""
    mine, _, _ = acquire_lock(lay, "bob@ci", "rollback", None, 600, None, 0)
    mark_lock_finishing(lay, mine, 30)

    def hand_over():  # bob's switch ends and alice's push takes the lock in the same instant
        time.sleep(0.3)
        with flocked(lay.lock_guard):
            write_json(lay.lock, {"holder": "alice@laptop", "op": "push", "release": "20260101120000",
                                        "started_at": now_iso(), "started_ts": time.time(), "ttl": 600})

    t0 = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(hand_over)
        with pytest.raises(AgentError, match="locked by alice@laptop .push of 20260101120000"):
            acquire_lock(lay, "carol@ci", "push", None, 600, None, 0)
    assert time.monotonic() - t0 < 5


def test_adopting_a_lock_keeps_its_holder_and_makes_it_ours(lay):
    """An early activate takes over the caller's lock: the caller's SSH session may end, and the
    lock now lives and dies with the switching process."""
    theirs, _, _ = acquire_lock(lay, "alice@laptop", "push", "20260101120100", 600, None, 0)
    mine = adopt_lock(lay, "alice@laptop", 30)
    assert mine["holder"] == "alice@laptop" and mine["pid"] == os.getpid() and mine["op"] == "push"
    assert 25 < mine["finishing_until"] - time.time() <= 30  # a deploy asking meanwhile waits for the switch
    assert read_lock(lay) == mine and lock_staleness(mine, time.time()) is None
    with pytest.raises(AgentError, match="not held by bob@ci"):
        adopt_lock(lay, "bob@ci", 30)
    release_lock(lay, mine)
    assert read_lock(lay) is None
    with pytest.raises(AgentError, match="it is free"):
        adopt_lock(lay, "alice@laptop", 30)


def test_an_early_activate_answers_when_traffic_moved_and_holds_the_lock_to_the_end(
        lay, release, app_json, monkeypatch):
    from lightfold.agent import ops, switch

    app_json()
    release(OLD_RID)
    release(NEW_RID)
    blue_live_and_systemd_ok(lay, monkeypatch)
    acquire_lock(lay, "alice@laptop", "push", NEW_RID, 600, None, 0)
    seen: dict = {}
    monkeypatch.setattr(ops, "write_result", lambda data: seen.setdefault("early", (data, read_lock(lay))))
    watched = []
    monkeypatch.setattr(switch, "smoke_failure", lambda unit, base, s: watched.append(read_lock(lay)) or None)
    result = ops.op_activate({"op": "activate", "app": "web", "release": NEW_RID, "holder": "alice@laptop",
                              "early_result": True, "smoke_seconds": 5, "drain_seconds": 0}, lay)
    early, lock_then = seen["early"]
    assert early["early"] is True and early["release"] == NEW_RID and early["op"] == "activate"
    assert early["continuing"] == {"smoke_seconds": 5.0, "drain_seconds": 0.0}
    # The switch's own breakdown: the new slot's process started, healthy, nginx flipped, traffic moved.
    t = early["timings"]
    assert set(t) == {"started_s", "healthy_s", "nginx_s", "switched_s"}
    assert 0 <= t["started_s"] <= t["switched_s"] and 0 <= t["nginx_s"] <= t["switched_s"]
    assert set(result["timings"]) == set(t) | {"total_s"}
    assert lock_then["pid"] == os.getpid() and lock_then["finishing_until"] > time.time()  # a deploy waits for it
    assert watched[0]["holder"] == "alice@laptop"  # still held during the smoke window
    assert result["release"] == NEW_RID and result["lock_taken"] is True
    assert read_lock(lay) is None  # released at the end


def test_a_plain_activate_leaves_the_callers_lock_alone(lay, release, app_json, monkeypatch):
    from lightfold.agent import ops

    app_json()
    release(OLD_RID)
    release(NEW_RID)
    blue_live_and_systemd_ok(lay, monkeypatch)
    theirs, _, _ = acquire_lock(lay, "alice@laptop", "push", NEW_RID, 600, None, 0)
    result = ops.op_activate({"op": "activate", "app": "web", "release": NEW_RID, "holder": "alice@laptop",
                              "smoke_seconds": 0, "drain_seconds": 0}, lay)
    assert result["lock_taken"] is False and read_lock(lay) == theirs
