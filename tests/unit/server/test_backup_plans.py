"""`lightfold backup`: the plans as data and text (setup, timer, rclone remote), the laptop's age
key, the config keys, and the server's backup tool run here for real on a storage-only app (with
Debian's `age` and `rclone` when installed): complete backups only, keep N, verify catches truncation and
tampering, restore puts the files back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lightfold import agekey
from lightfold.agent.layout import BACKUP_TOOL, Layout
from lightfold.server import backup as plans
from lightfold.server import backup_parts as parts
from lightfold.server import backup_tool as tool
from lightfold.server.plan import (
    EnsurePackages,
    Remove,
    Run,
    ServiceReload,
    SystemdEnable,
    WriteFile,
    render,
    write_private_command,
)

# A throwaway key pair made by age-keygen 1.1.1 (the encoding's test vector; it protects nothing).
VECTOR_IDENTITY = "AGE-SECRET-KEY-18WDZNEPUMWD6KVEQA45EW8TSRPU86QUR4Q66XXC34RU36QX5XYJQNKPCGP"
VECTOR_RECIPIENT = "age1zk0nltkua7q6q7zq3rs8kj4zaj7vzt0n7es3wknk9znavc6w6scqtrvz63"
parts_state = tool.parse_schedule
needs_age = pytest.mark.skipif(shutil.which("age") is None, reason="no age here (apt-get install age)")


# ---- the laptop's key ---------------------------------------------------------------------------------


def test_recipient_of_an_identity_is_age_keygens():
    assert agekey.recipient_of(VECTOR_IDENTITY) == VECTOR_RECIPIENT
    assert agekey.is_recipient(VECTOR_RECIPIENT)
    assert not agekey.is_recipient(VECTOR_RECIPIENT[:-1] + "q")  # checksum
    assert not agekey.is_recipient(VECTOR_IDENTITY)
    with pytest.raises(ValueError):
        agekey.recipient_of(VECTOR_RECIPIENT)


@pytest.mark.skipif(shutil.which("age-keygen") is None, reason="age-keygen not installed")
def test_a_new_identity_is_one_age_keygen_reads(tmp_path):
    identity = agekey.new_identity()
    (tmp_path / "k").write_text(identity + "\n")
    out = subprocess.run(["age-keygen", "-y", str(tmp_path / "k")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == agekey.recipient_of(identity)


def test_the_key_file_is_made_once_0600(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTFOLD_HOME", str(tmp_path))
    with pytest.raises(Exception, match="no backup key"):
        agekey.load(create=False)
    identity, recipient = agekey.load()
    path = tmp_path / "backup-identity.txt"
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"# public key: {recipient}" in path.read_text()
    assert agekey.load() == (identity, recipient)
    assert agekey.load(create=False) == (identity, recipient)


# ---- plans --------------------------------------------------------------------------------------------


def test_spec_is_paths_only():
    value = plans.spec("shop", keep=3, remote="s3://bucket/pre")
    lay = Layout("shop")
    assert value["dir"] == "/var/backups/lightfold/shop" and value["storage"] == lay.storage_dir
    assert value["pg_db"] == "shop" and value["keep"] == 3
    assert value["remote"] == {"path": "lightfold:bucket/pre/shop", "config": lay.backup_rclone}
    assert plans.spec("my-app")["pg_db"] == "my_app" and plans.spec("my-app")["remote"] is None
    assert value["unit"] == "lightfold-shop.backup"


def test_schedule_state_shows_a_failed_last_run():
    assert parts_state({"UnitFileState": "enabled", "ActiveState": "active"},
                       {"Result": "exit-code", "ExecMainExitTimestamp": "Fri 2026-12-04 03:30:12 UTC"}) == {
        "enabled": True, "active": True, "last_run": "Fri 2026-12-04 03:30:12 UTC", "last_ok": False}
    assert parts_state({"UnitFileState": "enabled", "ActiveState": "active"},
                       {"Result": "success", "ExecMainExitTimestamp": ""})["last_ok"] is None  # never ran
    assert parts_state({"UnitFileState": "disabled"}, {})["enabled"] is False


def test_setup_plan_installs_age_the_tool_and_adds_the_recipient():
    value = plans.spec("shop")
    step = plans.setup_plan("shop", VECTOR_RECIPIENT, value).steps[0]
    assert step.actions[0] == EnsurePackages(("age",))
    tool_file = next(a for a in step.actions if isinstance(a, WriteFile) and a.path == BACKUP_TOOL)
    assert tool_file.content == Path(tool.__file__).read_text()
    parts_file = next(a for a in step.actions if isinstance(a, WriteFile) and a.path.endswith("/backup_parts.py"))
    assert parts_file.content == Path(tool.__file__).with_name("backup_parts.py").read_text()
    spec_file = next(a for a in step.actions if isinstance(a, WriteFile) and a.path == Layout("shop").backup_spec)
    assert json.loads(spec_file.content) == value and spec_file.mode == 0o600
    add = step.actions[-1]
    assert isinstance(add, Run) and add.unless == f"grep -qxF {VECTOR_RECIPIENT} {Layout('shop').backup_recipients}"
    assert plans.setup_plan("shop", VECTOR_RECIPIENT, plans.spec("shop", remote="s3://b")).steps[0].actions[0] == \
        EnsurePackages(("age", "rclone"))
    with pytest.raises(ValueError):
        plans.setup_plan("shop", "age1; rm -rf /", value)
    assert "AGE-SECRET-KEY" not in render(plans.setup_plan("shop", VECTOR_RECIPIENT, value))


def test_schedule_plan_is_a_persistent_timer_and_its_removal():
    step = plans.schedule_plan("shop", "*-*-* 03:30").steps[0]
    service, timer = plans.timer_units("shop", "*-*-* 03:30")
    check = "systemd-analyze calendar '*-*-* 03:30' >/dev/null"
    assert step.actions[0] == Run(check, unless=check, label="'*-*-* 03:30' is a systemd calendar expression")
    files = {a.path: a.content for a in step.actions if isinstance(a, WriteFile)}
    assert files == {"/etc/systemd/system/lightfold-shop.backup.service": service,
                     "/etc/systemd/system/lightfold-shop.backup.timer": timer}
    assert "OnCalendar=*-*-* 03:30\nPersistent=true\n" in timer and "WantedBy=timers.target" in timer
    assert (f"ExecStart=/usr/bin/python3 {BACKUP_TOOL} create /etc/lightfold/apps/shop/backup.json scheduled"
            in service) and "Type=oneshot" in service
    assert ServiceReload("lightfold-shop.backup.timer", check="true") in step.actions
    assert step.actions[-1] == SystemdEnable("lightfold-shop.backup.timer", now=True)
    off = plans.schedule_plan("shop", None).steps[0].actions
    assert off[0].command == "systemctl disable --now lightfold-shop.backup.timer"
    assert Remove("/etc/systemd/system/lightfold-shop.backup.timer") in off


def test_rclone_config_and_command_lines():
    conf = plans.rclone_config("AK", "SK", "http://10.99.0.1:9000", "us-east-1")
    assert conf == ("[lightfold]\ntype = s3\nprovider = Other\nenv_auth = false\naccess_key_id = AK\n"
                    "secret_access_key = SK\nendpoint = http://10.99.0.1:9000\nforce_path_style = true\n"
                    "region = us-east-1\n")
    assert "provider = AWS" in plans.rclone_config("AK", "SK", None, None)
    write = write_private_command("/etc/lightfold/apps/shop/backup-rclone.conf")
    assert "SK" not in write and "chmod 600" in write and "umask 077" in write
    assert plans.tool_command("shop", "verify", "latest") == \
        f"python3 {BACKUP_TOOL} verify /etc/lightfold/apps/shop/backup.json latest"
    assert plans.archive_command("shop", "20260101030000") == "tar -C /var/backups/lightfold/shop -cf - 20260101030000"
    with pytest.raises(ValueError):
        plans.archive_command("shop", "../x")


def test_config_keys():
    from lightfold.config import BackupConfig

    assert BackupConfig(schedule=" daily ").schedule == "daily"
    assert BackupConfig(remote="s3://my-bucket/some/prefix/").remote == "s3://my-bucket/some/prefix"
    assert BackupConfig(remote="sftp://bk@10.0.0.9:2222/srv/backups/").remote == "sftp://bk@10.0.0.9:2222/srv/backups"
    for bad in ({"schedule": "daily\nExecStart=/bin/sh"}, {"remote": "sftp://x"}, {"keep": 0},
                {"remote_endpoint": "http://a b"}, {"remote_region": "us east"},
                {"remote": "sftp://-oProxyCommand=x@h/b"}, {"remote": "sftp://bk@-oProxyCommand=x/b"},
                {"remote": "sftp://bk@h:0/b"}, {"remote": "sftp://bk@h:70000/b"}, {"remote": "sftp://bk@h/b\nx"},
                {"remote": "sftp://bk@h/b c"}, {"remote": "ftp://bk@h/b"}):
        with pytest.raises(ValueError):
            BackupConfig(**bad)


def test_an_sftp_remote_is_a_pinned_host_key_and_an_inline_key():
    """sftp://user@host[:port][/path]: rclone's sftp backend with the laptop's key inline, the SFTP
    server's host key pinned on first use (a Run skipped once the file holds a key), no shell."""
    lay = Layout("shop")
    assert plans.sftp_parts("sftp://bk@h.example/srv/b") == ("bk", "h.example", 22, "/srv/b")
    assert plans.remote_path("shop", "sftp://bk@h:2222/srv/b") == "lightfold:/srv/b/shop"
    assert plans.remote_path("shop", "sftp://bk@h/~/b") == "lightfold:b/shop"  # the login's home
    assert plans.remote_path("shop", "sftp://bk@h") == "lightfold:shop"
    value = plans.spec("shop", remote="sftp://bk@h:2222/srv/b")
    assert value["remote"] == {"path": "lightfold:/srv/b/shop", "config": lay.backup_rclone,
                               "sftp": "sftp://bk@h:2222/srv/b"}
    actions = plans.setup_plan("shop", VECTOR_RECIPIENT, value).steps[0].actions
    assert actions[0] == EnsurePackages(("age", "rclone"))
    pin = actions[-1]
    assert pin.unless == f"[ -s {lay.backup_known_hosts} ]"
    assert "ssh-keyscan -T 10 -p 2222 -- h >" in pin.command and "exit 3" in pin.command
    assert not any("keyscan" in str(a) for a in plans.setup_plan("shop", VECTOR_RECIPIENT,
                                                                 plans.spec("shop", remote="s3://b")).steps[0].actions)
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\nBBBB\n-----END OPENSSH PRIVATE KEY-----\n"
    conf = plans.rclone_sftp_config("sftp://bk@h:2222/srv/b", pem, lay.backup_known_hosts)
    assert conf == ("[lightfold]\ntype = sftp\nhost = h\nuser = bk\nport = 2222\n"
                    "key_pem = -----BEGIN OPENSSH PRIVATE KEY-----\\nAAAA\\nBBBB\\n-----END OPENSSH PRIVATE KEY-----\n"
                    f"known_hosts_file = {lay.backup_known_hosts}\nshell_type = none\n")


