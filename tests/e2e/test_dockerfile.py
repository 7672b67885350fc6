"""The dockerfile builder on a real sandbox machine: configure installs docker.io, push builds the
image on the server, the slots run it through the same health-gated blue/green switch.

No image registry is reachable: the base image (`local/debian-python:machine`) is imported
inside the machine from the machine's own Debian root (it has python3), which takes seconds and
no network, instead of mmdebstrap (measured 2.5 min on the host through the mirror)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from tests.e2e.apps import commit, get, git, set_python_message

from lightfold.agent.bundle import remote_command
from lightfold.probe import Probe

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

APP = Path(__file__).resolve().parents[1] / "fixtures" / "builders" / "docker-app"
MULTILINE = "line one\nline 'two' $HOME\n\nline four"

BASE_IMPORT = (
    "tar -C / --one-file-system -cf - --exclude=./proc --exclude=./sys --exclude=./dev --exclude=./run"
    " --exclude=./var/lib/docker --exclude=./srv --exclude=./tmp --exclude=./root --exclude=./home"
    " --exclude=./var/cache/apt --exclude=./var/lib/apt/lists --exclude=./usr/share/doc --exclude=./usr/share/man ."
    " | docker import - local/debian-python:machine >/dev/null"
)


def set_message(sb, text: str) -> None:
    set_python_message(sb.project, text)


def journal(sb) -> dict:
    text = sb.exec(f"cat /srv/{sb.target}/.lightfold/releases.json").stdout
    return {e["id"]: e for e in json.loads(text)}


def live(sb) -> str:
    return next(rid for rid, e in journal(sb).items() if e["status"] == "live")


def images(sb) -> dict[str, str]:
    """tag → image id of this app's images."""
    out = sb.exec(f"docker images --no-trunc --format '{{{{.Tag}}}} {{{{.ID}}}}' lightfold-{sb.target}").stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def containers(sb) -> list[str]:
    return sorted(sb.exec("docker ps -a --format '{{.Names}}'").stdout.split())


@pytest.fixture(scope="module")
def app(shared_sandbox):
    sb = shared_sandbox
    for f in APP.iterdir():
        shutil.copy(f, sb.project / f.name)
    git(sb.project, "init", "-q", "-b", "main")
    commit(sb.project, "docker app")
    sb.lightfold("config", "set", "deploy.env_vars.GREETING", MULTILINE, "--target", sb.target)
    t0 = time.monotonic()
    sb.lightfold("configure", "--target", sb.target, timeout=600)
    sb.timings = {"configure": time.monotonic() - t0}
    t0 = time.monotonic()
    sb.exec(BASE_IMPORT, timeout=300)
    sb.timings["base_import"] = time.monotonic() - t0
    t0 = time.monotonic()
    proc = sb.lightfold("deploy", "--target", sb.target, "--json", timeout=600)
    sb.timings["deploy"] = time.monotonic() - t0
    sb.first = json.loads(proc.stdout)
    sb.first_stderr = proc.stderr
    print("timings", sb.timings)
    return sb


def test_deploy_builds_the_image_and_serves_it(app):
    assert get(app.ip) == (200, b"hello from docker v1\n")
    rid = app.first["push"]["release"]
    assert "builder: dockerfile (a Dockerfile exists (EXPOSE 8000))" in app.first_stderr
    assert rid in images(app)
    info = json.loads(app.exec(f"cat /srv/{app.target}/releases/{rid}/.lightfold/release.json").stdout)
    assert info["builder"] == "dockerfile" and info["container_port"] == 8000
    state = json.loads((app.home / "state" / f"{app.target}.json").read_text())
    assert state["builder"] == "dockerfile"
    # the release's env reaches the container byte-exact (multi-line too), PORT is the container's
    assert get(app.ip, "/env/GREETING") == (200, MULTILINE.encode())
    assert get(app.ip, "/env/PORT") == (200, b"8000")
    assert get(app.ip, "/env/INVOCATION_ID")[0] == 404  # systemd's own variables stay outside
    # the container publishes on loopback only
    name = f"lightfold-{app.target}-{journal(app)[rid]['slot']}"
    assert "127.0.0.1:" in app.exec(f"docker port {name}").stdout
    # issue 13: the app user is not in the docker group (root on the server), and the app's process
    # in the container is the app user's uid, with no capability and a read-only root
    user = f"lf-{app.target}"
    assert "docker" not in app.exec(f"id -nG {user}").stdout.split()
    uid, gid = app.exec(f"id -u {user}").stdout.strip(), app.exec(f"id -g {user}").stdout.strip()
    pid = app.exec(f"docker inspect -f '{{{{.State.Pid}}}}' {name}").stdout.strip()
    app_pid = app.exec(f"pgrep -P {pid}").stdout.split()[0]
    for p in (pid, app_pid):  # docker's init and the app itself
        status = app.exec(f"cat /proc/{p}/status").stdout
        uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
        assert uids == [uid] * 4 and uid != "0", status
        assert re.search(r"^CapEff:\s+0+$", status, re.M) and re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    inspect = json.loads(app.exec(f"docker inspect {name}").stdout)[0]
    assert inspect["Config"]["User"] == f"{uid}:{gid}"
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True and inspect["HostConfig"]["CapDrop"] == ["ALL"]
    # the slot's own process (root, no capability, none of the app's env) only talks to docker
    unit = f"lightfold-{app.target}@{journal(app)[rid]['slot']}.service"
    main_pid = app.exec(f"systemctl show -p MainPID --value {unit}").stdout.strip()
    status = app.exec(f"cat /proc/{main_pid}/status").stdout
    assert re.search(r"^CapEff:\s+0+$", status, re.M) and re.search(r"^CapBnd:\s+0+$", status, re.M), status
    assert "GREETING" not in app.exec(f"tr '\\0' '\\n' < /proc/{main_pid}/environ").stdout


