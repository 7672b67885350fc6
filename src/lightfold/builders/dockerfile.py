"""The dockerfile builder: the project's Dockerfile, built into an image on the server, run by the
same blue/green slot units (so the health-gated switch, smoke window, drain, rollback and keep-5
cleanup are the native ones).

configure   installs Debian's docker.io (no Recommends) and writes the slots' drop-in
            (`Layout.docker_dropin`, `dropin_text`); lf-<app> is never in the docker group (a
            server configured by an older version has it removed: server.app.user_and_dirs_step).
push        unpacks the release as usual, then `build_script` (root) builds
            `lightfold-<app>:<release id>` from the release dir — output streamed on stderr, JSON
            events on stdout like the native build — and writes `.lightfold/start` and
            `.lightfold/release.json` (as the build user). On an isolated server the apt proxy (read at run time from
            `apt-config dump`) is passed as the http_proxy/https_proxy build args.
start       the slot unit, through its drop-in, runs lightfold.agent.docker_run as root (see
            "Who talks to docker" below): the container of the slot's release (an env-only copy
            or a rollback finds its image by the release id), confined, in the foreground.
            Before this drop-in, `.lightfold/start` (`start_script`, still written into each
            release so a server not yet configured again keeps working) ran, as the app user:
                docker run --rm --init --name lightfold-<app>-<slot> -p 127.0.0.1:$PORT:<cport>
                           -e PORT=<cport> -e NAME ... lightfold-<app>:<id>
            `-e NAME` (no value) passes each variable of the release's env snapshot through from
            the unit's environment, so multi-line values survive; the names come from the slot's
            names file (`Layout.slot_names`), which the agent writes when it starts the slot (so LANG,
            PATH or HOME set for the app reach it, and systemd's own variables do not). On SIGTERM (the slot stops) the
            script runs `docker stop`, so no container outlives its slot.
rollback    starts the previous release, i.e. the previous image: no rebuild.
cleanup     the agent removes the image of every release it deletes.

Who talks to docker. Docker's socket is root: a user in the `docker` group can start a
privileged container with the host's / mounted, so putting lf-<app> there (what this builder did
first) made every compromised app root on the server. Now nothing the app runs can reach the
socket: the slot unit's drop-in makes its process root, but root without any capability
(CapabilityBoundingSet= of the app template), without the app's env (EnvironmentFile= reset: no
PATH, LD_PRELOAD or LD_LIBRARY_PATH of the app reaches it), in the app unit's sandbox
(ProtectSystem=strict, ...), running only root-owned code (the agent package, never a file in a
release: releases are the build user's) that reads the slot's env file itself and creates the
container through docker's API, so its only power is what it asks docker for:
    --user <lf-app's uid:gid>   the app's code runs as the app user, never uid 0
    --cap-drop ALL, --security-opt no-new-privileges, --read-only with a tmpfs /tmp
    -p 127.0.0.1:<slot port>:<container port>   (docker ≥ 20.10 lets a non-root process bind
                                                 ports below 1024 inside the container)
    --init --rm, no socket, no host path mounted (storage is refused with this builder)
Why not a dedicated docker-group user for the unit: that user would be as root-equivalent as
root, and one more account to keep out of reach; root with no capabilities and a fixed program
is the smaller thing to trust. Why not rootless docker: it needs user namespaces and a per-user
daemon that systemd-nspawn test machines and small servers don't give reliably. What this costs
an image: it must run as a non-root user with a read-only file system (write to /tmp or
nowhere), which a 12-factor web image does.
"""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any

from lightfold.agent import layout
from lightfold.agent.layout import Layout
from lightfold.errors import LightfoldError
from lightfold.server.app import app_root_of, build_user, check_app_name
from lightfold.server.build import check_release_id, release_dir
from lightfold.server.plan import EnsurePackages, Run, Step, SystemdEnable, WriteFile

DEFAULT_CONTAINER_PORT = 8080

# The failed-build event from the output's last lines (stdin): argv = command, exit status.
_FAILED_EVENT = (
    "import json,sys; print(json.dumps({'build': 'image', 'status': 'failed', 'command': sys.argv[1], "
    "'exit': int(sys.argv[2]), 'output': sys.stdin.read().splitlines()}))"
)

# Variables systemd (or bash) puts in the unit's environment that are not the app's (used only
# when the agent left no names file, i.e. an agent older than it).
SYSTEM_VARS = (
    "PORT", "HOME", "XDG_CACHE_HOME", "PATH", "USER", "LOGNAME", "SHELL", "INVOCATION_ID",
    "JOURNAL_STREAM", "SYSTEMD_EXEC_PID", "MANAGERPID", "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS",
    "LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC", "PWD", "OLDPWD", "SHLVL", "_", "TERM",
    "RUNTIME_DIRECTORY", "STATE_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY",
    "CONFIGURATION_DIRECTORY", "CREDENTIALS_DIRECTORY", "MAINPID", "LF_NAME", "LF_RID", "LF_SLOT",
    "LF_ARGS", "LF_PID", "LF_RC", "LF_NAMES",
)


