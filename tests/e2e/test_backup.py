"""`lightfold backup` on one shared sandbox machine: a Flask app with PostgreSQL (pg8000) and an
uploads storage dir writes rows and a file through HTTP; a backup is made, encrypted on the server
to the laptop's key (the server alone cannot read it); the database is dropped and the file
deleted; restore brings both back; verify passes, and catches a truncated backup even when its
manifest was rewritten to match; a copy pushed to an S3-compatible server (moto, started by this
test on the sandbox bridge), and one pushed to an SFTP server (asyncssh, the same), restore after
the server's own copies are gone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest
from tests.e2e.acme import free_port
from tests.e2e.apps import commit, get, git

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

APP = '''
import os
from pathlib import Path

import pg8000.native
from flask import Flask, Response, request

app = Flask(__name__)
UPLOADS = Path("uploads")


def db():
    return pg8000.native.Connection(os.environ["PGUSER"], host=os.environ["PGHOST"], port=int(os.environ["PGPORT"]),
                                    database=os.environ["PGDATABASE"], password=os.environ["PGPASSWORD"])


@app.get("/healthz")
def health():
    return "ok"


@app.post("/notes")
def add_note():
    c = db()
    c.run("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)")
    c.run("INSERT INTO notes (body) VALUES (:b)", b=request.get_data(as_text=True))
    c.close()
    return "added"


@app.get("/notes")
def notes():
    c = db()
    rows = c.run("SELECT body FROM notes ORDER BY id")
    c.close()
    return Response("\\n".join(r[0] for r in rows), mimetype="text/plain")


@app.put("/files/<name>")
def put_file(name):
    (UPLOADS / name).write_bytes(request.get_data())
    return "stored"


@app.get("/files/<name>")
def get_file(name):
    path = UPLOADS / name
    return (path.read_bytes(), 200) if path.exists() else ("missing", 404)
'''


def request(ip: str, method: str, path: str, body: bytes) -> int:
    req = urllib.request.Request(f"http://{ip}{path}", data=body, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def run_json(sb, *args: str, check: bool = True, env: dict | None = None, timeout: float = 900):
    proc = sb.lightfold(*args, "--target", sb.target, "--json", check=check, env=env, timeout=timeout)
    return json.loads(proc.stdout) if proc.stdout.strip() else None, proc


@pytest.fixture(scope="module")
def app(shared_sandbox):
    sb = shared_sandbox
    (sb.project / "app.py").write_text(APP)
    (sb.project / "requirements.txt").write_text("flask==3.1.3\ngunicorn==27.0.1\npg8000==1.31.6\n")
    (sb.project / "lightfold.toml").write_text('storage = ["uploads"]\n\n[health]\npath = "/healthz"\n')
    git(sb.project, "init", "-q", "-b", "main")
    commit(sb.project, "notes app")
    added, _ = run_json(sb, "db", "add", "postgres")
    assert added["kind"] == "postgres"
    run_json(sb, "deploy")
    return sb


@pytest.fixture(scope="module")
def s3(app):
    """moto's S3 server on the sandbox bridge (the machine reaches the host there), a bucket in it."""
    import boto3

    from lightfold.sandbox.layout import layout

    host = layout().host_ip
    port = free_port(host)
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="lftest", aws_secret_access_key="lfsecret",
                          region_name="us-east-1")
    try:
        for _ in range(100):
            try:
                client.create_bucket(Bucket="lf-backups")
                break
            except Exception:
                time.sleep(0.1)
        yield endpoint, client
    finally:
        proc.terminate()
        proc.wait(10)


def notes(sb) -> list[str]:
    status, body = get(sb.ip, "/notes")
    return body.decode().split("\n") if status == 200 else [f"HTTP {status}"]