# A stand-in for a cloud's metadata service, off the app's network as on a cloud: 169.254.169.254
# in a network namespace of its own behind a veth pair, so a container's packets to it are
# forwarded by the server (as they are to the real one), while the server's own root reaches it
# directly. Undone by META_DOWN.
META_UP = (
    "set -e; ip netns add lfmeta; ip link add lfmeta0 type veth peer name lfmeta1; ip link set lfmeta1 netns lfmeta;"
    " ip addr add 169.254.0.1/30 dev lfmeta0; ip link set lfmeta0 up;"
    " ip -n lfmeta addr add 169.254.0.2/30 dev lfmeta1; ip -n lfmeta addr add 169.254.169.254/32 dev lfmeta1;"
    " ip -n lfmeta link set lfmeta1 up; ip -n lfmeta link set lo up; ip -n lfmeta route add default via 169.254.0.1;"
    " ip route add 169.254.169.254/32 via 169.254.0.2;"
    " systemd-run --quiet --unit=lfmeta-http ip netns exec lfmeta python3 -m http.server --bind 169.254.169.254 80;"
    " for _ in $(seq 50); do python3 -c \"import socket; socket.create_connection(('169.254.169.254', 80), 1)\""
    " 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
)
META_DOWN = ("systemctl stop lfmeta-http 2>/dev/null; ip route del 169.254.169.254/32 2>/dev/null;"
             " ip link del lfmeta0 2>/dev/null; ip netns del lfmeta 2>/dev/null; true")
CONNECT = ("python3 -c \"import socket\ntry:\n socket.create_connection(('169.254.169.254', 80), 3); print('connected')"
           "\nexcept OSError as e: print(type(e).__name__)\"")


def test_a_container_cannot_reach_the_metadata_address(app):
    """issue 13: the container's packets leave the app unit's cgroup (its IPAddressDeny does not
    see them), so lightfold's firewall refuses every forwarded packet to the metadata address."""
    name = f"lightfold-{app.target}-{journal(app)[live(app)]['slot']}"
    app.exec(META_DOWN)
    try:
        app.exec(META_UP, timeout=60)
        assert app.exec(CONNECT).stdout.strip() == "connected"  # the server's root reaches it
        assert app.exec(f"docker exec {name} {CONNECT}").stdout.strip() == "ConnectionRefusedError"
        # without lightfold's rule the container does reach it: the refusal above is the rule's
        handle = app.exec("nft -a list chain inet lightfold forward"
                          " | sed -n 's/.*169.254.169.254 reject.*# handle //p'")
        app.exec(f"nft delete rule inet lightfold forward handle {handle.stdout.strip()}")
        assert app.exec(f"docker exec {name} {CONNECT}").stdout.strip() == "connected"
    finally:
        app.exec("nft -f /etc/lightfold/firewall.confirmed.nft")
        app.exec(META_DOWN)
    assert "169.254.169.254 reject" in app.exec("nft list chain inet lightfold forward").stdout
    assert get(app.ip) == (200, b"hello from docker v1\n")


def test_redeploy_under_load_drops_no_request_and_stops_the_old_container(app):
    before = live(app)
    old_slot = journal(app)[before]["slot"]
    set_message(app, "hello from docker v2")
    with Probe(f"http://{app.ip}/", rate=100) as probe:
        proc = app.lightfold("push", "--target", app.target, "--json", timeout=300)
    result = probe.result
    assert result.failed == 0, f"{result.summary()}: {result.failures}"
    assert result.total > 100, result.summary()
    assert set(result.bodies) <= {"hello from docker v1", "hello from docker v2"}
    data = json.loads(proc.stdout)
    assert data["previous"] == before and data["release"] == live(app)
    assert get(app.ip) == (200, b"hello from docker v2\n")
    new_slot = journal(app)[data["release"]]["slot"]
    # the old slot's unit stopped after the drain, and its container went with it
    deadline = time.monotonic() + 30
    while f"lightfold-{app.target}-{old_slot}" in containers(app) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers(app) == [f"lightfold-{app.target}-{new_slot}"]


