"""`lightfold audit` as pure functions: the parses of what the server printed, and the findings.

    facts = {"firewall": parse_nft(...), "listeners": parse_listeners(...), ...}   # release/audit.py
    found = findings(facts, Context(ssh_port=22, agent_hash="...", target="web"))
    exit_status(found)   # 1 when any finding is high, else 0

Every finding has a severity (high, medium, low, info), the check it comes from, its subject,
what is wrong in one line and the one-line fix (README, "audit --json schema"). Nothing here does
I/O; the parses are tested from recorded outputs.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from lightfold.agent.layout import FIREWALL_UNIT

SEVERITIES = ("high", "medium", "low", "info")
SCHEMA_VERSION = 1
CERT_WARN_DAYS = 21


@dataclass(frozen=True)
class Finding:
    check: str  # firewall | listener | ssh | updates | reboot | unit | file | certificate | agent | database
    severity: str  # one of SEVERITIES
    subject: str  # what it is about: a port, a file, a unit, a setting
    message: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    target: str
    ssh_port: int = 22
    agent_hash: str = ""  # this lightfold's agent (lightfold.server.configure.agent_hash)
    allow_ports: tuple[int, ...] = ()  # the target's security.allow_ports (open on purpose)


# ---------------------------------------------------------------------------------------------
# parses (stdout, exit status) -> data


def parse_nft(out: str, rc: int = 0) -> dict[str, Any]:
    """`nft -j list ruleset` -> {installed, table, policy, tcp_accept: [ports]} of lightfold's table."""
    result: dict[str, Any] = {"installed": rc != 127, "table": False, "policy": None, "tcp_accept": []}
    try:
        items = json.loads(out)["nftables"] if out.strip() else []
    except (ValueError, KeyError, TypeError):
        return result
    ports: set[int] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        obj = item.get("table") or item.get("chain") or item.get("rule") or {}
        if obj.get("family") != "inet" or (obj.get("name") if "table" in item else obj.get("table")) != "lightfold":
            continue
        if "table" in item:
            result["table"] = True
        elif "chain" in item and obj.get("hook") == "input":
            result["policy"] = obj.get("policy")
        elif "rule" in item:
            ports |= _accepted_tcp_ports(obj.get("expr") or [])
    result["tcp_accept"] = sorted(ports)
    return result


def _accepted_tcp_ports(expr: list) -> set[int]:
    """The TCP ports a rule accepts unconditionally (`tcp dport N|{a, b} accept`)."""
    if not expr or not isinstance(expr[-1], dict) or "accept" not in expr[-1] or len(expr) != 2:
        return set()
    match = expr[0].get("match") if isinstance(expr[0], dict) else None
    if not match or match.get("op") not in ("==", "in"):
        return set()
    payload = (match.get("left") or {}).get("payload") or {}
    if (payload.get("protocol"), payload.get("field")) != ("tcp", "dport"):
        return set()
    right = match.get("right")
    values = right.get("set", []) if isinstance(right, dict) else [right]
    return {v for v in values if isinstance(v, int)}


_SS_LINE = re.compile(r"^(?P<proto>tcp|udp)\s+\S+\s+\d+\s+\d+\s+(?P<local>\S+)\s+\S+(?:\s+(?P<proc>.*))?$")


def parse_listeners(out: str, _rc: int = 0) -> list[dict[str, Any]]:
    """`ss -Htulpn` -> [{proto, address, port, process}] of the sockets bound beyond loopback."""
    found, seen = [], set()
    for line in out.splitlines():
        m = _SS_LINE.match(line.strip())
        if not m:
            continue
        address, _, port = m.group("local").rpartition(":")
        if not port.isdigit():
            continue
        address = address.strip("[]")
        if _loopback(address):
            continue
        proc = re.search(r'\(\("([^"]+)"', m.group("proc") or "")
        entry = {"proto": m.group("proto"), "address": address, "port": int(port),
                 "process": proc.group(1) if proc else None}
        key = (entry["proto"], entry["port"], entry["process"])
        if key not in seen:
            seen.add(key)
            found.append(entry)
    return found


def _loopback(address: str) -> bool:
    host, _, iface = address.partition("%")
    if iface == "lo":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*' and names: every address


def parse_sshd(out: str, rc: int = 0) -> dict[str, str] | None:
    """`sshd -T` -> {setting: value} (lowercase keys; repeated settings keep their first value)."""
    if rc != 0:
        return None
    settings: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            settings.setdefault(key.lower(), value.strip())
    return settings or None


