"""HTTPS plans as text, certbot failure explanations and certificate reuse (the DNS check is in
test_dns.py)."""

from __future__ import annotations

import pytest

from lightfold.errors import LightfoldError
from lightfold.release import domain
from lightfold.server import nginx, tls
from lightfold.server.plan import EnsurePackages, render

# ---- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, name", [
    ("App.Example.COM", "app.example.com"), ("example.com.", "example.com"), (" xn--bcher-kva.example ",
                                                                            "xn--bcher-kva.example"),
    ("a-b.c-d.io", "a-b.c-d.io"),
])
def test_valid_domains_are_normalised(raw, name):
    assert tls.normalize_domain(raw) == name


@pytest.mark.parametrize("raw, message", [
    ("https://example.com/x", "is a URL"), ("*.example.com", "wildcard"), ("10.0.0.1", "IP address"),
    ("localhost", "not a valid domain"), ("-bad.example.com", "not a valid domain"),
    ("exa_mple.com", "not a valid domain"), ("example.c0m", "not a valid domain"),
    ("a" * 64 + ".com", "not a valid domain"),
])
def test_invalid_domains_are_refused_with_the_reason(raw, message):
    with pytest.raises(LightfoldError, match=message):
        tls.normalize_domain(raw)


# ---- plans ------------------------------------------------------------------------------------


def test_install_plan_installs_certbot_reload_hook_and_timer():
    plan = tls.install_plan()
    step = plan.step("certbot")
    assert EnsurePackages(("certbot",)) in step.actions
    script = render(plan)
    assert "systemctl enable --now certbot.timer" in script
    assert tls.RENEW_HOOK in script
    assert "systemctl reload nginx" in tls.RENEW_HOOK_TEXT


def test_certonly_uses_the_webroot_nginx_serves_and_the_chosen_server():
    argv = tls.certonly_argv("app.example.com", server="https://ca.test/dir", email="a@b.io")
    joined = " ".join(argv)
    assert nginx.ACME_ROOT == "/var/www/lightfold-acme"  # the directory the nginx site serves
    assert "--webroot -w /var/www/lightfold-acme" in joined
    assert "-d app.example.com --cert-name app.example.com --server https://ca.test/dir" in joined
    assert "--email a@b.io" in joined and "--non-interactive" in argv and "--force-renewal" not in argv
    anon = tls.certonly_argv("x.example.com", server="https://ca.test/dir", force_renewal=True)
    assert "--register-unsafely-without-email" in anon and "--force-renewal" in anon


def test_renewal_dry_run_names_the_lineage_and_its_server():
    argv = tls.renew_dry_run_argv("app.example.com", tls.LETSENCRYPT)
    assert argv[:3] == ["certbot", "renew", "--dry-run"]
    assert argv[argv.index("--cert-name") + 1] == "app.example.com"
    assert argv[argv.index("--server") + 1] == tls.LETSENCRYPT


def test_acme_server_precedence(monkeypatch):
    monkeypatch.delenv(domain.ACME_ENV, raising=False)
    assert domain.acme_server() == tls.LETSENCRYPT
    assert domain.acme_server(staging=True) == tls.LETSENCRYPT_STAGING
    monkeypatch.setenv(domain.ACME_ENV, "https://10.0.0.1:14000/dir")
    assert domain.acme_server() == "https://10.0.0.1:14000/dir"
    assert domain.acme_server("https://other/dir") == "https://other/dir"
    with pytest.raises(LightfoldError, match="both choose"):
        domain.acme_server("https://other/dir", staging=True)
    with pytest.raises(LightfoldError, match="not an https"):
        domain.acme_server("http://plain/dir")


# ---- certbot's output -------------------------------------------------------------------------

FAILED_AUTH = """Saving debug log to /var/log/letsencrypt/letsencrypt.log
Requesting a certificate for app.example.com

Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported \
these problems:
  Domain: app.example.com
  Type:   {type}
  Detail: {detail}

Hint: The Certificate Authority failed to download the temporary challenge files created by Certbot.

Some challenges have failed.
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile \
/var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.
"""


@pytest.mark.parametrize("ca_type, detail, kind, words", [
    ("connection", "203.0.113.9: Fetching http://app.example.com/.well-known/acme-challenge/x: Timeout during "
     "connect (likely firewall problem)", "connection", "port 80"),
    ("connection", "10.231.0.1: Fetching http://app.example.com/.well-known/acme-challenge/x: Connection refused",
     "connection", "port 80"),
    ("unauthorized", "203.0.113.9: Invalid response from http://app.example.com/.well-known/acme-challenge/x: "
     "404", "unauthorized", "did not serve the challenge file"),
    ("dns", "DNS problem: NXDOMAIN looking up A for app.example.com - check that a DNS record exists",
     "dns", "could not find app.example.com in DNS"),
])
def test_validation_failures_are_explained(ca_type, detail, kind, words):
    out = FAILED_AUTH.format(type=ca_type, detail=detail)
    assert tls.classify(out).kind == kind
    err = tls.explain_failure(out, "app.example.com", "203.0.113.9", server=tls.LETSENCRYPT)
    assert words in err.problem
    assert detail in err.details
    assert "nothing was changed: the site keeps serving over HTTP at http://203.0.113.9/" in err.details


def test_rate_limit_is_explained_with_the_line_that_says_until_when():
    out = ("Saving debug log to /var/log/letsencrypt/letsencrypt.log\nRequesting a certificate for app.example.com\n"
           "An unexpected error occurred:\nError creating new order :: too many certificates (5) already issued "
           "for this exact set of domains in the last 168 hours: app.example.com, retry after 2026-01-01T00:00:00Z\n"
           "Ask for help or search for solutions at https://community.letsencrypt.org.\n")
    f = tls.classify(out)
    assert f.kind == "rate-limited" and "retry after 2026-01-01" in f.detail
    err = tls.explain_failure(out, "app.example.com", "203.0.113.9", server=tls.LETSENCRYPT)
    assert "rate limit" in err.problem and "--staging" in err.fix


