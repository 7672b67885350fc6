"""The server journal: status transitions, rollback targets, cleanup selection and reconciliation."""

from __future__ import annotations

import json
import os

import pytest

from lightfold.agent.core import AgentError
from lightfold.agent.files import link_release, swap_symlink, write_atomic
from lightfold.agent.journal import (
    cleanup_selection,
    load_journal,
    record_activation,
    rollback_target,
    save_journal,
    upsert_entry,
)
from lightfold.agent.live import actual_live, load_app_config, reconcile
from lightfold.agent.switch import run_cleanup, write_intent
from lightfold.agent.upstream import render_upstream

IDS = [f"2026010112{m:02d}00" for m in range(10)]


def journal(*statuses):
    entries = []
    for rid, status in zip(IDS, statuses, strict=False):
        upsert_entry(entries, rid, status=status)
    return entries


def statuses(entries):
    return [e["status"] for e in entries]


def test_activation_makes_new_live_and_old_live_previous():
    entries = journal("retired", "previous", "live", "building")
    record_activation(entries, IDS[3], "green", "t")
    assert statuses(entries) == ["retired", "retired", "previous", "live"]
    assert entries[3]["slot"] == "green" and entries[3]["activated_at"] == "t"
    assert entries[2]["slot"] is None


def test_first_activation_has_no_previous():
    entries = journal("building")
    record_activation(entries, IDS[0], "blue", "t")
    assert statuses(entries) == ["live"]


def test_rollback_marks_abandoned_release_and_promotes_an_older_good_one():
    entries = journal("retired", "failed", "previous", "live")
    record_activation(entries, IDS[2], "blue", "t", abandon="rolled-back")
    assert statuses(entries) == ["previous", "failed", "live", "rolled-back"]


def test_rollback_target_is_newest_good_release_older_than_live():
    entries = journal("retired", "previous", "failed", "rolled-back", "live")
    assert rollback_target(entries)["id"] == IDS[1]


def test_second_rollback_does_not_bounce_back_to_abandoned_release():
    entries = journal("retired", "retired", "previous", "live")
    first = rollback_target(entries)
    record_activation(entries, first["id"], "blue", "t", abandon="rolled-back")
    second = rollback_target(entries)
    assert (first["id"], second["id"]) == (IDS[2], IDS[1])
    record_activation(entries, second["id"], "green", "t", abandon="rolled-back")
    assert statuses(entries) == ["previous", "live", "rolled-back", "rolled-back"]


def test_rollback_prefers_what_was_live_before_even_if_its_id_is_older():
    entries = journal("previous", "retired", "live")
    assert rollback_target(entries)["id"] == IDS[0]


def test_rollback_skips_releases_no_longer_on_disk():
    entries = journal("retired", "previous", "live")
    assert rollback_target(entries, available={IDS[0], IDS[2]})["id"] == IDS[0]


@pytest.mark.parametrize(
    ("states", "message"),
    [
        (("failed", "rolled-back", "live"), "no earlier good release"),
        (("previous", "failed"), "nothing is live"),
        (("live",), "no earlier good release"),
    ],
)
def test_nothing_to_roll_back_to_is_a_clear_error(states, message):
    with pytest.raises(AgentError, match=message):
        rollback_target(journal(*states))


def test_rollback_to_explicit_release():
    entries = journal("failed", "previous", "live")
    assert rollback_target(entries, to=IDS[0])["id"] == IDS[0]
    with pytest.raises(AgentError, match="already live"):
        rollback_target(entries, to=IDS[2])
    with pytest.raises(AgentError, match="not in this server's journal"):
        rollback_target(entries, to="20990101000000")


def test_cleanup_keeps_newest_five_plus_live_previous_and_building():
    entries = journal("building", "previous", "retired", "failed", "live",
                      "failed", "failed", "failed", "failed", "failed")
    doomed = cleanup_selection(entries, set(IDS), keep=5)
    assert doomed == [IDS[2], IDS[3]]


def test_cleanup_never_deletes_unjournaled_release_newer_than_live():
    entries = journal("retired", "retired", "live")
    orphan_new, orphan_old = "20270101000000", "20200101000000"
    doomed = cleanup_selection(entries, {*IDS[:3], orphan_new, orphan_old}, keep=1)
    assert doomed == [orphan_old, IDS[0], IDS[1]]


def test_run_cleanup_removes_release_dirs_env_snapshots_and_journal_entries(lay, root, release):
    for rid in IDS[:8]:
        release(rid, env="A=1\n")
    entries = journal("retired", "previous", "retired", "retired", "live", "failed", "failed", "failed")
    save_journal(lay, entries)
    removed = run_cleanup(lay, 5, "tester")
    assert removed == [IDS[0], IDS[2]]
    for rid in removed:
        assert not (root / "srv/web/releases" / rid).exists()
        assert not (root / "srv/web/env" / f"{rid}.env").exists()
    assert [e["id"] for e in load_journal(lay)] == [IDS[1], *IDS[3:8]]
    assert (root / "srv/web/releases" / IDS[1]).is_dir()
    audit = [json.loads(line) for line in (root / "srv/web/.lightfold/audit.log").read_text().splitlines()]
    assert audit[-1]["op"] == "cleanup" and audit[-1]["removed"] == removed and audit[-1]["by"] == "tester"


