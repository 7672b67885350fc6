"""`lightfold domain add/remove` on a real sandbox machine against a real ACME server (Pebble on the
bridge, with its mock DNS): failures first (the site keeps serving HTTP, config untouched), then
HTTPS with a certificate chaining to Pebble's root, reuse, a redeploy under HTTPS load, removal.

One machine with a static site (nginx only) for the whole module; tests run in file order.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl

import pytest
from tests.e2e.acme import acme_server
from tests.e2e.apps import commit, get, git, install_example

from lightfold.probe import Probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PAGE = "<!doctype html><title>domain test</title><p>hello from lightfold ({})</p>\n"


@pytest.fixture(scope="module")
def acme(shared_sandbox, tmp_path_factory):
    yield from acme_server(shared_sandbox, tmp_path_factory)


@pytest.fixture(scope="module")
def site(shared_sandbox, acme):
    sb = shared_sandbox
    (sb.project / "index.html").write_text(PAGE.format("v1"))
    git(sb.project, "init", "-q", "-b", "main")
    commit(sb.project, "static site")
    sb.lightfold("deploy", "--target", sb.target, "--json", timeout=600)
    sb.domain = f"www.{sb.target}.test"
    acme.add_a(sb.domain, sb.ip)
    return sb


def add(sb, acme, domain: str, *extra: str, check: bool = True):
    return sb.lightfold("domain", "add", "--domain", domain, "--target", sb.target, "--json", *extra,
                        check=check, env=acme.env, timeout=400)


def site_conf(sb) -> str:
    return sb.exec(f"cat /etc/nginx/sites-enabled/lightfold-{sb.target}.conf").stdout


def https_get(ip: str, domain: str, cafile, path: str = "/") -> tuple[int, bytes]:
    """GET over HTTPS to `ip` with SNI `domain`, verifying the chain against `cafile` only."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection((ip, 443), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=domain) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, resp.read()


