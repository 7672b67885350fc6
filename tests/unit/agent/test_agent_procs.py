"""Moving the other processes and cron timers to a release (agent/procs.py) under a temp root, with
systemd stood in for (it records the calls); the e2e test test_processes.py runs it for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from tests.unit.agent.conftest import NEW_RID, OLD_RID, blue_live_and_systemd_ok

from lightfold.agent import procs, switch
from lightfold.agent.core import AgentError, Ran
from lightfold.agent.files import read_text, swap_symlink
from lightfold.agent.journal import load_journal
from lightfold.agent.upstream import upstream_port

OLD, NEW = OLD_RID, NEW_RID
WORKER = {"name": "worker", "command": "python w.py", "count": 2, "stop_timeout": 7}


def with_procs(rel, processes, cron):
    path = rel / ".lightfold/release.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "processes": processes, "cron": cron}))


class FakeSystemd:
    def __init__(self):
        self.calls: list[tuple[str, ...]] = []
        self.failing: set[str] = set()

    def systemctl(self, *args):
        self.calls.append(args)
        return Ran(0, "", "")

    def unit_state(self, unit):
        bad = unit in self.failing and any(c[0] == "start" and unit in c for c in self.calls)
        return {"active_state": "failed" if bad else "active", "sub_state": "failed" if bad else "running",
                "n_restarts": 0, "result": "exit-code" if bad else "success", "exit_status": "1" if bad else "0"}

    def verbs(self):
        return [(c[0], *[a for a in c[1:] if not a.startswith("--")]) for c in self.calls]


@pytest.fixture
def sd(monkeypatch):
    fake = FakeSystemd()
    monkeypatch.setattr(procs, "systemctl", fake.systemctl)
    monkeypatch.setattr(procs, "unit_state", fake.unit_state)
    monkeypatch.setattr(procs, "journal_tail", lambda unit: [f"{unit}: boom"])
    return fake


@pytest.fixture
def two_releases(lay, release, app_json):
    app_json()
    old = release(OLD, env="A=1\nPORT=9\n")
    new = release(NEW, env="A=2\nPORT=9\n")
    with_procs(old, [WORKER], [{"name": "tick", "schedule": "*:*:0", "command": "t", "timeout": 60},
                               {"name": "gone", "schedule": "daily", "command": "g", "timeout": 60}])
    with_procs(new, [{**WORKER, "count": 1}], [{"name": "tick", "schedule": "*:0/5", "command": "t", "timeout": 90}])
    swap_symlink(lay.procs_link, f"../releases/{OLD}")
    return old, new


def test_move_stops_the_old_instances_before_starting_the_new(lay, two_releases, sd):
    result = procs.move_procs(lay, NEW, settle=0)
    assert os.readlink(lay.procs_link) == f"../releases/{NEW}"
    verbs = sd.verbs()
    stop = verbs.index(("stop", "lightfold-web.proc@worker-1.service", "lightfold-web.proc@worker-2.service"))
    start = verbs.index(("start", "lightfold-web.proc@worker-1.service"))
    assert stop < start
    assert ("disable", "lightfold-web.proc@worker-2.service") in verbs
    assert ("enable", "lightfold-web.proc@worker-1.service") in verbs
    assert ("disable", "lightfold-web.cron-gone.timer") in verbs and ("daemon-reload",) in verbs
    assert ("enable", "lightfold-web.cron-tick.timer") in verbs
    assert result["timers"] == ["lightfold-web.cron-tick.timer"]
    env = read_text(lay.procs_env)
    assert "A=\"2\"" in env and "PORT" not in env and oct(os.stat(lay.procs_env).st_mode & 0o777) == "0o600"
    timer = read_text(lay.cron_timer_file("tick"))
    assert "OnCalendar=*:0/5\n" in timer and "Persistent=false" in timer
    assert "Unit=lightfold-web.cron@tick.service" in timer
    assert not os.path.exists(lay.cron_timer_file("gone"))
    assert read_text(lay.unit_dropin("lightfold-web.proc@worker-1.service")) == "[Service]\nTimeoutStopSec=7\n"
    assert read_text(lay.unit_dropin("lightfold-web.cron@tick.service")) == "[Service]\nRuntimeMaxSec=90\n"


def test_an_unchanged_move_does_not_reload_systemd(lay, two_releases, sd):
    procs.move_procs(lay, NEW, settle=0)
    sd.calls.clear()
    procs.move_procs(lay, NEW, settle=0)
    assert ("daemon-reload",) not in sd.verbs()


def test_an_app_without_processes_costs_no_systemctl(lay, release, app_json, sd):
    app_json()
    release(OLD, env="A=1\n")
    procs.move_procs(lay, OLD)
    assert sd.calls == [] and os.readlink(lay.procs_link) == f"../releases/{OLD}"


def test_a_process_that_does_not_start_fails_the_move(lay, two_releases, sd):
    sd.failing.add("lightfold-web.proc@worker-1.service")
    with pytest.raises(AgentError, match="did not start") as e:
        procs.move_procs(lay, NEW, settle=0)
    assert e.value.log_tail == ["lightfold-web.proc@worker-1.service: boom"]


def test_a_bad_schedule_is_refused_before_anything_stops(lay, two_releases, sd):
    with_procs(two_releases[1], [], [{"name": "tick", "schedule": "daily\nExecStart=/bin/sh", "command": "t"}])
    with pytest.raises(AgentError, match="no valid schedule"):
        procs.move_procs(lay, NEW, settle=0)
    assert sd.calls == []


def test_status_view_lists_instances_and_jobs(lay, two_releases, sd, monkeypatch):
    monkeypatch.setattr(procs, "show", lambda unit, props: {"ActiveState": "inactive", "Result": "success",
                                                            "ExecMainStartTimestamp": "@1767225600",
                                                            "NextElapseUSecRealtime": "@1767225660"})
    view = procs.status_view(lay)
    assert [(p["instance"], p["state"], p["release"]) for p in view["processes"]] == [
        ("worker-1", "active", OLD), ("worker-2", "active", OLD)]
    tick = view["cron"][0]
    assert (tick["name"], tick["last_run"], tick["last_result"], tick["next_run"]) == (
        "tick", "2026-01-01T00:00:00Z", "success", "2026-01-01T00:01:00Z")


@pytest.fixture
def live_blue(lay, two_releases, monkeypatch):
    cfg = blue_live_and_systemd_ok(lay, monkeypatch)
    monkeypatch.setattr(procs, "START_SETTLE_SECONDS", 0)
    return cfg


def test_a_switch_moves_the_processes_after_the_smoke_window(lay, live_blue, sd):
    result = switch.switch_to(lay, live_blue, NEW, {"smoke_seconds": 0, "drain_seconds": 0}, "activate")
    assert result["release"] == NEW and os.readlink(lay.procs_link) == f"../releases/{NEW}"


def test_a_worker_that_fails_to_start_flips_everything_back(lay, live_blue, sd):
    sd.failing.add("lightfold-web.proc@worker-1.service")
    with pytest.raises(AgentError) as e:
        switch.switch_to(lay, live_blue, NEW, {"smoke_seconds": 0, "drain_seconds": 0}, "activate")
    assert e.value.extra.get("flipped_back") is True and "did not start" in e.value.error
    assert os.readlink(lay.procs_link) == f"../releases/{OLD}"
    assert upstream_port(read_text(lay.upstream)) == live_blue["ports"]["blue"]
    entries = {x["id"]: x for x in load_journal(lay)}
    assert entries[OLD]["status"] == "live" and entries[NEW]["status"] == "failed"
    verbs = sd.verbs()
    # the new worker is stopped before the old ones start again: never two versions at once
    last_stop_new = max(i for i, v in enumerate(verbs) if v[0] == "stop" and "lightfold-web.proc@worker-1.service" in v
                        and i > verbs.index(("start", "lightfold-web.proc@worker-1.service")))
    restart_old = verbs.index(("start", "lightfold-web.proc@worker-1.service", "lightfold-web.proc@worker-2.service"))
    assert last_stop_new < restart_old


@pytest.mark.parametrize("raw, iso", [
    ("@1767225600", "2026-01-01T00:00:00Z"), ("1767225600000000", "2026-01-01T00:00:00Z"),
    ("Thu 2026-01-01 00:00:00 UTC", "2026-01-01T00:00:00Z"), ("", None), ("n/a", None), ("0", None),
    ("@0", None), (None, None),
])
def test_systemd_timestamps_in_every_form_systemctl_prints(raw, iso):
    assert procs.unix_to_iso(raw) == iso


def test_reconcile_moves_processes_left_on_the_old_release_by_an_interrupted_switch(lay, live_blue, sd):
    """Traffic and the journal are on NEW (the switch flipped and recorded it) but the agent died
    before the processes moved: the next op's reconcile moves them, old ones stopped first."""
    from lightfold.agent.files import write_atomic
    from lightfold.agent.journal import record_activation, save_journal
    from lightfold.agent.live import reconcile
    from lightfold.agent.upstream import render_upstream

    entries = load_journal(lay)
    record_activation(entries, NEW, "green", "2026-01-01T12:01:00Z", "previous")
    save_journal(lay, entries)
    swap_symlink(lay.slot_link("green"), f"../releases/{NEW}")
    swap_symlink(lay.current, f"releases/{NEW}")
    write_atomic(lay.upstream, render_upstream(live_blue["ports"]["green"], "green", NEW).encode())
    notes = reconcile(lay, live_blue, "test")
    assert any(f"not the live {NEW}: moved them" in n for n in notes), notes
    assert os.readlink(lay.procs_link) == f"../releases/{NEW}"
    verbs = sd.verbs()
    assert verbs.index(("stop", "lightfold-web.proc@worker-1.service", "lightfold-web.proc@worker-2.service")) < \
        verbs.index(("start", "lightfold-web.proc@worker-1.service"))
    assert not any("processes" in n for n in reconcile(lay, live_blue, "test"))  # nothing left to do