def test_an_sftp_key_with_a_passphrase_or_no_key_is_refused_before_the_server(tmp_path, monkeypatch):
    import asyncssh

    from lightfold.config import BackupConfig
    from lightfold.errors import LightfoldError
    from lightfold.release import backup as step

    class T:
        name = "shop"
        config = type("C", (), {"backup": BackupConfig(remote="sftp://bk@h/srv/b")})()

    key = asyncssh.generate_private_key("ssh-ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(tmp_path / "locked")],
                   check=True)
    (tmp_path / "open").write_bytes(key.export_private_key())
    (tmp_path / "not-a-key").write_text("hello\n")
    assert step._remote_credentials(T()) is None  # no key named: the server keeps what it has
    for name, words in (("locked", "has a passphrase"), ("not-a-key", "is not an SSH private key"),
                        ("missing", "cannot read the SFTP key")):
        monkeypatch.setenv(step.SFTP_KEY_ENV, str(tmp_path / name))
        with pytest.raises(LightfoldError) as e:
            step._remote_credentials(T())
        assert words in e.value.args[0], e.value.args
    monkeypatch.setenv(step.SFTP_KEY_ENV, str(tmp_path / "open"))
    conf = step._remote_credentials(T())
    assert "type = sftp" in conf and "key_pem = -----BEGIN OPENSSH PRIVATE KEY-----\\n" in conf


