"""The configure plan as text: systemd unit, nginx site, app.json, ports, runtimes, firewall, marker.
Generated nginx and systemd files are also checked by the real `nginx -t` / `systemd-analyze verify`
when those are installed (apt-get install nginx-light systemd)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.unit.server.serverkit import Det, bash_syntax_ok, run_script

from lightfold.config import DeployConfig, DomainConfig, TargetConfig
from lightfold.errors import LightfoldError
from lightfold.server import nginx, runtime
from lightfold.server.app import AppSpec, app_json, app_user, pick_ports, ports_for, unit_text
from lightfold.server.configure import agent_hash, configure_plan
from lightfold.server.markers import marker_path, parse_marker
from lightfold.server.plan import EnsureDir, EnsurePackages, Remove, Run, Symlink, WriteFile

AGENT = {"agent/__init__.py": b"", "agent/main.py": b"print('agent v1')\n"}


def spec(name: str = "shop", det: Det | None = None, **kw) -> AppSpec:
    kw.setdefault("ports", (8000, 8001))
    deploy = kw.pop("deploy", DeployConfig())
    return AppSpec(name, det or Det(), deploy, **kw)


def test_unit_file_matches_the_agent_contract():
    text = unit_text(spec())
    for line in [
        "[Service]", "User=lf-shop", "Group=lf-shop",
        "WorkingDirectory=/srv/shop/slots/%i",
        "EnvironmentFile=/srv/shop/run/%i.env",
        "Environment=HOME=/srv/shop/cache XDG_CACHE_HOME=/srv/shop/cache",
        "ExecStart=/srv/shop/slots/%i/.lightfold/start",
        "Restart=on-failure", "RestartSec=1", "KillMode=mixed", "TimeoutStopSec=30",
        "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
        "ReadWritePaths=-/srv/shop/cache -/srv/shop/storage",  # releases and deps are read-only to the app
        "[Install]", "WantedBy=multi-user.target",
    ]:
        assert line in text.splitlines(), line


def test_unit_file_has_the_sandbox_a_web_app_keeps_working_in():
    lines = unit_text(spec()).splitlines()
    for line in [
        "CapabilityBoundingSet=", "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes", "ProtectControlGroups=yes", "ProtectClock=yes", "RestrictSUIDSGID=yes",
        "RestrictNamespaces=yes", "RestrictRealtime=yes", "LockPersonality=yes",
        "SystemCallFilter=@system-service", "SystemCallArchitectures=native", "UMask=0077",
        "IPAddressDeny=169.254.169.254",
    ]:
        assert line in lines, line
    assert not any(x.startswith("MemoryDenyWriteExecute") for x in lines)  # would stop every JIT


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_unit_file_exposure_is_at_most_2_5(tmp_path: Path):
    """issue 13's goal, scored by systemd itself (offline; the e2e tests score the running unit)."""
    unit = tmp_path / "lightfold-shop@blue.service"
    unit.write_text(unit_text(spec()))
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                         capture_output=True, text=True).stdout
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert m and float(m.group(1)) <= 2.5, out


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path):
    home = tmp_path / "srv/shop"
    start = home / "slots/blue/.lightfold/start"
    start.parent.mkdir(parents=True)
    start.write_text("#!/bin/sh\nexec sleep 1\n")
    start.chmod(0o755)
    unit = tmp_path / "lightfold-shop@blue.service"
    # verify checks that ExecStart exists, so point the unit's paths into the temp dir.
    unit.write_text(unit_text(spec()).replace("/srv/shop", str(home)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_long_app_names_get_a_valid_user_name():
    assert app_user("shop") == "lf-shop"
    long = app_user("a" * 40)
    assert len(long) <= 32 and long.startswith("lf-") and long != app_user("a" * 39)


def test_app_json_tells_the_agent_ports_health_and_static_dir():
    s = spec(det=Det(health_path="/healthz"), deploy=DeployConfig(health_timeout=90, health_host="h.example"),
             domain="shop.example.com")
    assert app_json(s) == {
        "app": "shop", "user": "lf-shop", "ports": {"blue": 8000, "green": 8001}, "static": False,
        "app_root": ".", "output_dir": None,
        "health": {"path": "/healthz", "status": "2xx/3xx", "timeout": 90, "host": "h.example"},
        "domain": "shop.example.com",
    }
    static = spec(det=Det(static=True, output_dir="dist", app_root="/home/me/mono/apps/web", framework="astro"),
                  app_subdir="apps/web")
    doc = app_json(static)
    assert doc["static"] is True and doc["output_dir"] == "apps/web/dist" and doc["health"]["host"] is None


def test_deploy_health_path_wins_over_detection():
    s = spec(det=Det(health_path="/up"), deploy=DeployConfig(health_path="/ready"), domain="d.example")
    assert app_json(s)["health"]["path"] == "/ready" and app_json(s)["health"]["host"] == "d.example"


def test_from_target_takes_domain_and_deploy_settings():
    target = TargetConfig(project_path="/p", deploy=DeployConfig(health_status=204),
                          domain=DomainConfig(domain="a.example"))
    s = AppSpec.from_target("shop", target, Det(), (8002, 8003))
    assert s.domain == "a.example" and s.ports == (8002, 8003) and app_json(s)["health"]["status"] == 204


@pytest.mark.parametrize("used, expected", [
    ([], (8000, 8001)),
    ([8000, 8001], (8002, 8003)),
    ([8000, 8001, 8004, 8005], (8002, 8003)),
    ([8001], (8002, 8003)),
    ([8000, 8001, 8002, 8003], (8004, 8005)),
])
def test_pick_ports_takes_the_first_free_pair(used, expected):
    assert pick_ports(used) == expected


def test_ports_for_keeps_an_apps_own_ports_and_avoids_the_others():
    docs = {"blog": {"ports": {"blue": 8000, "green": 8001}}, "shop": {"ports": {"blue": 8004, "green": 8005}}}
    assert ports_for("shop", docs) == (8004, 8005)
    assert ports_for("new", docs) == (8002, 8003)


def test_proxy_site_routes_to_the_upstream_with_forwarding_headers():
    text = nginx.site_text(spec(domain="shop.example.com"))
    assert (
        "upstream lightfold_shop {\n    include /etc/lightfold/apps/shop/upstream.conf;\n    keepalive 16;\n}"
    ) in text
    for line in [
        "listen 80;", "server_name shop.example.com;", "proxy_pass http://lightfold_shop;",
        "proxy_http_version 1.1;", "proxy_set_header Connection $lightfold_connection;",
        "proxy_set_header Host $host;", "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;", "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_next_upstream error timeout http_502;", "client_max_body_size 64m;",
        "location ^~ /.well-known/acme-challenge/ {", "root /var/www/lightfold-acme;",
    ]:
        assert line in [x.strip() for x in text.splitlines()], line
    assert "default_server" not in text
    assert "''      '';" in nginx.shared_conf_text()  # empty Upgrade -> empty Connection: keepalive


def test_default_server_and_catch_all_name_without_domain():
    text = nginx.site_text(spec(default_server=True))
    assert "listen 80 default_server;" in text and "server_name _;" in text


@pytest.mark.parametrize("det, try_files", [
    (Det(framework="vite", variant="react", static=True, output_dir="dist"), "$uri $uri/ /index.html"),
    (Det(framework="angular", static=True, output_dir="dist/app/browser"), "$uri $uri/ /index.html"),
    (Det(framework="astro", static=True, output_dir="dist"), "$uri $uri.html $uri/ =404"),
])
def test_static_sites_are_served_from_current_with_the_right_fallback(det, try_files):
    text = nginx.site_text(spec(det=det))
    assert f'root "/srv/shop/current/{det.output_dir}";' in text
    assert f"try_files {try_files};" in text
    assert "proxy_pass" not in text
    assert "disable_symlinks if_not_owner from=$document_root;" in text


@pytest.mark.parametrize("out", [
    "dist; } location /leak/ { alias /etc/; ", "dist\nlocation", 'dist" ', "../etc", "/etc", "dist/../../x",
    "dist$(id)", "dist{x}", "dist x", "-dist", "dist\0", "distä",
])
def test_a_hostile_output_dir_from_the_project_never_reaches_nginx(out):
    with pytest.raises(LightfoldError, match="static output directory .* is not a safe directory"):
        nginx.site_text(spec(det=Det(framework="vite", static=True, output_dir=out)))


@pytest.mark.parametrize("out", [".output/public", ".vitepress/dist", "dist/@scope+x/browser", "_site", "."])
def test_ordinary_output_dirs_are_served(out):
    assert "root \"/srv/shop/current" in nginx.site_text(spec(det=Det(framework="vite", static=True, output_dir=out)))


def test_tls_site_redirects_http_but_keeps_acme_on_port_80():
    text = nginx.site_text(spec(domain="shop.example.com", tls=True))
    assert "return 301 https://$host$request_uri;" in text
    assert "ssl_certificate /etc/letsencrypt/live/shop.example.com/fullchain.pem;" in text
    assert text.count("location ^~ /.well-known/acme-challenge/") == 2
    with pytest.raises(LightfoldError, match="needs a domain"):
        spec(tls=True)


def test_http2_is_spelled_as_the_releases_nginx_takes_it():
    old = nginx.site_text(spec(domain="shop.example.com", tls=True, default_server=True))
    assert "    listen 443 ssl http2 default_server;\n" in old and "http2 on;" not in old
    new = nginx.site_text(spec(domain="shop.example.com", tls=True, default_server=True, http2_directive=True))
    assert "    listen 443 ssl default_server;\n    http2 on;\n" in new and "ssl http2" not in new
    assert runtime.nginx_http2_directive(TRIXIE) and not runtime.nginx_http2_directive(BOOKWORM)
    assert not runtime.nginx_http2_directive({"codename": "noble"}) and not runtime.nginx_http2_directive(None)


def _nginx_t(tmp_path: Path, specs: list[AppSpec]) -> subprocess.CompletedProcess:
    """Run the real `nginx -t` on the generated files, moved under tmp_path."""
    root = tmp_path / "root"

    def put(path: str, text: str) -> None:
        p = root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text.replace("/etc/", f"{root}/etc/").replace("/srv/", f"{root}/srv/")
                     .replace("/var/www/", f"{root}/var/www/"))

    put(nginx.SHARED_CONF, nginx.shared_conf_text())
    for s in specs:
        put(nginx.site_path(s.name), nginx.site_text(s))
        put(nginx.upstream_path(s.name), nginx.initial_upstream_text(s))
        if s.tls:
            live = root / f"etc/letsencrypt/live/{s.domain}"
            live.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                 f"/CN={s.domain}", "-keyout", str(live / "privkey.pem"), "-out", str(live / "fullchain.pem")],
                check=True, capture_output=True,
            )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n"
        f"    access_log off;\n    include {root}/etc/nginx/conf.d/*.conf;\n"
        f"    include {root}/etc/nginx/sites-enabled/*;\n}}\n"
    )
    return subprocess.run(["nginx", "-t", "-e", str(tmp_path / "error.log"), "-c", str(conf)],
                          capture_output=True, text=True)


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
def test_generated_sites_pass_nginx_t_together(tmp_path: Path):
    specs = [
        spec("shop", default_server=True),
        spec("api", ports=(8002, 8003), domain="api.example.com", tls=True),
        spec("web", Det(framework="vite", variant="react", static=True, output_dir="dist"), ports=(8004, 8005),
             domain="web.example.com", tls=True),
        spec("docs", Det(framework="hugo", runtime="static", static=True, output_dir="public"), ports=(8006, 8007),
             domain="docs.example.com"),
    ]
    r = _nginx_t(tmp_path, specs)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
