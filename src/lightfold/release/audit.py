"""`lightfold audit`: read the server in ONE exec (lightfold.release.facts) and judge it with the
pure lightfold.server.audit.findings.

    report = audit_target("web")      # AuditReport: findings, exit status, the JSON document
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from lightfold.agent.layout import (
    APP_NAME_RE,
    APPS_ETC,
    PENDING_UPDATES,
    REBOOT_REQUIRED,
    SLOTS,
    UNATTENDED_CONF,
    Layout,
    unit_name,
)
from lightfold.release import facts
from lightfold.release.facts import Fact
from lightfold.server import audit

UPGRADE_TIMER = "apt-daily-upgrade.timer"


def _apps_loop(body: str) -> str:
    """`body` run for each configured app, with its name in $a (names checked like the layout's)."""
    return (f"for d in {shlex.quote(APPS_ETC)}/*/; do a=$(basename \"$d\"); "
            f"printf '%s' \"$a\" | grep -Eqx '{APP_NAME_RE.pattern}' || continue; {body}; done; true")


def updates_facts(cached: bool = False) -> tuple[Fact, ...]:
    """Pending security updates, whether they install by themselves, and reboot-required (status
    reads these too: `cached`, the pending list apt's hook noted at its last update, since running
    apt-get costs seconds on a small server; an unknown list is None)."""
    updates = (f"[ -f {UNATTENDED_CONF} ] && echo 'conf yes'; "
               f"echo \"timer-enabled $(systemctl is-enabled {UPGRADE_TIMER})\"; "
               f"echo \"timer-active $(systemctl is-active {UPGRADE_TIMER})\"")
    return (
        Fact("pending", f"cat {PENDING_UPDATES}", lambda out, rc: audit.parse_pending(out) if rc == 0 else None,
             display="pending updates (as of apt's last update)") if cached else
        Fact("pending", "apt-get -s -o Debug::NoLocking=1 dist-upgrade", audit.parse_pending,
             display="pending updates"),
        Fact("updates_config", updates, audit.parse_updates_config),
        Fact("reboot", f"[ -e {REBOOT_REQUIRED} ] && echo yes && cat {REBOOT_REQUIRED}.pkgs; true", audit.parse_reboot),
    )


def database_facts(app: str) -> tuple[Fact, ...]:
    """The target app's databases (those it has credentials for) and whether its backups are
    scheduled."""
    from lightfold.agent.layout import backup_unit

    timer = backup_unit(app, "timer")
    return (facts.tolerant(facts.databases(app)),
            Fact("backup_timer", f"systemctl is-enabled {timer}", lambda out, _rc: out.strip() or None,
                 display="the backup timer"))


def security_facts() -> tuple[Fact, ...]:
    """What audit reads, all in one exec; none needs python3 but the certificates' and the
    databases' (database_facts)."""
    from lightfold.server.tls import CERT_INFO_SCRIPT, LIVE, cert_info

    blue, green = (unit_name("$a", s) for s in SLOTS)
    units = _apps_loop(
        f"u=''; for x in \"{blue}\" \"{green}\"; do systemctl is-active --quiet \"$x\" && u=\"$u $x\"; done; "
        f"[ -n \"$u\" ] || u=\"{blue}\"; for x in $u; do systemd-analyze security --no-pager \"$x\" | tail -n 1; done")
    lay = Layout("*")
    secret_files = " ".join([lay.env_file("*"), lay.run_env("*"), lay.db_env("*"), lay.backup_rclone,
                             "/etc/letsencrypt/archive/*/privkey*.pem"])

    def certs(out: str, _rc: int) -> list[dict[str, Any]]:
        found = []
        for line in out.splitlines():
            try:
                found.append(cert_info(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    marker_name = lay.marker.rsplit("/", 1)[1]
    app_lay = Layout("$a")
    writable = _apps_loop(
        "u=$(sed -n 's/^ *\"user\": \"\\(lf-[a-z0-9-]*\\)\",\\{0,1\\}$/\\1/p' \"${d}app.json\" 2>/dev/null); "
        "[ -n \"$u\" ] || continue; "
        f"p=$(find \"{app_lay.releases_dir}\" \"{app_lay.deps_dir}\""
        # releases/ and deps/ themselves are group-writable for the build user (sticky): only what is inside
        # may not be group-writable
        f" \\( -user \"$u\" -o \\( ! -type l \\( -perm /002 -o \\( -perm /020"
        f" ! -path \"{app_lay.releases_dir}\" ! -path \"{app_lay.deps_dir}\" \\) \\) \\) \\)"
        " -print -quit 2>/dev/null); "
        "[ -z \"$p\" ] || printf '%s\\t%s\\t%s\\n' \"$a\" \"$u\" \"$p\"")
    return (
        Fact("firewall", "nft -j list ruleset", audit.parse_nft, display="the firewall"),
        Fact("listeners", "ss -Htulpn", audit.parse_listeners, display="listening sockets"),
        Fact("sshd", "sshd -T", audit.parse_sshd, display="sshd -T"),
        *updates_facts(),
        Fact("exposure", units, audit.parse_exposure, display="systemd-analyze security"),
        Fact("files", f"stat -c '%a %U %G %n' {secret_files}", audit.parse_modes, display="secret file modes"),
        Fact("app_writable", writable, audit.parse_app_writable, display="releases writable by the app"),
        Fact("certificates", f"for d in {LIVE}/*/; do [ -f \"$d/cert.pem\" ] && python3 -c "
             f"{shlex.quote(CERT_INFO_SCRIPT)} \"$(basename \"$d\")\"; done; true", certs, display="certificates"),
        Fact("markers",
             _apps_loop(f"f=\"${{d}}{marker_name}\"; [ -f \"$f\" ] && printf '\\034%s\\n' \"$f\" && cat \"$f\""),
             audit.parse_markers, display="configure markers"),
    )


@dataclass
class AuditReport:
    target: str
    host: str
    findings: list[audit.Finding]

    @property
    def exit_status(self) -> int:
        return audit.exit_status(self.findings)

    def as_json(self) -> dict[str, Any]:
        """The stable `audit --json` document (README, "audit --json schema")."""
        return {
            "schema": audit.SCHEMA_VERSION, "target": self.target, "host": self.host,
            "ok": self.exit_status == 0, "counts": audit.counts(self.findings),
            "findings": [f.as_dict() for f in self.findings],
        }


def audit_target(name: str) -> AuditReport:
    from lightfold.agent.bundle import agent_files
    from lightfold.release import target as targets
    from lightfold.server.configure import agent_hash

    t = targets.load(name)
    ctx = audit.Context(name, t.server.port, agent_hash(agent_files()), tuple(t.config.security.allow_ports))

    async def read(conn) -> dict[str, Any]:
        return await facts.read(conn, *security_facts(), *database_facts(name), timeout=60)

    values = targets.on_server(t, read)
    return AuditReport(name, t.server.ip or "", audit.findings(values, ctx))
