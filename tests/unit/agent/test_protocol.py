"""The protocol's shapes: tolerant to unknown and missing keys, and exactly the keys the agent sends."""

from __future__ import annotations

import dataclasses
import os

from lightfold.agent import protocol
from lightfold.agent.files import swap_symlink, write_atomic
from lightfold.agent.upstream import render_upstream

A, B = "20260101120000", "20260101130000"
ENVELOPE = {"ok", "op", "app"}


def round_trip(shape: type[protocol.Shape], reply: dict) -> dict:
    return shape.from_dict(reply).to_dict()


def sent(shape: type[protocol.Shape], reply: dict) -> dict:
    """The reply without the envelope keys its shape does not name."""
    names = {f.name for f in dataclasses.fields(shape)}
    return {k: v for k, v in reply.items() if k not in ENVELOPE or k in names}


def test_from_dict_ignores_unknown_keys_and_defaults_missing_ones():
    lock = protocol.LockInfo.from_dict({"holder": "alice@laptop", "from_the_future": 1})
    assert lock.holder == "alice@laptop" and lock.pid is None and lock.stale is None
    status = protocol.StatusReply.from_dict({"live": {"release": A}, "releases": [{"id": A, "status": "live"}]})
    assert status.live.release == A and status.live.slot is None and status.lock is None
    assert status.live_entry() == protocol.ReleaseEntry(id=A, status="live")
    assert protocol.StatusReply.from_dict(None) == protocol.StatusReply()
    assert protocol.StatusReply.from_dict({"releases": "garbage", "slots": 3}).releases == []


def test_parse_reply_gives_the_error_shape_when_not_ok():
    err = protocol.parse_reply("status", {"ok": False, "error": "web is not configured", "fix": "configure",
                                          "lock": {"holder": "bob@ci"}})
    assert isinstance(err, protocol.ErrorReply) and err.error == "web is not configured"
    assert err.lock.holder == "bob@ci" and err.log_tail == []
    assert isinstance(protocol.parse_reply("lock", {"ok": True, "acquired": True}), protocol.LockReply)


def test_requests_leave_unset_fields_to_the_agent():
    req = protocol.SwitchRequest(op="rollback", app="web", to=A, lock=True)
    assert req.to_dict() == {"op": "rollback", "app": "web", "to": A, "lock": True}


def test_status_reply_has_exactly_the_protocol_keys(agent_call, lay, app_json, release):
    app_json()
    release(A)
    release(B)
    swap_symlink(lay.slot_link("blue"), f"../releases/{A}")
    write_atomic(lay.upstream, render_upstream(18001, "blue", A).encode())
    agent_call({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600, "lock_op": "deploy"})
    reply = agent_call({"op": "status", "app": "web"})
    assert reply["ok"], reply
    assert round_trip(protocol.StatusReply, reply) == sent(protocol.StatusReply, reply)
    status = protocol.StatusReply.from_dict(reply)
    assert status.agent_version == protocol.PROTOCOL_VERSION
    assert (status.live.release, status.live.slot, status.live.port) == (A, "blue", 18001)
    assert status.slots["blue"].release == A and status.health.error == "refused"
    assert status.live_entry().status == "live" and status.lock.holder == "alice@laptop"


def test_journal_env_and_error_replies_have_exactly_the_protocol_keys(agent_call, release):
    release(A)
    for op, shape, req in [
        ("journal_mark", protocol.JournalMarkReply, {"release": A, "status": "building", "commit": "abc"}),
        ("releases", protocol.ReleasesReply, {}),
        ("write_env", protocol.WriteEnvReply, {"release": A, "env": {"A": "1"}}),
    ]:
        reply = agent_call({"op": op, "app": "web", **req})
        assert reply["ok"], reply
        assert round_trip(shape, reply) == sent(shape, reply), op
    refused = agent_call({"op": "journal_mark", "app": "web", "release": A, "status": "live"})
    assert round_trip(protocol.ErrorReply, refused) == refused


def test_switch_reply_has_exactly_the_protocol_keys(agent_call, app_json, release, root):
    app_json(static=True, output_dir="dist", ports=None)
    release(A, start=False, output_dir="dist")
    release(B, start=False, output_dir="dist")
    os.symlink(f"releases/{A}", root / "srv/web/current")
    again = agent_call({"op": "activate", "app": "web", "release": A})
    assert again["already_live"]
    assert round_trip(protocol.SwitchResult, again) == sent(protocol.SwitchResult, again)


def test_status_reports_the_procs_release_processes_and_cron(agent_call, lay, app_json, release):
    import json
    app_json()
    rel = release(A)
    info = json.loads((rel / ".lightfold/release.json").read_text())
    info["processes"] = [{"name": "worker", "command": "python w.py", "count": 2, "stop_timeout": 30}]
    info["cron"] = [{"name": "tick", "schedule": "*:*:0", "command": "python t.py", "timeout": 60}]
    (rel / ".lightfold/release.json").write_text(json.dumps(info))
    swap_symlink(lay.procs_link, f"../releases/{A}")
    reply = agent_call({"op": "status", "app": "web"})
    assert reply["ok"], reply
    assert round_trip(protocol.StatusReply, reply) == sent(protocol.StatusReply, reply)
    status = protocol.StatusReply.from_dict(reply)
    assert [(p.name, p.instance, p.unit) for p in status.processes] == [
        ("worker", "worker-1", "lightfold-web.proc@worker-1.service"),
        ("worker", "worker-2", "lightfold-web.proc@worker-2.service")]
    assert [(c.name, c.schedule, c.timer) for c in status.cron] == [("tick", "*:*:0", "lightfold-web.cron-tick.timer")]
    assert status.cron[0].release == A and status.cron[0].last_run is None


def test_process_and_cron_states_round_trip():
    p = protocol.ProcessState(name="worker", instance="worker-1", state="active", restarts=0, release=A)
    c = protocol.CronState(name="tick", schedule="*:*:0", last_run="2026-01-01T00:00:00Z", last_result="success")
    assert protocol.ProcessState.from_dict(p.to_dict()) == p and protocol.CronState.from_dict(c.to_dict()) == c
    assert protocol.StatusReply.from_dict({"processes": "garbage"}).processes == []