def test_nginx_t_catches_two_default_servers(tmp_path: Path):
    """Why default_server is a parameter: two apps claiming it break nginx."""
    r = _nginx_t(tmp_path, [spec("a", default_server=True), spec("b", ports=(8002, 8003), default_server=True)])
    assert r.returncode != 0 and "duplicate default server" in r.stderr


def test_nginx_step_writes_the_initial_upstream_only_when_absent_and_drops_debians_site():
    step = nginx.nginx_step(spec())
    upstream = next(a for a in step.actions if isinstance(a, WriteFile) and a.path.endswith("upstream.conf"))
    assert upstream.only_if_absent and "server 127.0.0.1:8000" in upstream.data().decode()
    assert any(getattr(a, "path", None) == "/etc/nginx/sites-enabled/default" for a in step.actions)
    assert type(step.actions[-1]).__name__ == "NginxReload"


def _runtime_actions(det: Det):
    return runtime.runtime_step(det).actions


def test_node_other_than_debians_comes_from_the_npm_registry():
    actions = _runtime_actions(Det(runtime_version=">=20.11", package_manager="pnpm"))
    assert actions[0] == EnsurePackages(("nodejs", "npm"))
    node = actions[1]
    assert node.command == "npm install -g --no-fund --no-audit --prefix /opt/lightfold/node-20 node@20"
    assert node.unless == "/opt/lightfold/node-20/bin/node --version 2>/dev/null | grep -q '^v20\\.'"
    assert actions[2].unless == "test -x /opt/lightfold/node-20/bin/npm"  # node's own npm (see test_node_toolchain)
    assert actions[3] == Symlink("/opt/lightfold/node-20/lib/node_modules/node/etc/npmrc", "/etc/npmrc")
    assert actions[4].command.endswith("--prefix /opt/lightfold/pm/pnpm-latest pnpm")
    assert runtime.bin_dirs(Det(runtime_version="20", package_manager="pnpm")) == [
        "/opt/lightfold/pm/pnpm-latest/bin", "/opt/lightfold/node-20/bin",
    ]