def test_backup_restore_drill(app):
    sb = app
    name = sb.target.replace("-", "_")
    for text in ("first", "second", "third"):
        assert request(sb.ip, "POST", "/notes", text.encode()) == 200
    assert request(sb.ip, "PUT", "/files/report.txt", b"quarterly numbers\n") == 200

    made, proc = run_json(sb, "backup", "create")
    bid = made["id"]
    parts = made["manifest"]["parts"]
    assert set(parts) == {"postgres", "storage"}, parts
    assert parts["postgres"]["tables"] == {"public.notes": 3}, parts
    assert parts["storage"]["files"] == 1, parts
    print(f"\nbackup create: {made['manifest']['seconds']}s on the server")
    identity = (sb.home / "backup-identity.txt")
    assert oct(identity.stat().st_mode & 0o777) == "0o600"
    secret = [line for line in identity.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-")][0]
    assert secret not in proc.stdout + proc.stderr

    # The server alone cannot read it: no identity anywhere on it, and age -d without one fails.
    where = f"/var/backups/lightfold/{sb.target}/{bid}"
    files = sb.exec(f"ls {where}").stdout.split()
    assert sorted(files) == ["manifest.json", "postgres.dump.age", "storage.tar.gz.age"], files
    assert "age-encryption.org/v1" in sb.exec(f"head -c 40 {where}/postgres.dump.age").stdout
    found = sb.exec("grep -rIlE 'AGE-SECRET-KEY-1[0-9A-Z]{58}' /etc /root /srv /var/backups /tmp /var/tmp /home",
                    check=False)
    assert found.stdout.strip() == "", found.stdout
    no_key = sb.exec(f"age -d {where}/postgres.dump.age", check=False)
    assert no_key.returncode != 0
    other = sb.exec(f"age-keygen -o /tmp/other.key 2>/dev/null; age -d -i /tmp/other.key {where}/postgres.dump.age",
                    check=False)
    assert other.returncode != 0 and "no identity matched" in other.stderr, other.stderr
    sb.exec("rm -f /tmp/other.key")

    # A live database is not overwritten without --yes.
    _, refused = run_json(sb, "backup", "restore", bid, check=False)
    assert refused.returncode == 1 and "pass --yes" in refused.stderr, refused.stderr

    # Disaster: the database and the file are gone.
    sb.exec(f"cd /tmp && runuser -u postgres -- dropdb --force {name}")
    sb.exec(f"rm /srv/{sb.target}/storage/uploads/report.txt")
    assert notes(sb)[0].startswith("HTTP 5")
    started = time.monotonic()
    restored, proc = run_json(sb, "backup", "restore", bid, "--yes")
    print(f"backup restore: {restored['seconds']}s on the server, {time.monotonic() - started:.1f}s for the CLI")
    assert restored["restored"]["postgres"] == {"tables": 1, "rows": 3}, restored
    assert notes(sb) == ["first", "second", "third"]
    assert get(sb.ip, "/files/report.txt") == (200, b"quarterly numbers\n")
    assert request(sb.ip, "POST", "/notes", b"fourth") == 200  # the app's role owns the restored table
    assert secret not in proc.stdout + proc.stderr

    verified, _ = run_json(sb, "backup", "verify", bid)
    assert verified["ok"] and verified["checks"]["postgres"]["rows"] == 3, verified
    assert "lfverify" not in sb.exec("cd /tmp && runuser -u postgres -- psql -XAtl").stdout
    listing, _ = run_json(sb, "backup", "list")
    assert [b["id"] for b in listing["backups"]][0] == bid and listing["backups"][0]["verify"]["ok"]

    # A truncated backup fails verify: by its size, and by age's authentication once the
    # manifest is rewritten to match the truncated file.
    bad, _ = run_json(sb, "backup", "create")
    bad_dir = f"/var/backups/lightfold/{sb.target}/{bad['id']}"
    sb.exec(f"truncate -s -200 {bad_dir}/postgres.dump.age")
    result, proc = run_json(sb, "backup", "verify", bad["id"], check=False)
    assert proc.returncode == 1 and not result["ok"], result
    assert any("truncated" in p for p in result["problems"]), result
    sb.exec(f"""cd {bad_dir} && python3 -c '
import hashlib, json, os
m = json.load(open("manifest.json")); p = m["parts"]["postgres"]
p["bytes"] = os.path.getsize(p["file"]); p["sha256"] = hashlib.sha256(open(p["file"], "rb").read()).hexdigest()
json.dump(m, open("manifest.json", "w"))'""")
    result, proc = run_json(sb, "backup", "verify", bad["id"], check=False)
    assert proc.returncode == 1 and not result["ok"] and result["checks"]["postgres"]["ok"] is False, result
    listing, _ = run_json(sb, "backup", "list")
    assert {b["id"]: b["verify"]["ok"] for b in listing["backups"] if b["verify"]}[bad["id"]] is False

    # download: the encrypted files and the manifest, checked here.
    got, _ = run_json(sb, "backup", "download", bid, "--to", str(sb.project.parent / "dl"))
    assert sorted(got["files"]) == ["manifest.json", "postgres.dump.age", "storage.tar.gz.age", "verify.json"], got


def test_offsite_copy_restores(app, s3):
    sb = app
    endpoint, client = s3
    for key, value in (("backup.remote", "s3://lf-backups/lightfold"), ("backup.remote_endpoint", endpoint),
                       ("backup.remote_region", "us-east-1"), ("backup.keep", "2")):
        sb.lightfold("config", "set", key, value, "--target", sb.target)
    creds = {"AWS_ACCESS_KEY_ID": "lftest", "AWS_SECRET_ACCESS_KEY": "lfsecret"}
    before = notes(sb)
    made, proc = run_json(sb, "backup", "create", env=creds)
    assert made["pushed"] is True, made
    assert "lfsecret" not in proc.stdout + proc.stderr
    conf = sb.exec(f"stat -c '%a %U' /etc/lightfold/apps/{sb.target}/backup-rclone.conf").stdout.strip()
    assert conf == "600 root"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="lf-backups")["Contents"]]
    assert f"lightfold/{sb.target}/{made['id']}/manifest.json" in keys, keys
    body = client.get_object(Bucket="lf-backups", Key=f"lightfold/{sb.target}/{made['id']}/postgres.dump.age")
    assert body["Body"].read().startswith(b"age-encryption.org/v1")
    listing, _ = run_json(sb, "backup", "list")
    assert len(listing["backups"]) == 2 and made["id"] in listing["remote"]["ids"], listing  # keep 2

    # The server loses its own copies and its database: the bucket's copy comes back.
    sb.exec(f"rm -rf /var/backups/lightfold/{sb.target}/* && cd /tmp && "
            f"runuser -u postgres -- dropdb --force {sb.target.replace('-', '_')}")
    started = time.monotonic()
    restored, _ = run_json(sb, "backup", "restore", "latest", "--from-remote", "--yes")
    print(f"restore from the bucket: {time.monotonic() - started:.1f}s for the CLI")
    assert restored["id"] == made["id"] and restored["from_remote"], restored
    assert restored["backup_before"], restored  # the storage was live: backed up first
    assert notes(sb) == before


