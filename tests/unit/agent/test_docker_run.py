"""agent/docker_run.py, what a dockerfile app's slot unit runs as root: for real in a subprocess,
against a stand-in docker API on a unix socket (it records the requests) and a stand-in docker
CLI (it records its argv and environment). The real engine runs in e2e test_dockerfile.py."""

from __future__ import annotations

import json
import os
import pwd
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from lightfold.agent import docker_run
from lightfold.agent.envfile import render_env_file
from lightfold.agent.layout import Layout

RID = "20260101120000"
SRC = str(Path(docker_run.__file__).resolve().parents[2])


class FakeDocker(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str):
        self.requests: list[tuple[str, str, dict | None]] = []
        self.create_status = 201

        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict | None = None):
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_DELETE(self):
                server.requests.append(("DELETE", self.path, None))
                self._answer(404, {"message": "No such container"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(("POST", self.path, body))
                self._answer(server.create_status, {"Id": "c0ffee"})

            def address_string(self):
                return "unix"

            def log_message(self, *args):
                pass

        super().__init__(path, Handler)


@pytest.fixture
def slot(tmp_path):
    lay = Layout("shop", str(tmp_path))
    meta = Path(lay.release_meta(RID))
    meta.mkdir(parents=True)
    (meta / "release.json").write_text(json.dumps({"id": RID, "container_port": 8000}))
    Path(lay.slots_dir).mkdir(parents=True)
    os.symlink(f"../releases/{RID}", lay.slot_link("green"))
    Path(lay.run_dir).mkdir(parents=True)
    env = {"SECRET": "multi\nline 'value' $HOME", "LANG": "C.UTF-8", "PORT": "8003"}
    Path(lay.run_env("green")).write_text(render_env_file(env))
    Path(lay.etc).mkdir(parents=True)
    me = pwd.getpwuid(os.getuid())
    Path(lay.app_json).write_text(json.dumps({"app": "shop", "user": me.pw_name}))
    sock = str(tmp_path / "docker.sock")
    api = FakeDocker(sock)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    cli = tmp_path / "docker"
    out = str(tmp_path / "cli.json")
    cli.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                   f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({out!r}, 'w'))\n")
    cli.chmod(0o755)
    yield lay, api, tmp_path, me
    api.shutdown()
    api.server_close()


def start(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    driver = (f"import sys; sys.path.insert(0, {SRC!r}); from lightfold.agent import docker_run as d; "
              f"d.DOCKER_SOCKET = {str(tmp_path / 'docker.sock')!r}; d.DOCKER = {str(tmp_path / 'docker')!r}; "
              f"sys.exit(d.main(sys.argv[1:], root={str(tmp_path)!r}))")
    return subprocess.run([sys.executable, "-c", driver, *args], capture_output=True, text=True, timeout=30,
                          env=env or {"PATH": "/usr/bin:/bin", "LD_PRELOAD": "/nowhere/evil.so"})


def test_the_container_runs_as_the_app_user_confined_on_loopback_with_the_slots_env(slot):
    lay, api, tmp_path, me = slot
    r = start(tmp_path, "shop", "green")
    assert r.returncode == 0, r.stderr
    (m1, p1, _), (m2, p2, spec) = api.requests
    assert (m1, p1) == ("DELETE", "/v1.41/containers/lightfold-shop-green?force=1")
    assert (m2, p2) == ("POST", "/v1.41/containers/create?name=lightfold-shop-green")
    assert spec["Image"] == f"lightfold-shop:{RID}" and spec["User"] == f"{me.pw_uid}:{me.pw_gid}"
    # byte-exact values (multi-line, quotes, $), PORT is the container's
    assert sorted(spec["Env"]) == sorted(["SECRET=multi\nline 'value' $HOME", "LANG=C.UTF-8", "PORT=8000"])
    host = spec["HostConfig"]
    assert host["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8003"}]}
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True and host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=64m"}
    assert host["Init"] is True and host["AutoRemove"] is True and host["Privileged"] is False
    assert "Binds" not in host and "Mounts" not in host
    # then the CLI attaches, with a clean environment (none of the caller's, e.g. LD_PRELOAD)
    cli = json.loads((tmp_path / "cli.json").read_text())
    assert cli["argv"] == ["start", "--attach", "lightfold-shop-green"]
    assert {k: v for k, v in cli["env"].items() if k not in ("PWD", "LC_CTYPE")} == {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def test_a_slot_link_that_is_not_a_release_is_refused(slot):
    lay, api, tmp_path, _ = slot
    os.unlink(lay.slot_link("green"))
    os.symlink("/etc", lay.slot_link("green"))
    r = start(tmp_path, "shop", "green")
    assert r.returncode != 0 and "points at no release" in r.stderr and api.requests == []


def test_a_release_json_that_is_a_symlink_is_not_followed(slot):
    """The build user owns the release: root opens its release.json with O_NOFOLLOW."""
    lay, api, tmp_path, _ = slot
    info = Path(lay.release_info(RID))
    (tmp_path / "elsewhere.json").write_text(json.dumps({"container_port": 9000}))
    info.unlink()
    info.symlink_to(tmp_path / "elsewhere.json")
    r = start(tmp_path, "shop", "green")
    assert r.returncode != 0 and "cannot open" in r.stderr and api.requests == []


@pytest.mark.parametrize("port", ["8000", 0, 70000, True, None])
def test_the_container_port_must_be_a_port_number(slot, port):
    lay, api, tmp_path, _ = slot
    Path(lay.release_info(RID)).write_text(json.dumps({"container_port": port}))
    r = start(tmp_path, "shop", "green")
    assert r.returncode != 0 and "no valid container_port" in r.stderr and api.requests == []


@pytest.mark.parametrize("args", [["shop"], ["shop", "red"], ["../x", "blue"], ["shop\n", "blue"]])
def test_bad_arguments_are_refused(slot, args):
    _, api, tmp_path, _ = slot
    r = start(tmp_path, *args)
    assert r.returncode != 0 and "usage" in r.stderr and api.requests == []


def test_docker_refusing_the_container_is_a_clear_failure(slot):
    _, api, tmp_path, _ = slot
    api.create_status = 404
    r = start(tmp_path, "shop", "green")
    assert r.returncode != 0 and "docker could not create lightfold-shop-green: 404" in r.stderr
    assert not (tmp_path / "cli.json").exists()
