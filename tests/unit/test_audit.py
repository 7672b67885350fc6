"""`lightfold audit`'s parses and findings (lightfold.server.audit), from recorded outputs: the
facts script's whole output from a freshly configured sandbox server (recorded/audit-fresh.txt,
with a service planted on 0.0.0.0:5432), and single outputs for what a fresh server never shows."""

from __future__ import annotations

import json
from pathlib import Path

from lightfold.release import facts
from lightfold.release.audit import AuditReport, security_facts
from lightfold.server import audit
from lightfold.server.audit import Context, Finding, findings

RECORDED = Path(__file__).parent / "recorded"
CTX = Context("web", ssh_port=22, agent_hash="a" * 64)

SS = """\
udp   UNCONN 0      0            0.0.0.0:68        0.0.0.0:*    users:(("dhclient",pid=90,fd=7))
tcp   LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=110,fd=3))
tcp   LISTEN 0      511          0.0.0.0:80        0.0.0.0:*    users:(("nginx",pid=200,fd=6),("nginx",pid=199,fd=6))
tcp   LISTEN 0      5            0.0.0.0:5432      0.0.0.0:*    users:(("postgres",pid=300,fd=3))
tcp   LISTEN 0      4096       127.0.0.1:8000      0.0.0.0:*    users:(("gunicorn",pid=400,fd=5))
tcp   LISTEN 0      128             [::]:22           [::]:*    users:(("sshd",pid=110,fd=4))
tcp   LISTEN 0      5               [::]:5432         [::]:*    users:(("postgres",pid=300,fd=4))
tcp   LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*    users:(("systemd-resolve",pid=80,fd=14))
tcp   LISTEN 0      511            [::1]:631          [::]:*    users:(("cupsd",pid=81,fd=7))
tcp   LISTEN 0      511                *:8080            *:*    users:(("node",pid=500,fd=20))
"""

APT_SIM = """\
NOTE: This is only a simulation!
Reading package lists...
Calculating upgrade...
The following packages will be upgraded:
  libssl3 openssl tzdata
Inst libssl3 [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])
Inst openssl [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2024b-0+deb12u1 Debian:12.8/stable [all])
Inst libc6 [2.35-0ubuntu3.7] (2.35-0ubuntu3.8 Ubuntu:22.04/jammy-security [amd64])
Conf libssl3 (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])
"""


def test_listeners_beyond_loopback_once_per_port_and_process():
    found = audit.parse_listeners(SS)
    assert [(s["proto"], s["address"], s["port"], s["process"]) for s in found] == [
        ("udp", "0.0.0.0", 68, "dhclient"), ("tcp", "0.0.0.0", 22, "sshd"), ("tcp", "0.0.0.0", 80, "nginx"),
        ("tcp", "0.0.0.0", 5432, "postgres"), ("tcp", "*", 8080, "node"),
    ]


def test_pending_security_updates_only():
    assert audit.parse_pending(APT_SIM) == ["libssl3", "openssl", "libc6"]
    assert audit.parse_pending("Reading package lists...\n0 upgraded, 0 newly installed\n") == []


def test_sshd_settings_and_exposure_and_modes_and_reboot():
    sshd = audit.parse_sshd("port 22\npasswordauthentication yes\npermitrootlogin without-password\nport 2222\n")
    assert sshd == {"port": "22", "passwordauthentication": "yes", "permitrootlogin": "without-password"}
    assert audit.parse_sshd("", 255) is None
    exposure = audit.parse_exposure("  ✗ RestrictAddressFamilies=~…   0.3\n\n→ Overall exposure level for "
                                    "lightfold-web@blue.service: 9.6 UNSAFE 😨\n")
    assert exposure == {"lightfold-web@blue.service": {"score": 9.6, "label": "UNSAFE"}}
    modes = audit.parse_modes("600 root root /srv/web/env/20260101000000.env\n644 root root /srv/web/run/blue.env\n")
    assert modes[1] == {"mode": 0o644, "owner": "root", "group": "root", "path": "/srv/web/run/blue.env"}
    assert audit.parse_reboot("yes\nlinux-image-6.1.0-28-amd64\nlibc6\n") == {
        "required": True, "packages": ["libc6", "linux-image-6.1.0-28-amd64"]}
    assert audit.parse_reboot("") == {"required": False, "packages": []}


def test_firewall_from_nft_json():
    text = (RECORDED / "nft-ruleset.json").read_text()
    fw = audit.parse_nft(text)
    assert fw == {"installed": True, "table": True, "policy": "drop", "tcp_accept": [22, 80, 443]}
    assert audit.parse_nft("", 127)["installed"] is False
    assert audit.parse_nft('{"nftables": [{"metainfo": {"version": "1.0.6"}}]}')["table"] is False


