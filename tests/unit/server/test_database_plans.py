"""`db add|remove` plans as data and as the text they render to: loopback only, memory from
MemTotal, no secret in any plan, the status script's redaction."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from lightfold.agent.layout import Layout, pg_dropin
from lightfold.errors import UsageError
from lightfold.release.push import release_env_hash
from lightfold.server import database as db
from lightfold.server.plan import EnsurePackages, Remove, Run, SystemdEnable, WriteFile, render

GB = 1024 * 1024  # in kB, as MemTotal counts
FACTS = db.Facts(mem_kb=2 * GB, pg_version="15", pg_port=5432)


def test_install_plan_is_the_os_packages_and_the_running_service():
    assert db.install_plan("postgres").steps[0].actions == (EnsurePackages(("postgresql",)),
                                                            SystemdEnable("postgresql", now=True))
    assert db.install_plan("redis").steps[0].actions == (EnsurePackages(("redis-server",)),
                                                         SystemdEnable("redis-server", now=True))
    assert db.install_plan("mysql").steps[0].actions == (EnsurePackages(("mariadb-server",)),
                                                         SystemdEnable("mariadb", now=True))
    with pytest.raises(UsageError, match="unknown database 'mongodb'"):
        db.install_plan("mongodb")


def test_mariadb_is_mysql_and_one_app_gets_one_database_url():
    assert db.check_kind("mariadb") == "mysql" and db.check_kind("mysql") == "mysql"
    assert db.check_kind("postgresql") == "postgres"
    assert db.url_clash("mysql", ["postgres", "redis"]) == "postgres"
    assert db.url_clash("postgres", ["mysql"]) == "mysql"
    assert db.url_clash("mysql", ["mysql", "redis"]) is None and db.url_clash("redis", ["postgres"]) is None


def test_facts_parse_with_defaults():
    assert db.Facts.parse("mem_kb=1000000\npg_version=17\npg_port=5433\n") == db.Facts(1000000, "17", 5433)
    assert db.Facts.parse("mem_kb=\npg_version=\n") == db.Facts(GB, None, 5432)
    assert db.Facts.parse("mem_kb=65000000\nlimit_kb=2097152\n").mem_kb == 2097152  # a container's limit
    assert db.Facts.parse("mem_kb=1000000\nlimit_kb=9000000\n").mem_kb == 1000000


def test_facts_script_reads_memtotal_here():
    import subprocess

    facts = db.Facts.parse(subprocess.run(["sh", "-c", db.FACTS_SCRIPT], capture_output=True, text=True).stdout)
    assert facts.mem_kb > 64 * 1024


@pytest.mark.parametrize(("mem_kb", "shared", "cache", "maint"), [
    (512 * 1024, "64MB", "256MB", "32MB"),
    (1 * GB, "128MB", "512MB", "64MB"),
    (2 * GB, "256MB", "1GB", "128MB"),
    (4 * GB - 200 * 1024, "480MB", "1936MB", "240MB"),  # what a "4 GB" VM reports
    (64 * GB, "2GB", "32GB", "256MB"),
    (128 * 1024, "32MB", "128MB", "16MB"),
])
def test_postgres_memory_follows_memtotal_in_shows_spelling(mem_kb, shared, cache, maint):
    s = db.postgres_settings(mem_kb)
    assert (s["shared_buffers"], s["effective_cache_size"], s["maintenance_work_mem"]) == (shared, cache, maint)
    assert s["listen_addresses"] == "localhost" and s["max_connections"] == "50"


def test_postgres_settings_plan_writes_the_dropin_and_restarts_only_when_the_running_server_differs():
    step = db.settings_plan("postgres", FACTS).steps[0]
    conf, restart = step.actions
    assert isinstance(conf, WriteFile)
    assert conf.path == pg_dropin("15") == "/etc/postgresql/15/main/conf.d/lightfold.conf"
    assert "listen_addresses = 'localhost'\n" in conf.data().decode()
    assert "shared_buffers = '256MB'\n" in conf.data().decode()
    assert isinstance(restart, Run) and restart.command == "systemctl restart postgresql"
    assert "effective_cache_size=1GB,listen_addresses=localhost,maintenance_work_mem=128MB" in restart.unless


def test_postgres_settings_need_a_cluster():
    with pytest.raises(Exception, match="no cluster"):
        db.settings_plan("postgres", db.Facts(GB))


def test_redis_settings_loopback_protected_bounded_and_acl():
    text = render(db.settings_plan("redis", FACTS))
    step = db.settings_plan("redis", FACTS).steps[0]
    dropin = next(a for a in step.actions if isinstance(a, WriteFile) and a.path == "/etc/redis/lightfold.conf")
    body = dropin.data().decode()
    assert "bind 127.0.0.1 -::1\n" in body and "protected-mode yes\n" in body and "maxmemory 256mb\n" in body
    assert "aclfile /etc/redis/lightfold-users.acl\n" in body
    acl = next(a for a in step.actions if isinstance(a, WriteFile) and a.path.endswith(".acl"))
    assert acl.data() == b"user default off\n" and acl.only_if_absent and acl.mode == 0o640
    assert "include /etc/redis/lightfold.conf" in text


def test_credentials_plan_holds_no_secret_and_is_the_same_every_time():
    for kind in ("postgres", "redis"):
        a, b = render(db.credentials_plan(kind, "my-shop", FACTS)), render(db.credentials_plan(kind, "my-shop", FACTS))
        assert a == b  # nothing random in the plan: the password is made by the script, on the server
        assert "secrets.token_hex(24)" in a
    (run,) = db.credentials_plan("postgres", "my-shop", FACTS).steps[0].actions
    assert run.label == f"role and database my_shop, password in {Layout('my-shop').db_env('postgres')}"
    assert "| runuser -u postgres -- psql" in run.command  # the password goes on stdin
    assert "log_min_error_statement = panic" in run.command
    assert 'DATABASE_URL=\\"postgresql://my_shop:$pw@127.0.0.1:5432/my_shop\\"' in run.command
    assert "chmod 600" in run.command and "umask 077" in run.command
    assert run.unless.startswith(f"[ -f {Layout('my-shop').db_env('postgres')} ]")


def test_redis_credentials_rebuild_the_acl_only_when_it_differs():
    actions = db.credentials_plan("redis", "my-shop", FACTS).steps[0].actions
    acl = next(a for a in actions if a.label and a.label.startswith("/etc/redis/lightfold-users.acl"))
    assert "| cmp -s - /etc/redis/lightfold-users.acl" in acl.unless
    assert "sha256sum" in acl.command and "/etc/lightfold/apps/*/db-redis.env" in acl.command


def test_remove_plan_keeps_the_data_unless_purge():
    keep = db.remove_plan("postgres", "shop", purge=False).steps[0].actions
    assert keep == (Remove("/etc/lightfold/apps/shop/db-postgres.env"),)
    purge = render(db.remove_plan("postgres", "shop", purge=True))
    assert "dropdb --if-exists shop" in purge and "dropuser --if-exists shop" in purge


def test_status_script_redacts_the_password_unless_revealed(tmp_path):
    env = tmp_path / "db-postgres.env"
    env.write_text('DATABASE_URL="postgresql://shop:0123abcd@127.0.0.1:5432/shop"\nPGPASSWORD="0123abcd"\n')
    files = json.dumps({"postgres": str(env), "redis": str(tmp_path / "absent.env")})

    def run(reveal: str) -> dict:
        out = subprocess.run([sys.executable, "-c", db.STATUS_SCRIPT, files, reveal], capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out)

    hidden = run("0")
    assert hidden["postgres"]["url"] == "postgresql://shop:****@127.0.0.1:5432/shop"
    assert hidden["postgres"]["names"] == ["DATABASE_URL", "PGPASSWORD"] and hidden["postgres"]["configured"]
    assert "0123abcd" not in json.dumps(hidden)
    assert hidden["redis"]["configured"] is False and hidden["redis"]["url"] is None
    assert run("1")["postgres"]["url"] == "postgresql://shop:0123abcd@127.0.0.1:5432/shop"


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1:5432", True), ("[::1]:6379", True), ("0.0.0.0:5432", False), ("[::]:5432", False),
    ("10.0.0.2:5432", False), ("*:6379", False),
])
def test_is_loopback(address, loopback):
    assert db.is_loopback(address) is loopback


def test_a_database_added_changes_the_release_env_hash():
    assert release_env_hash("abc", None) == "abc"
    assert release_env_hash("abc", "f00") not in ("abc", release_env_hash("abc", "f01"))


def test_redis_restarts_only_when_its_files_differ_from_the_last_restart():
    for plan in (db.settings_plan("redis", FACTS), db.credentials_plan("redis", "shop", FACTS)):
        (restart,) = [a for a in plan.steps[0].actions if isinstance(a, Run) and "restart" in a.command]
        assert restart.command.endswith("> /etc/redis/lightfold.applied")
        assert "sha256sum -c --quiet --status /etc/redis/lightfold.applied" in restart.unless


@pytest.mark.parametrize(("mem_kb", "pool", "log"), [
    (512 * 1024, "64M", "16M"),
    (1 * GB, "128M", "32M"),
    (2 * GB, "256M", "64M"),
    (4 * GB - 200 * 1024, "480M", "112M"),
    (64 * GB, "2G", "512M"),
    (128 * 1024, "32M", "16M"),
])
def test_mariadb_memory_follows_memtotal(mem_kb, pool, log):
    s = db.mysql_settings(mem_kb)
    assert (s["innodb_buffer_pool_size"], s["innodb_log_file_size"]) == (pool, log)
    assert s["bind-address"] == "127.0.0.1" and s["max_connections"] == "50" and s["performance_schema"] == "OFF"


def test_mariadb_settings_plan_writes_a_dropin_read_after_debians_and_restarts_only_when_it_changed():
    step = db.settings_plan("mysql", FACTS).steps[0]
    conf, restart = step.actions
    assert conf.path == "/etc/mysql/mariadb.conf.d/90-lightfold.cnf"  # after 50-server.cnf: it wins
    body = conf.data().decode()
    assert body.splitlines()[1] == "[mysqld]"
    assert "bind-address = 127.0.0.1\n" in body and "innodb_buffer_pool_size = 256M\n" in body
    assert "skip-name-resolve = 1\n" in body and "local-infile = 0\n" in body
    assert restart.command == ("systemctl restart mariadb && sha256sum /etc/mysql/mariadb.conf.d/90-lightfold.cnf "
                               "> /etc/mysql/lightfold.applied")
    assert restart.unless == ("systemctl is-active --quiet mariadb && "
                              "sha256sum -c --quiet --status /etc/mysql/lightfold.applied")


def test_mariadb_credentials_go_on_stdin_and_into_the_root_only_env_file(tmp_path):
    (run,) = db.credentials_plan("mysql", "my-shop", FACTS).steps[0].actions
    assert render(db.credentials_plan("mysql", "my-shop", FACTS)) == render(db.credentials_plan("mysql", "my-shop",
                                                                                                 FACTS))
    assert run.label == f"user and database my_shop, password in {Layout('my-shop').db_env('mysql')}"
    assert "| mariadb -N -B\n" in run.command and "secrets.token_hex(24)" in run.command
    assert "-e" not in run.command.split("| mariadb")[1].split("\n")[0]  # the SQL comes on stdin
    assert run.unless.startswith(f"[ -f {Layout('my-shop').db_env('mysql')} ] && cd /tmp && ")
    # The script for real, with a client that records its stdin: the statements, the env file.
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "mariadb"
    fake.write_text(f"#!/bin/sh\ncat >> {tmp_path}/sql.txt\n")
    fake.chmod(0o755)
    env_file = tmp_path / "etc" / "db-mysql.env"
    script = run.command.replace(f"f={Layout('my-shop').db_env('mysql')}", f"f={env_file}")
    script = script.replace("chown root:root", "true")
    for _ in range(2):
        subprocess.run(["sh", "-c", script], check=True, env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin"})
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    password = env["MYSQL_PASSWORD"].strip('"')
    assert len(password) == 48
    assert env["DATABASE_URL"] == f'"mysql://my_shop:{password}@127.0.0.1:3306/my_shop"'
    assert {k: v.strip('"') for k, v in env.items() if k != "DATABASE_URL"} == {
        "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "3306", "MYSQL_USER": "my_shop", "MYSQL_PASSWORD": password,
        "MYSQL_DATABASE": "my_shop"}
    assert env_file.stat().st_mode & 0o777 == 0o600
    sql = (tmp_path / "sql.txt").read_text().splitlines()
    assert sql[:2] == ["SET SESSION sql_log_off = 1;", "SET SESSION sql_log_bin = 0;"]
    assert f"CREATE USER IF NOT EXISTS 'my_shop'@'127.0.0.1' IDENTIFIED BY '{password}';" in sql
    assert "CREATE DATABASE IF NOT EXISTS `my_shop` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;" in sql
    assert "GRANT ALL PRIVILEGES ON `my_shop`.* TO 'my_shop'@'localhost';" in sql
    assert len(sql) == 2 * 9 and sql[:9] == sql[9:]  # the second run: the same password, kept


def test_mariadb_remove_keeps_the_data_unless_purge():
    assert db.remove_plan("mysql", "shop", purge=False).steps[0].actions == (
        Remove("/etc/lightfold/apps/shop/db-mysql.env"),)
    _, drop_db, drop_user = db.remove_plan("mysql", "shop", purge=True).steps[0].actions
    assert drop_db.command == "cd /tmp && mariadb -N -B -e 'DROP DATABASE IF EXISTS `shop`'"
    assert shlex.split(drop_user.command.removeprefix("cd /tmp && "))[-1] == \
        "DROP USER IF EXISTS 'shop'@'localhost', 'shop'@'127.0.0.1'"


@pytest.mark.parametrize(("kind", "env", "argv", "secret_env"), [
    ("postgres", {"PGUSER": "shop", "PGPASSWORD": "s3cret"}, ["psql"], {"PGPASSWORD": "s3cret"}),
    ("mysql", {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "3306", "MYSQL_USER": "shop", "MYSQL_PASSWORD": "s3cret",
               "MYSQL_DATABASE": "shop"},
     ["mariadb", "--host=127.0.0.1", "--port=3306", "--user=shop", "shop"], {"MYSQL_PWD": "s3cret"}),
    ("redis", {"REDIS_URL": "redis://shop:s3cret@127.0.0.1:6379/0", "REDIS_PASSWORD": "s3cret"},
     ["redis-cli", "--no-auth-warning", "--user", "shop"], {"REDISCLI_AUTH": "s3cret"}),
])
def test_db_shell_starts_the_client_with_the_password_in_its_env_never_its_argv(tmp_path, kind, env, argv,
                                                                                 secret_env):
    client = argv[0]
    (tmp_path / client).write_text('#!/bin/sh\nprintf "%s\\n" "$0" "$@" > argv.txt\nenv > env.txt\n')
    (tmp_path / client).chmod(0o755)
    line = db.shell_command(kind, "shop")
    res = subprocess.run(["/bin/sh", "-c", line], cwd=tmp_path, env={"PATH": f"{tmp_path}:/usr/bin:/bin", **env},
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = (tmp_path / "argv.txt").read_text().splitlines()
    assert [got[0].rsplit("/", 1)[-1], *got[1:]] == argv
    assert "s3cret" not in line and not any("s3cret" in a for a in got)
    child_env = dict(x.split("=", 1) for x in (tmp_path / "env.txt").read_text().splitlines() if "=" in x)
    assert all(child_env[k] == v for k, v in secret_env.items())


def test_db_shell_refuses_a_release_without_the_variables(tmp_path):
    res = subprocess.run(["/bin/sh", "-c", db.shell_command("mariadb", "shop")], env={"PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.strip() == ("lightfold: the live release of shop has no MYSQL_USER: "
                                  "deploy once after `db add mysql`")