DOCKER_CLI_INSTALL = "apt-get -y -q -o DPkg::Lock::Timeout=600 install --no-install-recommends docker-cli"


class DockerfileBuilder:
    name = "dockerfile"
    available_check = "command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1"
    replaces_runtime = True

    def configure_steps(self, spec: Any) -> tuple:
        return (Step("docker", (
            EnsurePackages(("docker.io",)),
            # Debian 13 ships the client as a package of its own (only a Recommends of docker.io);
            # Debian 12's docker.io has it.
            Run(f"DEBIAN_FRONTEND=noninteractive {DOCKER_CLI_INSTALL}", unless="command -v docker >/dev/null",
                label="docker-cli (Debian 13: the client is its own package)"),
            SystemdEnable("docker", now=True),
            # app_step (next) reloads systemd
            WriteFile(Layout(spec.name).docker_dropin, dropin_text(spec.name)),
        )),)

    def serves_static(self, detection: Any) -> bool:
        return False

    def adapt(self, detection: Any) -> Any:
        """A Dockerfile app is never static: the container serves it."""
        import copy

        if getattr(detection, "static", False):
            detection = copy.copy(detection)
            detection.static = False
        return detection

    def lockfiles(self, detection: Any) -> tuple[str, ...]:
        return ()  # the image is built whole; no dependencies are carried over

    def prepare_command(self, app: str, release_id: str, detection: Any, app_subdir: str | None) -> str | None:
        return None

    def prepared(self, detection: Any, output: str) -> tuple[Any, tuple[str, ...]]:
        return detection, ()

    def build_step(self, app: str, release_id: str, reuse_from: str | None) -> str:
        return f"building image {image_tag(app, release_id)} on the server"

    def build_script(self, app: str, detection: Any, deploy: Any, release_id: str, *, deps_hash: str | None,
                     reuse_from: str | None, release_info: dict[str, Any], app_subdir: str | None) -> str:
        return build_script(app, detection, deploy, release_id, release_info=release_info, app_subdir=app_subdir)

    def reuse_commands(self, app: str, from_release: str, to_release: str) -> tuple[str, ...]:
        """An env-only release runs the live release's image under its own tag."""
        return (retag_command(app, from_release, to_release),)


def image_name(app: str) -> str:
    check_app_name(app)
    return layout.image_name(app)


def image_tag(app: str, release_id: str) -> str:
    check_release_id(release_id)
    return f"{image_name(app)}:{release_id}"


def container_port(deploy: Any, detection: Any) -> int:
    """deploy.port wins, then the Dockerfile's EXPOSE, then 8080 (the app also gets PORT)."""
    return int(getattr(deploy, "port", None) or getattr(detection, "dockerfile_port", None)
               or DEFAULT_CONTAINER_PORT)


# Where docker's CLI looks for its config in the slot unit: nowhere (root's HOME is hidden by
# ProtectHome, and a missing directory makes the CLI use its defaults without a warning).
DOCKER_CONFIG = "/nonexistent"


def dropin_text(app: str) -> str:
    """The slots' drop-in: root without the app's env runs agent/docker_run.py for the slot, and
    ExecStop stops the slot's container (see the module docstring, "Who talks to docker")."""
    check_app_name(app)
    entry = (f"import sys; sys.path.insert(0, {layout.AGENT_DIR!r}); "
             f"from {layout.AGENT_PACKAGE}.docker_run import main; sys.exit(main())")
    return f"""# Generated by lightfold: {app} is built by the dockerfile builder. Its slot's process is root
# with no capabilities and none of the app's env, running only the agent's docker_run (root's
# file), which starts the release's container as the app user with every capability dropped.
# The app user is not in the docker group.
[Service]
User=root
Group=root
EnvironmentFile=
Environment=
Environment=DOCKER_CONFIG={DOCKER_CONFIG}
ExecStart=
ExecStart=/usr/bin/python3 -I -c "{entry}" {app} %i
ExecStop=-/usr/bin/docker stop -t 20 {image_name(app)}-%i
"""


def start_script(app: str, port: int) -> str:
    name = image_name(app)
    skip = "|".join(SYSTEM_VARS)
    return f"""#!/bin/bash
# Start of {app} from its Docker image (generated by lightfold). systemd sets PORT (the slot's
# port on 127.0.0.1) and the release's env; the container listens on {port}.
here=$(cd "$(dirname "$0")/.." && pwd -P) || exit 1
LF_RID=${{here##*/}}
LF_SLOT=$(basename "$(dirname "$(dirname "$0")")")
LF_NAME={name}-$LF_SLOT
LF_NAMES=$(dirname "$(dirname "$0")").names  # the slot's names file, beside its link
LF_ARGS=()
if [ -r "$LF_NAMES" ]; then
  # exactly the names of the release's env snapshot (the agent lists them when it starts the slot)
  while IFS= read -r n; do
    [ -n "$n" ] && [ "$n" != PORT ] && LF_ARGS+=(-e "$n")
  done < "$LF_NAMES"
else  # an agent from before the names file: everything but what systemd and bash add
  for n in $(compgen -e); do
    case $n in {skip}|LC_*|LANG|LANGUAGE) continue ;; esac
    LF_ARGS+=(-e "$n")
  done
fi
# A container left by a killed slot would hold the name (and the port).
docker rm -f "$LF_NAME" >/dev/null 2>&1
docker run --rm --init --name "$LF_NAME" -p "127.0.0.1:$PORT:{port}" -e PORT={port} "${{LF_ARGS[@]}}" \\
  "{name}:$LF_RID" &
LF_PID=$!
trap 'docker stop -t 20 "$LF_NAME" >/dev/null 2>&1; wait "$LF_PID"; exit 0' TERM INT
wait "$LF_PID"
LF_RC=$?
exit "$LF_RC"
"""