def test_cron_runs_on_one_server_only_workers_everywhere(lay, release, app_json, sd):
    """An app server of a target on several servers that is not the primary has "cron": false in
    its app.json (configure writes it): its workers run, its cron timers are never written."""
    app_json(cron=False)
    rel = release(NEW, env="A=2\n")
    with_procs(rel, [{**WORKER, "count": 1}], [{"name": "tick", "schedule": "*:0/5", "command": "t", "timeout": 90}])
    result = procs.move_procs(lay, NEW, settle=0)
    assert result["timers"] == [] and not os.path.exists(lay.cron_timer_file("tick"))
    assert ("start", "lightfold-web.proc@worker-1.service") in sd.verbs()
    assert procs.release_procs(lay, NEW)[1] == []


def test_a_process_for_the_primary_only_runs_on_the_primary(lay, release, app_json, sd):
    """servers = "primary" (a scheduler): started on the primary, never on the other servers,
    whose other workers still run."""
    scheduler = {"name": "scheduler", "command": "python s.py", "count": 1, "stop_timeout": 5, "servers": "primary"}
    app_json(cron=False)
    rel = release(NEW, env="A=2\n")
    with_procs(rel, [{**WORKER, "count": 1}, scheduler], [])
    assert [p["name"] for p in procs.release_procs(lay, NEW)[0]] == ["worker"]
    procs.move_procs(lay, NEW, settle=0)
    started = [v for v in sd.verbs() if v[0] == "start"]
    assert ("start", "lightfold-web.proc@worker-1.service") in started
    assert not any("scheduler" in " ".join(v) for v in sd.verbs()), sd.verbs()
    app_json()  # the primary
    assert [p["name"] for p in procs.release_procs(lay, NEW)[0]] == ["worker", "scheduler"]


