"""`lightfold backup create|list|verify|restore|download|schedule`: the work over SSH (the plans
and the tool are lightfold.server.backup's).

Every command first runs the setup plan (age from the OS archive, the tool, backup.json, this
laptop's public recipient, an sftp:// remote's pinned host key; a no-op once done), writes the
off-server remote's credentials when they are set here (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
for a bucket, LIGHTFOLD_BACKUP_SFTP_KEY for SFTP; over stdin, into a 0600 file), then runs the tool.
verify and restore hand the tool the laptop's identity on stdin.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lightfold.agent.layout import Layout
from lightfold.errors import LightfoldError
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, as_root

if TYPE_CHECKING:
    from lightfold.remote import Connection

KEY_ENV, SECRET_ENV = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
SFTP_KEY_ENV = "LIGHTFOLD_BACKUP_SFTP_KEY"  # the private key file an sftp:// backup.remote logs in with


def target_spec(target: Target) -> dict:
    from lightfold.server.backup import spec

    b = target.config.backup
    return spec(target.name, b.keep, b.remote)


async def prepare(conn: Connection, target: Target, report: Report = silent, schedule: bool = False) -> list[str]:
    """The tool, backup.json, this laptop's recipient, the remote's credentials (when set here) and,
    with `schedule`, the timer; the labels of what changed."""
    from lightfold import agekey
    from lightfold.release.database import apply_plan
    from lightfold.server import backup as plans
    from lightfold.server.plan import write_private_command

    _, recipient = agekey.load(create=True)
    value = target_spec(target)
    b = target.config.backup
    plan = plans.setup_plan(target.name, recipient, value)
    if schedule:
        plan += plans.schedule_plan(target.name, b.schedule)
    changed = await apply_plan(conn, plan, "backup setup", report)
    conf = _remote_credentials(target)
    if conf is not None:
        await conn.run(as_root(conn, write_private_command(value["remote"]["config"])), input=conf,
                       display="write the off-server remote's credentials")
    return changed


def _check_private_key(text: str, where: str) -> None:
    """The server's rclone logs in with this key unattended: an unreadable or passphrase-protected
    key is refused here, before anything reaches the server."""
    import asyncssh

    try:
        asyncssh.import_private_key(text)
        return
    except (asyncssh.KeyEncryptionError, ValueError) as e:  # KeyImportError is a ValueError
        locked = isinstance(e, asyncssh.KeyEncryptionError) or "passphrase" in str(e).lower()
    if locked:
        raise LightfoldError(f"{where} (${SFTP_KEY_ENV}) has a passphrase: the server's scheduled backups cannot "
                             "type it", "make a key for backups without one: ssh-keygen -t ed25519 -N '' -f "
                             "~/.ssh/lightfold-backup")
    raise LightfoldError(f"{where} (${SFTP_KEY_ENV}) is not an SSH private key",
                         f"point ${SFTP_KEY_ENV} at the private key file the SFTP server accepts")


def _remote_credentials(target: Target) -> str | None:
    """The rclone.conf text for backup.remote when its credentials are set here: an S3 bucket's
    keys (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or for sftp:// the private key file named
    by LIGHTFOLD_BACKUP_SFTP_KEY. None when they are not (the server keeps what it was given)."""
    from lightfold.server import backup as plans

    b = target.config.backup
    if not b.remote:
        return None
    if b.remote.startswith("sftp://"):
        key_file = os.environ.get(SFTP_KEY_ENV)
        if not key_file:
            return None
        try:
            private_key = Path(key_file).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise LightfoldError(f"cannot read the SFTP key {key_file} (${SFTP_KEY_ENV}): {e.__class__.__name__}",
                                 f"point ${SFTP_KEY_ENV} at the private key file the SFTP server accepts") from None
        _check_private_key(private_key, key_file)
        return plans.rclone_sftp_config(b.remote, private_key, Layout(target.name).backup_known_hosts)
    key, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
    return plans.rclone_config(key, secret, b.remote_endpoint, b.remote_region) if key and secret else None


async def tool(conn: Connection, target: Target, op: str, *args: str, identity: str | None = None,
               report: Report = silent, timeout: float = 3600) -> dict:
    """Run the server's backup tool; its JSON answer (a failure is a LightfoldError)."""
    from lightfold.server.backup import tool_command

    def on_output(stream: str, line: str) -> None:
        if stream == "stderr" and line.strip():
            report("note", f"  {line.strip()}")

    res = await conn.run(as_root(conn, tool_command(target.name, op, *args)),
                         input=(identity + "\n") if identity else None, check=False, timeout=timeout,
                         on_output=on_output, display=f"backup {op}")
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    try:
        data = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise LightfoldError(f"backup {op} on the server failed (exit {res.exit_status})",
                             "see the lines below; fix the cause and run it again",
                             details=res.stderr.strip().splitlines()[-15:]) from None
    if "error" in data:
        raise LightfoldError(data["error"], data.get("fix") or "fix the cause and run the command again")
    return data


async def create(conn: Connection, target: Target, report: Report = silent) -> dict:
    await prepare(conn, target, report, schedule=True)
    report("step", f"backup of {target.name}: dump, compress and encrypt on the server")
    data = await tool(conn, target, "create", "manual", report=report)
    return {"target": target.name, **data}


def before_release_label(release_id: str) -> str:
    return f"before release {release_id}"


async def before_release(conn: Connection, target: Target, release_id: str, report: Report = silent) -> str:
    """The backup push takes before a release command runs on a target with a database (the
    release command migrates it; a rollback cannot undo that, a restore can). Its id; a failure
    stops the push before anything ran."""
    await prepare(conn, target, report, schedule=True)
    report("step", f"backup before the release command of {release_id} (the target has a database)")
    try:
        data = await tool(conn, target, "create", before_release_label(release_id), report=report)
    except LightfoldError as e:
        raise LightfoldError(f"the backup before the release command failed: {e.problem}",
                             f"{e.fix} (lightfold never runs a release command on a database without a backup "
                             "first)", details=e.details) from e
    return data["id"]


async def schedule(conn: Connection, target: Target, report: Report = silent) -> dict:
    from lightfold.agent.layout import backup_unit

    changed = [c for c in await prepare(conn, target, report, schedule=True) if ".backup." in c]
    b = target.config.backup
    return {"target": target.name, "schedule": b.schedule, "keep": b.keep, "timer": backup_unit(target.name, "timer"),
            "changed": bool(changed)}


async def list_backups(conn: Connection, target: Target, report: Report = silent) -> dict:
    await prepare(conn, target, report)
    return {"target": target.name, **await tool(conn, target, "list")}


def _identity() -> str:
    from lightfold import agekey

    return agekey.load(create=False)[0]


async def verify(conn: Connection, target: Target, backup_id: str, report: Report = silent) -> dict:
    identity = _identity()
    await prepare(conn, target, report)
    report("step", f"verify {backup_id}: restore into a scratch database on the server, compare with the manifest")
    return {"target": target.name, **await tool(conn, target, "verify", backup_id, identity=identity, report=report)}


async def restore(conn: Connection, target: Target, backup_id: str, yes: bool, from_remote: bool = False,
                  report: Report = silent) -> dict:
    identity = _identity()
    await prepare(conn, target, report)
    if from_remote:
        report("step", f"fetch {backup_id} from {target.config.backup.remote}")
        fetched = await tool(conn, target, "fetch", backup_id, report=report)
        backup_id = fetched["id"]
    listing = await tool(conn, target, "list")
    live = listing.get("live") or {}
    if any(live.values()) and not yes:
        what = ", ".join(k for k, v in live.items() if v)
        raise LightfoldError(f"restore would overwrite the live {what} of {target.name}",
                             "pass --yes (a fresh backup is taken first)")
    report("step", f"restore {backup_id} (a fresh backup first)")
    data = await tool(conn, target, "restore", backup_id, "backup-first", identity=identity, report=report)
    return {"target": target.name, "from_remote": from_remote, **data}


async def download(conn: Connection, target: Target, backup_id: str, dest: Path, report: Report = silent) -> dict:
    """The backup's directory (encrypted files + manifest) into dest/<id>/, checked against its manifest."""
    import hashlib
    import tarfile
    import tempfile

    from lightfold.server.backup import archive_command

    await prepare(conn, target, report)
    if backup_id == "latest":
        ids = [b["id"] for b in (await tool(conn, target, "list"))["backups"]]
        if not ids:
            raise LightfoldError(f"no backup of {target.name} on its server", "run `lightfold backup create` first")
        backup_id = ids[-1]
    dest.mkdir(parents=True, exist_ok=True)
    errors: list[bytes] = []
    size = 0
    with tempfile.TemporaryFile(dir=dest) as buf:  # on disk as it arrives: a backup can be large
        def write(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            buf.write(chunk)

        status = await conn.stream(as_root(conn, archive_command(target.name, backup_id)), on_stdout=write,
                                   on_stderr=errors.append, display=f"download backup {backup_id}")
        if status != 0:
            raise LightfoldError(f"cannot read backup {backup_id} on the server: "
                                 f"{b''.join(errors).decode(errors='replace').strip()[-200:]}",
                                 "see `lightfold backup list` for the ids")
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            tar.extractall(dest, filter="data")
    where = dest / backup_id
    manifest = json.loads((where / "manifest.json").read_text())
    bad = []
    for name, part in manifest["parts"].items():
        with open(where / part["file"], "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if digest != part["sha256"]:
            bad.append(name)
    if bad:
        raise LightfoldError(f"the downloaded {', '.join(bad)} of {backup_id} do not match the manifest",
                             "download it again")
    for f in where.iterdir():
        f.chmod(0o600)
    return {"target": target.name, "id": backup_id, "path": str(where),
            "files": sorted(f.name for f in where.iterdir()), "bytes": size}

