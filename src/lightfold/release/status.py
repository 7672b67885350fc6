"""What `lightfold status` reports about a target: the provider's view of the server, whether SSH
logs in, and the agent's deploy status (lightfold.release.operate.remote_status), in one dict
with stable keys (README.md, "status --json keys")."""

from __future__ import annotations

from typing import Any

from lightfold.errors import LightfoldError

SSH_CHECK_TIMEOUT = 5


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
    from lightfold import config, providers, state
    from lightfold.release import operate

    tc = config.get_target(config.load(), target)
    pc = tc.server()
    st = state.load(target)
    server_state = providers.get(tc.provider).server_state(target) if tc.provider else "unknown"
    deploy, deploy_error = None, None
    if server_state not in ("running", "unknown"):
        ssh = f"server is {server_state}"
    elif pc.ip and pc.ssh_key:
        # One SSH connection answers both "reachable?" and the agent's deploy status.
        ssh, deploy, deploy_error = operate.remote_status(target, timeout=SSH_CHECK_TIMEOUT * 3)
    else:
        ssh = ssh_check(pc.ip, pc.port, pc.username, pc.ssh_key)
    info = deploy or operate.EMPTY_DEPLOY_STATUS
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
        **operate.EMPTY_UPDATES,
        **info,
        "deploy_error": deploy_error,
        **servers_status(target, pc.ip, st, info),
    }


def server_entry(server, info: dict[str, Any]) -> dict[str, Any]:
    """One entry of status's `servers`: name, ip, role, live_release, health (healthy/unhealthy,
    None when unknown)."""
    now = info.get("health_now") or {}
    health = None if not now else ("healthy" if now.get("ok") else "unhealthy")
    return {"name": server.name, "ip": server.ip, "role": server.role, "live_release": info.get("live_release"),
            "health": health}


def servers_status(target: str, ip: str | None, st, primary_info: dict[str, Any]) -> dict[str, Any]:
    """`servers` (every server; the primary's from the status already read) and `load_balancer`
    (None for a single-server target)."""
    from concurrent.futures import ThreadPoolExecutor

    from lightfold import state
    from lightfold.release import lb, operate
    from lightfold.release import target as targets

    def read(server) -> dict[str, Any]:
        if server.ip == ip:
            return server_entry(server, primary_info)
        _, deploy, _ = operate.remote_status(target, timeout=SSH_CHECK_TIMEOUT * 3, ip=server.ip)
        return server_entry(server, deploy or {})

    servers = state.servers_of(target, ip, st)
    # All at once: a dead server costs its SSH timeout once, not once per server after it.
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(servers) + 1))) as pool:
        balancer = pool.submit(lb.status_of, targets.load(target), st.load_balancer) if st.load_balancer else None
        entries = list(pool.map(read, servers))
        lb_info = balancer.result() if balancer else None
    return {"servers": entries, "load_balancer": lb_info}