# -- a cron run going at deploy time: deploy_grace ----------------------------------------------

RUN_ID = "0123456789abcdef0123456789abcdef"
TICK_UNIT = "lightfold-web.cron@tick.service"


@pytest.fixture
def running_tick(lay, two_releases, sd, monkeypatch):
    """tick is running (invocation RUN_ID) on OLD when the move starts; systemd-run is recorded."""
    state = {"active": True, "grace": 20}

    def set_grace(grace):
        state["grace"] = grace
        tick = {"name": "tick", "schedule": "*:*:0", "command": "t", "timeout": 60}
        with_procs(two_releases[0], [WORKER], [{**tick, **({} if grace is None else {"deploy_grace": grace})}])

    def show(unit, props):
        on = state["active"] and unit == TICK_UNIT
        return {"ActiveState": "active" if on else "inactive", "InvocationID": RUN_ID if on else "",
                "MainPID": "4242" if on else "0"}

    runs: list[list[str]] = []
    state["run_release"] = OLD
    monkeypatch.setattr(procs, "show", show)
    monkeypatch.setattr(procs, "run_release", lambda lay, pid: state["run_release"] if pid == "4242" else None)
    monkeypatch.setattr(procs, "run", lambda argv, timeout=90: runs.append(argv) or Ran(0, "", ""))
    set_grace(20)
    state["set_grace"], state["runs"] = set_grace, runs
    return state