def test_unreachable_and_untrusted_acme_servers():
    down = ("An unexpected error occurred:\nrequests.exceptions.ConnectionError: HTTPSConnectionPool(host="
            "'10.0.0.1', port=14000): Max retries exceeded with url: /dir (Caused by NewConnectionError("
            "'Failed to establish a new connection: [Errno 111] Connection refused'))\n")
    assert tls.classify(down).kind == "acme-unreachable"
    assert "Max retries exceeded" in tls.classify(down).detail
    bad = ("An unexpected error occurred:\nrequests.exceptions.SSLError: HTTPSConnectionPool(host='10.0.0.1', "
           "port=14000): Max retries exceeded with url: /dir (Caused by SSLError(SSLCertVerificationError(1, "
           "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer')))\n")
    assert tls.classify(bad).kind == "acme-untrusted"
    renew = tls.explain_failure(down, "a.example.com", "1.2.3.4", server="https://10.0.0.1:14000/dir",
                                action="renew")
    assert renew.problem.startswith("the renewal test failed for a.example.com")
    assert not any("nothing was changed" in d for d in renew.details)


# ---- certificate reuse ------------------------------------------------------------------------

NOW = 1_800_000_000.0


def raw_cert(days_left: float, names=("app.example.com",), server=tls.LETSENCRYPT) -> dict:
    return {"domain": names[0], "exists": True, "not_after": NOW + days_left * 86400, "names": list(names),
            "issuer": "R11", "server": server, "sha256": "ab" * 32}


def test_a_valid_certificate_is_reused():
    why = tls.reuse_reason(raw_cert(60), "app.example.com", tls.LETSENCRYPT, NOW)
    assert why and "60 days left" in why


@pytest.mark.parametrize("info, reason", [
    ({"domain": "app.example.com", "exists": False}, "no certificate"),
    (raw_cert(29), "renewal window"),
    (raw_cert(30), "renewal window"),
    (raw_cert(80, names=("other.example.com",)), "another name"),
    (raw_cert(80, server=tls.LETSENCRYPT_STAGING), "another CA"),
])
def test_a_certificate_is_replaced_when_it_would_not_do(info, reason):
    assert tls.reuse_reason(info, "app.example.com", tls.LETSENCRYPT, NOW) is None, reason


@pytest.mark.parametrize("server_days, laptop_skew_days, reused", [
    (31, +2, True),   # the laptop runs ahead: by its clock 29 days are left, by the server's 31
    (29, -2, False),  # the laptop runs behind: by its clock 31 days are left, certbot renews soon
])
def test_certificate_reuse_goes_by_the_servers_clock_not_the_laptops(monkeypatch, server_days, laptop_skew_days,
                                                                     reused):
    server_now = NOW
    raw = {**raw_cert(server_days), "checked_at": server_now}  # what CERT_INFO_SCRIPT printed on the server
    monkeypatch.setattr(tls.time, "time", lambda: server_now + laptop_skew_days * 86400)
    why = tls.reuse_reason(raw, "app.example.com", tls.LETSENCRYPT)
    assert (why is not None) is reused, why
    assert tls.cert_info(raw)["days_left"] == server_days
    if reused:
        assert f"{server_days} days left" in why
    # certificate_info's result is judged again by reuse_reason: the server's time stays with it
    assert tls.reuse_reason(tls.cert_info(raw), "app.example.com", tls.LETSENCRYPT) == why


def test_cert_info_script_prints_the_servers_time():
    import json
    import subprocess
    import sys
    import time

    out = subprocess.run([sys.executable, "-c", tls.CERT_INFO_SCRIPT, "none.example.com"], capture_output=True,
                         text=True, check=True).stdout
    info = json.loads(out)
    assert info["exists"] is False and abs(info["checked_at"] - time.time()) < 60


def test_cert_info_reports_expiry_and_staging():
    info = tls.cert_info(raw_cert(45.5, server=tls.LETSENCRYPT_STAGING), NOW)
    assert info["days_left"] == 45 and info["staging"] is True
    assert info["expires"].endswith("Z") and info["expires"][:4].isdigit()
    assert tls.cert_info({"domain": "x", "exists": False}) == {"domain": "x", "exists": False}


# ---- configure turns HTTPS on only when the certificate is on the server ----------------------


@pytest.mark.parametrize("ssl_on, cert, tls_on", [(True, True, True), (True, False, False), (False, True, False)])
def test_configure_plan_serves_https_only_with_a_certificate(tmp_path, ssl_on, cert, tls_on):
    from lightfold.config import DomainConfig, ProviderConfig, TargetConfig
    from lightfold.detect import detect
    from lightfold.release.configure import plan_for, tls_domain
    from lightfold.release.target import Target

    (tmp_path / "index.html").write_text("<p>hi</p>\n")
    cfg = TargetConfig(project_path=str(tmp_path), provider="byos",
                       provider_config={"byos": ProviderConfig(ip="203.0.113.9")},
                       domain=DomainConfig(domain="app.example.com", ssl=ssl_on))
    target = Target("shop", cfg)
    assert tls_domain(target) == ("app.example.com" if ssl_on else None)
    plan = plan_for(target, detect(tmp_path), {"apps": {}, "tls_cert": cert})
    site = next(a for a in plan.plan.step("nginx").actions if getattr(a, "path", "").endswith("lightfold-shop.conf"))
    text = site.data().decode()
    assert ("listen 443 ssl" in text) is tls_on
    assert "server_name app.example.com;" in text