def refuse_procs(detection: Any) -> None:
    """Processes, cron jobs and storage run and live in a native release; the image builder has
    none of them yet: refuse at deploy time rather than deploy an app without its worker."""
    used = [k for k in ("processes", "cron", "storage") if getattr(detection, k, None)]
    if used:
        raise LightfoldError(
            f"{', '.join(used)} (lightfold.toml / Procfile) are not supported with --builder dockerfile",
            "deploy with `--builder native` (or nixpacks), or run the worker inside your image's start command")


def build_script(
    app: str, detection: Any, deploy: Any, release_id: str, *,
    release_info: dict[str, Any] | None = None, app_subdir: str | None = None,
) -> str:
    """Root's bash script: docker build, then the start script and release.json (as the build user,
    who owns the release while it is built: root never writes below releases/), then the release
    is sealed as root's.
    stdout: JSON events only ({"build": "image", "status": "start"|"done"|"failed", ...})."""
    refuse_procs(detection)
    rel, user, tag = release_dir(app, release_id), build_user(app), image_tag(app, release_id)
    lay = Layout(app)
    meta, start, info_path = (shlex.quote(p) for p in (
        lay.release_meta(release_id), lay.start_script(release_id), lay.release_info(release_id)))
    root = app_root_of(detection, app_subdir)
    ctx = rel if root == "." else f"{rel}/{root}"
    port = container_port(deploy, detection)
    info = {
        "id": release_id, "app": app, "framework": getattr(detection, "framework", None), "runtime": "docker",
        "build": None, "release": None, "start": f"docker run {tag}", "static": False, "app_root": root,
        "deps_hash": None, "image": tag, "container_port": port, **(release_info or {}),
    }
    start_b64 = base64.b64encode(start_script(app, port).encode()).decode()
    info_b64 = base64.b64encode((json.dumps(info, indent=2, sort_keys=True) + "\n").encode()).decode()
    display = f"docker build -t {tag} ."
    no_docker = json.dumps({"build": "image", "status": "failed", "command": "docker", "exit": 127, "output": [
        "docker is not installed on the server: run `lightfold configure` (it installs docker.io)"]})
    missing = json.dumps({"build": "image", "status": "failed", "command": "cd", "exit": 1,
                          "output": ["the release dir is missing"]})
    return f"""#!/bin/bash
# Build release {release_id} of {app} as a Docker image (generated by lightfold).
set -uo pipefail
event() {{ printf '%s\\n' "$1"; }}
command -v docker >/dev/null 2>&1 || {{ event {shlex.quote(no_docker)}; exit 1; }}
cd {shlex.quote(ctx)} || {{ event {shlex.quote(missing)}; exit 1; }}
df=Dockerfile
for f in Dockerfile dockerfile Containerfile; do [ -f "$f" ] && {{ df=$f; break; }}; done
args=()
# An isolated server reaches the package mirrors only through apt's proxy: give it to the build.
proxy=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\\(.*\\)";$/\\1/p' | head -n1)
if [ -n "$proxy" ] && [ "$proxy" != DIRECT ]; then
  args+=(--build-arg "http_proxy=$proxy" --build-arg "https_proxy=$proxy")
fi
event '{{"build": "image", "status": "start", "command": {json.dumps(display)}}}'
log=$(mktemp)
docker build -f "$df" -t {shlex.quote(tag)} "${{args[@]}}" . 2>&1 | tee "$log" >&2
rc=${{PIPESTATUS[0]}}
if [ "$rc" != 0 ]; then
  tail -n 20 "$log" | python3 -c {shlex.quote(_FAILED_EVENT)} {shlex.quote(display)} "$rc"
  rm -f "$log"
  exit 1
fi
rm -f "$log"
event '{{"build": "image", "status": "done"}}'
runuser -u {user} -- bash -c {shlex.quote(
        f"set -e; mkdir -p {meta}; "
        f"echo {start_b64} | base64 -d > {start}; chmod 755 {start}; "
        f"echo {info_b64} | base64 -d > {info_path}")} || exit 1
# sealed: the release is root's from now on (a later build can't change it)
pkill -KILL -U {user}
chown -R --no-dereference root:root {shlex.quote(rel)} || exit 1
event '{{"build": "finish", "status": "done"}}'
"""


def retag_command(app: str, from_release: str, to_release: str) -> str:
    """An env-only release reuses the live release's image under its own tag."""
    return f"docker tag {shlex.quote(image_tag(app, from_release))} {shlex.quote(image_tag(app, to_release))}"
