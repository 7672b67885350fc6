"""`lightfold domain add/remove/show`: a custom domain for a target, with HTTPS from an ACME CA.

add (with SSL), in an order that keeps the site serving over HTTP and config.json untouched until
the certificate exists:
    1. the name is valid and resolves to the server's IP (`lightfold.dns.check_dns`; skippable)
    2. certbot is installed (`tls.install_plan`: package, nginx reload hook, certbot.timer)
    3. a certificate on the server that is still good is reused (`tls.reuse_reason`), else
       `certbot certonly --webroot` — the configured nginx site already serves the challenge dir
    4. configure runs again for a target that has the domain: the facts now show the certificate,
       so the site gets HTTPS, the HTTP->HTTPS redirect and the domain as health-check Host
    5. config.json gets the domain; then the check: the server answers HTTPS for the domain with
       exactly that certificate, `certbot renew --dry-run` passes and certbot.timer is enabled
remove: configure without the domain (back to IP serving), config, then `--revoke` revokes and
deletes the certificate (after nginx stopped using it).

The ACME directory is `--acme-server`, else $LIGHTFOLD_ACME_SERVER, else Let's Encrypt (its
staging directory with --staging), so tests run the same path against Pebble, and the DNS check
asks $LIGHTFOLD_DNS_SERVER when it is set (lightfold.dns).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

from lightfold import config, dns
from lightfold.errors import LightfoldError
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection

ACME_ENV = "LIGHTFOLD_ACME_SERVER"


def acme_server(flag: str | None = None, staging: bool = False) -> str:
    from lightfold.errors import UsageError
    from lightfold.server import tls

    if flag and staging:
        raise UsageError("--staging and --acme-server both choose the ACME server", "pass only one of them")
    url = flag or (tls.LETSENCRYPT_STAGING if staging else os.environ.get(ACME_ENV) or tls.LETSENCRYPT)
    if not url.startswith("https://"):
        raise UsageError(f"ACME server '{url}' is not an https:// URL",
                         "pass the directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory")
    return url


# ---- on the server ----------------------------------------------------------------------------


async def certificate_info(conn: Connection, domain: str) -> dict:
    """What the server holds for `domain`: {domain, exists, certbot, server, and when it exists:
    expires (ISO), days_left, not_after (epoch), names, issuer, serial, sha256, staging}."""
    from lightfold.server import tls

    cmd = as_root(conn, f"python3 -c {shlex.quote(tls.CERT_INFO_SCRIPT)} {shlex.quote(domain)}")
    res = await conn.run(cmd, display="read certificate facts")
    return tls.cert_info(json.loads(res.stdout))


async def _certbot(conn: Connection, argv: list[str], timeout: float = 300) -> tuple[int, str]:
    res = await conn.run(as_root(conn, shlex.join(argv)), check=False, timeout=timeout,
                         display=" ".join(argv[:2]))
    return res.exit_status, (res.stdout + "\n" + res.stderr).strip()


async def install_certbot(conn: Connection, report: Report = silent) -> bool:
    """Run tls.install_plan(); True when something changed."""
    from lightfold.release.scripts import run_plan
    from lightfold.server import tls
    from lightfold.server.plan import render

    changed: list[bool] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("failed"):
            return
        if event.get("status") == "done":
            changed.append(bool(event.get("changed")))
        elif event.get("changed"):
            report("note", f"  {event.get('action')}")

    run = await run_plan(conn, render(tls.install_plan()), on_event, timeout=900, display="install certbot")
    if not run.ok:
        failure = run.failed
        raise LightfoldError(
            f"installing certbot failed: `{failure.get('command', '?')}` exited {failure.get('exit', run.exit_status)}",
            "fix the cause shown below and retry (nothing else was changed)",
            details=[str(x) for x in failure.get("output") or run.stderr.splitlines()][-15:],
        )
    return any(changed)


def served_certificate(ip: str, domain: str, port: int = 443, timeout: float = 10) -> tuple[str, int]:
    """(sha256 of the certificate the server presents for `domain` via SNI, status of GET /).

    Not verified against a trust store on purpose: the caller compares it with the certificate
    on disk, which proves nginx serves exactly the issued certificate for this name."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname=domain) as s:
        der = s.getpeercert(binary_form=True) or b""
        s.sendall(f"GET / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(64)
    try:
        status = int(head.split()[1])
    except (IndexError, ValueError):
        status = 0
    return hashlib.sha256(der).hexdigest(), status


async def preflight_http(conn: Connection, domain: str, ip: str) -> None:
    """What the CA will do, tried first from here: fetch a file from the challenge directory over
    port 80 with the domain as Host. A failure here costs nothing; a failed validation counts
    against the CA's rate limit (Let's Encrypt: 5 failures per name per hour)."""
    import secrets

    from lightfold.agent.layout import ACME_ROOT

    token = f"lightfold-preflight-{secrets.token_hex(8)}"
    path = f"{ACME_ROOT}/.well-known/acme-challenge/{token}"
    script = f"mkdir -p {ACME_ROOT}/.well-known/acme-challenge && echo {token} > {path} && chmod 644 {path}"
    await conn.run(as_root(conn, f"sh -c {shlex.quote(script)}"), display="write the preflight challenge file")
    try:
        status, body = await asyncio.to_thread(_http_get, ip, f"/.well-known/acme-challenge/{token}", domain)
    except OSError as e:
        raise LightfoldError(
            f"port 80 of {ip} is not reachable from here ({e}); the certificate authority could not validate "
            f"{domain} either",
            "open port 80 (HTTP) in the server's and the provider's firewall, then retry",
            details=["nothing was changed"],
        ) from None
    finally:
        await conn.run(as_root(conn, f"rm -f {shlex.quote(path)}"), check=False)
    if status != 200 or body.strip() != token.encode():
        raise LightfoldError(
            f"http://{domain}/.well-known/acme-challenge/ on {ip} did not serve lightfold's test file (HTTP {status})",
            "another web server or site answers on port 80 for this name: stop it, or run `lightfold configure`",
            details=["nothing was changed"],
        )


def _http_get(ip: str, path: str, host: str, timeout: float = 10) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection(ip, 80, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read(4096)
    finally:
        conn.close()


def _with_domain(target: Target, domain_cfg) -> Target:
    return Target(target.name, target.config.model_copy(update={"domain": domain_cfg}))


async def add(
    conn: Connection, target: Target, detection: Any, domain: str, *, ssl_on: bool = True,
    email: str | None = None, server: str | None = None, skip_dns_check: bool = False,
    report: Report = silent,
) -> dict:
    """Give `target` the domain (see the module docstring). Returns what `domain show` prints."""
    from lightfold import state
    from lightfold.config import DomainConfig
    from lightfold.release.configure import configure
    from lightfold.server import tls

    domain = tls.normalize_domain(domain)
    ip = target.server.ip
    if not state.load(target.name).configured:
        # The certificate authority validates through the nginx site that configure sets up.
        raise LightfoldError(f"target '{target.name}' is not deployed yet",
                             f"run `lightfold deploy --target {target.name}` first, then add the domain")
    server = server or acme_server()
    old = target.config.domain
    if email is None and old and old.domain == domain:
        email = old.email  # adding the same domain again keeps its account email
    result: dict[str, Any] = {"target": target.name, "domain": domain, "ssl": ssl_on, "ip": ip}
    if skip_dns_check:
        report("warn", f"DNS check skipped: {domain} must reach {ip} on port 80 for validation")
    else:
        report("step", f"checking that {domain} resolves to {ip}")
        result["resolves_to"] = dns.check_dns(domain, ip)
        report("ok", f"{domain} resolves to {ip}")
        v6 = dns.resolve_aaaa(domain)
        if v6:
            report("warn", f"{domain} also has IPv6 (AAAA) records ({', '.join(v6)}); the certificate authority "
                           "tries IPv6 first: they must reach this server too, or remove them")

    cert: dict[str, Any] | None = None
    if ssl_on and not skip_dns_check:
        await preflight_http(conn, domain, ip)
        report("ok", f"http://{domain}/.well-known/acme-challenge/ reaches this server on port 80")
    if ssl_on:
        report("step", "certbot")
        if await install_certbot(conn, report):
            report("ok", "certbot installed, renewal timer enabled")
        info = await certificate_info(conn, domain)
        why = tls.reuse_reason(info, domain, server)
        if why:
            report("skip", f"reusing the certificate for {domain}: {why}")
            result["certificate_requested"] = False
        else:
            report("step", f"requesting a certificate for {domain} from {server}")
            t0 = time.monotonic()
            code, out = await _certbot(conn, tls.certonly_argv(
                domain, server=server, email=email, force_renewal=bool(info.get("exists"))))
            if code != 0:
                raise tls.explain_failure(out, domain, ip, server=server)
            report("ok", f"certificate issued in {time.monotonic() - t0:.1f}s")
            result["certificate_requested"] = True
        cert = await certificate_info(conn, domain)
        if not cert.get("exists"):
            raise LightfoldError(f"certbot reported success but {tls.LIVE}/{domain}/ holds no certificate",
                                 "run `certbot certificates` on the server to see why")

    dcfg = DomainConfig(domain=domain, ssl=ssl_on, email=email,
                        acme_server=server if ssl_on and server != tls.LETSENCRYPT else None)
    new_target = _with_domain(target, dcfg)
    report("step", f"configuring nginx for {domain}" + (" with HTTPS" if ssl_on else ""))
    await configure(conn, new_target, detection, report=report)
    config.update(lambda c: setattr(config.get_target(c, target.name), "domain", dcfg))
    _hosts_at_next_deploy(target, detection, domain, "accepts", report)
    result["url"] = f"{'https' if ssl_on else 'http'}://{domain}/"

    if ssl_on:
        assert cert is not None
        result["certificate"] = cert
        await verify(conn, domain, ip, cert, report)
        result["renewal"] = {"dry_run": "ok", "timer": "enabled"}
    return result


async def verify(conn: Connection, domain: str, ip: str, cert: dict, report: Report = silent) -> None:
    """HTTPS answers for `domain` with the issued certificate; renewal works; the timer is on."""
    from lightfold.server import tls

    for attempt in range(6):  # nginx's old workers may finish a moment after the reload
        try:
            served, status = await asyncio.to_thread(served_certificate, ip, domain)
        except OSError as e:
            if attempt < 5:
                await asyncio.sleep(0.5)
                continue
            raise LightfoldError(
                f"HTTPS for {domain} is configured but {ip}:443 does not answer from here ({e})",
                "open port 443 in the server's or the provider's firewall",
            ) from None
        if served == cert.get("sha256"):
            break
        await asyncio.sleep(0.5)
    if served != cert.get("sha256"):
        raise LightfoldError(f"{ip}:443 presents another certificate for {domain} than the one issued",
                             "check for other nginx sites with the same server_name, then rerun domain add")
    report("ok", f"https://{domain}/ answers ({status}) with the new certificate")
    server = cert.get("server") or tls.LETSENCRYPT
    code, out = await _certbot(conn, tls.renew_dry_run_argv(domain, server))
    if code != 0:
        raise tls.explain_failure(out, domain, ip, server=server, action="renew")
    timer = await conn.run(tls.TIMER_CHECK, check=False)
    if timer.stdout.split()[:2] != ["enabled", "active"]:
        raise LightfoldError("certbot.timer is not enabled: the certificate would not renew",
                             "run `systemctl enable --now certbot.timer` on the server")
    report("ok", "renewal works (certbot renew --dry-run) and certbot.timer is enabled")


async def remove(
    conn: Connection, target: Target, detection: Any, *, revoke: bool = False, report: Report = silent,
) -> dict:
    from lightfold.release.configure import configure
    from lightfold.server import tls

    current = target.config.domain
    if current is None:
        report("skip", f"target '{target.name}' has no domain")
        return {"target": target.name, "domain": None, "removed": False}
    report("step", f"serving {target.name} by IP again (removing {current.domain} from nginx)")
    await configure(conn, _with_domain(target, None), detection, report=report)
    config.update(lambda c: setattr(config.get_target(c, target.name), "domain", None))
    _hosts_at_next_deploy(target, detection, current.domain, "stops accepting", report)
    result = {"target": target.name, "domain": current.domain, "removed": True, "revoked": False,
              "url": f"http://{target.server.ip}/"}
    if revoke:
        info = await certificate_info(conn, current.domain)
        if info.get("exists"):
            server = info.get("server") or current.acme_server or tls.LETSENCRYPT
            code, out = await _certbot(conn, tls.revoke_argv(current.domain, server))
            if code != 0:
                raise tls.explain_failure(out, current.domain, target.server.ip, server=server, action="revoke")
            report("ok", f"certificate for {current.domain} revoked and deleted")
            result["revoked"] = True
    elif current.ssl:
        report("note", f"the certificate stays in {tls.LIVE}/{current.domain}/ (--revoke deletes it)")
    return result


def _hosts_at_next_deploy(target: Target, detection: Any, domain: str, change: str, report: Report) -> None:
    """A Django app started with lightfold's ALLOWED_HOSTS wrapper reads the host names when it
    starts: the running release keeps the old ones until the next deploy."""
    from lightfold.detect.traps import runs_django_wrapper

    if runs_django_wrapper(getattr(detection, "start", None)):
        report("warn", f"Django {change} {domain} in ALLOWED_HOSTS from the next deploy: "
                       f"run `lightfold deploy --target {target.name} --force` now")


async def show(conn: Connection | None, target: Target) -> dict:
    d = target.config.domain
    data: dict[str, Any] = {"target": target.name, "domain": d.domain if d else None}
    if d:
        data.update(ssl=d.ssl, email=d.email, acme_server=d.acme_server,
                    url=f"{'https' if d.ssl else 'http'}://{d.domain}/")
        if conn is not None and d.ssl:
            data["certificate"] = await certificate_info(conn, d.domain)
    return data