# ---- the tool, here -----------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path):
    """A storage-only app under tmp_path, and this test's age key pair."""
    storage = tmp_path / "srv" / "shop" / "storage"
    (storage / "uploads").mkdir(parents=True)
    (storage / "uploads" / "a.txt").write_text("alpha\n")
    (storage / "uploads" / "b.bin").write_bytes(os.urandom(5000))
    identity = agekey.new_identity()
    (tmp_path / "recipients.txt").write_text(agekey.recipient_of(identity) + "\n")
    spec = {"app": "shop", "dir": str(tmp_path / "backups"), "recipients": str(tmp_path / "recipients.txt"),
            "keep": 2, "db_env": {"postgres": str(tmp_path / "none-pg"), "redis": str(tmp_path / "none-redis")},
            "pg_db": "shop", "storage": str(storage), "remote": None}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return spec, identity, tmp_path


def run_tool(tmp_path: Path, *args: str, identity: str | None = None) -> tuple[int, dict]:
    res = subprocess.run([sys.executable, tool.__file__, args[0], str(tmp_path / "spec.json"), *args[1:]],
                         input=(identity or "").encode(), capture_output=True)
    return res.returncode, json.loads(res.stdout.decode().strip().splitlines()[-1])


@needs_age
def test_tool_create_verify_restore_storage(app):
    spec, identity, tmp = app
    rc, made = run_tool(tmp, "create")
    assert rc == 0, made
    bid = made["id"]
    d = Path(spec["dir"]) / bid
    assert sorted(os.listdir(d)) == ["manifest.json", "storage.tar.gz.age"]
    part = made["manifest"]["parts"]["storage"]
    assert part["files"] == 2 and part["sha256"] == hashlib.sha256((d / part["file"]).read_bytes()).hexdigest()
    assert (d / part["file"]).read_bytes().startswith(b"age-encryption.org/v1")
    assert b"alpha" not in (d / part["file"]).read_bytes()
    assert os.stat(spec["dir"]).st_mode & 0o777 == 0o700

    rc, listed = run_tool(tmp, "list")
    assert [b["id"] for b in listed["backups"]] == [bid] and listed["live"]["storage"] is True

    rc, verified = run_tool(tmp, "verify", "latest", identity=identity)
    assert rc == 0 and verified["ok"] and verified["checks"]["storage"]["files"] == 2, verified
    assert json.loads((d / "verify.json").read_text())["ok"] is True

    rc, wrong = run_tool(tmp, "verify", bid, identity=agekey.new_identity())  # another laptop's key
    assert rc == 1 and not wrong["ok"] and "no identity matched" in wrong["problems"][0], wrong

    shutil.rmtree(Path(spec["storage"]) / "uploads")
    rc, restored = run_tool(tmp, "restore", bid, "backup-first", identity=identity)
    assert rc == 0 and restored["restored"] == {"storage": {"files": 2}}, restored
    assert (Path(spec["storage"]) / "uploads" / "a.txt").read_text() == "alpha\n"