def assert_unchanged(sb, conf_before: str, proc, pattern: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert pattern in proc.stderr, proc.stderr
    assert "domain" not in sb.config()["targets"][sb.target]
    assert site_conf(sb) == conf_before
    assert get(sb.ip) == (200, PAGE.format("v1").encode())


def test_dns_mismatch_names_the_record_and_changes_nothing(site, acme):
    sb, before = site, site_conf(site)
    wrong = f"wrong.{sb.target}.test"
    acme.add_a(wrong, "10.231.0.254")
    proc = add(sb, acme, wrong, check=False)
    assert_unchanged(sb, before, proc, f"{wrong} resolves to 10.231.0.254, not to the server's IP {sb.ip}")
    assert f"A record: name {wrong}, value {sb.ip}" in proc.stderr.replace("\n", " ")
    missing = f"missing.{sb.target}.test"
    proc = add(sb, acme, missing, check=False)
    assert_unchanged(sb, before, proc, f"{missing} does not resolve")


def test_port_80_closed_is_caught_before_asking_the_ca(site, acme):
    sb = site
    closed = f"closed.{sb.target}.test"
    acme.add_a(closed, sb.ip)
    sb.exec("systemctl stop nginx")
    try:
        proc = add(sb, acme, closed, check=False)
    finally:
        sb.exec("systemctl start nginx")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"port 80 of {sb.ip} is not reachable from here" in proc.stderr, proc.stderr
    assert "requesting a certificate" not in proc.stderr
    assert "domain" not in sb.config()["targets"][sb.target]
    assert get(sb.ip) == (200, PAGE.format("v1").encode())


def test_issuance_failure_is_explained_and_changes_nothing(site, acme):
    sb, before = site, site_conf(site)
    # The mock DNS sends the CA to the host's bridge address, where nothing listens on port 80.
    elsewhere = f"elsewhere.{sb.target}.test"
    acme.add_a(elsewhere, acme.host)
    proc = add(sb, acme, elsewhere, "--skip-dns-check", check=False)
    assert_unchanged(sb, before, proc, "port 80 unreachable")
    assert "site keeps serving over HTTP" in proc.stderr
    assert sb.exec(f"test -e /etc/letsencrypt/live/{elsewhere}", check=False).returncode != 0


def test_add_serves_https_with_a_certificate_from_the_acme_server(site, acme):
    sb = site
    data = json.loads(add(sb, acme, sb.domain, "--email", "ops@example.com").stdout)
    assert data["certificate_requested"] is True
    assert data["url"] == f"https://{sb.domain}/"
    assert data["renewal"] == {"dry_run": "ok", "timer": "enabled"}
    cert = data["certificate"]
    assert cert["names"] == [sb.domain] and cert["days_left"] > 30 and "Pebble" in cert["issuer"]
    # the chain verifies against Pebble's root, for this name, and the page is the app
    assert https_get(sb.ip, sb.domain, acme.root_file) == (200, PAGE.format("v1").encode())
    plain = http.client.HTTPConnection(sb.ip, 80, timeout=5)
    plain.request("GET", "/x?y=1", headers={"Host": sb.domain})
    resp = plain.getresponse()
    assert (resp.status, resp.getheader("Location")) == (301, f"https://{sb.domain}/x?y=1")
    plain.close()
    assert "/.well-known/acme-challenge/" in site_conf(sb)
    dom = sb.config()["targets"][sb.target]["domain"]
    assert dom == {"domain": sb.domain, "ssl": True, "email": "ops@example.com", "acme_server": acme.directory}
    app_json = json.loads(sb.exec(f"cat /etc/lightfold/apps/{sb.target}/app.json").stdout)
    assert app_json["health"]["host"] == sb.domain
    assert sb.exec("systemctl is-enabled certbot.timer").stdout.strip() == "enabled"
    shown = json.loads(sb.lightfold("domain", "show", "--target", sb.target, "--json").stdout)
    assert shown["certificate"]["expires"] == cert["expires"] and shown["url"] == f"https://{sb.domain}/"
    status = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    assert status["domain"] == sb.domain
    assert status["certificate"]["expires"] == cert["expires"] and status["certificate"]["days_left"] > 30


def test_second_add_reuses_the_certificate(site, acme):
    sb = site
    before = json.loads(sb.lightfold("domain", "show", "--target", sb.target, "--json").stdout)["certificate"]
    data = json.loads(add(sb, acme, sb.domain).stdout)
    assert data["certificate_requested"] is False
    assert sb.config()["targets"][sb.target]["domain"]["email"] == "ops@example.com"
    assert data["certificate"]["sha256"] == before["sha256"]
    assert data["certificate"]["serial"] == before["serial"]


def test_redeploy_over_https_under_load_drops_nothing(site, acme):
    sb = site
    (sb.project / "index.html").write_text(PAGE.format("v2"))
    commit(sb.project, "v2")
    with Probe(f"https://{sb.ip}/", host=sb.domain, cafile=str(acme.root_file), rate=50, max_seconds=200) as probe:
        push = json.loads(sb.lightfold("deploy", "--target", sb.target, "--json", timeout=300).stdout)
    assert push["push"]["url"] == f"https://{sb.domain}/"
    assert probe.result.total > 20 and probe.result.failed == 0, (probe.result.summary(), probe.result.failures)
    assert https_get(sb.ip, sb.domain, acme.root_file) == (200, PAGE.format("v2").encode())
    with Probe(f"https://{sb.ip}/", host=sb.domain, cafile=str(acme.root_file), rate=50, max_seconds=200) as probe:
        sb.lightfold("rollback", "--target", sb.target, "--json", timeout=300)
    assert probe.result.total > 5 and probe.result.failed == 0, (probe.result.summary(), probe.result.failures)
    assert https_get(sb.ip, sb.domain, acme.root_file) == (200, PAGE.format("v1").encode())
    # the agent checks a static site's health over plain HTTP on loopback: not redirected there
    local = sb.exec(f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Host: {sb.domain}' http://127.0.0.1/")
    assert local.stdout == "200"


def test_remove_with_revoke_serves_by_ip_again(site, acme):
    sb = site
    data = json.loads(sb.lightfold("domain", "remove", "--target", sb.target, "--revoke", "--json",
                                   env=acme.env, timeout=300).stdout)
    assert data["removed"] and data["revoked"]
    assert get(sb.ip) == (200, PAGE.format("v1").encode())
    assert "domain" not in sb.config()["targets"][sb.target]
    assert "443" not in site_conf(sb)
    assert sb.exec(f"test -e /etc/letsencrypt/live/{sb.domain}", check=False).returncode != 0
    again = json.loads(sb.lightfold("domain", "remove", "--target", sb.target, "--json").stdout)
    assert again["removed"] is False


def test_domain_without_ssl_is_served_over_http_by_name(site, acme):
    sb = site
    data = json.loads(add(sb, acme, sb.domain, "--no-ssl").stdout)
    assert data["url"] == f"http://{sb.domain}/" and "certificate" not in data
    assert get(sb.ip, host=sb.domain) == (200, PAGE.format("v1").encode())
    assert f"server_name {sb.domain};" in site_conf(sb) and "443" not in site_conf(sb)
    assert sb.config()["targets"][sb.target]["domain"]["ssl"] is False
    sb.lightfold("domain", "remove", "--target", sb.target)
    assert "server_name _;" in site_conf(sb)


def test_proxied_app_keeps_https_through_a_blue_green_redeploy(acme, machine_factory):
    """A non-static app (Flask behind nginx): HTTPS ends at nginx, health checks use the domain."""
    sb = machine_factory()
    acme.trust(sb)
    install_example(sb.project, "python-flask")
    sb.lightfold("config", "set", "deploy.health_path", "/healthz", "--target", sb.target)
    sb.lightfold("deploy", "--target", sb.target, "--json", timeout=600)
    name = f"api.{sb.target}.test"
    acme.add_a(name, sb.ip)
    data = json.loads(add(sb, acme, name).stdout)
    assert data["certificate_requested"] is True
    assert https_get(sb.ip, name, acme.root_file) == (200, b"hello from lightfold (python)\n")
    app_json = json.loads(sb.exec(f"cat /etc/lightfold/apps/{sb.target}/app.json").stdout)
    assert app_json["health"]["host"] == name
    app_py = sb.project / "app.py"
    app_py.write_text(app_py.read_text().replace("(python)", "(python v2)"))
    commit(sb.project, "v2")
    with Probe(f"https://{sb.ip}/", host=name, cafile=str(acme.root_file), rate=50, max_seconds=200) as probe:
        sb.lightfold("push", "--target", sb.target, "--json", timeout=300)
    assert probe.result.total > 20 and probe.result.failed == 0, (probe.result.summary(), probe.result.failures)
    assert https_get(sb.ip, name, acme.root_file) == (200, b"hello from lightfold (python v2)\n")
