"""lightfold.release.operate: status keys from an agent answer, the logs plans (as text), the
targets listing, and the CLI's input checks. The server-side behaviour is in tests/e2e/test_operate.py."""

from __future__ import annotations

import json
import shlex
import subprocess
import time

import pytest

from lightfold.agent.lock import process_alive
from lightfold.agent.protocol import StatusReply
from lightfold.release import operate

AGENT_STATUS = {
    "ok": True, "op": "status", "app": "web", "agent_version": 1, "static": False,
    "live": {"release": "20260101120000", "slot": "green", "port": 18002,
             "info": {"id": "20260101120000", "commit": "abc123", "dirty": False, "fingerprint": "fp2",
                      "env_hash": "e2", "builder": "native", "deployed_by": "ann@laptop",
                      "created_at": "2026-01-01T11:59:50Z"}},
    "slots": {"blue": {"port": 18001, "release": "20251231100000", "active_state": "inactive",
                       "sub_state": "dead", "n_restarts": 0},
              "green": {"port": 18002, "release": "20260101120000", "active_state": "active",
                        "sub_state": "running", "n_restarts": 2}},
    "health": {"healthy": True, "status_code": 200, "error": None, "port": 18002, "path": "/", "elapsed_ms": 3},
    "releases": [
        {"id": "20260101120000", "status": "live", "commit": "abc123", "fingerprint": "fp2",
         "activated_at": "2026-01-01T12:00:05Z", "deployed_by": "ann@laptop", "on_disk": True, "reason": None},
        {"id": "20251231100000", "status": "previous", "commit": "old", "fingerprint": "fp1",
         "activated_at": "2025-12-31T10:00:05Z", "deployed_by": "bob@ci", "on_disk": True, "reason": None},
    ],
    "disk": {"path": "/srv", "free_bytes": 5_000_000_000, "total_bytes": 10_000_000_000},
    "lock": {"holder": "bob@ci", "pid": 42, "op": "push", "release": "20260101130000",
             "started_at": "2026-01-01T13:00:00Z", "stale": "its holder process 42 is gone"},
    "switch_in_progress": False, "last_op": None, "reconciled": [],
}
REPLY = StatusReply.from_dict(AGENT_STATUS)


def test_deploy_status_flattens_the_agents_answer_into_the_documented_keys():
    s = operate.deploy_status(REPLY)
    assert s["live_release"] == "20260101120000" and s["commit"] == "abc123"
    assert s["deployed_at"] == "2026-01-01T12:00:05Z" and s["deployed_by"] == "ann@laptop"
    assert (s["slot"], s["port"]) == ("green", 18002)
    assert s["unit"] == {"name": "lightfold-web@green", "active_state": "active", "sub_state": "running",
                         "restarts": 2}
    assert s["health_now"] == {"ok": True, "status": 200, "error": None, "ms": 3}
    assert [(r["id"], r["status"]) for r in s["releases"]] == [("20260101120000", "live"),
                                                              ("20251231100000", "previous")]
    assert s["disk_free_bytes"] == 5_000_000_000
    assert s["lock"]["holder"] == "bob@ci" and s["lock"]["stale"].startswith("its holder")
    assert operate.live_fingerprint(REPLY) == "fp2"


def test_a_switch_that_failed_after_the_command_returned_shows_in_status():
    """A rollback answers when traffic moved; a crash in its smoke window is reported by status."""
    failed = {**AGENT_STATUS, "last_op": {
        "ok": False, "op": "rollback", "app": "web", "error": "lightfold-web@blue.service went failed/failed "
        "during the 5s smoke window; traffic is back on 20260101120000", "finished_at": "2026-01-01T13:00:09Z"}}
    last = operate.deploy_status(StatusReply.from_dict(failed))["last_switch"]
    assert last["ok"] is False and last["op"] == "rollback" and "traffic is back" in last["error"]
    assert operate.deploy_status(REPLY)["last_switch"] is None