def recorded_facts() -> dict:
    return facts.parse(security_facts(), (RECORDED / "audit-fresh.txt").read_text())


def test_a_freshly_configured_server_has_no_high_or_medium_finding():
    values = recorded_facts()
    target = values_target(values)
    values["markers"] = {target: {"agent_hash": "a" * 64, "lightfold_version": "0.1.0"}}  # (not in the recording)
    found = findings(values, Context(target, 22, "a" * 64))
    assert [f for f in found if f.severity in ("high", "medium")] == []
    assert audit.exit_status(found) == 0
    (db,) = [f for f in found if f.check == "listener" and ":5432" in f.subject]
    assert db.severity == "low" and db.message == "listens beyond loopback; the firewall blocks it"
    assert {f.check for f in found} >= {"firewall", "ssh", "unit", "agent", "updates"}
    unit = next(f for f in found if f.check == "unit")
    assert unit.severity == "low" and "EXPOSED" in unit.message  # 8.3 on the recorded server
    pending = next(f for f in found if f.check == "updates")
    assert pending.severity == "low" and "unattended-upgrades installs them" in pending.message


def values_target(values: dict) -> str:
    """The app of the recording (its unit is lightfold-<app>@blue.service)."""
    (unit,) = values["exposure"]
    return unit.split("@")[0].removeprefix("lightfold-")


def test_planted_exposure_env_file_and_open_sshd_are_high():
    values = recorded_facts()
    target = values_target(values)
    values["firewall"] = audit.parse_nft("", 0)  # the table was deleted
    values["files"] = audit.parse_modes(f"644 root root /srv/{target}/env/20260101000000.env\n")
    values["sshd"] = {**values["sshd"], "passwordauthentication": "yes", "permitrootlogin": "yes"}
    found = findings(values, Context(target, 22, ""))
    high = [(f.check, f.subject) for f in found if f.severity == "high"]
    assert ("firewall", "table inet lightfold") in high
    assert ("file", f"/srv/{target}/env/20260101000000.env") in high
    assert ("listener", "tcp 0.0.0.0:5432 (python3)") in high
    assert ("ssh", "PasswordAuthentication") in high and ("ssh", "PermitRootLogin") in high
    assert audit.exit_status(found) == 1
    ranks = [audit.SEVERITIES.index(f.severity) for f in found]
    assert ranks == sorted(ranks) and ranks[0] == 0  # most severe first
    env = next(f for f in found if f.check == "file")
    assert env.fix == f"chmod 600 /srv/{target}/env/20260101000000.env"


def test_updates_reboot_certificates_units_and_agent():
    ctx = Context("web", 22, "new")
    off = findings({"pending": ["libssl3"], "updates_config": {"conf": False, "timer": False}}, ctx)
    assert [(f.check, f.severity) for f in off if f.check == "updates"] == [("updates", "medium")] * 2
    on = findings({"pending": ["libssl3"], "updates_config": {"conf": True, "timer": True}}, ctx)
    assert [(f.check, f.severity) for f in on if f.check == "updates"] == [("updates", "low")]
    reboot = findings({"reboot": {"required": True, "packages": ["libc6"]}}, ctx)
    assert any(f.check == "reboot" and f.severity == "medium" and "reboot_window" in f.fix for f in reboot)
    certs = findings({"certificates": [
        {"domain": "a.example", "exists": True, "days_left": 10, "expires": "2026-12-13T00:00:00Z"},
        {"domain": "b.example", "exists": True, "days_left": -1, "expires": "2026-12-02T00:00:00Z"},
        {"domain": "c.example", "exists": True, "days_left": 60, "expires": "2027-02-01T00:00:00Z"},
    ]}, ctx)
    assert [(f.subject, f.severity) for f in certs if f.check == "certificate"] == [
        ("b.example", "high"), ("a.example", "medium")]
    units = findings({"exposure": {"x@blue.service": {"score": 9.6, "label": "UNSAFE"},
                                   "y@blue.service": {"score": 7.1, "label": "EXPOSED"}}}, ctx)
    assert [(f.subject, f.severity) for f in units if f.check == "unit"] == [
        ("x@blue.service", "medium"), ("y@blue.service", "low")]
    agent = findings({"markers": {"web": {"agent_hash": "old", "lightfold_version": "0.1"}}}, ctx)
    assert [(f.check, f.severity) for f in agent if f.check == "agent"] == [("agent", "low")]


def test_open_on_purpose_and_allowed_but_listening():
    fw = {"installed": True, "table": True, "policy": "drop", "tcp_accept": [22, 80, 443, 5432]}
    listeners = audit.parse_listeners(SS)
    purposely = findings({"firewall": fw, "listeners": listeners}, Context("web", allow_ports=(5432,)))
    pg = next(f for f in purposely if ":5432" in f.subject)
    assert pg.severity == "low" and "security.allow_ports" in pg.message
    node = next(f for f in purposely if ":8080" in f.subject)
    assert node.severity == "low"  # not let in
    dhcp = next(f for f in purposely if f.subject.startswith("udp"))
    assert dhcp.severity == "low"


