"""Day-two operations on one shared sandbox machine running the Flask example: rollback under load
(0 failed requests, the old env back, no bounce), status, logs (and --all), run (env, user,
sandbox, stdin, exit status, Ctrl-C), sync after losing local state, the
deploy lock (concurrent pushes, pushes killed with SIGKILL mid-upload and mid-switch) and a second
app on the same machine. The tests run in order and build on each other's releases."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

import pytest
from tests.e2e.apps import commit, get, install_example, set_python_message

from lightfold.probe import Probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def flask(shared_sandbox):
    sb = shared_sandbox
    install_example(sb.project, "python-flask")
    sb.lightfold("config", "set", "deploy.health_path", "/healthz", "--target", sb.target)
    sb.lightfold("config", "set", "deploy.env_vars.GREETING", "one", "--target", sb.target)
    sb.releases = [json.loads(sb.lightfold("deploy", "--target", sb.target, "--json", timeout=900).stdout)
                   ["push"]["release"]]
    return sb


def env_of(sb, name: str) -> bytes:
    status, body = get(sb.ip, f"/env/{name}")
    assert status == 200, (name, status, body)
    return body


def journal(sb, app: str | None = None) -> list[dict]:
    return json.loads(sb.exec(f"cat /srv/{app or sb.target}/.lightfold/releases.json").stdout)


def statuses(sb, app: str | None = None) -> dict[str, str]:
    return {e["id"]: e["status"] for e in journal(sb, app)}


def assert_consistent(sb, live: str) -> None:
    """Exactly one live release, the one nginx routes to; nothing left "building"; no lock (once
    the server has finished a rollback's smoke window: the command returned before it)."""
    status = wait_switch_finished(sb)
    js = statuses(sb)
    assert [rid for rid, s in js.items() if s == "live"] == [live], js
    assert "building" not in js.values(), js
    assert status["live_release"] == live and status["lock"] is None, status


def set_env(sb, value: str) -> None:
    sb.lightfold("config", "set", "deploy.env_vars.GREETING", value, "--target", sb.target)


def push(sb, *extra: str) -> dict:
    return json.loads(sb.lightfold("push", "--target", sb.target, "--json", *extra, timeout=600).stdout)


def change_code(sb, message: str) -> None:
    set_python_message(sb.project, message)


def test_rollback_under_load_restores_the_old_env_and_never_bounces(flask):
    sb = flask
    r1 = sb.releases[0]
    set_env(sb, "two")
    r2 = push(sb)["release"]
    assert env_of(sb, "GREETING") == b"two"

    # the probe runs until the server has also finished the smoke window and drained the old slot
    with Probe(f"http://{sb.ip}/", rate=50, expect_status=200) as probe:
        data = json.loads(sb.lightfold("rollback", "--target", sb.target, "--json").stdout)
        wait_switch_finished(sb)
    assert probe.result.failed == 0, probe.result.summary()
    assert probe.result.total > 20
    assert data["release"] == r1 and data["previous"] == r2
    assert env_of(sb, "GREETING") == b"one"  # the release's own env snapshot, not today's config
    assert statuses(sb)[r2] == "rolled-back"

    # Nothing older than r1 served well, and r2 was rolled back from: a plain rollback refuses.
    again = sb.lightfold("rollback", "--target", sb.target, check=False)
    assert again.returncode == 1, again.stderr
    assert "no earlier good release" in again.stderr
    assert env_of(sb, "GREETING") == b"one"
    sb.releases += [r2]


def wait_switch_finished(sb, timeout: float = 60) -> dict:
    """`status --json` once the server has no switch in progress and no deploy lock."""
    deadline = time.monotonic() + timeout
    while True:
        s = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
        if not s["switch_in_progress"] and s["lock"] is None:
            return s
        assert time.monotonic() < deadline, s
        time.sleep(0.3)


def test_rollback_returns_when_traffic_moved_and_a_crash_after_that_flips_back(flask):
    """The command answers at the switch; the server keeps watching. A crash in the smoke window
    (after the command returned) puts traffic back, and status tells."""
    sb = flask
    r1, r2 = sb.releases[0], sb.releases[1]
    data = json.loads(sb.lightfold("rollback", "--target", sb.target, "--to", r2, "--json").stdout)
    assert data["release"] == r2 and data["finishing_on_server"]["smoke_seconds"] == 5
    # still inside the smoke window: the switch holds the deploy lock, and says so
    busy = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    assert busy["switch_in_progress"] and busy["lock"]["op"] == "rollback", busy
    sb.exec(f"systemctl kill --signal=KILL lightfold-{sb.target}@{data['slot']}.service")
    after = wait_switch_finished(sb)
    assert after["live_release"] == r1 and env_of(sb, "GREETING") == b"one"
    last = after["last_switch"]
    assert last["ok"] is False and last["op"] == "rollback" and "smoke window" in last["error"], last
    assert statuses(sb)[r2] == "rolled-back"
    human = sb.lightfold("status", "--target", sb.target).stdout
    assert "last switch failed" in human


def test_status_reports_the_live_release_from_the_server(flask):
    sb = flask
    s = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    # the server part of status keeps its keys
    assert s["target"] == sb.target and s["ip"] == sb.ip and s["ssh"] == "reachable"
    assert s["live_release"] == sb.releases[0]
    assert s["slot"] in ("blue", "green") and isinstance(s["port"], int)
    assert s["unit"]["active_state"] == "active" and s["unit"]["restarts"] == 0
    assert s["health_now"]["ok"] is True
    assert s["deployed_by"] and s["deployed_at"] and s["commit"]
    assert {r["id"]: r["status"] for r in s["releases"]}[sb.releases[1]] == "rolled-back"
    assert s["disk_free_bytes"] > 0 and s["lock"] is None
    human = sb.lightfold("status", "--target", sb.target).stdout
    assert sb.releases[0] in human and "healthy" in human


def test_logs_show_the_live_slot_follow_and_the_build(flask):
    sb = flask
    out = sb.lightfold("logs", "--target", sb.target, "-n", "30").stdout
    assert "gunicorn" in out.lower() or "Listening at" in out, out
    build = sb.lightfold("logs", "--target", sb.target, "--build")
    assert build.stdout.strip(), build.stderr  # the first deploy's build output was kept

    follow = sb.popen("logs", "--target", sb.target, "--tail", "-n", "1",
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = follow.stdout.readline()
        assert first, follow.stderr.read()
        time.sleep(0.5)
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=10) == 0
    finally:
        if follow.poll() is None:
            follow.kill()


def test_logs_all_labels_each_line_and_status_lists_no_processes(flask):
    sb = flask
    out = sb.lightfold("logs", "--target", sb.target, "--all", "-n", "20").stdout
    labels = {line.split()[1] for line in out.splitlines() if line.strip()}
    assert labels and labels <= {"web:blue", "web:green"}, out
    r = sb.lightfold("logs", "--target", sb.target, "--process", "worker", check=False)
    assert r.returncode in (1, 2) and "'worker'" in r.stderr, r.stderr  # no such process: an error naming it
    s = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    assert s["processes"] == [] and s["cron"] == []


def test_run_executes_in_the_live_release_as_the_app_user_with_its_env(flask):
    sb = flask
    s = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    live = s["live_release"]
    r = sb.lightfold("run", "--target", sb.target, "--",
                     'echo "$GREETING"; id -un; pwd; python -c "import flask; print(flask.__name__)"; '
                     "echo to-stderr >&2; exit 7", check=False)
    assert r.returncode == 7, r.stderr
    assert r.stdout.splitlines() == [env_of(sb, "GREETING").decode(), f"lf-{sb.target}",
                                     f"/srv/{sb.target}/releases/{live}", "flask"], r.stdout
    assert r.stderr.strip() == "to-stderr"
    # several arguments are an argv; stdin is forwarded and the output comes back byte for byte
    data = "".join(f"line {i}\n" for i in range(20000))
    r = sb.lightfold("run", "--target", sb.target, "--", "sha256sum", input=data)
    import hashlib

    assert r.stdout.split()[0] == hashlib.sha256(data.encode()).hexdigest()
    # confined like the app: nothing outside its writable paths
    r = sb.lightfold("run", "--target", sb.target, "--", "touch /etc/lightfold-run-probe", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr, (r.returncode, r.stderr)
    assert sb.exec("test -e /etc/lightfold-run-probe", check=False).returncode != 0


def test_ctrl_c_stops_the_remote_command(flask):
    sb = flask
    proc = sb.popen("run", "--target", sb.target, "--", "echo started; exec sleep 300",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "started\n", proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # with PYTHONFAULTHANDLER=1, SIGABRT shows where it hangs
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=10)
            raise AssertionError(f"lightfold run did not end on Ctrl-C: {proc.stderr.read()}") from None
        assert code == 130, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    for _ in range(40):
        left = sb.exec(f"systemctl list-units --all --no-legend 'lightfold-{sb.target}.run-*'").stdout.strip()
        if not left:
            break
        time.sleep(0.25)
    assert not left
    assert sb.exec("pgrep -f 'sleep [3]00'", check=False).returncode == 1  # [3]: not the shell running pgrep


def test_run_from_a_terminal_gives_the_command_a_terminal_of_its_own(flask):
    """A prompt (createsuperuser's, a shell's) needs a terminal: from one, `run` gives the command
    its own on the server (ssh -t, systemd-run --pty), still as the app user with the env."""
    import pty

    from tests.e2e.conftest import LIGHTFOLD

    sb = flask
    code = ("import os, sys; print('tty', sys.stdin.isatty(), sys.stdout.isatty(), os.environ['GREETING']); "
            "print('hello', input('name? '))")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([LIGHTFOLD, "run", "--target", sb.target, "--", "python3", "-c", code], cwd=sb.project,
                            env=sb.env, stdin=follower, stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    seen = b""

    def read_until(done) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while not done() and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    seen += os.read(leader, 4096)
                except OSError:  # EIO: the child closed the terminal
                    return

    try:
        # (systemd-run --pty may first set the terminal's title to the command line, prompt included)
        read_until(lambda: b"tty True True one\r\nname? " in seen)
        assert b"tty True True one\r\nname? " in seen, seen
        os.write(leader, b"alice\r")
        read_until(lambda: b"hello alice" in seen and proc.poll() is not None)
        assert proc.wait(timeout=10) == 0, seen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert b"hello alice" in seen, seen


def test_sync_rebuilds_lost_state_then_status_push_and_rollback_work(flask):
    sb = flask
    set_env(sb, "three")
    r3 = push(sb)["release"]
    for f in (sb.home / "state").iterdir():
        f.unlink()
    (sb.home / "state").rmdir()

    data = json.loads(sb.lightfold("sync", "--target", sb.target, "--json").stdout)
    assert data["configured"] and data["live_release"] == r3 and data["service"] == "active"
    rows = json.loads(sb.lightfold("targets", "--json").stdout)
    assert [(r["target"], r["live_release"], r["ip"]) for r in rows] == [(sb.target, r3, sb.ip)]
    assert json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)["live_release"] == r3
    assert push(sb)["skipped"] is True
    back = json.loads(sb.lightfold("rollback", "--target", sb.target, "--json").stdout)
    assert back["release"] == sb.releases[0]
    assert env_of(sb, "GREETING") == b"one"
    assert_consistent(sb, sb.releases[0])


def test_concurrent_pushes_one_refuses_naming_the_holder_or_waits(flask):
    sb = flask
    change_code(sb, "v5")
    procs = [sb.popen("push", "--target", sb.target, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, err in results if code == 1)
    assert "is locked by" in refused and "push of" in refused, refused
    assert get(sb.ip)[1] == b"v5\n"

    change_code(sb, "v6")
    procs = [sb.popen("push", "--target", sb.target, "--lock-wait", "300", "--json",
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [code for code, _, _ in outs] == [0, 0], outs
    pushed = [json.loads(out) for _, out, _ in outs]
    assert sorted(p["skipped"] for p in pushed) == [False, True], pushed  # the waiter found it live
    live = next(p["release"] for p in pushed if not p["skipped"])
    assert get(sb.ip)[1] == b"v6\n"
    assert_consistent(sb, live)


def kill_push_at(sb, marker: str) -> None:
    """Start a push and SIGKILL it as soon as its progress shows `marker`."""
    proc = sb.popen("push", "--target", sb.target, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if marker in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert any(marker in line for line in seen), "".join(seen)


def test_ctrl_c_during_a_push_releases_the_lock_and_marks_the_release_failed(flask):
    sb = flask
    live_before = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)["live_release"]
    change_code(sb, "v6-interrupted")
    # A build that surely lasts until the interrupt arrives (a fast build could already be past
    # the detached switch, which by design finishes on the server without the laptop).
    sb.lightfold("config", "set", "deploy.build_command", "sleep 120", "--target", sb.target)
    proc = sb.popen("push", "--target", sb.target, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "building 2" in line:  # "building <release id>": the build runs on the server
            proc.send_signal(signal.SIGINT)
            break
    seen += proc.stderr.readlines()
    assert proc.wait(timeout=60) == 130, "".join(seen)
    js = statuses(sb)
    assert js[max(js)] == "failed", js  # the interrupted release, never live
    assert_consistent(sb, live_before)  # the lock is gone, the old release still serves
    assert get(sb.ip)[1] == b"v6\n"
    sb.lightfold("config", "unset", "deploy.build_command", "--target", sb.target)


def test_push_killed_mid_upload_then_a_new_push_succeeds(flask):
    sb = flask
    (sb.project / "ballast.bin").write_bytes(os.urandom(24 * 2**20))  # an upload that takes a moment
    change_code(sb, "v7-killed")
    kill_push_at(sb, "uploading")
    (sb.project / "ballast.bin").unlink()
    change_code(sb, "v7")
    proc = sb.lightfold("push", "--target", sb.target, "--json", timeout=600)
    assert "stale" in proc.stderr, proc.stderr  # the dead push's lock was detected and replaced
    live = json.loads(proc.stdout)["release"]
    assert get(sb.ip)[1] == b"v7\n"
    assert_consistent(sb, live)


def test_push_killed_mid_switch_then_a_new_push_succeeds(flask):
    sb = flask
    change_code(sb, "v8")
    kill_push_at(sb, "activating")
    change_code(sb, "v9")
    live = push(sb)["release"]
    assert get(sb.ip)[1] == b"v9\n"
    assert_consistent(sb, live)


def test_two_apps_on_one_machine_each_command_acts_on_its_target(flask):
    sb = flask
    other = f"{sb.target}-b"[:31]
    project = sb.root / "second"
    project.mkdir()
    install_example(project, "python-flask")
    text = (project / "app.py").read_text().replace("hello from lightfold (python)", "second app")
    (project / "app.py").write_text(text)
    commit(project, "second")
    first = sb.config()["targets"][sb.target]["provider_config"]["local"]
    for key, value in [("provider", "byos"), ("provider_config.byos.ip", first["ip"]),
                       ("provider_config.byos.ssh_key", first["ssh_key"]),
                       ("provider_config.byos.username", "root"), ("deploy.health_path", "/healthz")]:
        sb.lightfold("config", "set", key, value, "--target", other, str(project))
    assert json.loads(sb.lightfold("sync", "--target", other, "--json").stdout)["configured"] is False
    before = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    b1 = json.loads(sb.lightfold("deploy", "--target", other, str(project), "--json", timeout=900).stdout)
    sb.lightfold("config", "set", "deploy.env_vars.GREETING", "b2", "--target", other)
    b2 = json.loads(sb.lightfold("push", "--target", other, str(project), "--json", timeout=600).stdout)
    s = json.loads(sb.lightfold("status", "--target", other, "--json").stdout)
    assert s["live_release"] == b2["release"] and s["port"] not in (before["port"],)
    answer = sb.exec(f"python3 -c \"import urllib.request;print(urllib.request.urlopen("
                     f"'http://127.0.0.1:{s['port']}/').read().decode())\"").stdout
    assert "second app" in answer

    back = json.loads(sb.lightfold("rollback", "--target", other, "--json").stdout)
    assert back["release"] == b1["push"]["release"]
    after = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    assert after["live_release"] == before["live_release"] and after["slot"] == before["slot"]
    assert get(sb.ip)[1] == b"v9\n"  # the first app still owns the machine's default site
    rows = {r["target"]: r for r in json.loads(sb.lightfold("targets", "--json").stdout)}
    assert rows[other]["live_release"] == b1["push"]["release"] and rows[other]["provider"] == "byos"
    assert rows[sb.target]["live_release"] == before["live_release"]


def test_a_failing_or_slow_release_command_leaves_the_live_release_serving(flask):
    sb = flask
    before = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)["live_release"]
    answer = get(sb.ip)
    manifest = sb.project / "lightfold.toml"
    try:
        for toml, expected in (('release = "echo migrating-now; exit 3"\n', "exited 3"),
                               ('release = "echo migrating-now; sleep 60"\nrelease_timeout = 2\n',
                                "did not finish within its limit of 2 s")):
            manifest.write_text(toml)
            commit(sb.project, "release command")
            proc = sb.lightfold("push", "--target", sb.target, check=False, timeout=300)
            assert proc.returncode == 1 and expected in proc.stderr, proc.stderr
            assert "migrating-now" in proc.stderr  # its output is in the deploy output
            if "limit" in expected:
                assert "release_timeout" in proc.stderr and "lightfold.toml" in proc.stderr
            assert get(sb.ip) == answer
            s = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
            assert s["live_release"] == before and s["releases"][0]["status"] == "failed"
            assert "migrating-now" in sb.lightfold("logs", "--target", sb.target, "--build").stdout
    finally:
        manifest.unlink(missing_ok=True)
        commit(sb.project, "no release command")


def test_push_returns_when_traffic_moved_and_a_crash_after_that_flips_back(flask):
    """issue 21: `push` answers as soon as traffic moved (without --json, or with --no-wait), as
    rollback does; the server keeps watching. A crash in the smoke window puts traffic back and
    status tells; a push started meanwhile waits for the switch by itself."""
    sb = flask
    before = wait_switch_finished(sb)["live_release"]
    change_code(sb, "early crash")
    proc = sb.lightfold("push", "--target", sb.target, timeout=600)
    assert "the server watches" in proc.stderr and "for 5s more" in proc.stderr, proc.stderr
    busy = json.loads(sb.lightfold("status", "--target", sb.target, "--json").stdout)
    assert busy["switch_in_progress"] and busy["lock"]["op"] == "push", busy  # the switch holds the lock
    assert get(sb.ip)[1] == b"early crash\n"
    new = busy["live_release"]
    sb.exec(f"systemctl kill --signal=KILL lightfold-{sb.target}@{busy['slot']}.service")
    after = wait_switch_finished(sb)
    assert after["live_release"] == before and get(sb.ip)[0] == 200
    last = after["last_switch"]
    assert last["ok"] is False and last["op"] == "activate" and "smoke window" in last["error"], last
    assert statuses(sb)[new] == "failed"

    change_code(sb, "early one")
    data = json.loads(sb.lightfold("push", "--target", sb.target, "--no-wait", "--json", timeout=600).stdout)
    assert data["finishing_on_server"] == {"smoke_seconds": 5.0, "drain_seconds": 2.0}, data
    assert data["timings"]["total"] - data["timings"]["live_after"] < 2, data["timings"]  # no smoke window here
    change_code(sb, "early two")
    t0 = time.monotonic()
    second = sb.lightfold("push", "--target", sb.target, "--json", timeout=600)  # --json waits for its own outcome
    assert "to finish its smoke window" in second.stderr, second.stderr  # waited for the first switch
    assert json.loads(second.stdout)["finishing_on_server"] is None and time.monotonic() - t0 > 5
    assert get(sb.ip)[1] == b"early two\n"
    assert_consistent(sb, json.loads(second.stdout)["release"])


def test_destroy_yes_alone_refuses_while_storage_holds_files(flask):
    sb = flask
    sb.exec(f"mkdir -p /srv/{sb.target}/storage/uploads && head -c 3000000 /dev/zero "
            f"> /srv/{sb.target}/storage/uploads/big.bin")
    try:
        r = sb.lightfold("destroy", "--target", sb.target, "--yes", check=False)
        assert r.returncode == 1, r.stderr
        assert "holds 3.0 MB in 1 file of persistent storage" in r.stderr and "--delete-storage" in r.stderr
        assert sb.exec("hostname").stdout.strip() == sb.target  # the machine is still there
    finally:
        sb.exec(f"rm -rf /srv/{sb.target}/storage")
    # (the module's teardown destroys it with --yes --delete-storage)
