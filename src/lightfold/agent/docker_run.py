"""The start of a dockerfile app's slot (`lightfold-<app>@<slot>`, run by root through the unit's
drop-in `Layout.docker_dropin`; see lightfold.builders.dockerfile for why root and not the app user):

    python3 -I -c <layout.agent_entry-like> <app> <slot>

It trusts nothing the app or its build can write except as data it validates: the release is the
slot link's target (a release id, 14 digits), the container port is an integer from the
release's release.json, the env is the slot's EnvironmentFile (`Layout.run_env`, root 0600, which
the agent wrote when it started the slot) parsed by the agent's own parser, and the uid is the
app user's from app.json (root's). The unit passes it no app env at all: no PATH, LD_PRELOAD or
LD_LIBRARY_PATH of the app reaches a process running as root.

It creates the container through docker's API on its unix socket (the env as a JSON list, so
multi-line values arrive byte-exact), confined (`container_spec`): the app user's uid and gid,
every capability dropped, no-new-privileges, a read-only root file system with a tmpfs /tmp, the
port published on 127.0.0.1 only, docker's init as PID 1, removed when it stops. Then it execs
`docker start -a` (the container's output is the unit's journal; SIGTERM is passed on, and the
unit's ExecStop runs `docker stop`).
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import socket
import sys
import urllib.parse

from .envfile import parse_env_file
from .files import link_release, read_json
from .layout import Layout, image_name, is_app_name, is_release_id

DOCKER_SOCKET = "/run/docker.sock"
DOCKER = "/usr/bin/docker"
API = "/v1.41"  # docker 20.10 (Debian 12's docker.io) and newer speak it
TMPFS = "rw,nosuid,nodev,size=64m"
SLOTS = ("blue", "green")


def container_name(app: str, slot: str) -> str:
    """`lightfold-<app>-<slot>` (the unit's ExecStop stops it by this name)."""
    return f"{image_name(app)}-{slot}"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def api(method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    """One request to docker's API on its socket: (status, body)."""
    conn = _UnixConnection(DOCKER_SOCKET)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, API + path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except OSError as e:
        raise SystemExit(f"lightfold: cannot reach docker at {DOCKER_SOCKET} ({e}): is it running? "
                         "(systemctl status docker)") from None
    finally:
        conn.close()


def container_port(info: dict) -> int:
    port = info.get("container_port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SystemExit(f"lightfold: release.json has no valid container_port ({port!r})")
    return port


def release_info(path: str) -> dict:
    """release.json of a release, opened without following a symlink (the build user wrote it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise SystemExit(f"lightfold: cannot open {path}: {e.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as f:
        try:
            info = json.loads(f.read(1 << 20))
        except (ValueError, UnicodeDecodeError):
            raise SystemExit(f"lightfold: {path} is not valid JSON") from None
    return info if isinstance(info, dict) else {}


def container_spec(image: str, env: dict[str, str], host_port: int, port: int, uid: int, gid: int) -> dict:
    """The body of POST /containers/create (what `docker run` would send for the flags in the
    module docstring)."""
    key = f"{port}/tcp"
    return {
        "Image": image,
        "User": f"{uid}:{gid}",
        "Env": [f"{k}={v}" for k, v in env.items()],
        "ExposedPorts": {key: {}},
        "HostConfig": {
            "Init": True,
            "AutoRemove": True,
            "PortBindings": {key: [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]},
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "ReadonlyRootfs": True,
            "Tmpfs": {"/tmp": TMPFS},
            "Privileged": False,
        },
    }


def container_env(slot_env: dict[str, str], port: int) -> tuple[dict[str, str], int]:
    """(the container's env: the slot's, PORT the container's port; the slot's own port)."""
    env = dict(slot_env)
    host_port = int(env.pop("PORT", "0"))
    if not 1 <= host_port <= 65535:
        raise SystemExit("lightfold: the slot's env file has no PORT")
    env["PORT"] = str(port)
    return env, host_port


def main(argv: list[str] | None = None, root: str = "/") -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not is_app_name(args[0]) or args[1] not in SLOTS:
        raise SystemExit("usage: docker_run <app> <blue|green>")
    app, slot = args
    lay = Layout(app, root)
    rid = link_release(lay.slot_link(slot))
    if not is_release_id(rid):
        raise SystemExit(f"lightfold: slot {slot} points at no release ({rid!r})")
    port = container_port(release_info(lay.release_info(rid)))
    cfg = read_json(lay.app_json, {})
    user = pwd.getpwnam(cfg["user"])
    with open(lay.run_env(slot), encoding="utf-8") as f:
        env, host_port = container_env(parse_env_file(f.read()), port)
    name = container_name(app, slot)
    # a container left by a killed slot would hold the name (and the port)
    api("DELETE", f"/containers/{name}?force=1")
    spec = container_spec(f"{image_name(app)}:{rid}", env, host_port, port, user.pw_uid, user.pw_gid)
    status, body = api("POST", "/containers/create?" + urllib.parse.urlencode({"name": name}), spec)
    if status != 201:
        raise SystemExit(f"lightfold: docker could not create {name}: {status} {body.decode(errors='replace')}")
    sys.stdout.flush()
    os.execve(DOCKER, [DOCKER, "start", "--attach", name], {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return 1