BOOKWORM = {"version": (3, 11, 2), "os": "debian", "codename": "bookworm"}
TRIXIE = {"version": (3, 13, 5), "os": "debian", "codename": "trixie"}


@pytest.mark.parametrize(("server", "major"), [(BOOKWORM, "18"), (TRIXIE, "20"), (TRIXIE, "18"), (None, "20")])
def test_node_comes_with_its_own_npm_even_where_debian_has_that_major(server, major):
    """bookworm's node 18 and trixie's node 20 come with Debian's npm 9.2, older than the npm 10
    those Node lines ship: the requested major comes from the npm registry with its own npm."""
    actions = runtime.runtime_step(Det(runtime_version=major), server).actions
    assert actions[0] == EnsurePackages(("nodejs", "npm"))  # Debian's npm fetches it
    assert actions[1].command.endswith(f"--prefix /opt/lightfold/node-{major} node@{major}")
    assert actions[2].label == f"npm of node {major} (npm registry)"
    assert runtime.bin_dirs(Det(runtime_version=major)) == [f"/opt/lightfold/node-{major}/bin"]


def test_debians_node_serves_where_its_archive_has_the_major_with_a_new_enough_npm(monkeypatch):
    monkeypatch.setitem(runtime.ARCHIVES, "forky", {**runtime.ARCHIVES["trixie"], "node": (22,), "npm": (10, 9)})
    forky = {"version": (3, 13, 7), "os": "debian", "codename": "forky"}
    assert runtime.debian_node("22", forky) and not runtime.debian_node("20", forky)
    assert not runtime.debian_node("20", TRIXIE) and not runtime.debian_node("18", BOOKWORM)
    actions = runtime.runtime_step(Det(runtime_version="22"), forky).actions
    linked = [Symlink(f"/opt/lightfold/node-22/bin/{n}", f"/usr/bin/{n}") for n in ("node", "npm", "npx")]
    assert list(actions[1:]) == linked


