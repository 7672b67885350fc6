"""The build's launchers for processes and cron jobs, `.lightfold/exec`, the storage links and what
release.json records of them: the build script run for real in a temp dir (prefix)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.unit.server.serverkit import Det, run_script

from lightfold.builders.dockerfile import build_script as docker_build_script
from lightfold.config import DeployConfig
from lightfold.detect.model import CronSpec, ProcessSpec
from lightfold.errors import LightfoldError
from lightfold.server.build import launchers, start_script, user_build_script

RID = "20260101120001"


@dataclass
class ProcDet(Det):
    install: str | None = None
    build: str | None = None
    start: str | None = "sh -c 'echo web'"
    processes: list = field(default_factory=lambda: [ProcessSpec("worker", "echo worker in $(pwd) $LF_X", 2, 7)])
    cron: list = field(default_factory=lambda: [CronSpec("tick", "*:*:0", "echo tick", 60)])
    storage: list = field(default_factory=lambda: ["uploads", "data/db"])


def build(tmp_path: Path, det: Det, files: dict[str, str] | None = None):
    rel = tmp_path / f"srv/shop/releases/{RID}"
    rel.mkdir(parents=True)
    (tmp_path / "srv/shop/cache").mkdir(parents=True, exist_ok=True)
    (tmp_path / "srv/shop/storage").mkdir(parents=True, exist_ok=True)
    for name, text in (files or {"package.json": "{}"}).items():
        (rel / name).parent.mkdir(parents=True, exist_ok=True)
        (rel / name).write_text(text)
    return rel, run_script(user_build_script("shop", det, DeployConfig(), RID, prefix=str(tmp_path)))


def test_the_build_writes_a_launcher_per_process_and_cron_job_and_exec(tmp_path: Path):
    rel, (rc, events, err) = build(tmp_path, ProcDet())
    assert rc == 0, err
    meta = rel / ".lightfold"
    for name in ("start", "exec", "proc/worker", "cron/tick"):
        assert os.access(meta / name, os.X_OK), name
    run = lambda *argv: subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd="/",  # noqa: E731
                                       env={"LF_X": "x"}).stdout
    assert run(meta / "proc/worker") == f"worker in {rel} x\n"
    assert run(meta / "cron/tick") == "tick\n"
    assert run(meta / "exec", "sh", "-c", "pwd; echo $VIRTUAL_ENV") == f"{rel}\n\n"
    info = json.loads((meta / "release.json").read_text())
    assert info["processes"] == [{"name": "worker", "command": "echo worker in $(pwd) $LF_X", "count": 2,
                                  "stop_timeout": 7}]
    assert info["cron"] == [{"name": "tick", "schedule": "*:*:0", "command": "echo tick", "timeout": 60}]
    assert info["storage"] == ["uploads", "data/db"]


def test_launchers_share_one_preamble_and_the_start_script_is_unchanged():
    det = ProcDet(runtime="python", start="gunicorn app:app")
    scripts = launchers("shop", det, ".", det.start)
    assert scripts["start"] == start_script("shop", det, ".", det.start)
    common = scripts["start"].splitlines()[3:-1]  # after the shebang, comment, release line; before exec
    for name in ("exec", "proc/worker", "cron/tick"):
        assert scripts[name].splitlines()[3:3 + len(common)] == common, name
    assert scripts["proc/worker"].splitlines()[3 + len(common):] == [
        "exec /bin/sh -c 'echo worker in $(pwd) $LF_X'"]
    assert scripts["exec"].splitlines()[-1] == 'exec "$@"'
    assert 'cd "$(dirname "$0")/../.."' in scripts["proc/worker"] and 'VIRTUAL_ENV="$LF_APP/.venv"' in scripts["exec"]


def test_storage_dirs_are_links_into_the_apps_storage(tmp_path: Path):
    rel, (rc, _, err) = build(tmp_path, ProcDet())
    assert rc == 0, err
    for d in ("uploads", "data/db"):
        assert os.readlink(rel / d) == str(tmp_path / "srv/shop/storage" / d)
        assert (tmp_path / "srv/shop/storage" / d).is_dir()
    (rel / "uploads/a.txt").write_text("kept")
    assert (tmp_path / "srv/shop/storage/uploads/a.txt").read_text() == "kept"


def test_a_release_that_ships_a_storage_dir_is_refused(tmp_path: Path):
    _, (rc, events, _) = build(tmp_path, ProcDet(), files={"package.json": "{}", "uploads/x.png": "png"})
    assert rc == 1
    failed = events[-1]
    assert failed["build"] == "prepare" and failed["status"] == "failed" and "storage uploads" in failed["command"]
    assert any("storage directory" in line for line in failed["output"])


@pytest.mark.parametrize("bad", ["../etc", "/abs", "a/../b", "", "a b", "a/"])
def test_storage_dirs_must_be_plain_relative_paths(bad):
    with pytest.raises(LightfoldError, match="storage directory"):
        user_build_script("shop", ProcDet(storage=[bad]), DeployConfig(), RID)


def test_a_process_name_that_is_not_a_unit_name_is_refused():
    with pytest.raises(LightfoldError, match="process or cron job name"):
        user_build_script("shop", ProcDet(processes=[ProcessSpec("Worker-1", "x")]), DeployConfig(), RID)


def test_the_dockerfile_builder_refuses_processes_cron_and_storage():
    with pytest.raises(LightfoldError, match="not supported with --builder dockerfile") as e:
        docker_build_script("shop", ProcDet(), DeployConfig(), RID)
    assert "processes, cron, storage" in e.value.problem
    assert docker_build_script("shop", ProcDet(processes=[], cron=[], storage=[]), DeployConfig(), RID)


def test_a_cron_run_holds_the_jobs_flock_and_a_concurrent_run_is_skipped(tmp_path: Path):
    """The launcher takes `Layout.cron_lock` (in the app's HOME, not the unit's private /tmp): a
    second run while the first is going says so and exits 75 (the unit's SuccessExitStatus), the
    first one is unharmed, and once it ended the next run gets the lock."""
    det = ProcDet(cron=[CronSpec("tick", "*:*:0", "echo begin; sleep 1.5; echo end", 60)])
    rel, (rc, _, err) = build(tmp_path, det)
    assert rc == 0, err
    tick = rel / ".lightfold/cron/tick"
    first = subprocess.Popen([str(tick)], stdout=subprocess.PIPE, text=True, cwd="/")
    lock = tmp_path / "srv/shop/cache/.lightfold/cron-tick.lock"
    for _ in range(50):
        if lock.exists():
            break
        time.sleep(0.02)
    time.sleep(0.2)
    second = subprocess.run([str(tick)], capture_output=True, text=True, cwd="/")
    assert second.returncode == 75 and second.stdout == ""
    assert second.stderr == (f"lightfold: cron job tick is already running (another run holds {lock}): "
                             "this run is skipped, so the job never overlaps itself\n")
    assert first.wait(10) == 0 and first.stdout.read() == "begin\nend\n"
    third = subprocess.run([str(tick)], capture_output=True, text=True, cwd="/")
    assert third.returncode == 0 and third.stdout == "begin\nend\n"


def test_lightfold_run_of_a_jobs_command_takes_the_jobs_lock(tmp_path: Path):
    """`.lightfold/exec` (what `lightfold run` runs) hands a cron job's exact command, as one shell
    line (`/bin/sh -c CMD`) or as its words, to the job's launcher: refused while a run holds the
    lock; any other command runs as before."""
    det = ProcDet(cron=[CronSpec("tick", "*:*:0", "echo tick it", 60)])
    rel, (rc, _, err) = build(tmp_path, det)
    assert rc == 0, err
    meta = rel / ".lightfold"
    lock = tmp_path / "srv/shop/cache/.lightfold/cron-tick.lock"
    run = lambda *argv: subprocess.run([str(meta / "exec"), *argv], capture_output=True, text=True, cwd="/")  # noqa: E731
    assert run("/bin/sh", "-c", "echo tick it").stdout == "tick it\n" and lock.exists()
    holder = subprocess.Popen(["flock", str(lock), "sleep", "3"])
    try:
        time.sleep(0.3)
        for argv in (("/bin/sh", "-c", "echo tick it"), ("echo", "tick", "it")):
            r = run(*argv)
            assert (r.returncode, r.stdout) == (75, ""), argv
            assert "cron job tick is already running" in r.stderr
        other = run("/bin/sh", "-c", "echo tick it too")
        assert (other.returncode, other.stdout) == (0, "tick it too\n")
    finally:
        holder.kill()
        holder.wait()


def test_release_json_records_a_jobs_deploy_grace(tmp_path: Path):
    det = ProcDet(cron=[CronSpec("tick", "*:*:0", "echo tick", 60, 20), CronSpec("daily", "daily", "echo d")])
    rel, (rc, _, err) = build(tmp_path, det)
    assert rc == 0, err
    info = json.loads((rel / ".lightfold/release.json").read_text())
    assert info["cron"] == [
        {"name": "tick", "schedule": "*:*:0", "command": "echo tick", "timeout": 60, "deploy_grace": 20},
        {"name": "daily", "schedule": "daily", "command": "echo d", "timeout": 3600}]


def test_release_json_marks_a_process_for_the_primary_only(tmp_path: Path):
    det = ProcDet(processes=[ProcessSpec("worker", "echo w", 2, 7),
                             ProcessSpec("scheduler", "echo s", 1, 30, "primary")])
    rel, (rc, _, err) = build(tmp_path, det)
    assert rc == 0, err
    info = json.loads((rel / ".lightfold/release.json").read_text())
    assert info["processes"] == [
        {"name": "worker", "command": "echo w", "count": 2, "stop_timeout": 7},  # every server: as before
        {"name": "scheduler", "command": "echo s", "count": 1, "stop_timeout": 30, "servers": "primary"}]
