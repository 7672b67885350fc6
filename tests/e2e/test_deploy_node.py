"""Deploying a Node (Express) app to a real sandbox machine: first deploy, skips, zero-drop
redeploys under load, and every failure mode leaving the live release serving.

The module shares one machine; each test leaves the app deployed and healthy for the next.
"""

from __future__ import annotations

import json
import re

import pytest
from tests.e2e.apps import commit, get, install_example

from lightfold.probe import Probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

HELLO = b"hello from lightfold (node)\n"


@pytest.fixture(scope="module")
def app(shared_sandbox):
    sb = shared_sandbox
    install_example(sb.project, "node-express")
    first = sb.lightfold("deploy", "--target", sb.target, "--json", timeout=900)
    sb.first_deploy = json.loads(first.stdout)
    sb.first_deploy_log = first.stderr
    return sb


def live_release(sb) -> str:
    return sb.exec(f"readlink /srv/{sb.target}/current").stdout.strip().rsplit("/", 1)[-1]


def journal(sb) -> dict[str, dict]:
    entries = json.loads(sb.exec(f"cat /srv/{sb.target}/.lightfold/releases.json").stdout)
    entries = entries["releases"] if isinstance(entries, dict) else entries
    return {e["id"]: e for e in entries}


def set_message(sb, text: str) -> None:
    (sb.project / "message.json").write_text(json.dumps({"text": text}) + "\n")
    commit(sb.project, text)