def parse_pending(out: str, _rc: int = 0) -> list[str]:
    """`apt-get -s dist-upgrade` -> the packages a security update is pending for."""
    names = []
    for line in out.splitlines():
        if line.startswith("Inst ") and re.search(r"\(.*-security[ /,)\]]|Debian-Security", line):
            names.append(line.split()[1])
    return names


def parse_updates_config(out: str, _rc: int = 0) -> dict[str, bool]:
    """The updates fact's `key value` lines -> {conf, timer}: lightfold's apt drop-in exists, and
    apt-daily-upgrade.timer is enabled and active."""
    values = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    return {"conf": values.get("conf") == "yes",
            "timer": values.get("timer-enabled") == "enabled" and values.get("timer-active") == "active"}


def parse_reboot(out: str, rc: int = 0) -> dict[str, Any]:
    """`cat /var/run/reboot-required.pkgs` behind a `yes` line when a reboot is required."""
    lines = out.splitlines()
    required = bool(lines) and lines[0].strip() == "yes"
    return {"required": required, "packages": sorted({x.strip() for x in lines[1:] if x.strip()})}


_EXPOSURE = re.compile(r"Overall exposure level for (\S+):\s+([\d.]+)\s+(\w+)")


def parse_exposure(out: str, _rc: int = 0) -> dict[str, dict[str, Any]]:
    """`systemd-analyze security UNIT` last lines -> {unit: {score, label}}."""
    found = {}
    for m in _EXPOSURE.finditer(out):
        found[m.group(1)] = {"score": float(m.group(2)), "label": m.group(3).upper()}
    return found


def parse_modes(out: str, _rc: int = 0) -> list[dict[str, Any]]:
    """`stat -c '%a %U %G %n' FILES` -> [{path, mode, owner, group}]."""
    files = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and re.fullmatch(r"[0-7]{3,4}", parts[0]):
            files.append({"mode": int(parts[0], 8), "owner": parts[1], "group": parts[2], "path": parts[3]})
    return files


def parse_app_writable(out: str, _rc: int = 0) -> list[dict[str, str]]:
    """Lines `<app>\t<app user>\t<path>` (the first file of the app's releases or deps its user
    owns, or that is group/other-writable) -> [{app, user, path}]."""
    found = []
    for line in out.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and all(parts):
            found.append({"app": parts[0], "user": parts[1], "path": parts[2]})
    return found


def parse_markers(out: str, _rc: int = 0) -> dict[str, dict[str, Any] | None]:
    """Each app's configure marker behind a `\\x1c<path>` line -> {app: marker or None}."""
    import os

    from lightfold.server.markers import parse_marker

    found = {}
    for chunk in out.split("\x1c")[1:]:
        path, _, text = chunk.partition("\n")
        found[os.path.basename(os.path.dirname(path.strip()))] = parse_marker(text)
    return found


# ---------------------------------------------------------------------------------------------
# findings


def findings(facts: dict[str, Any], ctx: Context) -> list[Finding]:
    """Every finding about the server, most severe first."""
    found: list[Finding] = []
    fw = facts.get("firewall") or {}
    found += _firewall(fw, ctx)
    found += _listeners(facts.get("listeners") or [], fw, ctx)
    found += _ssh(facts.get("sshd"), ctx)
    found += _updates(facts.get("pending") or [], facts.get("updates_config") or {}, ctx)
    found += _reboot(facts.get("reboot") or {}, ctx)
    found += _units(facts.get("exposure") or {})
    found += _files(facts.get("files") or [])
    found += _app_writable(facts.get("app_writable") or [])
    found += _certificates(facts.get("certificates") or [], ctx)
    found += _agent(facts.get("markers") or {}, ctx)
    found += _databases(facts.get("databases"), facts.get("backup_timer"), ctx)
    return sorted(found, key=lambda f: (SEVERITIES.index(f.severity), f.check, f.subject))


def exit_status(found: list[Finding]) -> int:
    return 1 if any(f.severity == "high" for f in found) else 0


def counts(found: list[Finding]) -> dict[str, int]:
    return {s: sum(1 for f in found if f.severity == s) for s in SEVERITIES}


def _configure(ctx: Context) -> str:
    return f"lightfold configure --target {ctx.target} --force"


def _firewall_blocks(fw: dict[str, Any]) -> bool:
    return bool(fw.get("table")) and fw.get("policy") == "drop"


