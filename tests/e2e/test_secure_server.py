"""A secure server by default (issue 14), on one sandbox machine (its own network namespace, so
the firewall is real): before `configure` a database-like service on 0.0.0.0:5432 is reachable
from this host and password logins are offered; after it, 5432 is dropped, 80/443 and SSH still
answer, sshd offers keys only, and a second configure changes nothing. The revert window is
exercised with a firewall that would cut SSH and is never confirmed: the previous rules come back.
`lightfold audit` is clean on the configured server and flags a planted exposure and a
world-readable env file.

The tests share the machine and run in file order; a test that changes the server puts it back.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest
from tests.e2e.apps import install_example

from lightfold.server import firewall
from lightfold.server.plan import Plan, render

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# Password logins on, as on many provider images (this sandbox image is key-only): sorts before
# the image's own drop-in, so it wins until lightfold's 00- file does.
PASSWORDS_ON = """
set -e
printf 'PasswordAuthentication yes\\nKbdInteractiveAuthentication yes\\nPermitRootLogin yes\\n' \
  > /etc/ssh/sshd_config.d/05-test-passwords.conf
systemctl reload ssh
"""
FAKE_DB = "systemd-run --unit=fake-db python3 -m http.server 5432 --bind 0.0.0.0"


def port_state(ip: str, port: int, timeout: float = 2.0) -> str:
    """'open' (connected), 'closed' (refused: the packet got in, nothing listens), or 'dropped'."""
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "closed"
    except OSError:
        return "dropped"


def offered_auth(sb) -> str:
    """The methods sshd offers (the server's own answer: `Permission denied (publickey,password).`)."""
    proc = subprocess.run(
        ["ssh", "-o", "PreferredAuthentications=none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", f"root@{sb.ip}", "true"],
        capture_output=True, text=True, timeout=30,
    )
    line = next((x for x in proc.stderr.splitlines() if "Permission denied" in x), proc.stderr)
    return line[line.find("(") + 1:line.find(")")]


def ssh_works(sb) -> bool:
    return sb.lightfold("ssh", "--target", sb.target, "--", "echo", "ok", check=False).stdout.strip() == "ok"


@pytest.fixture(scope="module")
def server(shared_sandbox):
    sb = shared_sandbox
    install_example(sb.project, "python-flask")
    sb.exec(PASSWORDS_ON)
    sb.exec(FAKE_DB)
    deadline = time.monotonic() + 10
    while port_state(sb.ip, 5432) != "open" and time.monotonic() < deadline:
        time.sleep(0.2)
    sb.before = {"5432": port_state(sb.ip, 5432), "auth": offered_auth(sb)}
    t0 = time.monotonic()
    sb.configured = json.loads(sb.lightfold("configure", "--target", sb.target, "--json", timeout=600).stdout)
    sb.configure_seconds = time.monotonic() - t0
    return sb


def test_before_configure_the_database_port_and_passwords_were_open(server):
    assert server.before == {"5432": "open", "auth": "publickey,password,keyboard-interactive"}
    assert {"firewall", "ssh", "updates"} <= set(server.configured["changed"])


def test_firewall_drops_5432_and_lets_ssh_80_and_443_in(server):
    assert port_state(server.ip, 5432) == "dropped"
    assert port_state(server.ip, 9999) == "dropped"  # nothing listens, and it is not even refused
    assert port_state(server.ip, 80) == "open"  # nginx
    assert port_state(server.ip, 443) in ("open", "closed")  # let in (nothing listens without TLS)
    assert server.exec("ss -Htln 'sport = :5432'").stdout.strip()  # the service still runs
    assert ssh_works(server)
    rules = server.exec("nft list table inet lightfold").stdout
    assert "policy drop" in rules and "tcp dport 22 accept" in rules
    # confirmed: no revert pending, and the boot unit loads exactly this table
    assert server.exec("systemctl is-active lightfold-firewall-revert.timer", check=False).stdout.strip() != "active"
    assert server.exec("cmp /etc/lightfold/firewall.nft /etc/lightfold/firewall.confirmed.nft").returncode == 0
    assert server.exec("systemctl is-enabled lightfold-firewall.service").stdout.strip() == "enabled"


def test_the_boot_unit_restores_the_table(server):
    server.exec("nft delete table inet lightfold")
    assert port_state(server.ip, 5432) == "open"
    server.exec("systemctl restart lightfold-firewall.service")
    assert port_state(server.ip, 5432) == "dropped"


def test_password_login_refused_after_hardening(server):
    assert offered_auth(server) == "publickey"
    effective = server.exec("sshd -T").stdout.splitlines()
    assert {"passwordauthentication no", "kbdinteractiveauthentication no",
            "permitrootlogin without-password"} <= set(effective)  # sshd -T's name for prohibit-password
    assert ssh_works(server)


def test_security_updates_from_the_security_origin_only(server):
    dump = server.exec("apt-config dump Unattended-Upgrade::Origins-Pattern").stdout
    patterns = [x for x in dump.splitlines() if "Origins-Pattern::" in x]
    assert patterns and all("ecurity" in x for x in patterns), dump
    assert not [x for x in server.exec("apt-config dump").stdout.splitlines() if "Allowed-Origins::" in x]
    assert server.exec("systemctl is-enabled apt-daily-upgrade.timer").stdout.strip() == "enabled"


def audit(sb, *extra: str) -> tuple[int, dict]:
    proc = sb.lightfold("audit", "--target", sb.target, "--json", *extra, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_audit_is_clean_on_the_configured_server(server):
    rc, doc = audit(server)
    assert [f for f in doc["findings"] if f["severity"] in ("high", "medium")] == [], doc
    assert rc == 0 and doc["ok"] and doc["schema"] == 1 and doc["counts"]["high"] == 0
    # the planted database is listed, as blocked by the firewall
    (db,) = [f for f in doc["findings"] if f["check"] == "listener" and ":5432" in f["subject"]]
    assert db["severity"] == "low" and "firewall blocks it" in db["message"] and "127.0.0.1" in db["fix"]
    assert {"firewall", "ssh", "unit", "agent", "updates"} <= {f["check"] for f in doc["findings"]}
    agent = next(f for f in doc["findings"] if f["check"] == "agent")
    assert agent["severity"] == "info"  # configure just installed this lightfold's agent
    status = json.loads(server.lightfold("status", "--target", server.target, "--json").stdout)
    assert isinstance(status["security_updates"], int) and status["reboot_required"] is False


def test_audit_flags_a_planted_exposure_and_a_world_readable_env_file(server):
    env = f"/srv/{server.target}/env/20260101000000.env"
    server.exec(f"printf 'SECRET=x\\n' > {env} && chmod 644 {env}")
    server.exec("nft delete table inet lightfold")  # the firewall is gone: 5432 is exposed
    try:
        rc, doc = audit(server)
        human = server.lightfold("audit", "--target", server.target, check=False)
    finally:
        server.exec(f"rm -f {env}; systemctl restart lightfold-firewall.service")
    assert rc == 1 and not doc["ok"]
    high = [(f["check"], f["subject"]) for f in doc["findings"] if f["severity"] == "high"]
    assert ("file", env) in high and ("firewall", "table inet lightfold") in high
    assert [s for c, s in high if c == "listener"] == ["tcp 0.0.0.0:5432 (python3)"]
    assert human.returncode == 1 and f"chmod 600 {env}" in human.stdout
    assert audit(server)[0] == 0  # put back


def test_second_configure_changes_nothing(server):
    t0 = time.monotonic()
    again = json.loads(server.lightfold("configure", "--target", server.target, "--force", "--json").stdout)
    forced_seconds = time.monotonic() - t0
    assert again["changed"] == [] and not again["skipped"], again
    print(f"\nconfigure: first {server.configure_seconds:.1f}s, forced rerun {forced_seconds:.1f}s")
    assert port_state(server.ip, 5432) == "dropped" and ssh_works(server)


def test_an_unconfirmed_firewall_that_cuts_ssh_is_reverted(server):
    """The laptop never confirms (here: the rules even block the SSH port in use): the timer puts
    the previous table back and SSH answers again, without anyone logging in."""
    locking = Plan((firewall.firewall_step(ssh_port=2222, revert_seconds=6),))
    applied = time.monotonic()
    server.exec(["bash", "-s"], input=render(locking))
    assert "tcp dport 2222 accept" in server.exec("nft list table inet lightfold").stdout
    assert port_state(server.ip, 22) == "dropped"  # a new SSH connection would fail now
    while port_state(server.ip, 22) != "open" and time.monotonic() - applied < 30:
        time.sleep(0.5)
    assert time.monotonic() - applied < 30
    rules = server.exec("nft list table inet lightfold").stdout
    assert "tcp dport 22 accept" in rules and "2222" not in rules
    assert ssh_works(server) and port_state(server.ip, 5432) == "dropped"
    # the next configure puts its own (confirmed) table in place again and confirms it
    server.exec("cp /etc/lightfold/firewall.confirmed.nft /etc/lightfold/firewall.nft")
    again = json.loads(server.lightfold("configure", "--target", server.target, "--force", "--json").stdout)
    assert again["changed"] == [], again