def test_cleanup_sweeps_what_failed_pushes_leave_behind(lay, root, release):
    """issue 18: upload temp files and build logs of forgotten releases would fill the disk."""
    import os
    import time

    for rid in IDS[:2]:
        release(rid)
    save_journal(lay, journal("retired", "live"))
    meta = root / "srv/web/.lightfold"
    (meta / "builds").mkdir(parents=True)
    old, fresh = time.time() - 7200, time.time() - 60
    files = {".lightfold-upload.AbC123": old, f"upload-{IDS[5]}.tar.gz": old, f"upload-{IDS[6]}.tar.gz": fresh,
             f"builds/{IDS[1]}.log": old, f"builds/{IDS[7]}.log": old, "builds/notes.txt": old}
    for name, mtime in files.items():
        (meta / name).write_text("x")
        os.utime(meta / name, (mtime, mtime))
    run_cleanup(lay, 5, "tester")
    left = {str(p.relative_to(meta)) for p in meta.rglob("*") if p.is_file()}
    assert f"upload-{IDS[6]}.tar.gz" in left  # young: a push may still be using it
    assert f"builds/{IDS[1]}.log" in left and "builds/notes.txt" in left  # a journaled release's log; not ours
    assert not {".lightfold-upload.AbC123", f"upload-{IDS[5]}.tar.gz", f"builds/{IDS[7]}.log"} & left


def test_cleanup_removes_the_build_log_and_upload_of_a_removed_release(lay, root, release):
    for rid in IDS[:7]:
        release(rid)
    save_journal(lay, journal("retired", "retired", "retired", "retired", "retired", "previous", "live"))
    meta = root / "srv/web/.lightfold"
    (meta / "builds").mkdir(parents=True)
    (meta / f"builds/{IDS[0]}.log").write_text("log")
    (meta / f"upload-{IDS[0]}.tar.gz").write_text("tgz")
    assert IDS[0] in run_cleanup(lay, 5, "tester")
    assert not (meta / f"builds/{IDS[0]}.log").exists() and not (meta / f"upload-{IDS[0]}.tar.gz").exists()


def test_a_releases_created_at_is_set_once():
    """The switch copies release.json's fields into the journal: its created_at (the laptop's
    clock) must not replace the one journal_mark stamped by the server's."""
    entries: list[dict] = []
    upsert_entry(entries, "20260101000000", status="building", created_at="2026-01-01T00:00:05Z")
    entry = upsert_entry(entries, "20260101000000", commit="abc", created_at="2026-01-01T05:00:00Z")
    assert entry["created_at"] == "2026-01-01T00:00:05Z" and entry["commit"] == "abc"
    assert upsert_entry(entries, "20260101000001", created_at="2026-01-01T05:00:01Z")["created_at"] == \
        "2026-01-01T05:00:01Z"  # a new entry takes it


def test_journal_write_is_atomic_and_sorted(lay, root):
    entries = journal("retired", "live")
    save_journal(lay, list(reversed(entries)))
    meta = root / "srv/web/.lightfold"
    assert [p.name for p in meta.iterdir()] == ["releases.json"]
    assert [e["id"] for e in json.loads((meta / "releases.json").read_text())] == IDS[:2]


def point_upstream_at(lay, slot, rid):
    port = load_app_config(lay, {})["ports"][slot]
    write_atomic(lay.upstream, render_upstream(port, slot, rid).encode())


def test_reconcile_trusts_nginx_after_an_interrupted_switch(lay, release, app_json):
    """The agent died after flipping nginx to green but before journaling: green's release is live."""
    app_json()
    cfg = load_app_config(lay, {})
    release(IDS[0])
    release(IDS[1])
    save_journal(lay, journal("live", "building"))
    swap_symlink(lay.slot_link("blue"), f"../releases/{IDS[0]}")
    swap_symlink(lay.slot_link("green"), f"../releases/{IDS[1]}")
    swap_symlink(lay.current, f"releases/{IDS[0]}")
    point_upstream_at(lay, "green", IDS[1])
    notes = reconcile(lay, cfg, "tester")
    assert notes
    entries = load_journal(lay)
    assert statuses(entries) == ["previous", "live"] and entries[1]["slot"] == "green"
    assert link_release(lay.current) == IDS[1]
    assert reconcile(lay, cfg, "tester") == []


def test_reconcile_completes_interrupted_rollback_from_intent(lay, release, app_json):
    app_json()
    cfg = load_app_config(lay, {})
    for rid in IDS[:3]:
        release(rid)
    save_journal(lay, journal("retired", "previous", "live"))
    swap_symlink(lay.slot_link("blue"), f"../releases/{IDS[1]}")
    swap_symlink(lay.slot_link("green"), f"../releases/{IDS[2]}")
    write_intent(lay, "rollback", IDS[2], IDS[1])
    point_upstream_at(lay, "blue", IDS[1])
    reconcile(lay, cfg, None)
    assert statuses(load_journal(lay)) == ["previous", "live", "rolled-back"]
    assert not os.path.exists(lay.switch_intent)


def test_reconcile_marks_activation_interrupted_before_flip_failed(lay, release, app_json):
    app_json()
    cfg = load_app_config(lay, {})
    release(IDS[0])
    release(IDS[1])
    save_journal(lay, journal("live", "building"))
    swap_symlink(lay.slot_link("blue"), f"../releases/{IDS[0]}")
    write_intent(lay, "activate", IDS[0], IDS[1])
    point_upstream_at(lay, "blue", IDS[0])
    reconcile(lay, cfg, None)
    entries = load_journal(lay)
    assert statuses(entries) == ["live", "failed"] and "interrupted" in entries[1]["reason"]


def test_upstream_placeholder_without_slot_link_means_nothing_is_live(lay, app_json):
    app_json()
    cfg = load_app_config(lay, {})
    point_upstream_at(lay, "blue", "none")
    assert actual_live(lay, cfg) == (None, None)
    assert reconcile(lay, cfg, None) == []
