"""The rolling deploy's order and its way back (lightfold.release.rolling), with the agent, the
ship and the SSH connections stood in for: which server switches when, and which go back."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from lightfold import config, state
from lightfold.agent.protocol import StatusReply, SwitchResult
from lightfold.errors import LightfoldError, UsageError
from lightfold.release import agent_client, rolling, ship
from lightfold.release.target import Target

SERVERS = [state.Server(name="web", ip="10.0.0.1", role="primary"), state.Server(name="web-2", ip="10.0.0.2"),
           state.Server(name="web-3", ip="10.0.0.3")]


class Conn:
    def __init__(self, host: str):
        self.host = host

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None


@pytest.fixture
def world(monkeypatch):
    events: list[tuple[str, str, str]] = []
    failing: set[str] = set()

    async def connect(target):
        return Conn(target.server.ip)

    async def activate(conn, app, release, **kw):
        events.append(("activate", conn.host, release))
        await asyncio.sleep(0)
        if conn.host in failing:
            raise LightfoldError(f"health check of {release} failed")
        return SwitchResult(release=release)

    async def call(conn, op, app, **fields):
        events.append((op, conn.host, fields.get("to")))
        return {"release": fields.get("to") or "20260101000000"}

    async def status(conn, app):
        return StatusReply.from_dict({"live": {"release": live[0]}, "releases": []})

    live = ["20260101000000"]
    monkeypatch.setattr(rolling, "LIVE", live, raising=False)

    async def shipped(src, dst, target, detection, release_id, report=None):
        events.append(("ship", dst.host, release_id))

    async def configure(conn, target, detection, report=None):
        events.append(("configure", conn.host, ""))

    @contextlib.asynccontextmanager
    async def deploy_lock(conn, app, op, release, lock_wait=0, report=None):
        yield None

    monkeypatch.setattr(rolling, "connect", connect)
    monkeypatch.setattr(agent_client, "activate", activate)
    monkeypatch.setattr(agent_client, "call", call)
    monkeypatch.setattr(agent_client, "status", status)
    monkeypatch.setattr(ship, "ship", shipped)
    monkeypatch.setattr("lightfold.release.configure.configure", configure)
    monkeypatch.setattr("lightfold.release.push.deploy_lock", deploy_lock)
    return events, failing


def target() -> Target:
    return Target("web", config.TargetConfig(project_path="/p", provider="local",
                                             provider_config={"local": config.ProviderConfig(ip="10.0.0.1")}))


def test_batches_start_with_the_primary():
    assert [[s.name for s in b] for b in rolling.batches(SERVERS, 2)] == [["web", "web-2"], ["web-3"]]
    with pytest.raises(UsageError):
        rolling.batches(SERVERS, 0)


def test_single_server_targets_have_no_rollout(lf_home):
    config.update(lambda c: c.targets.__setitem__("web", target().config))
    assert rolling.rollout_for(target(), None) is None
    with pytest.raises(UsageError):
        rolling.rollout_for(target(), None, batch=2)


def test_ship_everywhere_first_then_switch_one_at_a_time(world):
    events, _ = world
    out = asyncio.run(rolling.Rollout(target(), SERVERS, None)(Conn("10.0.0.1"), "20260202000000", "20260101000000"))
    assert out.release == "20260202000000"
    kinds = [e[0] for e in events]
    assert kinds.index("activate") > max(i for i, k in enumerate(kinds) if k == "ship")  # no switch before all ship
    assert [e[1] for e in events if e[0] == "activate"] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert {e[1] for e in events if e[0] == "ship"} == {"10.0.0.2", "10.0.0.3"}  # built once, on the primary


def test_a_failing_server_puts_the_switched_ones_back(world):
    events, failing = world
    failing.add("10.0.0.3")
    with pytest.raises(LightfoldError) as err:
        asyncio.run(rolling.Rollout(target(), SERVERS, None)(Conn("10.0.0.1"), "20260202000000", "20260101000000"))
    assert "failed on web-3" in err.value.problem and "web, web-2 went back" in err.value.problem
    back = [(e[1], e[2]) for e in events if e[0] == "rollback"]
    assert back == [("10.0.0.2", "20260101000000"), ("10.0.0.1", "20260101000000")]  # newest first


def test_a_failing_batch_stops_the_rollout_there(world):
    events, failing = world
    failing.add("10.0.0.2")
    with pytest.raises(LightfoldError):
        asyncio.run(rolling.Rollout(target(), SERVERS, None, batch=2)(Conn("10.0.0.1"), "20260202000000", None))
    assert [e[1] for e in events if e[0] == "activate"] == ["10.0.0.1", "10.0.0.2"]  # web-3 never switched
    # nothing was live before on the primary: it keeps the new release (said as a warning)
    assert [e for e in events if e[0] == "rollback"] == []


def test_scale_plans_new_names_and_removes_the_newest_never_the_primary():
    from lightfold.release.scale import plan_change

    assert plan_change(SERVERS[:1], 3, "web") == (["web-2", "web-3"], [])
    assert plan_change(SERVERS, 1, "web") == ([], [SERVERS[2], SERVERS[1]])
    assert plan_change([SERVERS[0], SERVERS[2]], 3, "web") == (["web-2"], [])  # a gap is filled
    assert plan_change(SERVERS, 3, "web") == ([], [])
    with pytest.raises(UsageError):
        plan_change(SERVERS, 0, "web")


def test_rollback_of_every_server_goes_where_the_primary_went(world):
    events, _ = world
    rolling.LIVE[0] = "20260202000000"  # what is live everywhere before the rollback
    result, left = asyncio.run(rolling.rollback_all(target(), SERVERS, None))
    back = [(e[1], e[2]) for e in events if e[0] == "rollback"]
    # the primary's agent picks (no `to`), every other server follows it to the same release
    assert back == [("10.0.0.1", None), ("10.0.0.2", "20260101000000"), ("10.0.0.3", "20260101000000")]
    assert result.release == "20260101000000" and left == "20260202000000"


def test_a_failed_rollback_puts_the_rolled_back_servers_forward_again(world, monkeypatch):
    events, failing = world
    rolling.LIVE[0] = "20260202000000"

    async def call(conn, op, app, **fields):
        events.append((op, conn.host, fields.get("to")))
        if conn.host == "10.0.0.3":
            raise LightfoldError("health check failed")
        return {"release": fields.get("to") or "20260101000000"}

    monkeypatch.setattr(agent_client, "call", call)
    with pytest.raises(LightfoldError) as err:
        asyncio.run(rolling.rollback_all(target(), SERVERS, "20260101000000"))
    assert "failed on web-3" in err.value.problem and "web, web-2 went forward again" in err.value.problem
    forward = [(e[1], e[2]) for e in events if e[0] == "rollback"][3:]
    assert forward == [("10.0.0.2", "20260202000000"), ("10.0.0.1", "20260202000000")]
