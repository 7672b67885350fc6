"""The agent as the CLI sees it: JSON on stdin, one JSON result on stdout, JSON-line progress on stderr."""

from __future__ import annotations

import json
import os

import pytest

from lightfold.agent.files import swap_symlink, write_atomic
from lightfold.agent.journal import save_journal, upsert_entry
from lightfold.agent.upstream import render_upstream

A, B, C = "20260101120000", "20260101130000", "20260101140000"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"", "must be a JSON object"),
        (b"[1]", "must be a JSON object"),
        (b'{"app": "web"}', "unknown op None"),
        (b'{"op": "explode", "app": "web"}', "unknown op 'explode'"),
        (b'{"op": "status", "app": "../etc"}', "invalid app name"),
        (b'{"op": "status", "app": "Web"}', "invalid app name"),
        (b'{"op": "status", "app": "web\\n"}', "invalid app name"),
    ],
)
def test_bad_requests_get_one_clear_error(agent_cli, raw, message):
    result, _, code = agent_cli(raw)
    assert code == 1 and result["ok"] is False
    assert message in result["error"] and result["fix"]


def test_ops_on_an_unconfigured_app_say_to_run_configure(agent_cli):
    for op in ("activate", "rollback", "status", "health"):
        result, _, code = agent_cli({"op": op, "app": "web", "release": A})
        assert code == 1 and "not configured" in result["error"], op
        assert "lightfold configure" in result["fix"]


def test_journal_mark_and_releases(agent_cli, release):
    release(A)
    result, _, code = agent_cli({"op": "journal_mark", "app": "web", "release": A, "status": "building",
                                 "commit": "abc123", "dirty": True, "deployed_by": "alice@laptop"})
    assert code == 0 and result["entry"]["status"] == "building" and result["entry"]["created_at"]
    result, _, _ = agent_cli({"op": "journal_mark", "app": "web", "release": B, "status": "failed",
                              "reason": "npm run build exited 1"})
    assert result["entry"]["reason"] == "npm run build exited 1"
    listing, _, _ = agent_cli({"op": "releases", "app": "web"})
    assert [(r["id"], r["status"], r["on_disk"]) for r in listing["releases"]] == [
        (B, "failed", False), (A, "building", True)]
    assert listing["releases"][1]["commit"] == "abc123" and listing["releases"][1]["dirty"] is True