def test_env_only_change_reuses_the_image(app):
    before, tags = live(app), images(app)
    app.lightfold("config", "set", "deploy.env_vars.EXTRA", "added later", "--target", app.target)
    # a name systemd and the shell also use: set for the app, it reaches the container too
    app.lightfold("config", "set", "deploy.env_vars.LANG", "C.UTF-8", "--target", app.target)
    data = json.loads(app.lightfold("push", "--target", app.target, "--json", timeout=300).stdout)
    assert data["build"] == "env-only"
    assert get(app.ip, "/env/EXTRA") == (200, b"added later")
    assert get(app.ip, "/env/LANG") == (200, b"C.UTF-8")
    after = images(app)
    assert after[data["release"]] == tags[before]  # the same image under the new release's tag


def test_rollback_starts_the_previous_image_without_a_rebuild(app):
    current, tags = live(app), images(app)
    previous = next(rid for rid, e in journal(app).items() if e["status"] == "previous")
    proc = app.lightfold("rollback", "--target", app.target, "--json", timeout=300)
    assert live(app) == previous, proc.stdout
    assert get(app.ip) == (200, b"hello from docker v2\n")
    assert get(app.ip, "/env/EXTRA")[0] == 404  # the previous release's own env snapshot
    assert images(app) == tags  # same images, same ids: nothing was built
    assert current in tags


def test_failed_build_keeps_the_live_release(app):
    serving = live(app)
    body = get(app.ip)
    dockerfile = app.project / "Dockerfile"
    good = dockerfile.read_text()
    dockerfile.write_text(good.replace("COPY app.py .", "COPY app.py .\nRUN exit 3"))
    commit(app.project, "broken build")
    try:
        proc = app.lightfold("push", "--target", app.target, check=False, timeout=300)
        assert proc.returncode != 0
        assert "the build failed at image" in proc.stderr, proc.stderr
        assert "live release keeps serving" in proc.stderr
        assert live(app) == serving and get(app.ip) == body
        failed = [e for e in journal(app).values() if e["status"] == "failed"]
        assert failed and failed[-1]["id"] not in images(app)
    finally:
        dockerfile.write_text(good)
        commit(app.project, "fixed build")


def test_a_base_image_the_server_cannot_pull_names_the_fix(app):
    """issue 12 class 7: no registry is reachable from the machine, so a FROM naming Docker Hub fails
    to pull; the error names the image and the ways out instead of a raw docker error."""
    serving = live(app)
    dockerfile = app.project / "Dockerfile"
    good = dockerfile.read_text()
    first = good.splitlines()[0]
    assert first.startswith("FROM local/debian-python")
    dockerfile.write_text(good.replace(first, "FROM python:3.12-slim", 1))
    commit(app.project, "base image from Docker Hub")
    try:
        proc = app.lightfold("push", "--target", app.target, check=False, timeout=300)
        assert proc.returncode == 1, proc.stderr
        pulled = re.search(r"could not pull the Dockerfile's base image \(\S*python:3\.12-slim\)", proc.stderr)
        assert pulled, proc.stderr
        assert "--builder native" in proc.stderr
        assert live(app) == serving
    finally:
        dockerfile.write_text(good)
        commit(app.project, "local base image again")


def test_cleanup_removes_the_images_of_removed_releases(app):
    before, serving = set(journal(app)), live(app)
    req = json.dumps({"op": "cleanup", "app": app.target, "keep": 1})
    app.exec(remote_command(), input=req)
    removed = before - set(journal(app))
    assert removed, "keep=1 removes the releases that are neither the newest, live nor previous"
    left = images(app)
    assert not removed & set(left), left
    assert serving in left and get(app.ip) == (200, b"hello from docker v2\n")


def test_configure_takes_the_app_user_out_of_the_docker_group_an_older_version_put_it_in(app):
    """issue 13: a server configured by an older lightfold has lf-<app> in the docker group; the
    next configure removes it, and the app keeps serving."""
    user = f"lf-{app.target}"
    app.exec(f"usermod -aG docker {user}")
    assert "docker" in app.exec(f"id -nG {user}").stdout.split()
    app.lightfold("configure", "--target", app.target, "--force", timeout=600)
    assert "docker" not in app.exec(f"id -nG {user}").stdout.split()
    assert get(app.ip) == (200, b"hello from docker v2\n")