@needs_age
def test_tool_verify_catches_truncation_even_with_a_rewritten_manifest(app):
    spec, identity, tmp = app
    bid = run_tool(tmp, "create")[1]["id"]
    d = Path(spec["dir"]) / bid
    f = d / "storage.tar.gz.age"
    f.write_bytes(f.read_bytes()[:-100])
    rc, result = run_tool(tmp, "verify", bid, identity=identity)
    assert rc == 1 and "truncated" in result["problems"][0], result
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["parts"]["storage"].update(bytes=f.stat().st_size, sha256=hashlib.sha256(f.read_bytes()).hexdigest())
    (d / "manifest.json").write_text(json.dumps(manifest))
    rc, result = run_tool(tmp, "verify", bid, identity=identity)
    assert rc == 1 and not result["ok"] and result["checks"]["storage"]["ok"] is False, result
    rc, refused = run_tool(tmp, "restore", bid, identity=identity)
    assert rc == 1  # age refuses the damaged file: the storage is left as it was
    assert (Path(spec["storage"]) / "uploads" / "a.txt").read_text() == "alpha\n"


@needs_age
def test_tool_never_leaves_a_failed_backup_as_good_and_keeps_n(app):
    spec, identity, tmp = app
    Path(spec["recipients"]).write_text("age1notakey\n")
    rc, failed = run_tool(tmp, "create")
    assert rc == 1 and "age" in failed["error"], failed
    assert os.listdir(spec["dir"]) == [".lock"]  # no backup, no partial directory
    Path(spec["recipients"]).write_text(agekey.recipient_of(identity) + "\n")
    ids = []
    for _ in range(3):
        ids.append(run_tool(tmp, "create")[1]["id"])
    assert run_tool(tmp, "list")[1]["backups"][-1]["id"] == ids[-1]
    assert [b["id"] for b in run_tool(tmp, "list")[1]["backups"]] == ids[1:]  # keep 2


