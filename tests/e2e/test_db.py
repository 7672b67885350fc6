"""`lightfold db` on one shared sandbox machine running the Flask example: PostgreSQL added before
the first deploy reaches the app's env; the app's user connects with the release's env; the server
listens on loopback only; the password never shows in the CLI's output; a second add changes
nothing (and the next deploy has nothing to push); Redis likewise, with the default user off."""

from __future__ import annotations

import json
import socket

import pytest
from tests.e2e.apps import commit, get, install_example

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def run_json(sb, *args: str, timeout: float = 900) -> tuple[dict, str]:
    proc = sb.lightfold(*args, "--target", sb.target, "--json", timeout=timeout)
    return json.loads(proc.stdout), proc.stdout + proc.stderr


def release_env_shell(sb) -> str:
    """Shell that loads the live release's env snapshot, as the app's unit gets it."""
    app = sb.target
    return (f"cd /tmp && rid=$(basename \"$(readlink /srv/{app}/current)\") && set -a && "
            f". /srv/{app}/env/$rid.env && set +a")


def listening_on(sb, port: int) -> list[str]:
    addresses = [line.split()[3] for line in sb.exec("ss -Hltn").stdout.splitlines()]
    return [a for a in addresses if a.endswith(f":{port}")]


def port_refused(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=3):
            return False
    except OSError:
        return True


@pytest.fixture(scope="module")
def app(shared_sandbox):
    sb = shared_sandbox
    install_example(sb.project, "python-flask")
    sb.lightfold("config", "set", "deploy.health_path", "/healthz", "--target", sb.target)
    return sb


def test_postgres(app):
    sb = app
    added, out_add = run_json(sb, "db", "add", "postgres")
    assert added["changed"] and added["kind"] == "postgres", added
    assert set(added["names"]) == {"DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"}
    pushed, out_deploy = run_json(sb, "deploy")
    assert pushed["push"]["release"], pushed

    revealed, _ = run_json(sb, "db", "url", "postgres", "--reveal")
    url = revealed["url"]
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert len(password) >= 32, url
    status, body = get(sb.ip, "/env/DATABASE_URL")
    assert (status, body.decode()) == (200, url)
    assert get(sb.ip, "/env/PGHOST") == (200, b"127.0.0.1")

    # The app's own user connects with the release's env (libpq's PG* variables, then the URL).
    user = f"lf-{sb.target}"
    sql = "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (7); SELECT current_user, sum(x) FROM t"
    res = sb.exec(f"{release_env_shell(sb)} && runuser -u {user} -- psql -qXAt -c '{sql}'")
    assert res.stdout.strip().split("|")[0] == sb.target.replace("-", "_"), res.stdout
    res = sb.exec(f"{release_env_shell(sb)} && runuser -u {user} -- env -u PGPASSWORD psql -XAt \"$DATABASE_URL\" "
                  "-c 'SELECT count(*) FROM t'")
    assert res.stdout.strip() == "1", res.stdout
    snapshot = sb.exec(f"stat -c '%a %U' /srv/{sb.target}/env/*.env /etc/lightfold/apps/{sb.target}/db-postgres.env")
    assert set(snapshot.stdout.split("\n")[:-1]) == {"600 root"}, snapshot.stdout

    # Loopback only: what ss shows, and from here.
    listening = listening_on(sb, 5432)
    assert listening and all(a.startswith(("127.", "[::1]")) for a in listening), listening
    assert port_refused(sb.ip, 5432)

    # db shell: psql as the app's role (libpq reads the release's PG* env), stdin its input.
    shell = sb.lightfold("db", "shell", "--target", sb.target, input="SELECT current_user, count(*) FROM t;\n")
    row = [cell.strip() for cell in shell.stdout.split("\n")[2].split("|")]
    assert row == [sb.target.replace("-", "_"), "1"], shell.stdout

    again, out_again = run_json(sb, "db", "add", "postgres")
    assert again["changed"] is False and again["actions"] == [], again
    redeploy, out_redeploy = run_json(sb, "deploy")
    assert redeploy["push"]["release"] == pushed["push"]["release"], redeploy  # nothing to push

    shown = [out_add, out_deploy, out_again, out_redeploy]
    for args in (("db", "status"), ("db", "url"), ("status",), ("config", "show")):
        shown.append(sb.lightfold(*args, "--target", sb.target).stdout)
        shown.append(sb.lightfold(*args, "--target", sb.target, check=False).stderr)
    assert all(password not in text for text in shown)
    assert "****" in sb.lightfold("db", "url", "--target", sb.target).stdout
    logs = sb.exec("cat /var/log/postgresql/*.log; journalctl --no-pager -q | tail -n 2000", check=False).stdout
    assert password not in logs


