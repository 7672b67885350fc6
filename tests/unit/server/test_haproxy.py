"""The load balancer's plan (HAProxy on a server of its own) as text, and its stats socket read."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.unit.server.serverkit import bash_syntax_ok

from lightfold.agent.layout import HAPROXY_CFG, HAPROXY_SOCKET
from lightfold.server import haproxy
from lightfold.server.plan import EnsurePackages, ServiceReload, SystemdEnable, WriteFile, render

BACKENDS = [haproxy.Backend("shop", "10.213.7.2"), haproxy.Backend("shop-2", "10.213.7.3")]


def test_config_checks_every_server_on_the_health_path_and_redispatches():
    text = haproxy.config_text("shop", BACKENDS, "/healthz", health_host="shop.example.com")
    assert "\tserver shop 10.213.7.2:80 check\n" in text and "\tserver shop-2 10.213.7.3:80 check\n" in text
    assert "option httpchk" in text
    assert "http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host shop.example.com" in text
    assert "http-check expect status 200-399" in text  # 2xx/3xx, as the servers' own health gate
    assert "\toption redispatch 1\n" in text and "retries 3" in text  # every retry goes to another server
    assert "default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2" in text
    assert f"stats socket {HAPROXY_SOCKET} mode 660 level admin" in text
    assert "load-server-state-from-file global" in text and "bind :80" in text
    assert "http-check expect status 204" in haproxy.config_text("shop", BACKENDS, "/", health_status=204)
    assert "hdr Host localhost" in haproxy.config_text("shop", BACKENDS)


def test_lb_plan_installs_haproxy_checks_the_file_and_reloads_gracefully():
    plan = haproxy.lb_plan("shop", BACKENDS, "/health")
    assert [s.name for s in plan.steps] == ["packages", "firewall", "haproxy"]
    assert "haproxy" in plan.step("packages").actions[0].names
    assert isinstance(plan.step("packages").actions[0], EnsurePackages)
    cfg, reload, enable = plan.step("haproxy").actions
    assert isinstance(cfg, WriteFile) and cfg.path == HAPROXY_CFG and "server shop-2" in cfg.data().decode()
    # only when the file changed: `haproxy -c` first (a refused file is put back), the states saved,
    # then `systemctl try-reload-or-restart haproxy` (a reload: the old process finishes its connections)
    assert isinstance(reload, ServiceReload) and reload.unit == "haproxy"
    assert reload.check.startswith(f"haproxy -c -q -f {HAPROXY_CFG} && ") and "show servers state" in reload.check
    assert isinstance(enable, SystemdEnable) and enable.now
    fw = next(a for a in plan.step("firewall").actions if isinstance(a, WriteFile))
    assert "tcp dport { 80, 443 } accept" in fw.data().decode()  # the LB itself is open to the web
    bash_syntax_ok(render(plan))
    assert render(haproxy.lb_plan("shop", BACKENDS[:1])) != render(plan)  # one server less: a new file


STAT = """\
# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
web,FRONTEND,,,3,10,262144,120,0,0,0,0,0,,,,,OPEN,
app,shop,0,0,2,5,,60,0,0,,0,,0,0,0,0,UP,1
app,shop-2,0,0,1,4,,58,0,0,,0,,0,0,0,0,DRAIN,1
app,shop-3,0,0,0,4,,2,0,0,,0,,3,0,0,0,DOWN,1
app,BACKEND,0,0,3,9,26215,120,0,0,0,0,,3,0,0,0,UP,2

"""


def test_stat_csv_gives_each_server_its_state_and_sessions():
    stats = haproxy.parse_stat(STAT)
    assert [(s.name, s.status, s.sessions) for s in stats] == [("shop", "UP", 2), ("shop-2", "DRAIN", 1),
                                                                ("shop-3", "DOWN", 0)]
    assert haproxy.healthy_backends(stats) == 1
    assert haproxy.parse_stat("") == []


def test_socket_commands_speak_to_the_admin_socket(tmp_path: Path):
    """The command the server runs, run here against a stand-in socket: it sends the one line and
    prints the whole answer."""
    path = tmp_path / "admin.sock"
    got: list[bytes] = []
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)

    def answer() -> None:
        conn, _ = srv.accept()
        got.append(conn.recv(1024))
        conn.sendall(STAT.encode())
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    cmd = haproxy.set_state_command("shop-2", "drain").replace(shlex.quote(HAPROXY_SOCKET), shlex.quote(str(path)))
    cmd = cmd.replace("python3 ", f"{sys.executable} ", 1)
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=10)
    srv.close()
    assert out.returncode == 0, out.stderr
    assert got == [b"set server app/shop-2 state drain\n"]
    assert haproxy.parse_stat(out.stdout)[1].status == "DRAIN"


def test_configure_of_a_scaled_target_opens_web_to_the_load_balancer_only(tmp_path, lf_home):
    from lightfold import state
    from lightfold.config import ProviderConfig, TargetConfig
    from lightfold.detect import detect
    from lightfold.release.configure import plan_for
    from lightfold.release.target import Target

    (tmp_path / "index.html").write_text("<p>hi</p>\n")
    target = Target("shop", TargetConfig(project_path=str(tmp_path), provider="local",
                                         provider_config={"local": ProviderConfig(ip="10.213.7.2")}))

    def firewall_file() -> str:
        plan = plan_for(target, detect(tmp_path), {"apps": {}})
        return next(a for a in plan.plan.step("firewall").actions if isinstance(a, WriteFile)).data().decode()

    assert "\t\ttcp dport { 80, 443 } accept" in firewall_file()  # one server: open, as before
    state.update("shop", lambda s: setattr(s, "load_balancer", state.LoadBalancer(name="shop-lb", ip="10.213.7.9")))
    assert "ip saddr 10.213.7.9 tcp dport { 80, 443 } accept" in firewall_file()
    assert "\t\ttcp dport { 80, 443 } accept" not in firewall_file()


def test_configure_writes_cron_off_on_every_server_but_the_primary(tmp_path, lf_home):
    import json

    from lightfold import state
    from lightfold.config import ProviderConfig, TargetConfig
    from lightfold.detect import detect
    from lightfold.release.configure import plan_for
    from lightfold.release.target import Target

    (tmp_path / "index.html").write_text("<p>hi</p>\n")
    target = Target("shop", TargetConfig(project_path=str(tmp_path), provider="local",
                                         provider_config={"local": ProviderConfig(ip="10.213.7.2")}))

    def app_json_of(t: Target) -> dict:
        plan = plan_for(t, detect(tmp_path), {"apps": {}})
        doc = next(a for a in plan.plan.step("app-unit").actions if getattr(a, "path", "").endswith("app.json"))
        return json.loads(doc.data())

    assert "cron" not in app_json_of(target)
    state.update("shop", lambda s: setattr(s, "servers", [state.Server(name="shop", ip="10.213.7.2", role="primary"),
                                                          state.Server(name="shop-2", ip="10.213.7.3")]))
    assert "cron" not in app_json_of(target)
    assert app_json_of(target.on("10.213.7.3"))["cron"] is False
