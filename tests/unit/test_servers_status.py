"""`status` of a target on one server and on several: the `servers` and `load_balancer` keys."""

from __future__ import annotations

from lightfold import state
from lightfold.cli import render
from lightfold.release import status


def test_a_single_server_target_lists_its_one_server_and_no_load_balancer(lf_home):
    st = state.TargetState()
    got = status.servers_status("web", "10.0.0.5", st, {"live_release": "20260101000000",
                                                      "health_now": {"ok": True, "status": 200}})
    assert got == {"servers": [{"name": "web", "ip": "10.0.0.5", "role": "primary",
                                "live_release": "20260101000000", "health": "healthy"}],
                   "load_balancer": None}
    assert render.servers_lines({**got}) == []  # status for people reads as before
    assert status.servers_status("web", None, st, {})["servers"] == []


def test_a_scaled_target_reads_each_server_and_the_load_balancer(lf_home, monkeypatch):
    from lightfold import config
    from lightfold.release import lb, operate

    config.update(lambda c: c.targets.__setitem__("web", config.TargetConfig(
        project_path="/p", provider="local", provider_config={"local": config.ProviderConfig(ip="10.0.0.5")})))
    st = state.TargetState(servers=[state.Server(name="web", ip="10.0.0.5", role="primary"),
                                    state.Server(name="web-2", ip="10.0.0.6")],
                           load_balancer=state.LoadBalancer(name="web-lb", ip="10.0.0.9"))
    asked = []

    def remote_status(name, timeout=10, ip=None):
        asked.append(ip)
        return "reachable", {"live_release": "20260101000000", "health_now": {"ok": False, "status": 502}}, None

    monkeypatch.setattr(operate, "remote_status", remote_status)
    lb_info = {"kind": "haproxy", "name": "web-lb", "ip": "10.0.0.9", "healthy_backends": 1,
               "backends": [{"name": "web", "status": "UP", "sessions": 0},
                            {"name": "web-2", "status": "DOWN", "sessions": 0}], "error": None}
    monkeypatch.setattr(lb, "status_of", lambda target, balancer: lb_info if balancer.ip == "10.0.0.9" else None)
    got = status.servers_status("web", "10.0.0.5", st, {"live_release": "20260101000000",
                                                      "health_now": {"ok": True}})
    assert asked == ["10.0.0.6"]  # the primary's status was read already
    assert [(s["name"], s["role"], s["health"]) for s in got["servers"]] == [("web", "primary", "healthy"),
                                                                            ("web-2", "web", "unhealthy")]
    assert got["load_balancer"]["healthy_backends"] == 1
    lines = render.servers_lines(got)
    assert "haproxy on web-lb (10.0.0.9): 1 of 2 servers healthy" in lines[0]
    assert "web-2 10.0.0.6 (web): release 20260101000000" in lines[2]



def test_a_scaled_targets_servers_are_asked_at_once(lf_home, monkeypatch):
    """status asks every other server (and the load balancer) at the same time: two servers that
    each take their whole SSH timeout cost it once."""
    import threading

    from lightfold import config
    from lightfold.release import lb, operate

    config.update(lambda c: c.targets.__setitem__("web", config.TargetConfig(
        project_path="/p", provider="local", provider_config={"local": config.ProviderConfig(ip="10.0.0.5")})))
    st = state.TargetState(servers=[state.Server(name="web", ip="10.0.0.5", role="primary"),
                                    state.Server(name="web-2", ip="10.0.0.6"),
                                    state.Server(name="web-3", ip="10.0.0.7")],
                           load_balancer=state.LoadBalancer(name="web-lb", ip="10.0.0.9"))
    everyone = threading.Barrier(3, timeout=5)  # web-2, web-3 and the load balancer, together

    def remote_status(name, timeout=10, ip=None):
        everyone.wait()
        return "unreachable", None, "timed out"

    def status_of(target, balancer):
        everyone.wait()
        return {"kind": "haproxy", "ip": balancer.ip, "healthy_backends": 0}

    monkeypatch.setattr(operate, "remote_status", remote_status)
    monkeypatch.setattr(lb, "status_of", status_of)
    got = status.servers_status("web", "10.0.0.5", st, {"live_release": "20260101000000"})
    assert [(s["name"], s["health"]) for s in got["servers"]] == [("web", None), ("web-2", None), ("web-3", None)]
    assert got["load_balancer"]["ip"] == "10.0.0.9"


def test_configure_of_a_scaled_target_does_every_server_the_primary_first(lf_home, monkeypatch):
    import asyncio
    import contextlib

    from lightfold import config
    from lightfold.release import configure as step
    from lightfold.release import target as targets
    from lightfold.release.configure import ConfigureResult

    config.update(lambda c: c.targets.__setitem__("web", config.TargetConfig(
        project_path="/p", provider="local", provider_config={"local": config.ProviderConfig(ip="10.0.0.5")})))
    state.update("web", lambda s: setattr(s, "servers", [state.Server(name="web-2", ip="10.0.0.6"),
                                                         state.Server(name="web", ip="10.0.0.5", role="primary"),
                                                         state.Server(name="web-3", ip="10.0.0.7")]))
    began, running = [], set()

    @contextlib.asynccontextmanager
    async def conn_to(ip):
        yield ip

    async def connect(t):
        return conn_to(t.server.ip)

    async def configure(conn, t, detection, *, force, report):
        assert conn == t.server.ip and force is True
        began.append((conn, set(running)))
        running.add(conn)
        await asyncio.sleep(0.05)
        running.discard(conn)
        return ConfigureResult(False, changed=[f"nginx on {conn}"])

    monkeypatch.setattr(targets, "connect", connect)
    monkeypatch.setattr(step, "configure", configure)
    results = step.configure_servers(targets.load("web"), None, force=True)
    assert list(results) == ["web", "web-2", "web-3"]
    assert began[0] == ("10.0.0.5", set())  # the primary alone, first
    assert {ip for ip, _ in began[1:]} == {"10.0.0.6", "10.0.0.7"} and began[2][1] == {began[1][0]}  # then together
    data = render.configure_servers_json("web", results)
    assert data["changed"] == ["nginx on 10.0.0.5"] and data["servers"]["web-3"]["changed"] == ["nginx on 10.0.0.7"]