def test_unknown_node_versions_get_the_default():
    assert runtime.node_major(None) == runtime.node_major("lts/*") == runtime.DEFAULT_NODE_MAJOR
    assert runtime.node_major("v22.3.0") == "22"


def test_yarn_berry_gets_the_modern_yarn():
    assert _runtime_actions(Det(package_manager="yarn-berry", runtime_version="18"))[-1].command.endswith(
        "@yarnpkg/cli-dist")


def test_python_tools_get_their_own_venv_linked_into_usr_local_bin():
    actions = _runtime_actions(Det(runtime="python", runtime_version="3.11", package_manager="poetry",
                                   framework="django"))
    assert actions[0] == EnsurePackages(("python3", "python3-venv", "python3-dev", "build-essential"))
    assert isinstance(actions[1], Run) and "/opt/lightfold/tools/poetry/bin/pip install" in actions[1].command
    assert actions[2] == Symlink("/usr/local/bin/poetry", "/opt/lightfold/tools/poetry/bin/poetry")
    assert len(_runtime_actions(Det(runtime="python", runtime_version=None, package_manager="pip"))) == 1


def test_rails_with_node_assets_gets_both_runtimes():
    names = _runtime_actions(Det(runtime="ruby", package_manager="bundler", framework="rails",
                                 runtime_version=None, extra_runtimes=["node"]))[0].names
    assert {"ruby-full", "bundler", "nodejs", "npm"} <= set(names)


