"""Configure drift (issue 18): the marker records the files the plan writes whole, the marker fact
adds their hashes on the server now, and a configure whose fingerprint matches still runs, and
says what it put back, when one of them was changed by hand."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from types import SimpleNamespace

from tests.unit.server.test_configure import AGENT, spec

from lightfold.release import configure as configure_mod
from lightfold.release import scripts
from lightfold.server.configure import configure_plan
from lightfold.server.markers import drifted, marker_path, marker_read_command, owned_files, parse_marker
from lightfold.server.plan import Plan, Step, WriteFile


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_marker_records_every_file_the_plan_writes_whole_and_only_those(tmp_path):
    site = "/etc/nginx/sites-enabled/lightfold-shop.conf"
    plan = Plan((Step("x", (WriteFile(site, "A"), WriteFile("/etc/lightfold-shop.once", "1", only_if_absent=True),
                            WriteFile("/etc/lightfold-shop.cond", "c", unless="true"))),))
    assert owned_files(plan, "shop") == {site: sha(b"A")}
    cfg = configure_plan(spec(), agent_files=AGENT)
    files = owned_files(cfg.plan, "shop")
    assert sorted(files) == ["/etc/lightfold/apps/shop/app.json", site,
                             "/etc/systemd/system/lightfold-shop.cron@.service",
                             "/etc/systemd/system/lightfold-shop.proc@.service",
                             "/etc/systemd/system/lightfold-shop@.service"]
    marker = tmp_path / "configured"
    subprocess.run(["bash", "-c", cfg.marker.actions[0].command.replace(marker_path("shop"), str(marker))], check=True)
    assert json.loads(marker.read_text())["files"] == files


def test_the_marker_fact_reads_each_files_hash_now_and_drifted_names_the_changed_and_missing(tmp_path):
    a, b, c = tmp_path / "a.conf", tmp_path / "b.conf", tmp_path / "c.conf"
    a.write_text("A")
    b.write_text("B")
    marker = tmp_path / "configured"
    marker.write_text(json.dumps({"fingerprint": "f", "files": {str(a): sha(b"A"), str(b): sha(b"B"),
                                                                str(c): sha(b"C")}}))
    command = marker_read_command("shop").replace(marker_path("shop"), str(marker))

    def read() -> dict:
        return parse_marker(subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout)

    assert drifted(read()) == [str(c)]  # missing
    c.write_text("C")
    assert drifted(read()) == []
    b.write_text("B edited by hand")
    assert drifted(read()) == [str(b)]
    marker.unlink()
    assert parse_marker(subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout) is None


def test_an_older_marker_without_files_never_counts_as_drift():
    assert drifted({"fingerprint": "f"}) == [] and drifted(None) == []
    assert drifted({"fingerprint": "f", "files": {"/x": "h"}}) == []  # no current hashes read


def test_a_matching_fingerprint_with_a_drifted_file_reruns_configure_and_says_what_it_put_back(
        lf_home, monkeypatch):
    plan = SimpleNamespace(fingerprint="fp", plan=Plan((Step("nginx", ()),)), script="true")
    monkeypatch.setattr(configure_mod, "plan_for", lambda *a, **k: plan)
    ran = []

    async def run_plan(conn, script, on_event, **_):
        ran.append(script)
        on_event({"step": "nginx", "status": "start"})
        on_event({"step": "nginx", "status": "done", "changed": True})
        return scripts.PlanRun(0, "", "", {})

    monkeypatch.setattr(scripts, "run_plan", run_plan)
    notes = []
    target = SimpleNamespace(name="shop")
    site = "/etc/nginx/sites-enabled/lightfold-shop.conf"
    same = {"marker": {"fingerprint": "fp", "files": {site: "h"}, "current": {site: "h"}}}
    result = asyncio.run(configure_mod.configure(None, target, None, server_facts=same,
                                                 report=lambda kind, msg: notes.append((kind, msg))))
    assert result.skipped and not ran

    edited = {"marker": {"fingerprint": "fp", "files": {site: "h"}, "current": {site: "other"}}}
    result = asyncio.run(configure_mod.configure(None, target, None, server_facts=edited,
                                                 report=lambda kind, msg: notes.append((kind, msg))))
    assert not result.skipped and ran == ["true"]
    assert result.repaired == [site] and result.changed == ["nginx"]
    assert ("warn", f"changed on the server since the last configure: {site}; putting it back") in notes
