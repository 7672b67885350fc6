"""A switch interrupted from outside (its agent SIGKILLed, the server rebooted; issue 18): the next
reconcile (every status, activate and rollback) finds what it left and puts it right — a release
still "building" with nobody deploying, the idle slot still running or still nginx's backup — and
a reboot in the smoke window finds the slot nginx routes to enabled at boot. systemd and nginx are
stood in for (the e2e fault suite, tests/faults, kills and reboots real machines)."""

from __future__ import annotations

import json
import os
import time

import pytest
from tests.unit.agent.conftest import NEW_RID, OLD_RID, blue_live_and_systemd_ok

from lightfold.agent import live, switch
from lightfold.agent.core import Ran
from lightfold.agent.files import read_text, write_atomic
from lightfold.agent.journal import load_journal
from lightfold.agent.upstream import BACKUP_RE, render_upstream, upstream_port


@pytest.fixture
def blue(lay, release, app_json, monkeypatch):
    app_json()
    release(OLD_RID, env="A=1\n")
    release(NEW_RID, env="A=2\n")
    cfg = blue_live_and_systemd_ok(lay, monkeypatch)
    calls: list[tuple[str, ...]] = []
    states = {"blue": "active", "green": "inactive"}

    def systemctl(*args):
        calls.append(args)
        return Ran(0, "", "")

    def unit_state(unit):
        slot = unit.rsplit("@", 1)[1].removesuffix(".service")
        return {"n_restarts": 0, "active_state": states[slot], "sub_state": "running"}

    monkeypatch.setattr(switch, "systemctl", systemctl)
    monkeypatch.setattr(switch, "unit_state", unit_state)
    return cfg, calls, states


def statuses(lay) -> dict[str, str]:
    return {e["id"]: e["status"] for e in load_journal(lay)}


def test_a_release_left_building_with_nobody_deploying_is_marked_failed(lay, blue):
    cfg, _, _ = blue
    notes = live.reconcile(lay, cfg, None)
    assert statuses(lay) == {OLD_RID: "live", NEW_RID: "failed"}
    assert f"marked the interrupted release {NEW_RID} failed" in notes


def test_a_release_building_under_a_held_deploy_lock_is_left_alone(lay, blue):
    cfg, _, _ = blue
    os.makedirs(lay.meta, exist_ok=True)
    with open(lay.lock, "w") as f:  # held by a live process: this one
        json.dump({"holder": "me", "pid": os.getpid(), "started_ts": time.time(), "ttl": 3600}, f)
    assert live.reconcile(lay, cfg, None) == []
    assert statuses(lay)[NEW_RID] == "building"


def test_a_stale_deploy_lock_does_not_keep_a_release_building(lay, blue):
    cfg, _, _ = blue
    os.makedirs(lay.meta, exist_ok=True)
    with open(lay.lock, "w") as f:  # its holder is gone (pid 2**22 + 1 is never a live pid here)
        json.dump({"holder": "me", "pid": 2**22 + 1, "started_ts": time.time(), "ttl": 3600}, f)
    live.reconcile(lay, cfg, None)
    assert statuses(lay)[NEW_RID] == "failed"


def test_the_idle_slot_left_running_and_as_nginx_backup_is_stopped_and_dropped(lay, blue):
    cfg, calls, states = blue
    states["green"] = "active"
    write_atomic(lay.upstream, render_upstream(cfg["ports"]["blue"], "blue", OLD_RID, cfg["ports"]["green"]).encode())
    notes = live.reconcile(lay, cfg, None)
    assert ("stop", "lightfold-web@green.service") in calls
    assert ("disable", "--quiet", "--no-reload", "lightfold-web@green.service") in calls
    text = read_text(lay.upstream)
    assert upstream_port(text) == cfg["ports"]["blue"] and not BACKUP_RE.search(text)
    assert any("stopped slot green" in n for n in notes) and any("out of nginx" in n for n in notes)


def test_nothing_to_settle_changes_nothing(lay, blue):
    cfg, calls, _ = blue
    before = read_text(lay.upstream)
    live.reconcile(lay, cfg, None)
    assert not [c for c in calls if c[0] in ("stop", "enable", "disable")]
    assert read_text(lay.upstream) == before


def test_the_new_slot_starts_at_boot_before_traffic_moves_and_not_after_a_flip_back(lay, blue, monkeypatch):
    cfg, calls, _ = blue
    seen_at_flip = []
    real_flip = switch.flip_upstream

    def flip(*a, **k):
        seen_at_flip.append(list(calls))
        return real_flip(*a, **k)

    monkeypatch.setattr(switch, "flip_upstream", flip)
    monkeypatch.setattr(switch, "smoke_failure", lambda *a: "it crashed")
    with pytest.raises(switch.AgentError, match="traffic is back on"):
        switch.switch_to(lay, cfg, NEW_RID, {"smoke_seconds": 0, "drain_seconds": 0}, "activate")
    assert ("enable", "--quiet", "--no-reload", "lightfold-web@green.service") in seen_at_flip[0]
    enabled = calls.index(("enable", "--quiet", "--no-reload", "lightfold-web@green.service"))
    assert ("disable", "--quiet", "--no-reload", "lightfold-web@green.service") in calls[enabled:]