@pytest.mark.parametrize("rt, pkg", [("php", "composer"), ("go", "golang-go"), ("ruby", "ruby-full"),
                                     ("rust", "cargo"), ("java", "default-jdk-headless")])
def test_each_runtime_comes_from_debian(rt, pkg):
    assert pkg in _runtime_actions(Det(runtime=rt, package_manager=None, runtime_version=None))[0].names


def test_a_newer_runtime_than_debians_is_a_warning():
    assert runtime.runtime_warnings(Det(runtime="python", runtime_version="3.11"), BOOKWORM) == []
    assert runtime.runtime_warnings(Det(runtime="php", runtime_version="^8.2"), BOOKWORM) == []
    assert runtime.runtime_warnings(Det(runtime="ruby", runtime_version=None), BOOKWORM) == []
    assert runtime.runtime_warnings(Det(runtime="ruby", runtime_version="3.3.1"), TRIXIE) == []  # trixie has 3.3
    assert runtime.runtime_warnings(Det(runtime="ruby", runtime_version="3.3.1"), None) == []  # release unknown
    (warning,) = runtime.runtime_warnings(Det(runtime="ruby", runtime_version="3.3.1"), BOOKWORM)
    assert "ruby 3.3.1" in warning and "release (bookworm) has ruby 3.1" in warning
    assert runtime.runtime_warnings(Det(runtime="go", runtime_version="1.22"), BOOKWORM) != []
    assert runtime.runtime_warnings(Det(runtime="go", runtime_version="1.22"), TRIXIE) == []
    assert runtime.runtime_warnings(Det(runtime="node", runtime_version="24")) == []  # npm has every node


def test_dotnet_is_refused_with_a_way_out():
    with pytest.raises(LightfoldError, match="not in Debian") as e:
        runtime.runtime_step(Det(runtime="dotnet"))
    assert "Dockerfile" in e.value.fix


def test_configure_plan_order_and_script_is_valid_bash():
    cfg = configure_plan(spec(), agent_files=AGENT)
    assert [s.name for s in cfg.plan.steps] == [
        "wait", "base", "runtime-node", "agent", "app-user", "app-unit", "nginx", "firewall", "ssh", "updates",
    ]
    script = cfg.script
    bash_syntax_ok(script)
    assert script.index("_lf_step wait") < script.index("_lf_step base") < script.index("_lf_step marker")
    assert "cloud-init status --wait" in script
    agent = cfg.plan.step("agent").actions
    written = {a.path: a.data() for a in agent if isinstance(a, WriteFile)}
    assert written == {"/usr/local/lib/lightfold/agent/__init__.py": b"",
                       "/usr/local/lib/lightfold/agent/main.py": b"print('agent v1')\n"}
    assert {a.mode for a in agent if isinstance(a, WriteFile)} == {0o644}
    assert [a.path for a in agent if isinstance(a, EnsureDir)] == ["/usr/local/lib/lightfold",
                                                                 "/usr/local/lib/lightfold/agent"]
    # the single-file agent of earlier versions goes
    assert [a.path for a in agent if isinstance(a, Remove)] == ["/usr/local/lib/lightfold/agent.py"]


def test_fingerprint_is_stable_and_changes_with_agent_or_settings():
    fp = configure_plan(spec(), agent_files=AGENT).fingerprint
    assert configure_plan(spec(), agent_files=AGENT).fingerprint == fp
    other_agent = configure_plan(spec(), agent_files={**AGENT, "agent/main.py": b"# v2\n"})
    assert other_agent.fingerprint != fp and other_agent.agent_hash == agent_hash({**AGENT, "agent/main.py": b"# v2\n"})
    assert configure_plan(spec(domain="x.example"), agent_files=AGENT).fingerprint != fp
    assert configure_plan(spec(), agent_files=AGENT, ssh_port=2222).fingerprint != fp
    # The version only goes into the marker: upgrading lightfold alone does not force a configure.
    assert configure_plan(spec(), agent_files=AGENT, lightfold_version="9.9").fingerprint == fp


