"""lightfold's backup tool ON THE SERVER (standard library only): installed as BACKUP_TOOL by
`lightfold backup` (lightfold.server.backup's setup plan) and run as root:

    python3 /etc/lightfold/backup/backup_tool.py create  SPEC            (also what the systemd timer runs)
    python3 /etc/lightfold/backup/backup_tool.py list    SPEC
    python3 /etc/lightfold/backup/backup_tool.py verify  SPEC ID|latest  < identity
    python3 /etc/lightfold/backup/backup_tool.py restore SPEC ID|latest  < identity
    python3 /etc/lightfold/backup/backup_tool.py fetch   SPEC ID         (from the off-server copy)

SPEC is the app's backup.json (paths only, no secret). Each command prints one JSON object on
stdout ({"error": ..., "fix": ...} and exit 1 on failure) and its progress on stderr.

A backup is a directory <dir>/<id>/ (id: UTC YYYYMMDDHHMMSS) holding, for what the app has:
    postgres.dump.age       pg_dump's custom format (compressed), encrypted with age
    mysql.sql.gz.age        mariadb-dump --single-transaction, gzip, age
    redis.rdb.gz.age        redis-cli --rdb, gzip, age
    storage.tar.gz.age      /srv/<app>/storage, tar + gzip, age
    manifest.json           what was taken: sizes and sha256 (encrypted and plain), postgres's
                            row count of every table (in the dump's own snapshot), mysql's (the
                            rows in the dump, counted as it streams), redis's keys, storage's files
    verify.json             the last `verify` of it
It is built as <dir>/.<id>.partial/ and renamed only once everything is written: a name without
the leading dot is a complete backup; a failure removes the partial directory.

Everything is encrypted to the recipients file (age public keys): the server cannot read its own
backups. Decryption takes the laptop's identity on stdin, handed to age as /dev/fd/N of a pipe:
never a file on this server, never an argument.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backup_parts import (  # noqa: E402 - beside this file, on the server as here
    Failure,
    compare_counts,
    count_files,
    db_exists,
    decrypt_redis,
    drop_mysql_db,
    dump_mysql,
    dump_postgres,
    dump_redis,
    dump_storage,
    list_storage,
    load_mysql,
    mysql_db_exists,
    psql,
    recreate_mysql_db,
    restore_mysql,
    restore_postgres,
    restore_storage,
    run,
    sha256_file,
)

ID_RE = re.compile(r"[0-9]{14}", re.ASCII)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the backups directory ----------------------------------------------------------------------------


@contextlib.contextmanager
def locked(spec: dict):
    os.makedirs(spec["dir"], mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(spec["dir"], ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def complete(spec: dict) -> list[str]:
    """Ids of the complete backups, oldest first."""
    try:
        names = os.listdir(spec["dir"])
    except FileNotFoundError:
        return []
    return sorted(n for n in names if ID_RE.fullmatch(n) and os.path.isfile(os.path.join(spec["dir"], n,
                                                                                         "manifest.json")))


def read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_json(path: str, value) -> None:
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def resolve(spec: dict, wanted: str) -> str:
    ids = complete(spec)
    if wanted == "latest":
        if not ids:
            raise Failure(f"no backup of {spec['app']} on this server", "run `lightfold backup create` first")
        return ids[-1]
    if wanted not in ids:
        raise Failure(f"no complete backup {wanted} of {spec['app']} on this server",
                      "see `lightfold backup list` for the ids (or fetch it with --from-remote)")
    return wanted


def new_id(spec: dict) -> str:
    while True:
        bid = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        if not os.path.exists(os.path.join(spec["dir"], bid)):
            return bid
        time.sleep(1)


def read_recipients(path: str) -> list[str]:
    try:
        with open(path, encoding="ascii") as f:
            return [line for line in f.read().split() if line.startswith("age1")]
    except FileNotFoundError:
        return []


def recipients(spec: dict) -> str:
    path = spec["recipients"]
    if not read_recipients(path):
        raise Failure(f"no backup recipient in {path}", "run `lightfold backup create` from your laptop once")
    return path


def create(spec: dict, label: str = "manual") -> dict:
    with locked(spec):
        return _create(spec, label)


def _create(spec: dict, label: str) -> dict:
    started = time.monotonic()
    rcp = recipients(spec)
    bid = new_id(spec)
    work = os.path.join(spec["dir"], f".{bid}.partial")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, mode=0o700)
    parts: dict[str, dict] = {}
    try:
        if os.path.exists(spec["db_env"]["postgres"]) and db_exists(spec["pg_db"]):
            log(f"postgres {spec['pg_db']}: pg_dump")
            parts["postgres"] = dump_postgres(spec["pg_db"], rcp, os.path.join(work, "postgres.dump.age"))
            parts["postgres"]["file"] = "postgres.dump.age"
        if has_mysql(spec) and mysql_db_exists(spec["mysql_db"]):
            log(f"mysql {spec['mysql_db']}: mariadb-dump --single-transaction")
            parts["mysql"] = dump_mysql(spec["mysql_db"], rcp, os.path.join(work, "mysql.sql.gz.age"))
            parts["mysql"]["file"] = "mysql.sql.gz.age"
        if os.path.exists(spec["db_env"]["redis"]):
            log("redis: --rdb")
            parts["redis"] = dump_redis(spec["db_env"]["redis"], rcp, os.path.join(work, "redis.rdb.gz.age"), work)
            parts["redis"]["file"] = "redis.rdb.gz.age"
        if os.path.isdir(spec["storage"]) and count_files(spec["storage"]):
            log(f"storage {spec['storage']}: tar")
            parts["storage"] = dump_storage(spec["storage"], rcp, os.path.join(work, "storage.tar.gz.age"))
            parts["storage"]["file"] = "storage.tar.gz.age"
        if not parts:
            raise Failure(f"{spec['app']} has nothing to back up (no database, no files in {spec['storage']})",
                          "add a database (`lightfold db add postgres`) or storage first")
        for part in parts.values():
            path = os.path.join(work, part["file"])
            part["bytes"] = os.path.getsize(path)
            part["sha256"] = sha256_file(path)
        manifest = {"id": bid, "app": spec["app"], "label": label, "format": 1,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "seconds": round(time.monotonic() - started, 2), "parts": parts,
                    "recipients": read_recipients(rcp)}
        write_json(os.path.join(work, "manifest.json"), manifest)
        os.rename(work, os.path.join(spec["dir"], bid))
        fsync_dir(spec["dir"])
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result = {"id": bid, "manifest": manifest, "pruned": prune(spec)}
    if spec.get("remote"):
        result["pushed"] = push(spec, bid)
        result["pruned_remote"] = prune_remote(spec)
    return result


def has_mysql(spec: dict) -> bool:
    """The app has MariaDB credentials (a backup.json older than MariaDB support has none)."""
    path = spec["db_env"].get("mysql")
    return bool(path) and os.path.exists(path) and shutil.which("mariadb") is not None


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(spec: dict) -> list[str]:
    """Keep the newest `keep` complete backups; partial ones left by a crash go too (the lock is held)."""
    ids = complete(spec)
    gone = ids[: max(0, len(ids) - int(spec["keep"]))]
    for bid in gone:
        shutil.rmtree(os.path.join(spec["dir"], bid), ignore_errors=True)
    for name in os.listdir(spec["dir"]):
        if name.endswith(".partial"):
            shutil.rmtree(os.path.join(spec["dir"], name), ignore_errors=True)
    return gone


# ---- off-server copies (rclone) -----------------------------------------------------------------------


def rclone(spec: dict, *args: str) -> str:
    remote = spec["remote"]
    if not os.path.exists(remote["config"]):
        raise Failure(f"no credentials for the off-server copy in {remote['config']}",
                      "run `lightfold backup create` with the SFTP login's private key file in "
                      "LIGHTFOLD_BACKUP_SFTP_KEY" if remote.get("sftp") else
                      "run `lightfold backup create` with the bucket's credentials in AWS_ACCESS_KEY_ID and "
                      "AWS_SECRET_ACCESS_KEY")
    # Only the config file speaks for the remote: no AWS_* of the environment (an AWS_CA_BUNDLE
    # there makes rclone's S3 backend refuse to start).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return run(["rclone", "--config", remote["config"], "--low-level-retries", "3", "--retries", "2", *args], env=env)


def push(spec: dict, bid: str) -> bool:
    """The backup copied to the remote: files first, the manifest last (a remote copy without a
    manifest is not complete)."""
    src = os.path.join(spec["dir"], bid)
    dest = f"{spec['remote']['path']}/{bid}"
    log(f"push {bid} to {spec['remote']['path']}")
    rclone(spec, "copy", src, dest, "--exclude", "manifest.json", "--exclude", "verify.json")
    rclone(spec, "copyto", os.path.join(src, "manifest.json"), f"{dest}/manifest.json")
    return True


def remote_ids(spec: dict) -> list[str]:
    out = rclone(spec, "lsf", "--files-only", "-R", "--include", "*/manifest.json", spec["remote"]["path"])
    return sorted({line.split("/")[0] for line in out.splitlines() if ID_RE.fullmatch(line.split("/")[0])})


def prune_remote(spec: dict) -> list[str]:
    ids = remote_ids(spec)
    gone = ids[: max(0, len(ids) - int(spec["keep"]))]
    for bid in gone:
        rclone(spec, "purge", f"{spec['remote']['path']}/{bid}")
    return gone


def fetch(spec: dict, bid: str) -> dict:
    """A backup copied back from the remote (its sha256s checked against its manifest)."""
    if not spec.get("remote"):
        raise Failure(f"{spec['app']} has no off-server copy configured", "set backup.remote first")
    with locked(spec):
        if bid == "latest":
            ids = remote_ids(spec)
            if not ids:
                raise Failure(f"no backup of {spec['app']} at {spec['remote']['path']}")
            bid = ids[-1]
        if bid in complete(spec):
            return {"id": bid, "fetched": False}
        work = os.path.join(spec["dir"], f".{bid}.partial")
        shutil.rmtree(work, ignore_errors=True)
        try:
            rclone(spec, "copy", f"{spec['remote']['path']}/{bid}", work)
            manifest = read_json(os.path.join(work, "manifest.json"))
            if not manifest:
                raise Failure(f"the remote copy of {bid} has no manifest (incomplete)")
            bad = [n for n, p in manifest["parts"].items()
                   if not os.path.exists(os.path.join(work, p["file"])) or sha256_file(os.path.join(work, p["file"]))
                   != p["sha256"]]
            if bad:
                raise Failure(f"the remote copy of {bid} is damaged: {', '.join(bad)} do not match the manifest")
            os.rename(work, os.path.join(spec["dir"], bid))
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return {"id": bid, "fetched": True}


# ---- list, verify, restore ----------------------------------------------------------------------------


def summary(spec: dict, bid: str) -> dict:
    d = os.path.join(spec["dir"], bid)
    m = read_json(os.path.join(d, "manifest.json")) or {}
    return {"id": bid, "created": m.get("created"), "label": m.get("label"),
            "parts": {k: {"bytes": v.get("bytes"), **({"tables": v["tables"]} if "tables" in v else {}),
                          **({"keys": v["keys"]} if "keys" in v else {}),
                          **({"files": v["files"]} if "files" in v else {})}
                      for k, v in (m.get("parts") or {}).items()},
            "bytes": sum(v.get("bytes", 0) for v in (m.get("parts") or {}).values()),
            "verify": read_json(os.path.join(d, "verify.json"))}


def list_backups(spec: dict) -> dict:
    out = {"app": spec["app"], "dir": spec["dir"], "unit": spec.get("unit"),
           "backups": [summary(spec, b) for b in complete(spec)],
           "incomplete": sum(1 for n in os.listdir(spec["dir"]) if n.endswith(".partial"))
           if os.path.isdir(spec["dir"]) else 0, "live": live(spec)}
    if spec.get("remote"):
        try:
            out["remote"] = {"path": spec["remote"]["path"], "ids": remote_ids(spec)}
        except Failure as e:
            out["remote"] = {"path": spec["remote"]["path"], "error": e.error}
    if spec.get("unit") and shutil.which("systemctl"):
        out["schedule"] = schedule_state(spec["unit"])
    return out


def schedule_state(unit: str) -> dict:
    """The backup timer: enabled, and how the last scheduled run ended (a failed one must show)."""
    def show(name: str, *props: str) -> dict[str, str]:
        res = subprocess.run(["systemctl", "show", name, *(f"-p{p}" for p in props)], capture_output=True, text=True)
        return dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)

    return parse_schedule(show(f"{unit}.timer", "UnitFileState", "ActiveState"),
                          show(f"{unit}.service", "Result", "ExecMainStatus", "ExecMainExitTimestamp"))


def parse_schedule(timer: dict[str, str], service: dict[str, str]) -> dict:
    ran = service.get("ExecMainExitTimestamp", "").strip()
    return {"enabled": timer.get("UnitFileState") == "enabled", "active": timer.get("ActiveState") == "active",
            "last_run": ran or None, "last_ok": (service.get("Result") == "success") if ran else None}


def live(spec: dict) -> dict[str, bool]:
    """What a restore would overwrite: the app's database, Redis's keyspace, storage holding files."""
    pg = os.path.exists(spec["db_env"]["postgres"]) and shutil.which("psql") is not None
    return {"postgres": pg and db_exists(spec["pg_db"]),
            "mysql": has_mysql(spec) and mysql_db_exists(spec["mysql_db"]),
            "redis": os.path.exists(spec["db_env"]["redis"]),
            "storage": os.path.isdir(spec["storage"]) and count_files(spec["storage"]) > 0}


def check_files(spec: dict, bid: str, manifest: dict) -> list[str]:
    problems = []
    for name, part in manifest["parts"].items():
        path = os.path.join(spec["dir"], bid, part["file"])
        if not os.path.exists(path):
            problems.append(f"{name}: {part['file']} is missing")
        elif os.path.getsize(path) != part["bytes"]:
            problems.append(f"{name}: {part['file']} has {os.path.getsize(path)} bytes, the manifest says "
                            f"{part['bytes']} (truncated or changed)")
        elif sha256_file(path) != part["sha256"]:
            problems.append(f"{name}: {part['file']}'s sha256 differs from the manifest's (changed)")
    return problems


def verify(spec: dict, wanted: str, identity: bytes) -> dict:
    with locked(spec):
        bid = resolve(spec, wanted)
        started = time.monotonic()
        d = os.path.join(spec["dir"], bid)
        manifest = read_json(os.path.join(d, "manifest.json"))
        checks: dict[str, dict] = {}
        problems = check_files(spec, bid, manifest)
        if not problems:
            for name, part in manifest["parts"].items():
                path = os.path.join(d, part["file"])
                try:
                    checks[name] = _verify_part(spec, name, part, path, identity, d)
                except Failure as e:
                    checks[name] = {"ok": False, "problems": [e.error]}
                problems += [f"{name}: {p}" for p in checks[name].get("problems", [])]
        result = {"id": bid, "ok": not problems, "problems": problems, "checks": checks,
                  "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "seconds": round(time.monotonic() - started, 2)}
        write_json(os.path.join(d, "verify.json"), result)
        return result


def _verify_part(spec: dict, name: str, part: dict, path: str, identity: bytes, d: str) -> dict:
    if name == "postgres":
        scratch = f"lfverify_{spec['pg_db']}"[:63]
        log(f"postgres: restore into scratch database {scratch}")
        try:
            counts = restore_postgres(part, path, identity, scratch, spec["pg_db"])
        finally:
            run(["runuser", "-u", "postgres", "--", "dropdb", "--if-exists", "--force", scratch])
        problems = compare_counts(part["tables"], counts)
        return {"ok": not problems, "tables": len(counts), "rows": sum(counts.values()), "problems": problems}
    if name == "mysql":
        counts = _mysql_scratch_counts(part, path, identity, f"lfverify_{spec['mysql_db']}"[:64])
        problems = compare_counts(part["tables"], counts)
        return {"ok": not problems, "tables": len(counts), "rows": sum(counts.values()), "problems": problems}
    if name == "redis":
        rdb, keys = decrypt_redis(part, path, identity, d)
        os.unlink(rdb)
        problems = [] if keys == part["keys"] else [f"{keys} keys, {part['keys']} at backup time"]
        return {"ok": not problems, "keys": keys, "problems": problems}
    files = list_storage(part, path, identity)
    problems = [] if files == part["files"] else [f"{files} files, {part['files']} at backup time"]
    return {"ok": not problems, "files": files, "problems": problems}


def restore(spec: dict, wanted: str, identity: bytes, backup_first: bool) -> dict:
    with locked(spec):
        bid = resolve(spec, wanted)
        before = None
        if backup_first and any(live(spec).values()):
            before = _create(spec, f"before restoring {bid}")["id"]
        started = time.monotonic()
        d = os.path.join(spec["dir"], bid)
        manifest = read_json(os.path.join(d, "manifest.json"))
        problems = check_files(spec, bid, manifest)
        if problems:
            raise Failure(f"backup {bid} is damaged: {'; '.join(problems)}", "restore another backup")
        restored: dict[str, dict] = {}
        parts = manifest["parts"]
        if "postgres" in parts:
            db = spec["pg_db"]
            scratch = f"lfrestore_{db}"[:63]
            log(f"postgres: restore into {scratch}, then replace {db}")
            try:
                counts = restore_postgres(parts["postgres"], os.path.join(d, parts["postgres"]["file"]), identity,
                                          scratch, db)
                bad = compare_counts(parts["postgres"]["tables"], counts)
                if bad:
                    raise Failure(f"the restored copy does not match the manifest: {'; '.join(bad)}")
                psql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE);\n'
                                 f'ALTER DATABASE "{scratch}" RENAME TO "{db}";\n')
            except BaseException:
                run(["runuser", "-u", "postgres", "--", "dropdb", "--if-exists", "--force", scratch])
                raise
            restored["postgres"] = {"tables": len(counts), "rows": sum(counts.values())}
        if "mysql" in parts:
            restored["mysql"] = _restore_mysql(spec, parts["mysql"], os.path.join(d, parts["mysql"]["file"]), identity)
        if "redis" in parts:
            log("redis: replace the dataset (stop, swap dump.rdb, start)")
            rdb, keys = decrypt_redis(parts["redis"], os.path.join(d, parts["redis"]["file"]), identity, d)
            run(["systemctl", "stop", "redis-server"])
            try:
                target = "/var/lib/redis/dump.rdb"
                shutil.move(rdb, target)
                shutil.chown(target, "redis", "redis")
            finally:
                run(["systemctl", "start", "redis-server"])
            restored["redis"] = {"keys": keys}
        if "storage" in parts:
            log(f"storage: replace {spec['storage']}")
            restored["storage"] = {"files": restore_storage(parts["storage"], os.path.join(d, parts["storage"]["file"]),
                                                            identity, spec["storage"])}
        return {"id": bid, "restored": restored, "backup_before": before,
                "seconds": round(time.monotonic() - started, 2)}


def _restore_mysql(spec: dict, part: dict, path: str, identity: bytes) -> dict:
    """Into a scratch database first, checked against the manifest; only then is the app's
    database dropped, made again (its user's grants are by name: they stay) and loaded. MariaDB
    cannot rename a database, and moving the tables would leave views and triggers behind."""
    db = spec["mysql_db"]
    log(f"mysql: check the backup in a scratch database, then replace {db}")
    counts = _mysql_scratch_counts(part, path, identity, f"lfrestore_{db}"[:64])
    bad = compare_counts(part["tables"], counts)
    if bad:
        raise Failure(f"the restored copy does not match the manifest: {'; '.join(bad)}", "restore another backup")
    recreate_mysql_db(db)
    load_mysql(part, path, identity, db)
    return {"tables": len(counts), "rows": sum(counts.values())}


def _mysql_scratch_counts(part: dict, path: str, identity: bytes, scratch: str) -> dict[str, int]:
    """The backup loaded into database `scratch`, its tables' row counts read, and `scratch`
    dropped again whatever happened."""
    log(f"mysql: load into scratch database {scratch}")
    try:
        return restore_mysql(part, path, identity, scratch)
    finally:
        drop_mysql_db(scratch)


def main(argv: list[str]) -> int:
    op, spec_path, *rest = argv
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    os.umask(0o077)
    try:
        if op == "create":
            out = create(spec, rest[0] if rest else "manual")
        elif op == "list":
            out = list_backups(spec)
        elif op == "fetch":
            out = fetch(spec, rest[0])
        elif op in ("verify", "restore"):
            identity = sys.stdin.buffer.read()
            if b"AGE-SECRET-KEY-" not in identity:
                raise Failure("no age identity on stdin", "run this through `lightfold backup` from your laptop")
            out = (verify(spec, rest[0], identity) if op == "verify"
                   else restore(spec, rest[0], identity, backup_first=rest[1:2] == ["backup-first"]))
        else:
            raise Failure(f"unknown operation {op!r}")
    except Failure as e:
        print(json.dumps({"error": e.error, "fix": e.fix}))
        return 1
    print(json.dumps(out))
    return 0 if out.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