def test_nothing_deployed_gives_the_same_keys_with_empty_values():
    empty = operate.deploy_status(StatusReply.from_dict({"live": {"release": None}, "releases": [], "static": False}))
    assert set(empty) == set(operate.EMPTY_DEPLOY_STATUS)
    assert empty["live_release"] is None and empty["unit"] is None and empty["releases"] == []
    assert operate.live_fingerprint(StatusReply()) is None


def test_status_keys_are_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### status --json keys", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    for key in {**operate.EMPTY_DEPLOY_STATUS, **operate.EMPTY_UPDATES}:
        assert f"`{key}`" in section, key


def test_logs_plan_names_the_slot_units_and_options():
    cmd = operate.logs_command("web", ["green"], lines=50, since="1 hour ago", follow=True)
    argv = shlex.split(cmd)
    assert argv[:2] == ["journalctl", "--no-pager"]
    assert argv[argv.index("-u") + 1] == "lightfold-web@green.service" and argv.count("-u") == 1
    assert argv[argv.index("-n") + 1] == "50" and argv[argv.index("--since") + 1] == "1 hour ago"
    assert argv[-1] == "-f"
    both = shlex.split(operate.logs_command("web", ["blue", "green"]))
    assert both.count("-u") == 2 and "-f" not in both and "--since" not in both


def test_logs_show_both_slots_while_a_switch_runs_or_nothing_is_live():
    assert operate.slots_to_show(REPLY) == ["green"]
    moving = StatusReply.from_dict({**AGENT_STATUS, "switch_in_progress": True})
    assert operate.slots_to_show(moving) == ["blue", "green"]
    assert operate.slots_to_show(StatusReply.from_dict({"live": {"release": None, "slot": None}})) == ["blue", "green"]


def test_build_log_command_prints_the_newest_log_after_its_path(tmp_path):
    builds = tmp_path / "builds"
    builds.mkdir()
    (builds / "20260101120000.log").write_text("old build\n")
    (builds / "20260102120000.log").write_text("new build\nline 2\n")
    cmd = operate.build_log_command("web", None).replace("/srv/web/.lightfold/builds", str(builds))
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.splitlines() == [f"{builds}/20260102120000.log", "new build", "line 2"]
    one = operate.build_log_command("web", "20260101120000").replace("/srv/web/.lightfold/builds", str(builds))
    assert subprocess.run(["sh", "-c", one], capture_output=True, text=True).stdout.splitlines()[1] == "old build"
    missing = operate.build_log_command("web", "20990101120000").replace("/srv/web/.lightfold/builds", str(builds))
    assert subprocess.run(["sh", "-c", missing]).returncode != 0


def test_targets_lists_every_target_from_local_files(lf_home, tmp_path):
    from lightfold import config, state

    def change(c):
        config.set_value(c, "web", "provider", "local", project_path=tmp_path)
        config.set_value(c, "web", "provider_config.local.ip", "10.0.0.5")
        config.set_value(c, "api", "provider", "byos", project_path=tmp_path)

    config.update(change)
    state.update("web", lambda s: setattr(s, "last_release", "20260101120000"))
    rows = {r["target"]: r for r in operate.targets_list()}
    assert rows["web"]["ip"] == "10.0.0.5" and rows["web"]["live_release"] == "20260101120000"
    assert rows["api"]["provider"] == "byos" and rows["api"]["ip"] is None and rows["api"]["live_release"] is None


def test_sync_without_an_address_says_how_to_set_one(lf_home, tmp_path):
    from lightfold import config
    from lightfold.errors import LightfoldError
    from lightfold.release import target as targets

    config.update(lambda c: config.set_value(c, "web", "provider", "byos", project_path=tmp_path))
    with pytest.raises(LightfoldError) as e:
        operate.recover_address(targets.load("web"))
    assert "provider_config.byos.ip" in e.value.fix


def test_cli_rejects_a_bad_release_id_and_lists_targets_as_json(cli, tmp_path):
    bad = cli("rollback", "--target", "web", "--to", "yesterday")
    assert bad.returncode == 2 and "invalid release id 'yesterday'" in bad.stderr
    assert json.loads(cli("targets", "--json").stdout) == []
    only = cli("logs", "--target", "web", "--release", "20260101120000")
    assert only.returncode == 2 and "--release works only with --build" in only.stderr
    unlock = cli("unlock", "--target", "web", input="")
    assert unlock.returncode == 2 and "--yes" in unlock.stderr