def test_marker_records_fingerprint_and_is_written_only_when_it_differs(tmp_path: Path):
    cfg = configure_plan(spec(), agent_files=AGENT, lightfold_version="1.2.3")
    action = cfg.marker.actions[0]
    path = tmp_path / "configured"
    command = action.command.replace(marker_path("shop"), str(path))
    subprocess.run(["bash", "-c", command], check=True)
    doc = parse_marker(path.read_text())
    assert doc is not None
    assert doc["fingerprint"] == cfg.fingerprint and doc["agent_hash"] == cfg.agent_hash
    assert doc["lightfold_version"] == "1.2.3" and doc["configured_at"].endswith("Z")
    unless = action.unless.replace(marker_path("shop"), str(path))
    assert subprocess.run(["bash", "-c", unless]).returncode == 0
    assert parse_marker("garbage") is None and parse_marker(json.dumps({"x": 1})) is None


def test_invalid_app_names_are_refused():
    with pytest.raises(LightfoldError, match="not a valid app name"):
        spec("Bad Name")


def test_the_agent_step_installs_a_package_that_answers_and_replaces_the_old_single_file(tmp_path: Path):
    """Configure's agent step run for real under a prefix, over a server holding the agent.py of
    earlier versions: the old file goes, the package lands, and it answers a request from there."""
    from lightfold.agent import layout
    from lightfold.agent.bundle import agent_files
    from lightfold.server.configure import agent_step
    from lightfold.server.plan import Plan, render

    lib = tmp_path / layout.AGENT_DIR.lstrip("/")
    lib.mkdir(parents=True)
    (lib / "agent.py").write_text("print('the old agent')\n")
    script = render(Plan((agent_step(agent_files()),)))
    rc, _, err = run_script(script, {"LF_ROOT": str(tmp_path)})
    assert rc == 0, err
    assert not (lib / "agent.py").exists()
    assert sorted(p.name for p in (lib / "agent").glob("*.py")) == sorted(n.split("/")[1] for n in agent_files())
    r = subprocess.run(["python3", "-c", layout.agent_entry(str(lib))], input=b'{"op": "status", "app": "shop"}',
                       capture_output=True, env={"LIGHTFOLD_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"})
    reply = json.loads(r.stdout)
    assert r.returncode == 1 and reply["op"] == "status" and "shop is not configured" in reply["error"]
    rc, events, err = run_script(script, {"LF_ROOT": str(tmp_path)})
    assert rc == 0 and not any(e.get("changed") for e in events if "action" in e), events


def test_what_holds_secrets_or_app_output_is_root_only():
    """issue 13: the journal (env hashes), the audit log and last-op.json (app log lines) sit in
    the meta dir; env snapshots and slot env files in theirs: none readable by the app or others."""
    dirs = {a.path: a for a in configure_plan(spec(), agent_files=AGENT).plan.step("app-user").actions
            if isinstance(a, EnsureDir)}
    for path in ("/srv/shop/.lightfold", "/srv/shop/env", "/srv/shop/run"):
        assert (dirs[path].mode, dirs[path].owner) == (0o700, "root"), path


def test_the_default_site_stays_with_the_first_domainless_app_whoever_is_configured_again():
    from lightfold.server.app import is_default_site

    apps = {"first": {"ports": {"blue": 8000, "green": 8001}, "domain": None},
            "second": {"ports": {"blue": 8002, "green": 8003}, "domain": None}}
    assert is_default_site("first", (8000, 8001), None, apps)      # configured again with a second app beside it
    assert not is_default_site("second", (8002, 8003), None, apps)
    assert is_default_site("new", (8000, 8001), None, {})           # alone
    assert not is_default_site("first", (8000, 8001), "a.example.com", apps)  # a domain has its own name
    with_domain = {**apps, "first": {**apps["first"], "domain": "a.example.com"}}
    assert is_default_site("second", (8002, 8003), None, with_domain)


