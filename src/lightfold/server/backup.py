"""Backups of an app's databases and storage, encrypted on the server to the laptop's age key: the
plans (pure data, lightfold.server.plan) and the command lines of the server's backup tool
(lightfold.server.backup_tool, which does the work there).

    spec(app, keep, remote)            the app's backup.json: paths only, no secret
    setup_plan(app, recipient, spec)   age (+ rclone) from the OS archive, the tool, backup.json,
                                       the laptop's public recipient added to the app's list
    schedule_plan(app, schedule)       the backup timer (OnCalendar=schedule, Persistent), or its
                                       removal when there is no schedule
    rclone_config(...)                 the off-server remote's rclone.conf text; it holds the
                                       bucket's secret key, so it is no plan's: the laptop writes
                                       it over stdin into a 0600 file
    tool_command(app, op, *args)       how to run the tool (the identity, when needed, goes on stdin)

No plan and no command line holds a secret: the identity stays on the laptop and reaches the
server's `age` only on stdin, as /dev/fd/N of a pipe.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from lightfold.agent.layout import BACKUP_DIR, BACKUP_TOOL, BACKUPS, Layout, backup_unit
from lightfold.server.database import db_name
from lightfold.server.plan import (
    EnsureDir,
    EnsurePackages,
    Plan,
    Remove,
    Run,
    ServiceReload,
    Step,
    SystemdEnable,
    SystemdReload,
    WriteFile,
)

REMOTE_NAME = "lightfold"  # the rclone remote's name in backup-rclone.conf


TOOL_FILES = ("backup_tool.py", "backup_parts.py")


def tool_files() -> dict[str, str]:
    """The tool's files on the server -> their source (this package's modules of the same names)."""
    return {f"{BACKUP_DIR}/{name}": Path(__file__).with_name(name).read_text(encoding="utf-8") for name in TOOL_FILES}


def sftp_parts(remote: str) -> tuple[str, str, int, str]:
    """`sftp://user@host[:port][/path]` (config-checked) -> (user, host, port, rclone path): `/x` is
    absolute, `/~/x` (or no path) is relative to the login's home."""
    from lightfold.config import sftp_port

    login, _, path = remote.removeprefix("sftp://").partition("/")
    user, _, host = login.partition("@")
    path = "/" + path.strip("/") if path.strip("/") else ""
    if path == "/~" or path.startswith("/~/"):
        path = path[2:].lstrip("/")
    return user, host.split(":", 1)[0], sftp_port(remote), path


def remote_path(app: str, remote: str | None) -> str | None:
    """`s3://bucket/prefix` -> `lightfold:bucket/prefix/<app>`, `sftp://u@h/srv/b` ->
    `lightfold:/srv/b/<app>` (rclone's spelling)."""
    if not remote:
        return None
    if remote.startswith("sftp://"):
        path = sftp_parts(remote)[3]
        return f"{REMOTE_NAME}:{path.rstrip('/') + '/' if path else ''}{app}"
    return f"{REMOTE_NAME}:{remote.removeprefix('s3://').strip('/')}/{app}"


def spec(app: str, keep: int = 7, remote: str | None = None) -> dict:
    lay = Layout(app)
    path = remote_path(app, remote)
    return {
        "app": app, "dir": lay.backups_dir, "recipients": lay.backup_recipients, "keep": keep,
        "db_env": {"postgres": lay.db_env("postgres"), "mysql": lay.db_env("mysql"), "redis": lay.db_env("redis")},
        "pg_db": db_name(app), "mysql_db": db_name(app), "storage": lay.storage_dir,
        "remote": {"path": path, "config": lay.backup_rclone,
                   **({"sftp": remote} if remote and remote.startswith("sftp://") else {})} if path else None,
        "unit": backup_unit(app, None),  # + .service / .timer
    }


def spec_text(value: dict) -> str:
    return json.dumps(value, indent=1, sort_keys=True) + "\n"


def setup_plan(app: str, recipient: str, value: dict) -> Plan:
    from lightfold.agekey import is_recipient

    if not is_recipient(recipient):
        raise ValueError(f"not an age recipient: {recipient!r}")
    lay = Layout(app)
    packages = ("age", "rclone") if value.get("remote") else ("age",)
    rfile = shlex.quote(lay.backup_recipients)
    return Plan((Step("backup tool", (
        EnsurePackages(packages),
        EnsureDir(BACKUPS, mode=0o700),
        EnsureDir(lay.backups_dir, mode=0o700),
        EnsureDir(BACKUP_DIR, mode=0o755),
        *(WriteFile(path, text, mode=0o644) for path, text in tool_files().items()),
        WriteFile(lay.backup_spec, spec_text(value), mode=0o600),
        Run(f"mkdir -p {shlex.quote(lay.etc)} && echo {recipient} >> {rfile} && chmod 644 {rfile}",
            unless=f"grep -qxF {recipient} {rfile}", label=f"recipient {recipient[:16]}... in {lay.backup_recipients}"),
        *([pin_host_key(sftp, lay.backup_known_hosts)] if (sftp := (value.get("remote") or {}).get("sftp")) else []),
    )),))