def test_lock_holder_process_ends_when_its_stdin_closes():
    """The deploy lock's liveness token: `sh -c 'echo $$; exec cat'` prints its pid and lives
    exactly as long as its stdin (sshd closes it when the CLI's connection drops)."""
    from lightfold.release.locking import HOLDER_COMMAND

    proc = subprocess.Popen(HOLDER_COMMAND, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    assert pid > 0
    assert process_alive(pid)
    proc.stdin.close()
    deadline = time.monotonic() + 5
    while process_alive(pid) and time.monotonic() < deadline:
        proc.poll()
        time.sleep(0.05)
    assert not process_alive(pid)


def _entry(rid: str, status: str, release: str | None = None, backup: str | None = None) -> dict:
    return {"id": rid, "status": status, "release_command": release, "backup_before": backup}


def test_a_rollback_names_the_release_commands_it_goes_back_across_and_their_backups():
    from lightfold.release.migrations import migration_warning, migrations_crossed

    entries = [_entry("20261201000000", "retired", "migrate"), _entry("20261202000000", "previous"),
               _entry("20261203000000", "failed", "migrate", "20261203000001"),
               _entry("20261204000000", "live", "migrate", "20261204000001")]
    crossed = migrations_crossed(entries, None)  # the agent's pick: the previous release
    assert [m["id"] for m in crossed] == ["20261204000000", "20261203000000"]
    assert migrations_crossed(entries, "20261201000000")[-1]["id"] == "20261203000000"  # its own is not crossed
    assert migrations_crossed([_entry("20261202000000", "previous", "migrate"), _entry("20261204000000", "live")],
                              None) == []
    # Read while the rollback ran: the journal may already show it done; the ids it answered decide.
    after = [{**e, "status": "live" if e["id"] == "20261202000000" else e["status"]} for e in entries[:3]]
    after.append({**entries[3], "status": "rolled-back"})
    assert migrations_crossed(after, "20261202000000", "20261204000000") == crossed
    assert migrations_crossed(entries, "20261202000000", "20261204000000") == crossed
    assert migration_warning("shop", crossed[0]) == (
        "release 20261204000000 ran its release command (`migrate`): a rollback does not undo what it changed in "
        "the database; the backup taken just before it is 20261204000001 "
        "(`lightfold backup restore 20261204000001 --target shop --yes`)")
    assert migration_warning("shop", crossed[1]).startswith("release 20261203000000 may have run its release command")
    assert migration_warning("shop", {**crossed[0], "backup_before": None}).endswith(
        "no backup was taken before it (the target had no database then)")


def test_the_release_infos_script_reads_the_journal_and_each_release_json(tmp_path):
    import json
    import subprocess
    import sys

    from lightfold.release.migrations import _RELEASE_INFOS

    journal = tmp_path / "releases.json"
    journal.write_text(json.dumps([{"id": "20261201000000", "status": "previous"},
                                   {"id": "20261202000000", "status": "live"}]))
    meta = tmp_path / "releases" / "20261202000000" / ".lightfold"
    meta.mkdir(parents=True)
    (meta / "release.json").write_text(json.dumps({"release": "flask db upgrade", "backup_before": "20261202000001"}))
    out = subprocess.run([sys.executable, "-c", _RELEASE_INFOS, str(journal), str(tmp_path / "releases")],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [
        {"id": "20261201000000", "status": "previous", "release_command": None, "backup_before": None},
        {"id": "20261202000000", "status": "live", "release_command": "flask db upgrade",
         "backup_before": "20261202000001"}]


def test_status_shows_the_databases_state_never_their_urls():
    from lightfold.release.operate import database_summary

    read = {"mysql": {"installed": True, "active": True, "configured": True, "names": ["DATABASE_URL"],
                      "url": "mysql://shop:****@127.0.0.1:3306/shop", "listening": ["127.0.0.1:3306"]}}
    assert database_summary(read) == {"mysql": {"active": True, "listening": ["127.0.0.1:3306"]}}
    assert database_summary({}) == {} and database_summary(Exception("unreadable")) is None


def test_the_databases_fact_needs_python3_only_when_the_app_has_a_database(tmp_path):
    import subprocess

    from lightfold.release import facts

    fact = facts.databases("shop")
    script = fact.command.replace("/etc/lightfold/apps/shop", str(tmp_path))
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env={"PATH": "/nonexistent"})
    assert fact.parse(out.stdout, out.returncode) == {}  # no database: not even python3 ran
    (tmp_path / "db-redis.env").write_text('REDIS_URL="redis://shop:pw@127.0.0.1:6379/0"\n')
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    value = fact.parse(out.stdout, out.returncode)
    assert list(value) == ["redis"] and value["redis"]["url"] == "redis://shop:****@127.0.0.1:6379/0"


def test_logs_of_several_servers_merge_in_time_order_led_by_the_server():
    got = operate.merged_by_time({
        "web": ["2026-12-08T03:40:02+0000 web lightfold-shop@blue[9]: GET /b",
                "Traceback (most recent call last):", "2026-12-08T03:40:05+0000 web lightfold-shop@blue[9]: GET /d"],
        "web-2": ["2026-12-08T03:40:01+0000 web-2 lightfold-shop@blue[7]: GET /a",
                  "2026-12-08T03:40:03Z worker-1 job done"],
    })
    assert got == ["web-2  2026-12-08T03:40:01+0000 web-2 lightfold-shop@blue[7]: GET /a",
                   "web    2026-12-08T03:40:02+0000 web lightfold-shop@blue[9]: GET /b",
                   "web    Traceback (most recent call last):",  # stays after its line
                   "web-2  2026-12-08T03:40:03Z worker-1 job done",
                   "web    2026-12-08T03:40:05+0000 web lightfold-shop@blue[9]: GET /d"]
    assert operate.merged_by_time({}) == []


def test_logs_of_servers_show_the_others_and_name_the_one_that_did_not_answer(lf_home, monkeypatch):
    import contextlib

    from lightfold import config, state
    from lightfold.errors import LightfoldError
    from lightfold.release import target as targets
    from lightfold.remote import run_sync

    config.update(lambda c: c.targets.__setitem__("shop", config.TargetConfig(
        project_path="/p", provider="local", provider_config={"local": config.ProviderConfig(ip="10.0.0.5")})))
    t = targets.load("shop")
    servers = [state.Server(name="shop", ip="10.0.0.5", role="primary"), state.Server(name="shop-2", ip="10.0.0.6")]

    @contextlib.asynccontextmanager
    async def conn_to(ip):
        yield ip

    async def connect(target):
        if target.server.ip == "10.0.0.6":
            raise LightfoldError("cannot reach 10.0.0.6:22 over SSH (timed out)")
        return conn_to(target.server.ip)

    async def logs(conn, target, *, follow, on_line, **options):
        assert options == {"lines": 5} and target.server.ip == conn
        on_line("2026-12-08T03:40:01+0000 shop lightfold-shop@blue[7]: hello")

    monkeypatch.setattr(targets, "connect", connect)
    monkeypatch.setattr(operate, "logs", logs)
    shown = []
    with pytest.raises(LightfoldError) as e:
        run_sync(operate.logs_of_servers(t, servers, lines=5, on_line=shown.append))
    assert shown == ["shop    2026-12-08T03:40:01+0000 shop lightfold-shop@blue[7]: hello"]
    assert "no log from shop-2: cannot reach 10.0.0.6:22" in e.value.problem
    shown.clear()
    with pytest.raises(LightfoldError):
        run_sync(operate.logs_of_servers(t, servers, lines=5, follow=True, on_line=shown.append))
    assert sorted(shown) == ["shop    2026-12-08T03:40:01+0000 shop lightfold-shop@blue[7]: hello",
                             "shop-2  ! no log from this server: cannot reach 10.0.0.6:22 over SSH (timed out)"]
