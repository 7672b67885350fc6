"""lightfold.release.push: the push's decision (skip / env-only / reuse dependencies / full) from
recorded agent status replies, release ids, the env hash, the URL and the commands push runs (as
text). What a push does on a server is in tests/e2e (test_deploy_*.py)."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from types import SimpleNamespace

import pytest

from lightfold.agent.protocol import StatusReply
from lightfold.release import push

LIVE = "20260101120000"


def status(*, fingerprint="fp", env_hash="e1", builder="native", deps_hash="d1", live=LIVE, entry=True):
    """A status reply with `live` live (its release.json says builder and deps_hash)."""
    releases = [{"id": live, "status": "live", "fingerprint": fingerprint, "env_hash": env_hash}] if entry else []
    return StatusReply.from_dict({
        "ok": True, "op": "status", "app": "web",
        "live": {"release": live, "slot": "blue", "port": 18001,
                 "info": {"id": live, "builder": builder, "deps_hash": deps_hash, "fingerprint": fingerprint}},
        "releases": releases + [{"id": "20251231100000", "status": "previous", "fingerprint": "old"}],
    })


NOTHING_LIVE = StatusReply.from_dict({"ok": True, "op": "status", "app": "web", "live": {"release": None}})


def test_the_same_code_env_and_settings_skip():
    d = push.decide(status(), "fp", "e1", deps_hash="d1")
    assert (d.kind, d.live, d.skipped) == ("skipped", LIVE, True)


def test_only_a_new_env_copies_the_live_build():
    d = push.decide(status(), "fp", "e2", deps_hash="d1")
    assert (d.kind, d.live, d.reuse_from) == ("env-only", LIVE, LIVE)


def test_a_live_release_of_another_builder_is_built_anew_even_for_an_env_change():
    d = push.decide(status(builder="dockerfile"), "fp", "e2", builder="native", deps_hash="d1")
    assert d.kind == "deps-reused"  # the lockfiles did not change, the dependencies still can be reused
    d = push.decide(status(builder="dockerfile", deps_hash=None), "fp", "e2", builder="native", deps_hash="d1")
    assert (d.kind, d.reuse_from) == ("full", None)
    # a release.json without a builder was built natively
    assert push.decide(status(builder=None), "fp", "e2", builder="native").kind == "env-only"


def test_changed_code_with_the_same_lockfiles_reuses_the_dependencies():
    d = push.decide(status(), "fp2", "e1", deps_hash="d1")
    assert (d.kind, d.reuse_from, d.live) == ("deps-reused", LIVE, LIVE)


def test_changed_lockfiles_or_no_lockfile_build_in_full():
    assert push.decide(status(), "fp2", "e1", deps_hash="d2").kind == "full"
    assert push.decide(status(), "fp2", "e1", deps_hash=None).kind == "full"
    assert push.decide(status(deps_hash=None), "fp2", "e1", deps_hash=None).kind == "full"


def test_force_never_skips_nor_copies_but_still_reuses_unchanged_dependencies():
    assert push.decide(status(), "fp", "e1", force=True, deps_hash="d1").kind == "deps-reused"
    assert push.decide(status(), "fp", "e2", force=True, deps_hash="d1").kind == "deps-reused"
    assert push.decide(status(), "fp", "e1", force=True, deps_hash="d2").kind == "full"


def test_nothing_live_is_a_full_build_with_no_previous():
    d = push.decide(NOTHING_LIVE, "fp", "e1", deps_hash="d1")
    assert (d.kind, d.live, d.reuse_from) == ("full", None, None)


def test_a_live_release_missing_from_the_journal_is_never_skipped_but_its_dependencies_count():
    s = status(entry=False)
    assert push.decide(s, "fp", "e1", deps_hash="d1").kind == "deps-reused"
    assert push.decide(s, "fp", "e1", deps_hash="d2").kind == "full"


def test_release_ids_are_utc_seconds_later_than_every_existing_one():
    now = dt.datetime(2026, 1, 1, 12, 0, 0, 500, tzinfo=dt.UTC)
    assert push.new_release_id([], now) == "20260101120000"
    assert push.new_release_id(["20260101120000"], now) == "20260101120001"
    assert push.new_release_id(["20260101120000", "20260101120001", "20251231000000"], now) == "20260101120002"
    assert push.new_release_id(["20270101000000"], now) == "20270101000001"


def test_the_env_hash_is_canonical_json_like_the_agents():
    import hashlib

    assert push.env_hash({"B": "2", "A": "ü"}) == push.env_hash({"A": "ü", "B": "2"})
    canonical = json.dumps({"A": "ü", "B": "2"}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert push.env_hash({"B": "2", "A": "ü"}) == hashlib.sha256(canonical.encode()).hexdigest()
    assert push.env_hash({}) != push.env_hash({"A": ""})


@pytest.mark.parametrize(("domain", "url"), [
    (None, "http://10.0.0.5/"),
    (SimpleNamespace(domain="shop.example.com", ssl=True), "https://shop.example.com/"),
    (SimpleNamespace(domain="shop.example.com", ssl=False), "http://shop.example.com/"),
])
def test_the_public_url_is_the_domain_when_there_is_one(domain, url):
    target = SimpleNamespace(config=SimpleNamespace(domain=domain), server=SimpleNamespace(ip="10.0.0.5"))
    assert push.public_url(target) == url


def test_the_env_only_copy_hard_links_the_live_release_and_replaces_its_release_json():
    """The live release is root's (sealed): root copies it, with no process of the build user
    alive (it could plant the new path) and only to a path that does not exist yet."""
    cmd = push._copy_release_command("web", LIVE, "20260101130000", {"env_hash": "e2", "commit": "abc"})
    argv = shlex.split(cmd)
    new = "/srv/web/releases/20260101130000"
    assert argv[:7] == ["{", "pkill", "-KILL", "-U", "lfb-web;", "true;", "}"]
    assert argv[8:19] == ["[", "!", "-e", new, "]", "&&", "[", "!", "-L", new, "]"]
    assert argv[20:25] == ["cp", "-a", "--link", f"/srv/web/releases/{LIVE}", new]
    assert "runuser" not in argv and argv[26:28] == ["python3", "-c"]
    assert argv[29] == f"{new}/.lightfold/release.json"
    assert json.loads(argv[30]) == {"id": "20260101130000", "env_hash": "e2", "commit": "abc"}
    assert "os.replace" in argv[28]  # a new file: the old one is a hard link to the live release's


def test_the_release_json_rewrite_never_writes_through_a_planted_symlink(tmp_path):
    """issue 13 item 1: a symlinked release.json.new in the copied release must not be followed."""
    import subprocess
    import sys

    argv = shlex.split(push._copy_release_command("web", LIVE, "20260101130000", {"env_hash": "e2"}))
    meta = tmp_path / ".lightfold"
    meta.mkdir()
    (meta / "release.json").write_text(json.dumps({"id": LIVE, "commit": "abc"}))
    victim = tmp_path / "agent.py"
    victim.write_text("the agent\n")
    (meta / "release.json.new").symlink_to(victim)
    r = subprocess.run([sys.executable, "-c", argv[28], str(meta / "release.json"), argv[30]],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "the agent\n"
    assert json.loads((meta / "release.json").read_text()) == {"id": "20260101130000", "commit": "abc",
                                                               "env_hash": "e2"}
    assert not (meta / "release.json").is_symlink()


def test_the_build_log_lives_in_the_apps_builds_dir():
    assert push.build_log_path("web", "20260101130000") == "/srv/web/.lightfold/builds/20260101130000.log"


def test_the_build_log_header_tees_everything_the_build_prints_into_a_root_only_log(tmp_path):
    import os
    import subprocess

    header = push.build_log_header("web", "20260101130000")
    assert "/srv/web/.lightfold/builds/20260101130000.log" in header and "umask 077" in header
    here = header.replace("/srv/web/.lightfold/builds", str(tmp_path / "builds"))
    script = here + 'echo \'{"build": "install", "status": "start"}\'\necho "npm warn" >&2\nexit 3\n'
    res = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True)
    assert res.returncode == 3  # the build's own exit status
    assert res.stdout == '{"build": "install", "status": "start"}\n' and res.stderr == "npm warn\n"
    log = tmp_path / "builds" / "20260101130000.log"
    assert sorted(log.read_text().splitlines()) == ['npm warn', '{"build": "install", "status": "start"}']
    assert os.stat(log).st_mode & 0o777 == 0o600


def test_the_archive_is_unpacked_from_stdin_as_the_build_user():
    from lightfold.server.build import extract_command

    cmd = extract_command("web", "20260101130000")
    rel = "/srv/web/releases/20260101130000"
    assert cmd.endswith(f" && runuser -u lfb-web -- sh -c 'umask 022 && mkdir -m 755 {rel}"
                        f" && exec tar -xzf - -C {rel} --no-same-owner --no-same-permissions'")


def test_the_laptop_keys_its_env_hash_with_the_servers_key_before_deciding():
    """The server stores HMACs (its key in the status reply): the laptop's hash of the same env
    must equal it, so an unchanged env still skips, and a changed one does not."""
    from pathlib import Path

    key = "ab" * 32
    env = {"PASSWORD": "1234"}
    reply = status(env_hash=push.env_hash(env, key))
    reply.env_key = key
    local = push._Local(Path("."), None, [], env, "fp", push.env_hash(env), None, False)
    keyed = push._keyed(local, reply)
    assert keyed.env_hash == push.env_hash(env, key) != local.env_hash
    assert push.decide(reply, "fp", keyed.env_hash, deps_hash="d1").skipped
    changed = push._keyed(push._Local(Path("."), None, [], {"PASSWORD": "12345"}, "fp", "", None, False), reply)
    assert push.decide(reply, "fp", changed.env_hash, deps_hash="d1").kind == "env-only"
    assert "env_key" not in repr(reply) and key not in repr(reply)


def test_the_switchs_timings_become_pushs_slot_start_boot_and_nginx():
    from lightfold.agent.protocol import SwitchResult
    from lightfold.release.agent_client import switch_timings

    reply = SwitchResult.from_dict({"timings": {"started_s": 0.05, "healthy_s": 0.2, "nginx_s": 0.06,
                                                "switched_s": 0.33}})
    assert switch_timings(reply) == {"slot_start": 0.05, "boot": 0.2, "nginx": 0.06}
    older_agent = SwitchResult.from_dict({"timings": {"healthy_s": 0.2, "switched_s": 0.3}})
    assert switch_timings(older_agent) == {"boot": 0.2} and switch_timings(SwitchResult.from_dict({})) == {}
