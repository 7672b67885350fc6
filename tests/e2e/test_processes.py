"""Issue 15 on one sandbox machine: a Flask app with a queue worker (SQLite in storage), a cron job
every minute and uploads in storage, across a deploy, a rollback and a failed deploy: no cron run
twice or overlapping (from the lines it wrote), exactly one worker version at a time, the files
written before still there, every job done exactly once, and 0 failed requests on the web process.
Then a cron run longer than its schedule (`long`, deploy_grace 10 s): the job's flock refuses a
`lightfold run` of its command while a run is going, and the run going at a deploy keeps running
on its old release until its grace is over, is stopped then, and the next run never overlaps it."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from tests.e2e.apps import commit, get, git

from lightfold.probe import Probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

APP_DIR = Path(__file__).parent / "procs_app"


def request(ip: str, method: str, path: str, data: bytes = b"") -> int:
    req = urllib.request.Request(f"http://{ip}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def set_version(project: Path, version: str) -> None:
    (project / "version.txt").write_text(version + "\n")
    commit(project, version)


def deploy(sb, check: bool = True):
    return sb.lightfold("deploy", "--target", sb.target, "--json", timeout=600, check=check)


def storage_file(sb, name: str) -> str:
    return sb.exec(f"cat /srv/{sb.target}/storage/data/{name} 2>/dev/null || true").stdout


def worker_versions(sb) -> list[str]:
    """The versions of the worker processes running now (from the log: started, not stopped)."""
    running: dict[str, str] = {}
    for line in storage_file(sb, "worker.log").splitlines():
        what, version, pid, _ = line.split()
        if what == "start":
            running[pid] = version
        else:
            running.pop(pid, None)
    return sorted(running.values())


def wait_for(check, timeout: float = 30, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def switch_finished(sb) -> dict:
    def done():
        s = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
        return s if not s["switch_in_progress"] and s["lock"] is None else None
    return wait_for(done, 60, "the switch did not finish")


@pytest.fixture(scope="module")
def app(shared_sandbox):
    sb = shared_sandbox
    shutil.copytree(APP_DIR, sb.project, dirs_exist_ok=True)
    git(sb.project, "init", "-q", "-b", "main")
    commit(sb.project, "v1")
    out = json.loads(deploy(sb).stdout)
    sb.releases = [out["push"]["release"]]
    return sb


def test_processes_cron_and_storage_across_deploy_rollback_and_failed_deploy(app):
    sb = app
    ip, name = sb.ip, sb.target
    assert get(ip)[1] == b"v1\n"
    wait_for(lambda: worker_versions(sb) == ["v1"], 30, "the v1 worker did not start")
    assert request(ip, "PUT", "/upload/before.txt", b"written by v1") == 200
    assert request(ip, "POST", "/enqueue/50") == 200
    units = sb.exec(f"systemctl is-active lightfold-{name}.proc@worker-1.service lightfold-{name}.cron-tick.timer",
                    check=False).stdout.split()
    assert units == ["active", "active"], units
    assert sb.exec(f"systemctl is-enabled lightfold-{name}.proc@worker-1.service").stdout.strip() == "enabled"

    # a deploy under load: the worker moves to v2 after the web slot, never two versions at once
    set_version(sb.project, "v2")
    with Probe(f"http://{ip}/", rate=40, expect_status=200) as probe:
        sb.releases.append(json.loads(deploy(sb).stdout)["push"]["release"])
        request(ip, "POST", "/enqueue/50")
        switch_finished(sb)
    assert probe.result.failed == 0, probe.result.summary()
    assert get(ip)[1] == b"v2\n" and worker_versions(sb) == ["v2"]
    assert get(ip, "/upload/before.txt") == (200, b"written by v1")
    status = json.loads(sb.lightfold("status", "--target", name, "--json").stdout)
    procs = status.get("processes") or []
    assert [(p["name"], p["state"], p["release"]) for p in procs] == [("worker", "active", sb.releases[1])], procs

    # a rollback under load: the v1 worker again
    with Probe(f"http://{ip}/", rate=40, expect_status=200) as probe:
        sb.lightfold("rollback", "--target", name, "--json")
        switch_finished(sb)
    assert probe.result.failed == 0, probe.result.summary()
    assert get(ip)[1] == b"v1\n"
    wait_for(lambda: worker_versions(sb) == ["v1"], 20, f"worker after rollback: {worker_versions(sb)}")

    # a failed deploy (its worker exits at once): traffic and the v1 worker stay
    set_version(sb.project, "v3-broken")
    with Probe(f"http://{ip}/", rate=40, expect_status=200) as probe:
        failed = deploy(sb, check=False)
        switch_finished(sb)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "did not start" in failed.stdout + failed.stderr
    assert probe.result.failed == 0, probe.result.summary()
    assert get(ip)[1] == b"v1\n"
    wait_for(lambda: worker_versions(sb) == ["v1"], 20, f"worker after the failed deploy: {worker_versions(sb)}")
    assert get(ip, "/upload/before.txt") == (200, b"written by v1")

    # every job done exactly once
    def all_done():
        out = sb.exec(f"runuser -u lf-{name} -- python3 -c \"import sqlite3; c = sqlite3.connect("
                      f"'/srv/{name}/storage/data/queue.db', timeout=30); print(*c.execute("
                      "'SELECT count(*), sum(runs = 1), sum(status = \\'done\\') FROM jobs').fetchone())\"").stdout
        total, once, done = (int(x or 0) for x in out.split())
        return (total, once, done) if total == done == 100 else None
    total, once, done = wait_for(all_done, 30, "the queue was not drained")
    assert once == 100

    # one worker at a time, over the whole log: a start only after the previous one stopped
    events = []
    for line in storage_file(sb, "worker.log").splitlines():
        what, version, pid, at = line.split()
        events.append((float(at), what, version, pid))
    running = 0
    for _, what, _, _ in sorted(events):
        running += 1 if what == "start" else -1
        assert running <= 1, events
    # deploy v2, roll back to v1, and the failed deploy: v1 stopped for v3, which never started, so v1 again
    assert [v for _, w, v, _ in sorted(events) if w == "start"] == ["v1", "v2", "v1", "v1"], events

    # the cron job: at least two runs, never two for the same minute, never overlapping
    wait_for(lambda: storage_file(sb, "cron.log").count("end ") >= 2, 90, "the cron job did not run twice")
    time.sleep(5)  # a run that began is allowed to end
    runs = [line.split() for line in storage_file(sb, "cron.log").splitlines()]
    begins = [r[1] for r in runs if r[0] == "begin"]
    assert len(begins) == len(set(begins)), runs
    open_runs = 0
    for what, *_ in sorted(runs, key=lambda r: float(r[4])):
        open_runs += 1 if what == "begin" else -1
        assert open_runs in (0, 1), runs
    status = json.loads(sb.lightfold("status", "--target", name, "--json").stdout)
    cron = status.get("cron") or []
    assert [c["name"] for c in cron] == ["tick", "long"] and cron[0]["last_run"] and cron[0]["next_run"], cron

    # the real processes' logs: `--process NAME` is that process's journal, `--all` every unit's,
    # each line labelled with its unit (issue 15)
    worker_log = sb.lightfold("logs", "--target", name, "--process", "worker", "-n", "200").stdout
    assert "worker v1 started" in worker_log and "worker v2 started" in worker_log, worker_log
    assert "tick " not in worker_log
    every = [line.split(maxsplit=2) for line in
             sb.lightfold("logs", "--target", name, "--all", "-n", "2000").stdout.splitlines()]
    by_label = {label: [w for _, lb, w in (x for x in every if len(x) == 3) if lb == label]
                for label in ("worker-1", "cron:tick")}
    assert any(m.startswith("worker v") for m in by_label["worker-1"]), every[-30:]
    assert any(m.startswith("tick v") for m in by_label["cron:tick"]), every[-30:]
    assert any(x[1].startswith("web:") for x in every if len(x) == 3), every[-30:]


LONG_GRACE = 10  # procs_app/lightfold.toml [cron.long] deploy_grace


def long_runs(sb) -> list[dict]:
    """The runs of the `long` job from data/long.log: version, pid, begin, last line, ended."""
    runs: dict[str, dict] = {}
    for line in storage_file(sb, "long.log").splitlines():
        what, version, pid, at = line.split()
        run = runs.setdefault(pid, {"version": version, "pid": pid, "begin": None, "last": 0.0, "ended": False})
        if what == "begin":
            run["begin"] = float(at)
        run["last"] = max(run["last"], float(at))
        run["ended"] |= what == "end"
    return sorted(runs.values(), key=lambda r: r["begin"] or 0.0)


def unit_run(sb, unit: str) -> str | None:
    """The InvocationID of the run of `unit` going now, None when it is not running."""
    out = sb.exec(f"systemctl show -p ActiveState -p InvocationID {unit}").stdout
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return props.get("InvocationID") if props.get("ActiveState") == "active" else None


def test_a_cron_run_spanning_a_deploy_is_stopped_after_its_grace_and_its_flock_refuses_a_manual_run(app):
    sb = app
    name = sb.target
    unit = f"lightfold-{name}.cron@long.service"
    before = wait_for(lambda: unit_run(sb, unit), 75, "no run of the long job started")
    wait_for(lambda: any(not r["ended"] for r in long_runs(sb)), 10, "the long run wrote nothing")
    live = get(sb.ip)[1].decode().strip()

    # a manual run of the job's command while the scheduled one is going: refused by the job's flock,
    # before the command started (no line of its own), and the scheduled run goes on
    begins = len(long_runs(sb))
    manual = sb.lightfold("run", "--target", name, "--", "python long.py", check=False)
    assert manual.returncode == 75, manual.stdout + manual.stderr
    assert "lightfold: cron job long is already running" in manual.stderr and "skipped" in manual.stderr
    assert len(long_runs(sb)) == begins and unit_run(sb, unit) == before

    # a deploy while it runs: it keeps going on its old release, and is stopped LONG_GRACE after the
    # jobs moved (the move happened between t0 and t1)
    set_version(sb.project, "v4")
    t0 = time.time()
    sb.releases.append(json.loads(deploy(sb).stdout)["push"]["release"])
    switch_finished(sb)
    t1 = time.time()
    assert get(sb.ip)[1] == b"v4\n"
    try:
        wait_for(lambda: unit_run(sb, unit) != before, LONG_GRACE + 30, "the run was not stopped after its grace")
    except AssertionError:
        seen = sb.exec(f"systemctl list-units --all --no-legend 'lightfold-{name}.cron-grace-*'; "
                       f"journalctl --no-pager -o cat -u 'lightfold-{name}.cron-grace-*' | tail -n 20; "
                       f"systemctl show -p MainPID,InvocationID {unit}; "
                       f"cat /srv/{name}/.lightfold/last-op.json | head -c 3000", check=False)
        raise AssertionError(f"the run was not stopped after its grace\n{seen.stdout}{seen.stderr}") from None
    [spanning] = [r for r in long_runs(sb) if r["begin"] and r["begin"] < t0 and r["last"] > t0]
    assert spanning["version"] == live and not spanning["ended"], spanning
    assert t0 + LONG_GRACE - 2 <= spanning["last"] <= t1 + LONG_GRACE + 3, (t0, t1, spanning)
    stopper = sb.exec(f"journalctl --no-pager -o cat -u 'lightfold-{name}.cron-grace-long-*'").stdout
    assert f"still running {LONG_GRACE}s after the deploy moved the jobs, stopping it (deploy_grace)" in stopper, \
        stopper

    # the next run is the new release's, and no two runs ever overlapped (every deploy of the module)
    wait_for(lambda: any(r["version"] == "v4" for r in long_runs(sb)), 75, "no run of the long job on v4")
    runs = long_runs(sb)
    assert all(r["begin"] for r in runs), runs
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier["last"] < later["begin"], (earlier, later)
    status = json.loads(sb.lightfold("status", "--target", name, "--json").stdout)
    long = next(c for c in status["cron"] if c["name"] == "long")
    assert long["release"] == sb.releases[-1] and long["last_result"] == "running", long
