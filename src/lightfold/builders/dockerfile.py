"""The dockerfile builder: the project's Dockerfile, built into an image on the server, run by the
same blue/green slot units (so the health-gated switch, smoke window, drain, rollback and keep-5
cleanup are the native ones).

configure   installs Debian's docker.io (no Recommends) and adds lf-<app> to the docker group.
push        unpacks the release as usual, then `build_script` (root) builds
            `lightfold-<app>:<release id>` from the release dir — output streamed on stderr, JSON
            events on stdout like the native build — and writes `.lightfold/start` and
            `.lightfold/release.json` (as the build user). On an isolated server the apt proxy (read at run time from
            `apt-config dump`) is passed as the http_proxy/https_proxy build args.
start       `.lightfold/start` (`start_script`) runs the image of the release it belongs to (the
            release id is read from its own path, so an env-only copy or a rollback finds its
            image) in the foreground:
                docker run --rm --init --name lightfold-<app>-<slot> -p 127.0.0.1:$PORT:<cport>
                           -e PORT=<cport> -e NAME ... lightfold-<app>:<id>
            `-e NAME` (no value) passes each variable of the release's env snapshot through from
            the unit's environment, so multi-line values survive; the names come from the slot's
            names file (`Layout.slot_names`), which the agent writes when it starts the slot (so LANG,
            PATH or HOME set for the app reach it, and systemd's own variables do not). On SIGTERM (the slot stops) the
            script runs `docker stop`, so no container outlives its slot.
rollback    starts the previous release, i.e. the previous image: no rebuild.
cleanup     the agent removes the image of every release it deletes.
"""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any

from lightfold.agent import layout
from lightfold.agent.layout import Layout
from lightfold.errors import LightfoldError
from lightfold.server.app import app_root_of, app_user, build_user, check_app_name
from lightfold.server.build import check_release_id, release_dir
from lightfold.server.plan import EnsurePackages, Run, Step, SystemdEnable

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
        user = app_user(spec.name)
        return (Step("docker", (
            EnsurePackages(("docker.io",)),
            # Debian 13 ships the client as a package of its own (only a Recommends of docker.io);
            # Debian 12's docker.io has it.
            Run(f"DEBIAN_FRONTEND=noninteractive {DOCKER_CLI_INSTALL}", unless="command -v docker >/dev/null",
                label="docker-cli (Debian 13: the client is its own package)"),
            SystemdEnable("docker", now=True),
            Run(f"usermod -aG docker {user}", unless=f"id -nG {user} | tr ' ' '\\n' | grep -qx docker",
                label=f"{user} in the docker group"),
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
    who owns the release: root never writes below releases/).
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
event '{{"build": "finish", "status": "done"}}'
"""


def retag_command(app: str, from_release: str, to_release: str) -> str:
    """An env-only release reuses the live release's image under its own tag."""
    return f"docker tag {shlex.quote(image_tag(app, from_release))} {shlex.quote(image_tag(app, to_release))}"