@pytest.fixture(scope="module")
def sftp(app, tmp_path_factory):
    """A real SFTP-only server (asyncssh, tests/e2e/sftp_server.py) on the sandbox bridge, logins
    by a key made here."""
    import asyncssh
    from tests.e2e.sftp_server import sftp_server

    from lightfold.sandbox.layout import layout

    tmp = tmp_path_factory.mktemp("sftp")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(tmp / "login"))
    (tmp / "login").chmod(0o600)
    (tmp / "login.pub").write_bytes(key.export_public_key())
    host = layout().host_ip
    with sftp_server(host, tmp / "root", tmp / "login.pub") as (port, host_pub):
        yield f"sftp://backup@{host}:{port}/backups", tmp, host_pub


def test_offsite_copy_over_sftp_restores(app, sftp):
    sb = app
    remote, tmp, host_pub = sftp
    sb.lightfold("config", "set", "backup.remote", remote, "--target", sb.target)
    before = notes(sb)
    made, proc = run_json(sb, "backup", "create", env={"LIGHTFOLD_BACKUP_SFTP_KEY": str(tmp / "login")})
    assert made["pushed"] is True, made
    key_body = (tmp / "login").read_text().splitlines()[2]
    assert key_body not in proc.stdout + proc.stderr
    etc = f"/etc/lightfold/apps/{sb.target}"
    assert sb.exec(f"stat -c '%a %U' {etc}/backup-rclone.conf").stdout.strip() == "600 root"
    assert host_pub.split()[1] in sb.exec(f"cat {etc}/backup-known_hosts").stdout  # pinned on first use
    stored = tmp / "root" / "backups" / sb.target / made["id"]
    assert sorted(p.name for p in stored.iterdir()) == ["manifest.json", "postgres.dump.age", "storage.tar.gz.age"]
    assert (stored / "postgres.dump.age").read_bytes().startswith(b"age-encryption.org/v1")

    # The server loses its own copies and its database: the SFTP server's copy comes back (no key
    # in the environment now: the server kept the credentials it was given).
    sb.exec(f"rm -rf /var/backups/lightfold/{sb.target}/* && cd /tmp && "
            f"runuser -u postgres -- dropdb --force {sb.target.replace('-', '_')}")
    restored, _ = run_json(sb, "backup", "restore", "latest", "--from-remote", "--yes")
    assert restored["id"] == made["id"] and restored["from_remote"], restored
    assert notes(sb) == before
    sb.lightfold("config", "unset", "backup.remote", "--target", sb.target)


