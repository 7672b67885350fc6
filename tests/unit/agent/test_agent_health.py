"""Health checks against real HTTP servers on loopback, and the listening-port diagnosis."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from lightfold.agent.health import http_check, listening_addresses, parse_proc_net_tcp, port_in_use
from lightfold.agent.systemd import parse_systemctl_show, unit_crashed


class App(http.server.BaseHTTPRequestHandler):
    status = 200
    seen_hosts: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        App.seen_hosts.append(self.headers.get("Host"))
        body = b"ok" if self.path == "/health" else b"nope"
        self.send_response(App.status if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_app():
    App.status, App.seen_hosts = 200, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthy_app_with_host_header(http_app):
    result = http_check(http_app, "/health", "example.test", 2.0, 200)
    assert result["healthy"] and result["status_code"] == 200 and result["error"] is None
    assert App.seen_hosts == ["example.test"]


def test_without_a_host_the_loopback_address_is_sent(http_app):
    http_check(http_app, "/health", None, 2.0, 200)
    assert App.seen_hosts == [f"127.0.0.1:{http_app}"]


def test_wrong_status_is_unhealthy(http_app):
    App.status = 503
    result = http_check(http_app, "/health", None, 2.0, 200)
    assert not result["healthy"] and result["status_code"] == 503
    assert http_check(http_app, "/missing", None, 2.0, 200)["status_code"] == 404


@pytest.mark.parametrize("status, healthy", [(200, True), (204, True), (301, True), (302, True), (307, True),
                                             (399, True), (400, False), (404, False), (500, False), (503, False)])
def test_by_default_any_2xx_or_3xx_is_healthy_and_a_redirect_is_not_followed(http_app, status, healthy):
    App.status = status
    result = http_check(http_app, "/health", None, 2.0)
    assert (result["healthy"], result["status_code"]) == (healthy, status)
    assert len(App.seen_hosts) == 1  # one request: no redirect followed


def test_a_configured_status_is_exact(http_app):
    App.status = 302
    assert not http_check(http_app, "/health", None, 2.0, 200)["healthy"]


def test_expected_status_may_be_a_list(http_app):
    App.status = 204
    assert http_check(http_app, "/health", None, 2.0, [200, 204])["healthy"]


def test_connection_refused():
    result = http_check(free_port(), "/", None, 2.0, 200)
    assert not result["healthy"] and result["error"] == "refused" and result["status_code"] is None


def test_accepting_but_silent_app_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)  # the kernel completes the handshake; nobody ever answers
        result = http_check(silent.getsockname()[1], "/", None, 0.3, 200)
    assert result["error"] == "timeout" and not result["healthy"]
    assert 250 <= result["elapsed_ms"] < 2000


def test_health_op_checks_a_given_port(agent_cli, app_json, http_app):
    app_json()
    result, _, code = agent_cli({"op": "health", "app": "web", "port": http_app})
    assert code == 0 and result["healthy"] and result["status_code"] == 200
    assert App.seen_hosts == ["example.test"]  # the domain from app.json is the default Host
    result, _, _ = agent_cli({"op": "health", "app": "web", "port": http_app,
                              "health": {"path": "/other", "host": "h.test"}})
    assert not result["healthy"] and result["status_code"] == 404 and App.seen_hosts[-1] == "h.test"


def test_port_in_use(http_app):
    assert port_in_use(http_app)
    assert not port_in_use(free_port())


def test_listening_addresses_of_a_process_name_its_ports():
    import os

    with socket.socket() as v4, socket.socket(socket.AF_INET6) as v6:
        v4.bind(("127.0.0.1", 0))
        v4.listen()
        v6.bind(("::1", 0))
        v6.listen()
        found = listening_addresses([os.getpid()])
        assert f"127.0.0.1:{v4.getsockname()[1]}" in found
        assert f"[::1]:{v6.getsockname()[1]}" in found


def test_proc_net_tcp_parsing_keeps_only_listeners():
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1\n"
        "   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 222 1\n"
        "   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1\n"
    )
    assert parse_proc_net_tcp(text) == {111: ("127.0.0.1", 3000), 333: ("0.0.0.0", 80)}


def test_systemctl_show_parsing():
    props = parse_systemctl_show("ActiveState=active\nNRestarts=2\nControlGroup=/system.slice/x=y\n")
    assert props == {"ActiveState": "active", "NRestarts": "2", "ControlGroup": "/system.slice/x=y"}
    assert unit_crashed({"active_state": "activating", "sub_state": "auto-restart"})
    assert unit_crashed({"active_state": "failed", "sub_state": "failed"})
    assert not unit_crashed({"active_state": "active", "sub_state": "running"})


def test_a_slot_on_ipv6_loopback_only_is_told_apart_from_one_ignoring_port():
    from lightfold.agent.switch import not_listening

    msg, fix = not_listening("20260101000000", "green", 3001, 30, ["[::1]:3001"])
    assert "listens on [::1]:3001 only" in msg and "127.0.0.1:3001" in msg
    assert "'127.0.0.1'" in fix and "localhost" in fix
    msg, fix = not_listening("20260101000000", "green", 3001, 30, ["127.0.0.1:8080"])
    assert "probably ignores $PORT" in msg and "(it listens on 127.0.0.1:8080)" in msg


def test_a_slot_listening_nowhere_at_the_timeout_is_told_how_to_give_it_longer():
    """A slow boot (nothing listens yet when the health timeout ends): the message names the
    timeout, and the fix both places it is set, with a longer value."""
    from lightfold.agent.switch import not_listening

    msg, fix = not_listening("20260101000000", "green", 3001, 4, [])
    assert "did not listen on 127.0.0.1:3001 within the 4s health timeout" in msg, msg
    assert "probably ignores" not in msg
    assert 'timeout = "60s"` under [health] in lightfold.toml' in fix, fix
    assert "lightfold config set deploy.health_timeout 60" in fix and "$PORT" in fix, fix
    _, fix = not_listening("20260101000000", "green", 3001, 90, [])
    assert 'timeout = "180s"' in fix and "deploy.health_timeout 180" in fix, fix