def push_fails(sb, pattern: str) -> str:
    """Push, expect failure with `pattern` in the one-line error; the old release still answers."""
    before = live_release(sb)
    proc = sb.lightfold("push", "--target", sb.target, check=False, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(pattern, proc.stderr, re.I), proc.stderr
    assert live_release(sb) == before
    assert get(sb.ip)[0] == 200
    return proc.stderr


def restore(sb, path: str) -> None:
    from tests.e2e.apps import git

    git(sb.project, "checkout", "HEAD~1", "--", path)
    commit(sb.project, f"restore {path}")


def test_first_deploy_answers_through_nginx(app):
    assert app.first_deploy["created"] in ("created", "exists")
    assert app.first_deploy["configured"] == "configured"
    assert app.first_deploy["push"]["build"] == "full"
    assert get(app.ip) == (200, HELLO)
    assert app.exec("test -f /etc/lightfold/configured && test -f /etc/lightfold/created").returncode == 0
    st = json.loads((app.home / "state" / f"{app.target}.json").read_text())
    assert st["created"] and st["configured"]
    assert st["last_release"] == live_release(app) == app.first_deploy["push"]["release"]
    assert re.fullmatch(r"\d{14}", st["last_release"])
    # builder auto-selection: a Node app, no Dockerfile, no nixpacks on the server → native, said so
    assert "nixpacks is not on the server: building natively" in app.first_deploy_log
    assert st["builder"] == "native"
    assert st["last_commit"] and len(st["last_commit"]) == 40
    # the app runs as its own unprivileged user, in a hardened unit
    uid = app.exec(f"id -u lf-{app.target}").stdout.strip()
    assert app.exec("ps -o uid= -C node | sort -u").stdout.split() == [uid]


def test_redeploying_the_same_commit_is_skipped(app):
    before = live_release(app)
    proc = app.lightfold("deploy", "--target", app.target, "--json")
    data = json.loads(proc.stdout)
    assert data["configured"] == "skipped" and data["push"]["skipped"] is True
    assert data["push"]["release"] == before == live_release(app)
    assert data["fast_path"] is True  # proven unchanged by the local key and the server stamp
    assert f"nothing changed since release {before} went live" in proc.stderr
    # without the fast path's record, the full path decides the same, and records it again
    state_file = app.home / "state" / f"{app.target}.json"
    st = json.loads(state_file.read_text())
    record = st.pop("noop")
    state_file.write_text(json.dumps(st))
    proc = app.lightfold("push", "--target", app.target, "--json")
    assert json.loads(proc.stdout)["skipped"] is True and "fast_path" not in json.loads(proc.stdout)
    assert "nothing to push" in proc.stderr
    assert json.loads(state_file.read_text())["noop"] == record


def test_the_fast_no_op_never_hides_a_change(app):
    """Each input of the skip decision, changed alone, sends deploy down the full path."""
    before = live_release(app)
    # on the server: the configure marker is gone → configure runs again
    app.exec(f"rm /etc/lightfold/apps/{app.target}/configured")
    data = json.loads(app.lightfold("deploy", "--target", app.target, "--json", timeout=600).stdout)
    assert "fast_path" not in data
    assert data["configured"] == "configured" and data["push"]["skipped"] is True
    # locally: an uncommitted edit ships
    (app.project / "message.json").write_text(json.dumps({"text": "dirty edit"}) + "\n")
    data = json.loads(app.lightfold("deploy", "--target", app.target, "--json", timeout=600).stdout)
    assert data["push"]["skipped"] is False and data["push"]["release"] != before
    assert get(app.ip)[1] == b"dirty edit\n"
    # on the server: someone rolls back → the next deploy pushes the local code again
    app.lightfold("rollback", "--target", app.target, timeout=300)
    assert live_release(app) == before
    data = json.loads(app.lightfold("deploy", "--target", app.target, "--json", timeout=600).stdout)
    assert data["push"]["skipped"] is False
    assert get(app.ip)[1] == b"dirty edit\n"
    # back to the committed message, for the tests after this one
    from tests.e2e.apps import git

    git(app.project, "checkout", "--", "message.json")
    app.lightfold("deploy", "--target", app.target, "--wait", timeout=600)  # the no-op stamp is read at the end
    assert get(app.ip) == (200, HELLO)
    assert json.loads(app.lightfold("deploy", "--target", app.target, "--json").stdout)["fast_path"] is True


def test_second_configure_changes_nothing(app):
    data = json.loads(app.lightfold("configure", "--target", app.target, "--force", "--json").stdout)
    assert data["skipped"] is False
    assert data["changed"] == [], data


def test_redeploy_under_load_drops_no_request(app):
    before = live_release(app)
    set_message(app, "hello v2")
    with Probe(f"http://{app.ip}/", rate=100) as probe:
        proc = app.lightfold("push", "--target", app.target, "--json", timeout=300)
    result = probe.result
    assert result.failed == 0, f"{result.summary()}: {result.failures}"
    assert result.total > 300, result.summary()
    assert set(result.bodies) == {"hello from lightfold (node)", "hello v2"}
    data = json.loads(proc.stdout)
    assert data["previous"] == before and data["release"] == live_release(app)
    assert data["build"] == "deps-reused"  # lockfile unchanged: node_modules reused
    assert get(app.ip) == (200, b"hello v2\n")
    entries = journal(app)
    assert entries[data["release"]]["status"] == "live"
    assert entries[before]["status"] == "previous"
    # the live slot comes back on boot, the idle one does not
    live_slot = entries[data["release"]]["slot"]
    idle_slot = "blue" if live_slot == "green" else "green"
    enabled = app.exec(f"systemctl is-enabled lightfold-{app.target}@{live_slot} "
                       f"lightfold-{app.target}@{idle_slot}", check=False).stdout.split()
    assert enabled == ["enabled", "disabled"], enabled


def test_build_failure_keeps_the_live_release(app):
    pkg = json.loads((app.project / "package.json").read_text())
    pkg["scripts"]["build"] = "node -e \"console.error('compile error: boom'); process.exit(3)\""
    (app.project / "package.json").write_text(json.dumps(pkg, indent=2))
    commit(app.project, "broken build")
    err = push_fails(app, r"build failed")
    assert "compile error: boom" in err  # the build's own output reaches the user
    failed = [e for e in journal(app).values() if e["status"] == "failed"]
    assert failed, "the broken release is marked failed in the server journal"
    restore(app, "package.json")


def test_app_that_exits_at_boot_keeps_the_live_release(app):
    server = (app.project / "server.js").read_text()
    (app.project / "server.js").write_text('throw new Error("database unreachable at boot");\n' + server)
    commit(app.project, "crash at boot")
    err = push_fails(app, r"exit|crash|failed")
    assert "database unreachable at boot" in err  # the app's own last log lines
    restore(app, "server.js")


def test_app_failing_its_health_check_keeps_the_live_release(app):
    server = (app.project / "server.js").read_text()
    route = 'app.get("/healthz", (req, res) => res.send("ok"));'
    assert route in server
    broken = server.replace(route, 'app.get("/healthz", (req, res) => res.status(503).send("not ready"));')
    (app.project / "server.js").write_text(broken)
    commit(app.project, "unhealthy")
    push_fails(app, r"503|health")
    restore(app, "server.js")


def test_app_whose_health_path_redirects_goes_live(app):
    """issue 12 class 8: a 302 to a login page is a live app (the redirect is not followed)."""
    server = (app.project / "server.js").read_text()
    route = 'app.get("/healthz", (req, res) => res.send("ok"));'
    moved = server.replace(route, 'app.get("/healthz", (req, res) => res.redirect(302, "/login"));')
    (app.project / "server.js").write_text(moved)
    commit(app.project, "health path redirects")
    before = live_release(app)
    out = json.loads(app.lightfold("push", "--target", app.target, "--json", timeout=300).stdout)
    assert out["release"] != before and live_release(app) == out["release"]
    assert app.exec("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/healthz").stdout == "302"
    restore(app, "server.js")


def test_app_ignoring_port_is_explained(app):
    server = (app.project / "server.js").read_text()
    (app.project / "server.js").write_text(server.replace("Number(process.env.PORT || 3000)", "3999"))
    commit(app.project, "hard-coded port")
    push_fails(app, r"\$PORT")
    restore(app, "server.js")


def test_after_failures_a_good_push_goes_live(app):
    set_message(app, "hello v3")
    app.lightfold("push", "--target", app.target, "--wait")  # the old slot is stopped when it returns
    assert get(app.ip) == (200, b"hello v3\n")
    assert app.exec(f"systemctl is-active lightfold-{app.target}@blue lightfold-{app.target}@green",
                    check=False).stdout.split().count("active") == 1