def test_schedule_is_a_timer(app):
    sb = app
    sb.lightfold("config", "set", "backup.schedule", "*-*-* 03:30", "--target", sb.target)
    result, _ = run_json(sb, "backup", "schedule")
    timer = result["timer"]
    assert sb.exec(f"systemctl is-enabled {timer}").stdout.strip() == "enabled"
    assert "03:30" in sb.exec(f"systemctl show -p TimersCalendar {timer}").stdout
    sb.exec(f"systemctl start {timer.replace('.timer', '.service')}", timeout=300)
    listing, _ = run_json(sb, "backup", "list")
    assert listing["backups"][-1]["label"] == "scheduled", listing
    assert listing["schedule"]["enabled"] and listing["schedule"]["last_ok"] is True, listing["schedule"]
    sb.lightfold("config", "unset", "backup.schedule", "--target", sb.target)
    run_json(sb, "backup", "schedule")
    assert sb.exec(f"systemctl is-enabled {timer}", check=False).returncode != 0


def test_redis_backup_restores(app):
    sb = app
    run_json(sb, "db", "add", "redis")
    url = run_json(sb, "db", "url", "redis", "--reveal")[0]["url"]
    cli = f"redis-cli --no-auth-warning -u '{url}'"
    sb.exec(f"{cli} SET queue:1 job-one && {cli} SET queue:2 job-two")
    made, _ = run_json(sb, "backup", "create")
    assert made["manifest"]["parts"]["redis"]["keys"] == 2, made["manifest"]["parts"]
    verified, _ = run_json(sb, "backup", "verify", made["id"])
    assert verified["ok"] and verified["checks"]["redis"]["keys"] == 2, verified
    sb.exec(f"{cli} FLUSHALL")
    restored, _ = run_json(sb, "backup", "restore", made["id"], "--yes")
    assert restored["restored"]["redis"] == {"keys": 2}, restored
    assert sb.exec(f"{cli} GET queue:2").stdout.strip() == "job-two"
    run_json(sb, "db", "remove", "redis", "--yes")  # the other tests back up postgres and storage only
