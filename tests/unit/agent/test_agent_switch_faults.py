"""Faults inside a switch after nginx already routes to the new slot (issue 18): the switch puts
traffic back on the old release and says so, instead of leaving the new one serving behind a
reported failure. systemd and nginx are stood in for here (no systemd in unit tests); the e2e tests
run real switches on sandbox machines."""

from __future__ import annotations

import errno
import os

import pytest
from tests.unit.agent.conftest import NEW_RID, OLD_RID, blue_live_and_systemd_ok

from lightfold.agent import switch
from lightfold.agent.core import AgentError
from lightfold.agent.files import read_text
from lightfold.agent.journal import load_journal
from lightfold.agent.upstream import upstream_port

OLD, NEW = OLD_RID, NEW_RID


@pytest.fixture
def live_blue(lay, release, app_json, monkeypatch):
    """OLD live in blue; systemd and nginx answer as if all went well."""
    app_json()
    release(OLD, env="A=1\n")
    release(NEW, env="A=2\n")
    cfg = blue_live_and_systemd_ok(lay, monkeypatch)
    return cfg


def test_enospc_while_journaling_after_the_flip_puts_traffic_back(lay, live_blue, monkeypatch):
    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(switch, "save_journal", full)
    with pytest.raises(AgentError) as e:
        switch.switch_to(lay, live_blue, NEW, {"smoke_seconds": 0, "drain_seconds": 0}, "activate")
    assert e.value.extra.get("flipped_back") is True
    assert "traffic is back on " + OLD in e.value.error and "No space left" in e.value.error
    assert upstream_port(read_text(lay.upstream)) == live_blue["ports"]["blue"]
    assert os.readlink(lay.current) == f"releases/{OLD}"
    assert not os.path.exists(lay.switch_intent)


def test_an_unreadable_release_record_after_the_flip_puts_traffic_back(lay, live_blue, monkeypatch):
    monkeypatch.setattr(switch, "release_info", lambda lay_, rid: (_ for _ in ()).throw(PermissionError(13, "denied")))
    with pytest.raises(AgentError, match="traffic is back on " + OLD):
        switch.switch_to(lay, live_blue, NEW, {"smoke_seconds": 0, "drain_seconds": 0}, "activate")
    assert upstream_port(read_text(lay.upstream)) == live_blue["ports"]["blue"]
    entries = {e["id"]: e for e in load_journal(lay)}
    assert entries[OLD]["status"] == "live" and entries[NEW]["status"] == "failed"