def test_proc_and_cron_templates_share_the_slots_sandbox_and_run_the_procs_release():
    from lightfold.server.app import cron_unit_text, proc_unit_text
    web, proc, cron = unit_text(spec()), proc_unit_text(spec()), cron_unit_text(spec())
    sandbox = lambda text: [line for line in text.splitlines() if line.split("=")[0] in (  # noqa: E731
        "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "CapabilityBoundingSet", "SystemCallFilter",
        "ReadWritePaths", "RestrictAddressFamilies", "IPAddressDeny", "UMask", "User", "Group")]
    assert sandbox(web) == sandbox(proc) == sandbox(cron) and len(sandbox(web)) >= 12
    for text in (proc, cron):
        lines = text.splitlines()
        assert "WorkingDirectory=/srv/shop/slots/procs" in lines and "EnvironmentFile=/srv/shop/run/procs.env" in lines
    assert "ExecStart=/bin/sh -c 'exec /srv/shop/slots/procs/.lightfold/proc/\"$${1%%%%-*}\"' lightfold %i" in proc
    assert "Restart=always" in proc.splitlines() and "WantedBy=multi-user.target" in proc
    assert "ExecStart=/srv/shop/slots/procs/.lightfold/cron/%i" in cron.splitlines()
    assert "Restart=no" in cron.splitlines() and "[Install]" not in cron
    from lightfold.server.app import app_step, user_and_dirs_step
    written = [a.path for a in app_step(spec()).actions if isinstance(a, WriteFile)]
    assert {"/etc/systemd/system/lightfold-shop.proc@.service", "/etc/systemd/system/lightfold-shop.cron@.service"} \
        <= set(written)
    storage = [a for a in user_and_dirs_step(spec()).actions
               if isinstance(a, EnsureDir) and a.path == "/srv/shop/storage"]
    assert len(storage) == 1 and storage[0].mode == 0o750 and storage[0].owner == "lf-shop"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_proc_and_cron_units_pass_verify_and_score_like_the_slots(tmp_path: Path):
    from lightfold.server.app import cron_unit_text, proc_unit_text
    home = tmp_path / "srv/shop"
    (home / "slots/procs/.lightfold/cron").mkdir(parents=True)
    job = home / "slots/procs/.lightfold/cron/tick"
    job.write_text("#!/bin/sh\nexec true\n")
    job.chmod(0o755)
    for name, text in (("lightfold-shop.proc@worker-1.service", proc_unit_text(spec())),
                       ("lightfold-shop.cron@tick.service", cron_unit_text(spec()))):
        unit = tmp_path / name
        unit.write_text(text.replace("/srv/shop", str(home)))
        r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr == "", (name, r.stderr)
        out = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                             capture_output=True, text=True).stdout
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
        assert m and float(m.group(1)) <= 2.5, out


