"""~/.lightfold/state/<target>.json: what lightfold has done to a target.

The seed's keys (created, configured, last_commit, last_deploy, last_release, provisioned_id,
builder) plus what the later steps need to skip work safely.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightfold import store
from lightfold.errors import LightfoldError

STATE_VERSION = 1

# A target's servers (README, "More than one server"): the primary builds each release, runs its
# release command and the cron jobs; every server serves traffic behind the load balancer.
ROLES = ("primary", "web")


class Server(BaseModel):
    """One server of a target: its name (the sandbox machine's for `local`), address and role."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str
    ip: str
    role: Literal["primary", "web"] = "web"


class LoadBalancer(BaseModel):
    """The target's load balancer: HAProxy (from the OS archive) on a server of its own
    (`local`, `byos`), or the cloud provider's managed one."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: Literal["haproxy", "digitalocean", "hetzner", "vultr"] = "haproxy"
    name: str
    ip: str
    id: str | None = None  # a managed load balancer's id at its provider
    network_id: str | None = None  # the target's private network at the provider
    # Where the app servers take web traffic from (an address or a CIDR); None: from `ip`.
    web_from: str | None = None


class TargetState(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    version: int = STATE_VERSION
    created: bool = False
    configured: bool = False
    last_commit: str | None = None
    last_deploy: str | None = None
    last_release: str | None = None
    provisioned_id: str | None = None
    builder: str | None = None
    # A unique tag/label put on a cloud server before the create call, so a retried create finds
    # the server instead of making a second one.
    create_tag: str | None = None
    # Fingerprint of what `configure` installed (runtime, units, nginx site, agent hash).
    configure_fingerprint: str | None = None
    # Fingerprint of code + env + deploy settings of the live release (push skips when equal).
    deploy_fingerprint: str | None = None
    # The no-op fast path's record (lightfold.release.noop): local key, server stamp, how to read it.
    noop: dict | None = None
    # More than one server (`lightfold scale`): every server, the primary first, and the load
    # balancer in front. Empty and None for a single-server target (a state file from before
    # scale has neither key): `servers_of` gives that target's one server.
    servers: list[Server] = Field(default_factory=list)
    load_balancer: LoadBalancer | None = None

    @property
    def multi(self) -> bool:
        """More than one server, or a load balancer in front (scale ran)."""
        return len(self.servers) > 1 or self.load_balancer is not None


def servers_of(target: str, ip: str | None, st: TargetState) -> list[Server]:
    """The target's servers, the primary first: those `scale` recorded, else the one server the
    target's config names (`ip`; none before create). A single-server target is a list of one."""
    if st.servers:
        return sorted(st.servers, key=lambda s: s.role != "primary")
    return [Server(name=target, ip=ip, role="primary")] if ip else []


def state_dir() -> Path:
    return store.home() / "state"


def state_path(target: str) -> Path:
    return state_dir() / f"{target}.json"


def load(target: str) -> TargetState:
    path = state_path(target)
    raw = store.read_json(path)
    if raw is None:
        return TargetState()
    if not isinstance(raw, dict):
        raise LightfoldError(f"{path}: the top level must be a JSON object", "run `lightfold sync`")
    try:
        return TargetState.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise LightfoldError(
            f"{path}: '{loc}': {err['msg']}",
            f"run `lightfold sync --target {target}` to rebuild it from the server",
        ) from e


def save(target: str, st: TargetState) -> None:
    store.write_json(state_path(target), st.model_dump(mode="json"))


def update(target: str, change: Callable[[TargetState], Any]) -> TargetState:
    path = state_path(target)
    with store.lock(path):
        st = load(target)
        change(st)
        save(target, st)
    return st


def remove(target: str) -> None:
    path = state_path(target)
    with store.lock(path):
        path.unlink(missing_ok=True)
    Path(str(path) + ".lock").unlink(missing_ok=True)