def _firewall(fw: dict[str, Any], ctx: Context) -> list[Finding]:
    if not fw.get("installed", True):
        return [Finding("firewall", "high", "nftables", "nftables is not installed: no firewall at all",
                        _configure(ctx))]
    if not fw.get("table"):
        return [Finding("firewall", "high", "table inet lightfold",
                        "lightfold's firewall table is not loaded: every listening port is reachable",
                        f"systemctl restart {FIREWALL_UNIT}, or {_configure(ctx)}")]
    if fw.get("policy") != "drop":
        return [Finding("firewall", "high", "table inet lightfold",
                        f"the input policy is {fw.get('policy') or 'missing'}, not drop", _configure(ctx))]
    ports = ", ".join(str(p) for p in fw.get("tcp_accept") or [])
    return [Finding("firewall", "info", "table inet lightfold", f"inbound default-deny; TCP open: {ports}",
                    "none needed")]


def _listeners(listeners: list[dict[str, Any]], fw: dict[str, Any], ctx: Context) -> list[Finding]:
    found = []
    public = {("tcp", ctx.ssh_port), ("tcp", 80), ("tcp", 443)}
    open_tcp = set(fw.get("tcp_accept") or [])
    for s in listeners:
        if (s["proto"], s["port"]) in public:
            continue
        what = f"{s['proto']} {s['address']}:{s['port']}" + (f" ({s['process']})" if s.get("process") else "")
        bind = "bind it to 127.0.0.1 (or stop it)"
        if s["proto"] == "tcp" and s["port"] in ctx.allow_ports and s["port"] in open_tcp:
            found.append(Finding("listener", "low", what,
                                 "listens beyond loopback, open on purpose (security.allow_ports)",
                                 f"{bind} if it need not be public"))
        elif _firewall_blocks(fw) and not (s["proto"] == "tcp" and s["port"] in open_tcp):
            found.append(Finding("listener", "low", what, "listens beyond loopback; the firewall blocks it",
                                 f"{bind}, so it stays private without the firewall too"))
        else:
            found.append(Finding("listener", "high", what, "listens beyond loopback and is reachable from outside",
                                 f"{bind}, or {_configure(ctx)} to restore the firewall"))
    return found


def _ssh(sshd: dict[str, str] | None, ctx: Context) -> list[Finding]:
    if sshd is None:
        return [Finding("ssh", "medium", "sshd -T", "could not read sshd's effective settings",
                        "run `sshd -t` on the server and fix what it reports")]
    harden = f"lightfold config set security.harden_ssh true --target {ctx.target} && {_configure(ctx)}"
    found = []
    if sshd.get("passwordauthentication") != "no":
        found.append(Finding("ssh", "high", "PasswordAuthentication", "password logins are allowed", harden))
    if sshd.get("kbdinteractiveauthentication", "no") != "no":
        found.append(Finding("ssh", "high", "KbdInteractiveAuthentication",
                             "keyboard-interactive logins (passwords through PAM) are allowed", harden))
    root = sshd.get("permitrootlogin", "")
    if root == "yes":
        found.append(Finding("ssh", "high", "PermitRootLogin", "root may log in with a password", harden))
    if not found:
        found.append(Finding("ssh", "info", "sshd", f"key-only logins (PermitRootLogin {root or '?'})", "none needed"))
    return found


def _updates(pending: list[str], conf: dict[str, bool], ctx: Context) -> list[Finding]:
    automatic = bool(conf.get("conf") and conf.get("timer"))
    enable = f"lightfold config set security.updates true --target {ctx.target} && {_configure(ctx)}"
    found = []
    if not automatic:
        found.append(Finding("updates", "medium", "unattended-upgrades",
                             "security updates are not installed automatically", enable))
    if pending:
        names = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
        found.append(Finding(
            "updates", "low" if automatic else "medium", f"{len(pending)} security updates",
            f"pending: {names}" + (" (unattended-upgrades installs them at its next daily run)" if automatic else ""),
            "apt-get update && unattended-upgrade (or apt-get upgrade) on the server"))
    return found


def _reboot(reboot: dict[str, Any], ctx: Context) -> list[Finding]:
    if not reboot.get("required"):
        return []
    pkgs = ", ".join(reboot.get("packages") or []) or "an update"
    return [Finding("reboot", "medium", "reboot-required", f"a reboot is required by {pkgs}",
                    f"reboot the server, or `lightfold config set security.reboot_window 03:30 --target {ctx.target}`")]


