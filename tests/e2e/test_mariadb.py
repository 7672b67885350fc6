"""MariaDB (`lightfold db add mysql`, alias `mariadb`) on one shared sandbox machine: a Flask app
with PyMySQL reads MYSQL_* from its env and writes rows through HTTP; the server listens on
loopback only and the password shows nowhere but `db url --reveal`; a backup (mariadb-dump
--single-transaction, encrypted) records the rows per table; the database is dropped, restore
brings the rows back; verify loads it into a scratch database and catches a truncated backup."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from tests.e2e.apps import commit, get, git
from tests.e2e.test_db import listening_on, port_refused

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

APP = '''
import os

import pymysql
from flask import Flask, Response, request

app = Flask(__name__)


def db():
    return pymysql.connect(host=os.environ["MYSQL_HOST"], port=int(os.environ["MYSQL_PORT"]),
                           user=os.environ["MYSQL_USER"], password=os.environ["MYSQL_PASSWORD"],
                           database=os.environ["MYSQL_DATABASE"], autocommit=True)


@app.get("/healthz")
def health():
    return "ok"


@app.get("/url")
def url():
    return os.environ.get("DATABASE_URL", "none")


@app.post("/notes")
def add_note():
    with db() as c, c.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL)")
        cur.execute("INSERT INTO notes (body) VALUES (%s)", (request.get_data(as_text=True),))
    return "added"


@app.get("/notes")
def notes():
    with db() as c, c.cursor() as cur:
        cur.execute("SELECT body FROM notes ORDER BY id")
        rows = cur.fetchall()
    return Response("\\n".join(r[0] for r in rows), mimetype="text/plain")
'''


def run_json(sb, *args: str, check: bool = True, timeout: float = 900):
    proc = sb.lightfold(*args, "--target", sb.target, "--json", check=check, timeout=timeout)
    return (json.loads(proc.stdout) if proc.stdout.strip() else None), proc


def post(ip: str, path: str, body: bytes) -> int:
    req = urllib.request.Request(f"http://{ip}{path}", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def notes(sb) -> list[str]:
    status, body = get(sb.ip, "/notes")
    return body.decode().split("\n") if status == 200 else [f"HTTP {status}"]


@pytest.fixture(scope="module")
def app(shared_sandbox):
    sb = shared_sandbox
    (sb.project / "app.py").write_text(APP)
    (sb.project / "requirements.txt").write_text("flask==3.1.3\ngunicorn==27.0.1\nPyMySQL==1.1.1\n")
    (sb.project / "lightfold.toml").write_text('[health]\npath = "/healthz"\n')
    git(sb.project, "init", "-q", "-b", "main")
    commit(sb.project, "notes app on mariadb")
    return sb


def test_mariadb_add_deploy_backup_restore(app):
    sb = app
    name = sb.target.replace("-", "_")
    started = time.monotonic()
    added, p_add = run_json(sb, "db", "add", "mariadb")
    print(f"\ndb add mariadb: {time.monotonic() - started:.1f}s")
    assert added["kind"] == "mysql" and added["changed"], added
    assert set(added["names"]) == {"DATABASE_URL", "MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD",
                                   "MYSQL_DATABASE"}, added
    assert added["url"] == f"mysql://{name}:****@127.0.0.1:3306/{name}", added
    _, p_deploy = run_json(sb, "deploy")

    url = run_json(sb, "db", "url", "mysql", "--reveal")[0]["url"]
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert len(password) == 48, url
    assert get(sb.ip, "/url") == (200, url.encode())
    for text in ("first", "second", "third"):
        assert post(sb.ip, "/notes", text.encode()) == 200
    assert notes(sb) == ["first", "second", "third"]

    # Loopback only: what ss shows, and from here; the settings sized for the machine.
    listening = listening_on(sb, 3306)
    assert listening and all(a.startswith(("127.", "[::1]")) for a in listening), listening
    assert port_refused(sb.ip, 3306)
    pool = sb.exec("mariadb -N -B -e 'SELECT @@innodb_buffer_pool_size, @@max_connections, @@skip_name_resolve'")
    print(f"mariadb: buffer pool, connections, skip_name_resolve = {pool.stdout.split()}")
    assert pool.stdout.split()[1:] == ["50", "1"], pool.stdout
    assert sb.exec(f"stat -c '%a %U' /etc/lightfold/apps/{sb.target}/db-mysql.env").stdout.strip() == "600 root"

    again, p_again = run_json(sb, "db", "add", "mysql")
    assert again["changed"] is False and again["actions"] == [], again
    status, _ = run_json(sb, "status")
    assert list(status["databases"]) == ["mysql"] and status["databases"]["mysql"]["active"], status["databases"]
    assert all(a.startswith(("127.", "[::1]")) for a in status["databases"]["mysql"]["listening"]), status
    audited, _ = run_json(sb, "audit", check=False)
    mine = [f for f in audited["findings"] if f["check"] == "database"]
    assert [(f["severity"], f["subject"]) for f in mine] == [("low", "backup"), ("info", "mysql")], mine
    refused, p_pg = run_json(sb, "db", "add", "postgres", check=False)
    assert p_pg.returncode == 1 and "already has mysql" in p_pg.stderr, p_pg.stderr

    shown = [p.stdout + p.stderr for p in (p_add, p_deploy, p_again, p_pg)]
    for args in (("db", "status"), ("db", "url"), ("status",), ("config", "show")):
        proc = sb.lightfold(*args, "--target", sb.target, check=False)
        shown.append(proc.stdout + proc.stderr)
    assert all(password not in text for text in shown)
    logs = sb.exec("cat /var/log/mysql/* 2>/dev/null; journalctl --no-pager -q | tail -n 3000", check=False).stdout
    assert password not in logs
    assert password not in sb.exec("cat /root/.mysql_history /root/.mariadb_history 2>/dev/null", check=False).stdout

    # A backup: the rows per table in the manifest, encrypted on the server.
    made, _ = run_json(sb, "backup", "create")
    bid = made["id"]
    assert made["manifest"]["parts"]["mysql"]["tables"] == {"notes": 3}, made["manifest"]
    print(f"backup create (mysql): {made['manifest']['seconds']}s on the server")
    where = f"/var/backups/lightfold/{sb.target}/{bid}"
    assert sb.exec(f"ls {where}").stdout.split() == ["manifest.json", "mysql.sql.gz.age"]
    assert "age-encryption.org/v1" in sb.exec(f"head -c 40 {where}/mysql.sql.gz.age").stdout

    # Disaster, then restore.
    sb.exec(f"mariadb -e 'DROP DATABASE `{name}`'")
    assert notes(sb)[0].startswith("HTTP 5")
    started = time.monotonic()
    restored, _ = run_json(sb, "backup", "restore", bid, "--yes")
    print(f"backup restore (mysql): {restored['seconds']}s on the server, {time.monotonic() - started:.1f}s CLI")
    assert restored["restored"]["mysql"] == {"tables": 1, "rows": 3}, restored
    assert notes(sb) == ["first", "second", "third"]
    assert post(sb.ip, "/notes", b"fourth") == 200  # the app's user still has its grants

    verified, _ = run_json(sb, "backup", "verify", bid)
    assert verified["ok"] and verified["checks"]["mysql"] == {"ok": True, "tables": 1, "rows": 3, "problems": []}
    assert "lfverify" not in sb.exec("mariadb -N -B -e 'SHOW DATABASES'").stdout

    # A truncated backup fails verify, also once its manifest is rewritten to match.
    bad, _ = run_json(sb, "backup", "create")
    assert bad["manifest"]["parts"]["mysql"]["tables"] == {"notes": 4}
    bad_dir = f"/var/backups/lightfold/{sb.target}/{bad['id']}"
    sb.exec(f"truncate -s -100 {bad_dir}/mysql.sql.gz.age")
    result, proc = run_json(sb, "backup", "verify", bad["id"], check=False)
    assert proc.returncode == 1 and any("truncated" in p for p in result["problems"]), result
    sb.exec(f"""cd {bad_dir} && python3 -c '
