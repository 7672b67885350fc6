"""The databases' env files (`db add`) merged into every release's env snapshot by write_env."""

from __future__ import annotations

import os

from lightfold.agent.envfile import env_hash, merge_env, parse_env_file, render_env_file

RID = "20260101120000"


def key(root) -> str:
    """The server's env-hash key, which the agent made under the test's root."""
    return (root / "etc/lightfold/env-hash.key").read_text().strip()


def write_db_env(root, kind: str, env: dict[str, str], app: str = "web") -> None:
    path = root / "etc/lightfold/apps" / app / f"db-{kind}.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_env_file(env, f"{kind} for {app}"))
    os.chmod(path, 0o600)


def test_merge_env_the_users_own_value_wins_and_is_named():
    env, clashes = merge_env({"PGHOST": "db.example", "A": "1"}, {"PGHOST": "127.0.0.1", "PGUSER": "web"})
    assert env == {"PGHOST": "db.example", "PGUSER": "web", "A": "1"}
    assert clashes == ["PGHOST"]
    assert merge_env({"A": "1"}, {}) == ({"A": "1"}, [])


def test_write_env_merges_every_database_of_the_app(root, agent_cli):
    write_db_env(root, "postgres", {"DATABASE_URL": "postgresql://web:s3cret@127.0.0.1:5432/web",
                                    "PGPASSWORD": "s3cret"})
    write_db_env(root, "redis", {"REDIS_URL": "redis://web:r3dis@127.0.0.1:6379/0"})
    write_db_env(root, "postgres", {"DATABASE_URL": "postgresql://other"}, app="other")
    result, events, code = agent_cli({"op": "write_env", "app": "web", "release": RID, "env": {"GREETING": "hi"}})
    assert code == 0 and result["ok"], result
    snapshot = parse_env_file((root / f"srv/web/env/{RID}.env").read_text())
    assert snapshot == {"DATABASE_URL": "postgresql://web:s3cret@127.0.0.1:5432/web", "PGPASSWORD": "s3cret",
                        "REDIS_URL": "redis://web:r3dis@127.0.0.1:6379/0", "GREETING": "hi"}
    assert result["server_names"] == ["DATABASE_URL", "PGPASSWORD", "REDIS_URL"]
    assert result["overridden"] == [] and result["env_hash"] == env_hash(snapshot, key(root))
    assert "s3cret" not in str(result) + str(events) and "r3dis" not in str(result) + str(events)


def test_write_env_the_users_value_wins_on_a_clash_and_says_so(root, agent_cli):
    write_db_env(root, "postgres", {"DATABASE_URL": "postgresql://web:s3cret@127.0.0.1/web", "PGUSER": "web"})
    result, events, code = agent_cli({"op": "write_env", "app": "web", "release": RID,
                                      "env": {"DATABASE_URL": "postgresql://elsewhere/db"}})
    assert code == 0, result
    snapshot = parse_env_file((root / f"srv/web/env/{RID}.env").read_text())
    assert snapshot == {"DATABASE_URL": "postgresql://elsewhere/db", "PGUSER": "web"}
    assert result["overridden"] == ["DATABASE_URL"]
    assert any("DATABASE_URL" in str(e) and "wins" in str(e) for e in events), events
    assert "s3cret" not in str(events)


def test_write_env_without_databases_is_the_users_env_alone(root, agent_cli):
    result, _, code = agent_cli({"op": "write_env", "app": "web", "release": RID, "env": {"A": "1"}})
    assert code == 0 and result["server_names"] == [] and result["env_hash"] == env_hash({"A": "1"}, key(root))


def test_status_names_the_servers_variables_and_hashes_them_without_values(root, agent_cli, app_json):
    app_json()
    result, _, _ = agent_cli({"op": "status", "app": "web"})
    assert result["server_env"] == {"names": [], "hash": None}
    write_db_env(root, "postgres", {"PGPASSWORD": "s3cret", "PGUSER": "web"})
    result, _, _ = agent_cli({"op": "status", "app": "web"})
    assert result["server_env"] == {"names": ["PGPASSWORD", "PGUSER"],
                                    "hash": env_hash({"PGPASSWORD": "s3cret", "PGUSER": "web"}, key(root))}
    assert "s3cret" not in str(result)