def test_tool_refuses_without_an_identity_and_names_missing_backups(app):
    spec, identity, tmp = app
    rc, out = run_tool(tmp, "verify", "latest")
    assert rc == 1 and out["error"] == "no age identity on stdin"
    rc, out = run_tool(tmp, "restore", "latest", identity=identity)
    assert rc == 1 and out["error"] == "no backup of shop on this server"


def test_row_counts_parse_and_compare():
    assert parts.parse_counts("public.a\t3\npublic.b\t0\nlightfold-end\n") == {"public.a": 3, "public.b": 0}
    assert parts.compare_counts({"public.a": 3}, {"public.a": 3}) == []
    assert parts.compare_counts({"public.a": 3, "public.b": 1}, {"public.a": 2, "public.c": 0}) == [
        "public.a: 2 rows, 3 at backup time", "public.b: None rows, 1 at backup time",
        "public.c: not in the backup's manifest"]


@needs_age
@pytest.mark.skipif(shutil.which("rclone") is None, reason="no rclone here (apt-get install rclone)")
def test_tool_pushes_to_an_s3_bucket_and_fetches_back(app, monkeypatch):
    """Through Debian's rclone to moto's S3 server on loopback; an AWS_CA_BUNDLE in the
    environment (rclone's S3 backend fails on it) does not reach rclone."""
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    import socket
    import time

    spec, identity, tmp = app
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                          region_name="us-east-1")
        for _ in range(100):
            try:
                s3.create_bucket(Bucket="lf-bk")
                break
            except Exception:
                time.sleep(0.1)
        (tmp / "rclone.conf").write_text(plans.rclone_config("k", "s", endpoint, "us-east-1"))
        spec["remote"] = {"path": "lightfold:lf-bk/pre/shop", "config": str(tmp / "rclone.conf")}
        (tmp / "spec.json").write_text(json.dumps(spec))
        monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp / "no-such-bundle.pem"))
        rc, made = run_tool(tmp, "create")
        assert rc == 0 and made["pushed"] is True, made
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lf-bk")["Contents"])
        assert keys == [f"pre/shop/{made['id']}/manifest.json", f"pre/shop/{made['id']}/storage.tar.gz.age"]
        assert run_tool(tmp, "list")[1]["remote"]["ids"] == [made["id"]]
        shutil.rmtree(Path(spec["dir"]) / made["id"])
        rc, fetched = run_tool(tmp, "fetch", "latest")
        assert rc == 0 and fetched == {"id": made["id"], "fetched": True}
        assert run_tool(tmp, "verify", made["id"], identity=identity)[1]["ok"]
        # A damaged remote copy is refused, and leaves nothing behind.
        s3.put_object(Bucket="lf-bk", Key=f"pre/shop/{made['id']}/storage.tar.gz.age", Body=b"age-encryption.org/v1\n")
        shutil.rmtree(Path(spec["dir"]) / made["id"])
        rc, refused = run_tool(tmp, "fetch", made["id"])
        assert rc == 1 and "damaged" in refused["error"], refused
        assert sorted(os.listdir(spec["dir"])) == [".lock"]
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.skipif(shutil.which("rclone") is None, reason="no rclone here (apt-get install rclone)")
def test_tool_pushes_over_sftp_and_fetches_back_with_the_host_key_pinned(app):
    """Through Debian's rclone to a real SFTP-only server (asyncssh) on loopback: the host key is
    pinned by the setup's own command, a backup goes there and comes back; a server whose host
    key changed is refused."""
    import asyncssh
    from tests.e2e.sftp_server import sftp_server

    spec, identity, tmp = app
    key = asyncssh.generate_private_key("ssh-ed25519")
    private = key.export_private_key().decode()
    (tmp / "login.pub").write_bytes(key.export_public_key())
    known = tmp / "known_hosts"
    with sftp_server("127.0.0.1", tmp / "sftp-root", tmp / "login.pub") as (port, host_pub):
        remote = f"sftp://bk@127.0.0.1:{port}/srv/backups"
        pin = plans.pin_host_key(remote, str(known))
        assert subprocess.run(["sh", "-c", pin.command]).returncode == 0
        assert host_pub.split()[1] in known.read_text()
        assert subprocess.run(["sh", "-c", pin.unless]).returncode == 0  # pinned: skipped from now on
        (tmp / "rclone.conf").write_text(plans.rclone_sftp_config(remote, private, str(known)))
        spec["remote"] = {**plans.spec("shop", remote=remote)["remote"], "config": str(tmp / "rclone.conf")}
        (tmp / "spec.json").write_text(json.dumps(spec))
        rc, made = run_tool(tmp, "create")
        assert rc == 0 and made["pushed"] is True, made
        stored = tmp / "sftp-root" / "srv" / "backups" / "shop" / made["id"]
        assert sorted(os.listdir(stored)) == ["manifest.json", "storage.tar.gz.age"]
        assert (stored / "storage.tar.gz.age").read_bytes().startswith(b"age-encryption.org/v1")
        assert run_tool(tmp, "list")[1]["remote"]["ids"] == [made["id"]]
        shutil.rmtree(Path(spec["dir"]) / made["id"])
        rc, fetched = run_tool(tmp, "fetch", "latest")
        assert rc == 0 and fetched == {"id": made["id"], "fetched": True}
        assert run_tool(tmp, "verify", made["id"], identity=identity)[1]["ok"]
    # Another server answers on that address now (a new host key): rclone refuses it.
    with sftp_server("127.0.0.1", tmp / "sftp-other", tmp / "login.pub") as (port, _):
        remote = f"sftp://bk@127.0.0.1:{port}/srv/backups"
        known.write_text(known.read_text().replace(known.read_text().split("]:")[1].split()[0], str(port)))
        (tmp / "rclone.conf").write_text(plans.rclone_sftp_config(remote, private, str(known)))
        rc, refused = run_tool(tmp, "create")
        assert rc == 1 and "key mismatch" in json.dumps(refused), refused
        assert not (tmp / "sftp-other" / "srv").exists()