def timer_units(app: str, schedule: str) -> tuple[str, str]:
    lay = Layout(app)
    service = (
        f"[Unit]\nDescription=lightfold backup of {app}\n"
        "After=postgresql.service mariadb.service redis-server.service\n\n"
        f"[Service]\nType=oneshot\nExecStart=/usr/bin/python3 {BACKUP_TOOL} create {lay.backup_spec} scheduled\n"
        "Nice=10\nIOSchedulingClass=idle\n"
    )
    timer = (
        f"[Unit]\nDescription=lightfold backup of {app} ({schedule})\n\n"
        f"[Timer]\nOnCalendar={schedule}\nPersistent=true\nRandomizedDelaySec=60\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return service, timer


def schedule_plan(app: str, schedule: str | None) -> Plan:
    lay = Layout(app)
    timer_name = backup_unit(app, "timer")
    if not schedule:
        return Plan((Step("backup schedule", (
            Run(f"systemctl disable --now {timer_name}", unless=f"! systemctl is-enabled --quiet {timer_name}",
                label=f"stop {timer_name}"),
            Remove(lay.backup_unit_file("timer")),
            Remove(lay.backup_unit_file("service")),
            SystemdReload(),
        )),))
    service, timer = timer_units(app, schedule)
    return Plan((Step("backup schedule", (
        # Skipped when valid; otherwise it runs, fails and names the expression.
        Run(f"systemd-analyze calendar {shlex.quote(schedule)} >/dev/null",
            unless=f"systemd-analyze calendar {shlex.quote(schedule)} >/dev/null",
            label=f"'{schedule}' is a systemd calendar expression"),
        WriteFile(lay.backup_unit_file("service"), service),
        WriteFile(lay.backup_unit_file("timer"), timer),
        SystemdReload(),
        ServiceReload(timer_name, check="true"),
        SystemdEnable(timer_name, now=True),
    )),))


def rclone_config(access_key: str, secret_key: str, endpoint: str | None, region: str | None) -> str:
    lines = [f"[{REMOTE_NAME}]", "type = s3", f"provider = {'Other' if endpoint else 'AWS'}", "env_auth = false",
             f"access_key_id = {access_key}", f"secret_access_key = {secret_key}"]
    if endpoint:
        lines += [f"endpoint = {endpoint}", "force_path_style = true"]
    if region:
        lines.append(f"region = {region}")
    return "\n".join(lines) + "\n"


def rclone_sftp_config(remote: str, private_key: str, known_hosts: str) -> str:
    """rclone's sftp remote: the laptop's private key inline (rclone's key_pem, newlines as \\n),
    the server's host key pinned in `known_hosts` (rclone refuses any other), and no shell
    commands on the SFTP server (an SFTP-only login has none; the tool checks sha256s itself)."""
    user, host, port, _ = sftp_parts(remote)
    pem = private_key.strip().replace("\n", "\\n")
    return "\n".join([f"[{REMOTE_NAME}]", "type = sftp", f"host = {host}", f"user = {user}", f"port = {port}",
                      f"key_pem = {pem}", f"known_hosts_file = {known_hosts}", "shell_type = none"]) + "\n"


def pin_host_key(remote: str, path: str) -> Run:
    """The SFTP server's host keys pinned in `path` the first time, as this server sees them (trust
    on first use, like ssh's own prompt), then never again: a changed key makes rclone refuse."""
    _, host, port, _ = sftp_parts(remote)
    p, h = shlex.quote(path), shlex.quote(host)
    script = (f"umask 077; ssh-keyscan -T 10 -p {port} -- {h} > {p}.new 2>/dev/null; "
              f"if ! [ -s {p}.new ]; then rm -f {p}.new; echo 'no SSH host key from {host}:{port}: check "
              "backup.remote (host, port) and that this server may connect there' >&2; exit 3; fi; "
              f"mv -f {p}.new {p}")
    return Run(f"sh -c {shlex.quote(script)}", unless=f"[ -s {p} ]",
               label=f"the SFTP server {host}:{port}'s host key pinned in {path}")


def tool_command(app: str, op: str, *args: str) -> str:
    return " ".join(["python3", BACKUP_TOOL, op, Layout(app).backup_spec, *(shlex.quote(a) for a in args)])


def archive_command(app: str, backup_id: str) -> str:
    """tar of one complete backup directory to stdout (what `download` streams)."""
    from lightfold.agent.layout import is_release_id

    if not is_release_id(backup_id):
        raise ValueError(f"not a backup id: {backup_id!r}")
    return f"tar -C {shlex.quote(Layout(app).backups_dir)} -cf - {backup_id}"