def test_sync_finds_the_servers_scale_recorded_on_the_primary(lf_home, monkeypatch):
    """The laptop lost its state: `sync` reads the primary's servers record (written by `scale`)
    and knows every server and the load balancer again; a state that has them keeps its own."""
    from lightfold import config
    from lightfold.release import facts, operate, scale
    from lightfold.release import target as targets
    from lightfold.remote import run_sync

    config.update(lambda c: c.targets.__setitem__("web", config.TargetConfig(
        project_path="/p", provider="byos", provider_config={"byos": config.ProviderConfig(ip="10.0.0.5")})))
    scaled = state.TargetState(servers=[state.Server(name="web", ip="10.0.0.5", role="primary"),
                                        state.Server(name="web-2", ip="10.0.0.6")],
                               load_balancer=state.LoadBalancer(name="web-lb", ip="10.0.0.9"))
    text = scale.record_text(scaled)
    fact = facts.servers_record("web")
    assert fact.command == "cat /etc/lightfold/apps/web/servers.json"
    recorded = fact.parse(text, 0)
    assert fact.parse("", 1) is None and fact.parse("[]", 0) is None

    async def read(conn, *wanted, **kw):
        assert [f.name for f in wanted] == ["marker", "servers_record"]
        return {"marker": None, "servers_record": recorded}

    monkeypatch.setattr(facts, "read", read)
    r = run_sync(operate.sync(None, targets.load("web")))
    got = state.load("web")
    assert got.servers == scaled.servers and got.load_balancer == scaled.load_balancer
    assert "servers" in r.changed and r.servers == ["web", "web-2"] and r.load_balancer == "web-lb"
    assert render.sync_json(r)["servers"] == ["web", "web-2"]
    # a second sync changes nothing
    assert "servers" not in run_sync(operate.sync(None, targets.load("web"))).changed


def test_a_database_and_several_servers_are_refused_both_ways(lf_home, monkeypatch):
    """lightfold's databases listen on the primary's loopback: `db add` on a scaled target and
    `scale` up of a target with a database are refused before anything changes, naming the fix."""
    import pytest

    from lightfold import config
    from lightfold.errors import LightfoldError
    from lightfold.release import database, scale
    from lightfold.release import target as targets
    from lightfold.remote import run_sync

    config.update(lambda c: c.targets.__setitem__("web", config.TargetConfig(
        project_path="/p", provider="local", provider_config={"local": config.ProviderConfig(ip="10.0.0.5")})))
    t = targets.load("web")
    database.refuse_several_servers(t, "db add postgres")  # one server: fine
    state.update("web", lambda s: setattr(s, "servers", [state.Server(name="web", ip="10.0.0.5", role="primary"),
                                                         state.Server(name="web-2", ip="10.0.0.6")]))
    with pytest.raises(LightfoldError) as e:
        run_sync(database.add(None, t, "postgres"))  # refused before it asks the server anything
    assert "runs on 2 servers" in e.value.problem and "DATABASE_URL" in e.value.fix

    state.update("web", lambda s: setattr(s, "servers", []))
    monkeypatch.setattr(scale, "_live_release", lambda t: "20260101000000")
    monkeypatch.setattr(targets.Target, "detect", lambda self: None)
    asked = []

    def on(target, work):
        asked.append(target.server.ip)
        return {"databases": {"postgres": {"configured": True}, "redis": {"configured": False}}}

    monkeypatch.setattr(scale, "_on", on)
    with pytest.raises(LightfoldError) as e:
        scale.scale("web", 2)
    assert "has postgres on its server" in e.value.problem and "db remove postgres" in e.value.fix
    assert asked == ["10.0.0.5"] and state.servers_of("web", "10.0.0.5", state.load("web"))[1:] == []


def test_a_cloud_load_balancer_whose_api_does_not_report_health_says_so():
    got = {"servers": [{"name": "web", "ip": "10.0.0.5", "role": "primary", "live_release": "1", "health": "healthy"},
                       {"name": "web-2", "ip": "10.0.0.6", "role": "web", "live_release": "1", "health": "healthy"}],
           "load_balancer": {"kind": "digitalocean", "name": "lf-web-1a2b3c4d-lb", "ip": "203.0.113.9",
                             "healthy_backends": None, "error": None,
                             "backends": [{"name": "web", "status": None}, {"name": "web-2", "status": None}]}}
    line = render.servers_lines(got)[0]
    assert "digitalocean on lf-web-1a2b3c4d-lb (203.0.113.9): 2 servers (its API does not report" in line