def test_json_document_is_the_documented_schema():
    report = AuditReport("web", "203.0.113.7", [Finding("ssh", "high", "PasswordAuthentication", "m", "f")])
    doc = report.as_json()
    assert list(doc) == ["schema", "target", "host", "ok", "counts", "findings"]
    assert doc["ok"] is False and report.exit_status == 1
    assert doc["counts"] == {"high": 1, "medium": 0, "low": 0, "info": 0}
    assert list(doc["findings"][0]) == ["check", "severity", "subject", "message", "fix"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### audit", 1)[1].split("\n### ", 1)[0]
    for key in [*doc, *doc["findings"][0], *audit.SEVERITIES]:
        assert f'"{key}"' in section or f"`{key}`" in section, key
    json.dumps(doc)


def test_audit_reads_everything_in_one_script():
    script = facts.script(security_facts())
    for command in ("nft -j list ruleset", "ss -Htulpn", "sshd -T", "apt-get -s", "systemd-analyze security",
                    "stat -c", "/var/run/reboot-required"):
        assert command in script, command
    assert "python3" not in script.replace("python3 -c", "")  # only the certificates use python3


def test_releases_the_apps_user_can_write_are_a_high_finding():
    """Immutable releases (issue 13): an app whose user owns (or may write) a file of its releases
    or deps could change its own code; audit says so and names configure as the fix."""
    out = "shop\tlf-shop\t/srv/shop/releases/20260101000000/server.js\nbad line\n"
    entries = audit.parse_app_writable(out)
    assert entries == [{"app": "shop", "user": "lf-shop", "path": "/srv/shop/releases/20260101000000/server.js"}]
    values = recorded_facts()
    values["app_writable"] = entries
    found = [f for f in findings(values, Context(values_target(values), 22, "")) if f.check == "file"]
    assert [(f.severity, f.subject) for f in found] == [("high", "/srv/shop/releases/20260101000000/server.js")]
    assert "writable by its user lf-shop" in found[0].message
    assert found[0].fix.startswith("lightfold configure --target shop --force")
    from lightfold.release.audit import security_facts

    (fact,) = [f for f in security_facts() if f.name == "app_writable"]
    assert '-user "$u" -o \\( ! -type l \\( -perm /002 -o \\( -perm /020' in fact.command
    assert "-print -quit" in fact.command
    # releases/ and deps/ are group-writable for the build user by design: only they are spared the group check
    assert '! -path "/srv/$a/releases" ! -path "/srv/$a/deps"' in fact.command
    assert audit.parse_app_writable("") == []


def test_the_targets_databases_running_loopback_only_and_backed_up_on_a_schedule():
    ok = {"postgres": {"active": True, "listening": ["127.0.0.1:5432", "[::1]:5432"]},
          "redis": {"active": True, "listening": ["127.0.0.1:6379", "[::1]:6379"]}}
    def db_findings(values: dict) -> list[Finding]:
        return [f for f in findings(values, CTX) if f.check == "database"]

    found = db_findings({"databases": ok, "backup_timer": "enabled"})
    assert [(f.check, f.severity, f.subject) for f in found] == [("database", "info", "postgres"),
                                                                ("database", "info", "redis")]
    assert found[0].message == "running, loopback only (127.0.0.1:5432, [::1]:5432)"
    bad = {"mysql": {"active": True, "listening": ["0.0.0.0:3306"]}, "redis": {"active": False, "listening": []}}
    found = db_findings({"databases": bad, "backup_timer": "disabled"})
    assert [(f.severity, f.subject, f.message) for f in found] == [
        ("high", "mysql", "listens beyond loopback: 0.0.0.0:3306"),
        ("medium", "redis", "web's redis is not running"),
        ("low", "backup", "web's databases have no scheduled backup")]
    assert found[0].fix == "`lightfold db add mysql --target web` puts its loopback-only settings back"
    assert db_findings({"databases": {}, "backup_timer": None}) == []  # no database: nothing to say
    assert db_findings({"databases": None}) == []  # not read (an older server): nothing to say


def test_audit_reads_the_databases_and_the_db_env_file_modes():
    from lightfold.release.audit import database_facts

    script = facts.script([*security_facts(), *database_facts("web")])
    assert "/etc/lightfold/apps/*/db-*.env" in script and "/etc/lightfold/apps/*/backup-rclone.conf" in script
    assert "systemctl is-enabled lightfold-web.backup.timer" in script
    assert "/etc/lightfold/apps/web/db-mysql.env" in script and "configured" in script