import hashlib, json, os
m = json.load(open("manifest.json")); p = m["parts"]["mysql"]
p["bytes"] = os.path.getsize(p["file"]); p["sha256"] = hashlib.sha256(open(p["file"], "rb").read()).hexdigest()
json.dump(m, open("manifest.json", "w"))'""")
    result, proc = run_json(sb, "backup", "verify", bad["id"], check=False)
    assert proc.returncode == 1 and result["checks"]["mysql"]["ok"] is False, result
    assert "lfverify" not in sb.exec("mariadb -N -B -e 'SHOW DATABASES'").stdout
    assert notes(sb) == ["first", "second", "third", "fourth"]

    # db shell: the mariadb client as the app's user, stdin its input (no terminal here); while it
    # runs, no process on the server has the password on its command line.
    shell = sb.lightfold("db", "shell", "--target", sb.target, input="SELECT CURRENT_USER(), COUNT(*) FROM notes;\n")
    assert shell.stdout.split() == ["CURRENT_USER()", "COUNT(*)", f"{name}@127.0.0.1", "4"], shell.stdout
    assert password not in shell.stdout + shell.stderr
    slow = threading.Thread(target=sb.lightfold, args=("db", "shell", "mysql", "--target", sb.target),
                            kwargs={"input": "SELECT SLEEP(10);\n"})
    slow.start()
    try:
        client = f"mariadb --host=127.0.0.1 --port=3306 --user={name} {name}"
        for _ in range(80):  # not "--user=": systemd-run's own command line spells the client's unexpanded
            time.sleep(0.5)
            cmdlines = sb.exec("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done", check=False).stdout
            if client in cmdlines:
                break
        assert client in cmdlines, cmdlines
        assert password not in cmdlines
    finally:
        slow.join()


def test_a_release_command_is_backed_up_first_and_a_rollback_names_that_backup(app):
    sb = app
    name = sb.target.replace("-", "_")
    toml = 'release = "python -c \'print(41 + 1)\'"\n\n[health]\npath = "/healthz"\n'
    (sb.project / "lightfold.toml").write_text(toml)
    commit(sb.project, "a release command")
    deployed, proc = run_json(sb, "deploy")
    rid = deployed["push"]["release"]
    assert "backup before the release command" in proc.stderr, proc.stderr
    listing, _ = run_json(sb, "backup", "list")
    before = listing["backups"][-1]
    assert before["label"] == f"before release {rid}" and before["parts"]["mysql"]["tables"] == {"notes": 4}, before

    rolled, proc = run_json(sb, "rollback")
    assert rolled["previous"] == rid, rolled
    assert rolled["migrations_crossed"] == [{"id": rid, "status": "live", "release": "python -c 'print(41 + 1)'",
                                             "backup_before": before["id"]}], rolled
    warning = " ".join(proc.stderr.split())
    assert f"release {rid} ran its release command" in warning, proc.stderr
    assert f"lightfold backup restore {before['id']} --target {sb.target} --yes" in warning, proc.stderr
    assert notes(sb) == ["first", "second", "third", "fourth"]

    removed, _ = run_json(sb, "db", "remove", "mariadb", "--purge", "--yes")
    assert removed["purged"] and removed["changed"], removed
    assert name not in sb.exec("mariadb -N -B -e 'SHOW DATABASES'").stdout.split()