def test_redis(app):
    sb = app
    added, out_add = run_json(sb, "db", "add", "redis")
    assert added["changed"] and added["names"] == ["REDIS_PASSWORD", "REDIS_URL"], added
    pushed, out_deploy = run_json(sb, "deploy")
    url = run_json(sb, "db", "url", "redis", "--reveal")[0]["url"]
    assert get(sb.ip, "/env/REDIS_URL") == (200, url.encode())
    assert get(sb.ip, "/env/PGDATABASE")[0] == 200  # postgres's variables stay

    user = f"lf-{sb.target}"
    cli = f"runuser -u {user} -- redis-cli --no-auth-warning -u \"$REDIS_URL\""
    res = sb.exec(f"{release_env_shell(sb)} && {cli} SET k v && {cli} GET k")
    assert res.stdout.split() == ["OK", "v"], res.stdout
    anonymous = sb.exec("redis-cli GET k", check=False)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr or "NOPERM" in anonymous.stdout + anonymous.stderr, anonymous
    listening = listening_on(sb, 6379)
    assert listening and all(a.startswith(("127.", "[::1]")) for a in listening), listening
    assert port_refused(sb.ip, 6379)

    shell = sb.lightfold("db", "shell", "redis", "--target", sb.target, input="GET k\nACL WHOAMI\n")
    assert shell.stdout.split() == ["v", sb.target.replace("-", "_")], shell.stdout
    assert "several: postgres, redis" in sb.lightfold("db", "shell", "--target", sb.target, check=False).stderr

    again, _ = run_json(sb, "db", "add", "redis")
    assert again["changed"] is False, again
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert all(password not in text for text in (out_add, out_deploy))

    removed, _ = run_json(sb, "db", "remove", "postgres", "--yes")
    assert removed["changed"] and removed["data_kept"], removed
    run_json(sb, "deploy")
    assert get(sb.ip, "/env/DATABASE_URL")[0] == 404
    assert get(sb.ip, "/env/REDIS_URL") == (200, url.encode())
    name = sb.target.replace("-", "_")
    kept = sb.exec(f"cd /tmp && runuser -u postgres -- psql -XAt -d {name} -c 'SELECT count(*) FROM t'")
    assert kept.stdout.strip() == "1"


def test_databases_in_lightfold_toml(app):
    """[databases] in lightfold.toml: deploy sets up what is missing (postgres, removed by
    test_redis) and leaves what is there; the next deploy changes nothing."""
    sb = app
    (sb.project / "lightfold.toml").write_text("[databases]\npostgres = true\nredis = true\n")
    commit(sb.project, "databases in lightfold.toml")
    explained = sb.lightfold("detect", "--explain").stdout
    assert "postgres, redis" in explained and "databases ← lightfold.toml" in explained, explained
    deployed, out = run_json(sb, "deploy")
    assert "databases from lightfold.toml already set up: redis" in out, out
    assert get(sb.ip, "/env/DATABASE_URL")[0] == 200 and get(sb.ip, "/env/REDIS_URL")[0] == 200
    again, _ = run_json(sb, "deploy")
    assert again["push"]["release"] == deployed["push"]["release"], again