def test_list_renders_parts_verify_and_a_failed_schedule(capsys):
    from lightfold.cli import render_db

    b = {"id": "20261204185549", "bytes": 5347, "label": "manual", "verify": {"ok": True, "at": "2026-12-04T18:55Z"},
         "parts": {"postgres": {"bytes": 5003, "tables": {"public.notes": 3}}, "redis": {"bytes": 10, "keys": 2},
                   "storage": {"bytes": 334, "files": 1}}}
    render_db.show_backup_list({"target": "shop", "unit": "lightfold-shop.backup", "incomplete": 1,
                             "backups": [b, {**b, "id": "20261205000000", "verify": {"ok": False, "at": "x"}}],
                             "schedule": {"enabled": True, "active": True, "last_run": "Fri", "last_ok": False}})
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    assert "20261204185549 5.3 KB postgres (1 tables, 3 rows), redis (2 keys), storage (1 files) [manual] verified" \
        in text, text
    assert "20261205000000" in text and "VERIFY FAILED" in text and "1 incomplete backup(s)" in text
    assert "the last scheduled backup FAILED (Fri)" in text and "journalctl -u lightfold-shop.backup.service" in text


# ---- mysql (MariaDB): the dump's rows counted as it streams, the pipes through gzip and age ----------

DUMP = (
    b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n/*!40101 SET NAMES utf8mb4 */;\n"
    b"DROP TABLE IF EXISTS `notes`;\nCREATE TABLE `notes` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
    b"  `body` text NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n"
    b"INSERT INTO `notes` VALUES (1,'first'),(2,'it\\'s (not) two),(3,\\'x'),(3,'a\\nb\\\\');\n"
    b"INSERT INTO `notes` VALUES (4,'fourth');\n"
    b"CREATE TABLE `empty` (\n  `x` int\n);\n"
    b"CREATE TABLE `we``ird` (\n  `b` blob\n);\nINSERT INTO `we``ird` VALUES (0x2829),(NULL);\n"
    b"/*!50001 CREATE TABLE `a_view` (\n  `id` tinyint NOT NULL\n) ENGINE=MyISAM */;\n"
    # MariaDB 11's mariadb-dump: one row a line after the statement's first line.
    b"CREATE TABLE `eleven` (\n  `s` text\n);\nINSERT INTO `eleven` VALUES\n(1,'a;'),\n(2,'(b\\');'),\n(3,NULL);\n"
    b"INSERT INTO `eleven` VALUES\n(4,'x');\nUNLOCK TABLES;\n"
    b"INSERT IGNORE INTO `eleven` (`s`, `we)ird`) VALUES ('y'),('z');\n"  # --insert-ignore --complete-insert
)


