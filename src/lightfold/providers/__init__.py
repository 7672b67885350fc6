"""Where servers come from. One module per provider (`local`, and the cloud ones), each exposing:

    create(target, project_path, *, force, network, progress) -> dict   # JSON-ready summary
    destroy(target, *, progress) -> dict
    server_state(target) -> str   # "running" | "stopped" | "missing" | "unknown"

`status()` below is the provider-independent part of `lightfold status`: a dict with stable keys
that later steps extend (deploy info) without renaming anything.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from lightfold.errors import LightfoldError

SSH_CHECK_TIMEOUT = 5


def get(name: str) -> ModuleType:
    """The provider module `name`, or a clear error when this build doesn't have it."""
    from lightfold.config import PROVIDERS

    if name not in PROVIDERS:
        raise LightfoldError(f"unknown provider '{name}'", f"use one of: {', '.join(PROVIDERS)}")
    try:
        return importlib.import_module(f"lightfold.providers.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"lightfold.providers.{name}":
            raise
        raise LightfoldError(
            f"the '{name}' provider is not available in this version", "use --provider local"
        ) from None


def ssh_check(ip: str | None, port: int, username: str, key: str | None) -> str:
    """'reachable' when we can log in and run a command, else the one-line reason."""
    if not ip:
        return "no address recorded"
    if not key:
        return "no ssh_key recorded"
    from lightfold import remote
    from lightfold.remote.openssh import known_hosts_path

    async def probe() -> str:
        conn = await remote.connect(ip, port, username, key, known_hosts_path(), timeout=SSH_CHECK_TIMEOUT)
        async with conn:
            await conn.run("true", timeout=SSH_CHECK_TIMEOUT)
        return "reachable"

    try:
        return remote.run_sync(probe())
    except LightfoldError as e:
        return e.problem


def status(target: str) -> dict[str, Any]:
    """What `lightfold status` reports about the server of `target` (JSON keys are stable)."""
    from lightfold import config, state

    cfg = config.load()
    tc = config.get_target(cfg, target)
    pc = tc.server()
    st = state.load(target)
    from lightfold.release import operate

    server_state = "unknown"
    if tc.provider:
        try:
            mod = get(tc.provider)
        except LightfoldError:  # e.g. byos: no provider module; the server is whatever answers SSH
            mod = None
        if hasattr(mod, "server_state"):
            server_state = mod.server_state(target)
    deploy, deploy_error = None, None
    if server_state not in ("running", "unknown"):
        ssh = f"server is {server_state}"
    elif pc.ip and pc.ssh_key:
        # One SSH connection answers both "reachable?" and the agent's deploy status.
        ssh, deploy, deploy_error = operate.remote_status(target, timeout=SSH_CHECK_TIMEOUT * 3)
    else:
        ssh = ssh_check(pc.ip, pc.port, pc.username, pc.ssh_key)
    return {
        "target": target,
        "provider": tc.provider,
        "ip": pc.ip,
        "ssh_user": pc.username,
        "ssh_port": pc.port,
        "server_id": pc.server_id,
        "network": pc.network,
        "created": st.created,
        "server_state": server_state,
        "ssh": ssh,
        # local state
        "configured": st.configured,
        "last_release": st.last_release,
        "last_deploy": st.last_deploy,
        "domain": tc.domain.domain if tc.domain else None,
        # from the server's agent (None values when unreachable or not deployed; see deploy_error)
        **(deploy or operate.EMPTY_DEPLOY_STATUS),
        "deploy_error": deploy_error,
    }