def test_a_run_spanning_a_deploy_is_stopped_after_its_grace_by_a_transient_timer(lay, running_tick, sd):
    procs.move_procs(lay, NEW, settle=0)
    [argv] = running_tick["runs"]
    assert argv[:3] == ["systemd-run", "--quiet", "--collect"]
    assert re.fullmatch(f"--unit=lightfold-web.cron-grace-tick-{RUN_ID}-[0-9]{{10}}", argv[3]), argv[3]
    assert argv[4:6] == ["--on-active=20s", "--timer-property=AccuracySec=1s"]
    assert argv[6:10] == ["--description=lightfold app web: deploy grace of cron job tick", "/usr/bin/python3",
                          "-I", "-c"]
    assert argv[11:16] == [TICK_UNIT, RUN_ID, lay.procs_link, OLD, "20"]
    assert not any(c in a for a in argv for c in "$%")  # systemd would expand them
    # the run itself is not stopped by the move, only the old worker instances are
    assert not any(v[0] == "stop" and TICK_UNIT in v for v in sd.verbs())


def test_deploy_grace_0_stops_the_run_with_the_old_instances_before_anything_starts(lay, running_tick, sd):
    running_tick["set_grace"](0)
    procs.move_procs(lay, NEW, settle=0)
    verbs = sd.verbs()
    stop = verbs.index(("stop", "lightfold-web.proc@worker-1.service", "lightfold-web.proc@worker-2.service",
                        TICK_UNIT))
    assert stop < verbs.index(("start", "lightfold-web.proc@worker-1.service"))
    assert running_tick["runs"] == []


@pytest.mark.parametrize("grace", [None, 60, 600])  # unset, or not shorter than the job's timeout (60)
def test_without_a_grace_shorter_than_its_timeout_the_run_finishes_on_its_release(lay, running_tick, sd, grace):
    running_tick["set_grace"](grace)
    procs.move_procs(lay, NEW, settle=0)
    assert running_tick["runs"] == [] and not any(TICK_UNIT in v for v in sd.verbs() if v[0] == "stop")


def test_no_grace_timer_when_no_run_is_going_or_the_release_does_not_change(lay, running_tick, sd):
    running_tick["active"] = False
    procs.move_procs(lay, NEW, settle=0)
    running_tick["active"] = True
    procs.move_procs(lay, NEW, settle=0)  # NEW to NEW: nothing leaves its release
    assert running_tick["runs"] == []