def test_dump_counter_counts_rows_per_table_in_any_chunking():
    expected = {"notes": 4, "empty": 0, "we`ird": 2, "eleven": 6}  # a view's stand-in table is no table
    for size in (1, 7, 64, len(DUMP)):
        counter = parts.DumpCounter()
        for i in range(0, len(DUMP), size):
            counter.feed(DUMP[i:i + size])
        assert counter.close() == expected, size


@pytest.fixture
def fake_mariadb(tmp_path, monkeypatch):
    """mariadb-dump printing DUMP, mariadb recording what it is fed (its argv's database, stdin)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "dump.sql").write_bytes(DUMP)
    (bin_dir / "mariadb-dump").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/dump-args\ncat {tmp_path}/dump.sql\n')
    (bin_dir / "mariadb").write_text(f'#!/bin/sh\ncat > {tmp_path}/loaded-"$3".sql\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path


@needs_age
def test_mysql_dump_is_gzipped_and_encrypted_and_loads_back_byte_for_byte(fake_mariadb):
    tmp = fake_mariadb
    identity = agekey.new_identity()
    (tmp / "recipients.txt").write_text(agekey.recipient_of(identity) + "\n")
    out = tmp / "mysql.sql.gz.age"
    part = parts.dump_mysql("shop", str(tmp / "recipients.txt"), str(out))
    assert (tmp / "dump-args").read_text().split()[:2] == ["--single-transaction", "--routines"]
    assert part["tables"] == {"notes": 4, "empty": 0, "we`ird": 2, "eleven": 6}
    assert part["plain_bytes"] == len(DUMP) and part["plain_sha256"] == hashlib.sha256(DUMP).hexdigest()
    assert out.read_bytes().startswith(b"age-encryption.org/v1") and b"first" not in out.read_bytes()
    parts.load_mysql(part, str(out), identity.encode(), "lfverify_shop")
    assert (tmp / "loaded-lfverify_shop.sql").read_bytes() == DUMP

    out.write_bytes(out.read_bytes()[:-50])  # truncated: age fails, and the pipe says so
    with pytest.raises(parts.Failure, match="decrypt and load into mariadb"):
        parts.load_mysql(part, str(out), identity.encode(), "lfverify_shop")


@needs_age
def test_mysql_dump_failing_is_a_failure(fake_mariadb):
    tmp = fake_mariadb
    (tmp / "bin" / "mariadb-dump").write_text("#!/bin/sh\necho 'Got error: 1049: Unknown database' >&2\nexit 2\n")
    identity = agekey.new_identity()
    (tmp / "recipients.txt").write_text(agekey.recipient_of(identity) + "\n")
    with pytest.raises(parts.Failure, match="mariadb-dump shop: `mariadb-dump` exited 2: Got error: 1049"):
        parts.dump_mysql("shop", str(tmp / "recipients.txt"), str(tmp / "x.age"))


def test_spec_names_the_mysql_env_and_database():
    value = plans.spec("my-app")
    assert value["db_env"]["mysql"] == Layout("my-app").db_env("mysql") and value["mysql_db"] == "my_app"
    assert "After=postgresql.service mariadb.service redis-server.service" in plans.timer_units("my-app", "daily")[0]
