"""A target as the deploy steps see it: its config, its project directory and its server."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from lightfold import config
from lightfold.errors import LightfoldError
from lightfold.names import is_url_path

if TYPE_CHECKING:
    from lightfold.config import ProviderConfig, TargetConfig
    from lightfold.remote import Connection

T = TypeVar("T")


@dataclass
class Target:
    name: str
    config: TargetConfig

    @property
    def project(self) -> Path:
        return Path(self.config.project_path)

    @property
    def server(self) -> ProviderConfig:
        server = self.config.server()
        if not server.ip:
            raise LightfoldError(
                f"target '{self.name}' has no server yet",
                f"run `lightfold create --target {self.name}` (or `lightfold deploy`) first",
            )
        return server

    def on(self, ip: str) -> Target:
        """This target as seen on one of its servers (`lightfold.state.servers_of`): the same app,
        login and key, at `ip`. Every per-server step (configure, push, status) takes one."""
        tc = self.config.model_copy(deep=True)
        pc = tc.server().model_copy(update={"ip": ip})
        tc.provider_config = {**tc.provider_config, tc.provider or "": pc}
        return Target(self.name, tc)

    def detect(self):
        """The project's detection with the target's overrides applied (port, health path)."""
        from lightfold.detect import detect

        if not self.project.is_dir():
            raise LightfoldError(
                f"the project directory {self.project} of target '{self.name}' does not exist",
                f"run lightfold from the project, or `lightfold config set project_path DIR -t {self.name}`",
            )
        detection = detect(self.project)
        deploy = self.config.deploy
        if deploy.health_path:
            detection.health_path = deploy.health_path
        if deploy.port:
            detection.port = deploy.port
        if not is_url_path(detection.health_path):  # read from the project's routes: it reaches the agent
            raise LightfoldError(
                f"the health path {detection.health_path!r} found in the project is not a plain request path",
                f"set one: `lightfold config set deploy.health_path /health -t {self.name}`",
            )
        return detection


def source_layout(target: Target, detection) -> tuple[Path, str | None]:
    """What to ship and where the app sits in it: the project directory, or — for an app in a
    monorepo whose lockfile lives at the workspace root — the workspace, with the app's subdir."""
    app_root = Path(getattr(detection, "app_root", None) or target.project)
    workspace = getattr(detection, "workspace_root", None)
    if workspace and app_root != Path(workspace):
        root = Path(workspace)
        return root, app_root.relative_to(root).as_posix()
    return app_root, None


def load(name: str) -> Target:
    cfg = config.load()
    return Target(name, config.get_target(cfg, name))


def actor() -> str:
    """Who deploys: user@host, recorded in the server's journal and lock."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def ssh_settings(target: Target) -> dict:
    """How lightfold reaches the target's server: ip, port, username, key, user_known_hosts (the
    user's own ~/.ssh/known_hosts counts for servers they brought)."""
    server = target.server
    return {
        "ip": server.ip, "port": server.port, "username": server.username,
        "key": server.ssh_key or str(Path.home() / ".ssh" / "id_ed25519"),
        "user_known_hosts": target.config.provider == "byos",
    }


async def connect(target: Target) -> Connection:
    from lightfold.remote import connect as ssh_connect
    from lightfold.remote.openssh import known_hosts_path

    s = ssh_settings(target)
    return await ssh_connect(
        s["ip"], s["port"], s["username"], s["key"], known_hosts_path(), user_known_hosts=s["user_known_hosts"],
    )


def as_root(conn: Connection, command: str) -> str:
    """`command` run as root: as is for root logins, through `sudo -n` for a sudoer."""
    return root_command(conn.username, command)


def root_command(username: str, command: str) -> str:
    """`as_root` for a login name (a command for the system `ssh` client, not a Connection)."""
    return command if username == "root" else f"sudo -n {command}"


def on_server(target: Target, work: Callable[[Connection], Awaitable[T]]) -> T:
    """Connect to the target's server, run `work(conn)` and close the connection: how a command
    runs one step on the server from synchronous code."""
    from lightfold.remote import run_sync

    async def go() -> T:
        async with await connect(target) as conn:
            return await work(conn)

    return run_sync(go())