def test_moving_the_jobs_back_to_the_runs_own_release_leaves_the_run_alone(lay, running_tick, sd):
    """A failed deploy moves the jobs back to the release the run started in: no stopper, and
    the one the first move scheduled finds the jobs back on the run's release (the script below)."""
    running_tick["run_release"] = NEW  # the run started in NEW, the move goes OLD -> NEW
    procs.move_procs(lay, NEW, settle=0)
    assert running_tick["runs"] == []


def test_the_runs_release_is_the_grace_of_its_stopper(lay, running_tick, sd):
    """A run that started before an earlier move (still going on a release older than `old`):
    its stopper compares the link with the run's own release, not with the one the move leaves."""
    running_tick["run_release"] = "20251231000000"
    procs.move_procs(lay, NEW, settle=0)
    [argv] = running_tick["runs"]
    assert argv[14] == "20251231000000" and "(release 20251231000000)" in argv[-1]


def test_a_failed_schedule_is_a_warning(lay, running_tick, sd, monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(procs, "run", lambda argv, timeout=90: Ran(1, "", "Failed to start transient timer unit"))
    procs.move_procs(lay, NEW, warnings=warnings, settle=0)
    assert warnings == ["could not schedule the deploy grace of cron job tick: Failed to start transient timer unit"]


def test_a_running_jobs_release_is_its_working_directory(lay, tmp_path):
    rel = os.path.join(lay.releases_dir, OLD, "app")
    os.makedirs(rel)
    proc = subprocess.Popen(["sleep", "5"], cwd=rel)
    try:
        assert procs.run_release(lay, str(proc.pid)) == OLD
    finally:
        proc.kill()
        proc.wait()
    assert procs.run_release(lay, str(os.getpid())) is None  # not in a release
    assert procs.run_release(lay, "0") is None and procs.run_release(lay, "") is None


@pytest.mark.parametrize("shown, link, stopped, said", [
    (RUN_ID, NEW, True, "stopping it (deploy_grace)"),             # still that run, jobs on NEW: stop it
    ("f" * 32, NEW, False, "ended within its deploy grace"),       # a later run: never stopped
    ("", NEW, False, "ended within its deploy grace"),             # nothing running
    (RUN_ID, OLD, False, "the jobs are back on its release"),      # a failed deploy moved them back
])
def test_the_grace_stopper_script_stops_only_that_run_of_the_old_release(lay, tmp_path, shown, link, stopped, said):
    """The stopper's program run for real, with a stand-in systemctl on PATH that answers the
    InvocationID and records a stop."""
    argv = procs.grace_stopper(lay, "tick", RUN_ID, 20, OLD, 1767225600)
    program = argv[argv.index("-c"):]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = show ]; then echo "{shown}"; else echo "$@" >> {tmp_path}/stops; fi\n')
    fake.chmod(0o755)
    os.makedirs(os.path.dirname(lay.procs_link), exist_ok=True)
    swap_symlink(lay.procs_link, f"../releases/{link}")
    r = subprocess.run([sys.executable, "-I", *program], capture_output=True, text=True,
                       env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert said in r.stdout and f"cron job tick, run {RUN_ID} (release {OLD})" in r.stdout
    stops = (tmp_path / "stops").read_text() if (tmp_path / "stops").exists() else ""
    assert stops == (f"stop {TICK_UNIT}\n" if stopped else "")


def test_status_says_skipped_for_a_run_that_found_the_lock_held(lay, two_releases, sd, monkeypatch):
    monkeypatch.setattr(procs, "show", lambda unit, props: {"ActiveState": "inactive", "Result": "success",
                                                            "ExecMainStatus": "75",
                                                            "ExecMainStartTimestamp": "@1767225600"})
    assert procs.status_view(lay)["cron"][0]["last_result"] == "skipped"