def test_builds_have_their_own_user_who_owns_releases_and_deps_and_the_app_only_its_own_dirs():
    """issue 13 item 1: the app user writes its cache (HOME) and storage; releases, deps and the
    build cache are the build user's."""
    from lightfold.server.app import build_user
    from lightfold.server.plan import EnsureUser

    actions = configure_plan(spec(), agent_files=AGENT).plan.step("app-user").actions
    assert [a.name for a in actions if isinstance(a, EnsureUser)] == ["lf-shop", "lfb-shop"]
    dirs = {a.path: (oct(a.mode), a.owner, a.group) for a in actions if isinstance(a, EnsureDir)}
    # root's, group-writable for the build user, sticky: it makes new entries, can't rename sealed ones
    assert dirs["/srv/shop/releases"] == dirs["/srv/shop/deps"] == ("0o1775", "root", "lfb-shop")
    assert dirs["/srv/shop/build-cache"] == ("0o700", "lfb-shop", "lfb-shop")
    assert dirs["/srv/shop/cache"] == ("0o700", "lf-shop", "lf-shop")
    assert dirs["/srv/shop/storage"] == ("0o750", "lf-shop", "lf-shop")
    assert build_user("a" * 40) != build_user("a" * 39) and len(build_user("a" * 40)) <= 32
    assert build_user("a" * 40).startswith("lfb-") and build_user("a" * 40) != app_user("a" * 40)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_the_sticky_releases_dir_lets_the_build_user_add_a_release_but_not_swap_a_sealed_one(tmp_path: Path):
    """Found by e2e test_trust_boundary: in a releases/ dir the build user owned, a build renamed the
    live release (root's) away, and could have put its own in its place."""
    import grp
    import pwd

    nobody = pwd.getpwnam("nobody")
    releases = tmp_path / "releases"
    releases.mkdir()
    tmp_path.chmod(0o755)
    os.chown(releases, 0, nobody.pw_gid)
    releases.chmod(0o1775)
    (releases / "20260101120000").mkdir(mode=0o755)  # sealed: root's
    as_builder = lambda cmd: subprocess.run(["runuser", "-u", "nobody", "-g", grp.getgrgid(nobody.pw_gid).gr_name,  # noqa: E731
                                             "--", "sh", "-c", cmd], cwd=releases, capture_output=True)
    assert as_builder("mv 20260101120000 x").returncode != 0
    assert as_builder("rm -rf 20260101120000").returncode != 0 and (releases / "20260101120000").is_dir()
    assert as_builder("mkdir 20260101120001 && mv 20260101120001 .20260101120001.tmp").returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_releases_of_an_earlier_version_are_converted_once_without_following_planted_symlinks(tmp_path: Path):
    """A server configured before immutable releases has app-owned, writable releases and venvs
    (and one configured before sealed releases, build-user-owned ones): configure makes them
    root's, read-only, and a second configure finds nothing to do. The releases/ and deps/ dirs
    stay the build user's. A symlink the app planted in its release is changed itself, never what
    it points at."""
    import pwd

    from lightfold.server.app import immutable_releases_action

    action = immutable_releases_action("shop")
    rel, deps = tmp_path / "srv/shop/releases/20260101120000", tmp_path / "srv/shop/deps/h/.venv"
    (rel / "node_modules/x").mkdir(parents=True)
    deps.mkdir(parents=True)
    (rel / "node_modules/x/i.js").write_text("x")
    (rel / "node_modules/x/i.js").chmod(0o666)
    (deps / "site.py").write_text("x")
    victim = tmp_path / "victim"
    victim.write_text("root's")
    victim.chmod(0o644)
    (rel / "evil").symlink_to(victim)
    app_uid = pwd.getpwnam("daemon").pw_uid  # stands for lf-shop, who owned them
    for top in (rel.parent, deps.parent.parent):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames]:
                os.chown(os.path.join(dirpath, name), app_uid, -1, follow_symlinks=False)
    for path in (rel.parent, deps.parent.parent):
        os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)  # the top dirs: configure's EnsureDir
    def here(text):
        return (text.replace("/srv/shop", str(tmp_path / "srv/shop")).replace("lfb-shop", "nobody")
                .replace("lf-shop", "daemon").replace("nobody:nobody", "nobody:nogroup"))

    unless = ["bash", "-c", here(action.unless)]
    assert subprocess.run(unless).returncode != 0  # the app's files: work to do
    subprocess.run(["bash", "-c", here(action.command)], check=True)
    for p in (rel / "node_modules/x/i.js", deps / "site.py", rel / "node_modules", rel):
        st = p.lstat()
        assert st.st_uid == 0 and not st.st_mode & 0o6022, p
    assert (rel / "evil").lstat().st_uid == 0
    for top in (rel.parent, deps.parent.parent):
        assert pwd.getpwuid(top.stat().st_uid).pw_name == "nobody"  # the build user makes the next release there
    assert victim.stat().st_uid == os.getuid() and victim.stat().st_mode & 0o777 == 0o644
    assert subprocess.run(unless).returncode == 0  # converted: the next configure leaves it alone
    # a release an older version sealed as the build user's is converted too
    os.chown(rel / "node_modules/x/i.js", pwd.getpwnam("nobody").pw_uid, -1)
    assert subprocess.run(unless).returncode != 0


def test_app_json_turns_cron_off_only_where_asked():
    from dataclasses import replace

    s = spec(det=Det(health_path="/healthz"))
    assert "cron" not in app_json(s)  # a single server's app.json is as before
    assert app_json(replace(s, cron=False))["cron"] is False