def _units(exposure: dict[str, dict[str, Any]]) -> list[Finding]:
    found = []
    for unit, e in sorted(exposure.items()):
        severity = {"UNSAFE": "medium", "EXPOSED": "low"}.get(e["label"], "info")
        found.append(Finding("unit", severity, unit, f"systemd exposure {e['score']} {e['label']}",
                             "none needed" if severity == "info" else
                             f"review `systemd-analyze security {unit}` and tighten the unit"))
    return found


def _files(files: list[dict[str, Any]]) -> list[Finding]:
    found = []
    for f in files:
        mode = f["mode"] & 0o777
        if mode & 0o007:
            found.append(Finding("file", "high", f["path"], f"holds secrets and is world-accessible (mode {mode:o})",
                                 f"chmod 600 {f['path']}"))
        elif mode & 0o070 and f["group"] != "root":
            found.append(Finding("file", "medium", f["path"],
                                 f"holds secrets and group {f['group']} may read it (mode {mode:o})",
                                 f"chmod 600 {f['path']}"))
    return found


def _app_writable(entries: list[dict[str, str]]) -> list[Finding]:
    """Releases and deps are root's once built and read-only to the app (immutable releases): one
    that is not lets a compromised app change its own code or a rollback target."""
    return [Finding("file", "high", e["path"],
                    f"app {e['app']}'s code is writable by its user {e['user']} (made before immutable releases, "
                    "or changed by hand): a compromised app could change it or a release it rolls back to",
                    f"lightfold configure --target {e['app']} --force (it makes releases and deps root's)")
            for e in entries]


def _certificates(certs: list[dict[str, Any]], ctx: Context) -> list[Finding]:
    found = []
    for c in certs:
        if not c.get("exists"):
            continue
        days = c.get("days_left")
        if days is None:
            continue
        renew = f"lightfold domain add {c['domain']} --target {ctx.target} (or `certbot renew` on the server)"
        if days < 0:
            found.append(Finding("certificate", "high", c["domain"], f"expired on {c.get('expires')}", renew))
        elif days < CERT_WARN_DAYS:
            found.append(Finding("certificate", "medium", c["domain"],
                                 f"expires in {days} days ({c.get('expires')}): renewal is not working", renew))
    return found


def _agent(markers: dict[str, dict[str, Any] | None], ctx: Context) -> list[Finding]:
    found = []
    for app, marker in sorted(markers.items()):
        if not marker or not ctx.agent_hash or app != ctx.target:
            continue
        version = marker.get("lightfold_version", "?")
        if marker.get("agent_hash") != ctx.agent_hash:
            found.append(Finding("agent", "low", f"agent of {app}",
                                 f"the server's agent is not this lightfold's (configured by lightfold {version})",
                                 _configure(ctx)))
        else:
            found.append(Finding("agent", "info", f"agent of {app}", f"this lightfold's agent ({version})",
                                 "none needed"))
    return found


def _databases(dbs: Any, timer: str | None, ctx: Context) -> list[Finding]:
    """The target app's databases: running, on loopback only, backed up on a schedule."""
    from lightfold.server.database import is_loopback

    if not isinstance(dbs, dict):
        return [] if dbs is None else [Finding("database", "low", ctx.target, "could not read its databases' state",
                                               f"run `lightfold db status --target {ctx.target}`")]
    found = []
    for kind, info in sorted(dbs.items()):
        where = ", ".join(info.get("listening") or []) or "a unix socket"
        outside = [a for a in info.get("listening") or [] if not is_loopback(a)]
        if not info.get("active"):
            found.append(Finding("database", "medium", kind, f"{ctx.target}'s {kind} is not running",
                                 f"see `lightfold db status --target {ctx.target}`; `lightfold db add {kind} "
                                 f"--target {ctx.target}` starts it again"))
        elif outside:
            found.append(Finding("database", "high", kind, f"listens beyond loopback: {', '.join(outside)}",
                                 f"`lightfold db add {kind} --target {ctx.target}` puts its loopback-only "
                                 "settings back"))
        else:
            found.append(Finding("database", "info", kind, f"running, loopback only ({where})", "none needed"))
    if dbs and timer != "enabled":
        found.append(Finding("database", "low", "backup", f"{ctx.target}'s databases have no scheduled backup",
                             f"lightfold config set backup.schedule daily --target {ctx.target} && "
                             f"lightfold backup schedule --target {ctx.target}"))
    return found