def test_journal_mark_stamps_created_at_by_the_servers_clock(agent_cli, release):
    """A laptop whose clock is hours off sends its own created_at (older CLIs): the agent's clock
    stamps it instead, so the journal's times (activated_at is the agent's too) agree."""
    import calendar
    import time

    release(A)
    laptop = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5 * 3600))
    result, _, code = agent_cli({"op": "journal_mark", "app": "web", "release": A, "status": "building",
                                 "created_at": laptop})
    assert code == 0
    stamped = calendar.timegm(time.strptime(result["entry"]["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(stamped - time.time()) < 60, (result["entry"]["created_at"], laptop)


def test_journal_mark_cannot_set_or_touch_live(agent_cli, lay):
    result, _, code = agent_cli({"op": "journal_mark", "app": "web", "release": A, "status": "live"})
    assert code == 1 and "building or failed" in result["error"]
    entries = []
    upsert_entry(entries, A, status="live")
    save_journal(lay, entries)
    result, _, code = agent_cli({"op": "journal_mark", "app": "web", "release": A, "status": "failed"})
    assert code == 1 and "is live" in result["error"]


def test_activate_of_a_missing_release_changes_nothing(agent_cli, app_json, root):
    app_json()
    result, _, code = agent_cli({"op": "activate", "app": "web", "release": A})
    assert code == 1 and f"release {A} is not on the server" in result["error"]
    assert not (root / "srv/web/current").exists() and not (root / "etc/lightfold/apps/web/upstream.conf").exists()


def test_static_activate_without_build_output_fails_before_touching_current(agent_cli, app_json, release, root):
    app_json(static=True, output_dir="dist", ports=None)
    release(A, start=False, output_dir="dist")
    release(B, start=False)
    os.symlink(f"releases/{A}", root / "srv/web/current")
    result, _, code = agent_cli({"op": "activate", "app": "web", "release": B})
    assert code == 1 and "no build output at dist/" in result["error"]
    assert os.readlink(root / "srv/web/current") == f"releases/{A}"
    listing, _, _ = agent_cli({"op": "releases", "app": "web"})
    assert listing["releases"][0]["status"] == "failed" and "no build output" in listing["releases"][0]["reason"]


def test_activating_the_live_release_is_a_no_op(agent_cli, app_json, release, root):
    app_json(static=True, output_dir="dist", ports=None)
    release(A, start=False, output_dir="dist")
    os.symlink(f"releases/{A}", root / "srv/web/current")
    result, events, code = agent_cli({"op": "activate", "app": "web", "release": A})
    assert code == 0 and result["already_live"] and result["release"] == A
    assert any("already live" in e["msg"] for e in events)
    assert all(set(e) == {"event", "msg"} for e in events)


def test_rollback_with_nothing_earlier_is_a_clear_error(agent_cli, lay, app_json, release, root):
    app_json(static=True, output_dir="dist", ports=None)
    for rid in (A, B):
        release(rid, start=False, output_dir="dist")
    os.symlink(f"releases/{B}", root / "srv/web/current")
    entries = []
    upsert_entry(entries, A, status="failed")
    upsert_entry(entries, B, status="live")
    save_journal(lay, entries)
    result, _, code = agent_cli({"op": "rollback", "app": "web"})
    assert code == 1 and "no earlier good release" in result["error"] and "--to" in result["fix"]
    saved = json.loads((root / "srv/web/.lightfold/last-op.json").read_text())
    assert saved["ok"] is False and saved["op"] == "rollback" and saved["finished_at"]


def test_status_of_a_static_app_reconciles_and_reports(agent_cli, app_json, release, root):
    app_json(static=True, output_dir="dist", ports=None)
    release(A, start=False, output_dir="dist")
    os.symlink(f"releases/{A}", root / "srv/web/current")
    agent_cli({"op": "lock", "app": "web", "holder": "alice@laptop", "ttl": 600, "lock_op": "deploy"})
    result, _, code = agent_cli({"op": "status", "app": "web"})
    assert code == 0 and result["live"]["release"] == A and result["live"]["info"]["commit"] == "c0000"
    assert result["releases"][0]["id"] == A and result["releases"][0]["status"] == "live"
    assert result["reconciled"] and result["lock"]["holder"] == "alice@laptop" and result["lock"]["stale"] is None
    assert result["disk"]["free_bytes"] > 0 and result["switch_in_progress"] is False


def test_status_of_a_slot_app_follows_nginx(agent_cli, lay, app_json, release, root):
    app_json()
    release(A)
    release(B)
    swap_symlink(lay.slot_link("blue"), f"../releases/{A}")
    swap_symlink(lay.slot_link("green"), f"../releases/{B}")
    write_atomic(lay.upstream, render_upstream(18002, "green", B).encode())
    result, _, code = agent_cli({"op": "status", "app": "web"})
    assert code == 0, result
    assert (result["live"]["release"], result["live"]["slot"], result["live"]["port"]) == (B, "green", 18002)
    assert result["slots"]["blue"]["release"] == A and result["slots"]["green"]["port"] == 18002
    assert result["health"]["error"] == "refused"  # nothing runs on the slot port in this test
    assert os.readlink(root / "srv/web/current") == f"releases/{B}"


def test_cleanup_op_keeps_what_it_is_told(agent_cli, lay, release):
    ids = [f"202601011{h}0000" for h in range(5)]
    entries = []
    for rid, status in zip(ids, ["retired", "retired", "retired", "previous", "live"], strict=True):
        release(rid)
        upsert_entry(entries, rid, status=status)
    save_journal(lay, entries)
    result, _, code = agent_cli({"op": "cleanup", "app": "web", "keep": 2})
    assert code == 0 and result["removed"] == ids[:3] and result["kept"] == [ids[4], ids[3]]
    result, _, code = agent_cli({"op": "cleanup", "app": "web", "keep": 0})
    assert code == 1 and "keep must be a positive number" in result["error"]


def test_detach_flag_leaves_quick_ops_inline(agent_cli):
    result, _, code = agent_cli({"op": "releases", "app": "web"}, "--detach")
    assert code == 0 and result == {"ok": True, "op": "releases", "app": "web", "releases": []}
