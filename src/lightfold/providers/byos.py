"""The `byos` provider: a server the user already has ("bring your own server").

lightfold never creates or deletes it. `create` registers it: resolves the login (flags, then
~/.ssh/config for the name given as --ip, then what was recorded, then defaults), checks the host
key against lightfold's known_hosts and the user's (a known key is trusted; an unknown one only
with --accept-new-host-key, a yes at the prompt, or when it is the key imported with --host-key /
LIGHTFOLD_HOST_KEY, as a CI job does; a changed one never, nor one that is not the imported key),
logs in with that exact key and checks what deploys need — key login, root or passwordless sudo,
Debian/Ubuntu, systemd as PID 1 — then writes /etc/lightfold/created, pins the key and records the
server. `destroy` only forgets it.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightfold import config, providers, state
from lightfold.agent.layout import CREATED_MARKER
from lightfold.errors import LightfoldError
from lightfold.providers import Progress, quiet
from lightfold.remote import openssh, user_ssh

NAME = "byos"
DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
CONNECT_TIMEOUT = 10
STATE_TIMEOUT = 3

Confirm = Callable[[str], bool]

# One round trip: who we are, whether sudo works without a password, PID 1, the OS.
FACTS_SCRIPT = r"""
echo "uid=$(id -u)"
if [ "$(id -u)" = 0 ]; then echo sudo=root
elif ! command -v sudo >/dev/null 2>&1; then echo sudo=missing
elif sudo -n true >/dev/null 2>&1; then echo sudo=ok
else echo sudo=password; fi
echo "pid1=$(cat /proc/1/comm 2>/dev/null)"
grep -E '^(ID|ID_LIKE|PRETTY_NAME)=' /etc/os-release 2>/dev/null | sed 's/^/os_/'
"""


# ---- pure pieces

def parse_facts(text: str) -> dict[str, str]:
    facts = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip().strip('"').strip("'")
    return facts


def check_facts(facts: dict[str, str], username: str, host: str) -> None:
    """Raise the first reason this login on this server cannot run deploys."""
    sudo = facts.get("sudo")
    if sudo == "missing":
        raise LightfoldError(
            f"{username}@{host} is not root and sudo is not installed",
            f"log in as root (--user root), or install sudo and let {username} use it without a password",
        )
    if sudo == "password":
        raise LightfoldError(
            f"{username}@{host} cannot use sudo without a password (`sudo -n true` failed)",
            f"log in as root (--user root), or allow it on the server: echo '{username} ALL=(ALL) NOPASSWD:ALL' "
            f"| sudo tee /etc/sudoers.d/{username}",
        )
    if sudo not in ("root", "ok"):
        raise LightfoldError(f"could not check the login on {host} (no answer from the shell of {username})",
                             "check that the user's login shell works: lightfold runs `sh -c` commands")
    ids = {facts.get("os_ID", "").lower(), *facts.get("os_ID_LIKE", "").lower().split()}
    if not ids & {"debian", "ubuntu"}:
        name = facts.get("os_PRETTY_NAME") or facts.get("os_ID") or "an unknown OS (no /etc/os-release)"
        raise LightfoldError(f"{host} runs {name}; lightfold supports Debian and Ubuntu servers only",
                             "use a server with Debian 12/13 or Ubuntu 22.04/24.04")
    if facts.get("pid1") != "systemd":
        raise LightfoldError(
            f"{host} does not run systemd as PID 1 (PID 1 is {facts.get('pid1') or 'unknown'})",
            "use a server (VM or bare metal) that boots with systemd; plain containers are not supported",
        )


def marker_command(username: str) -> str:
    """Writes stdin to the CREATED_MARKER atomically, through sudo for a sudoer."""
    folder = shlex.quote(posixpath.dirname(CREATED_MARKER))
    script = (f"set -e; mkdir -p {folder}; umask 022; tmp=$(mktemp {folder}/.created.XXXXXX); "
              f'cat > "$tmp"; chmod 644 "$tmp"; mv -f "$tmp" {CREATED_MARKER}')
    command = f"sh -c {shlex.quote(script)}"
    return command if username == "root" else f"sudo -n {command}"


def default_key(home: Path) -> Path | None:
    for name in DEFAULT_KEYS:
        key = home / ".ssh" / name
        if key.is_file():
            return key
    return None


def _summary(target: str, pc: config.ProviderConfig, *, changed: bool, **extra: Any) -> dict[str, Any]:
    return {"target": target, "provider": NAME, "ip": pc.ip, "ssh_user": pc.username, "ssh_port": pc.port,
            "ssh_key": pc.ssh_key, "changed": changed, **extra}


# ---- create

def resolve(
    given: str | None, user: str | None, port: int | None, ssh_key: str | None,
    old: config.ProviderConfig | None, home: Path,
) -> config.ProviderConfig:
    """The login to use: flags, then ~/.ssh/config for the name given as --ip, then what was
    recorded for the target, then root on port 22 with the first default key that exists."""
    if not given and not (old and old.ip):
        raise LightfoldError("no server address given",
                             "pass --ip ADDRESS (your server's IP, host name, or a Host alias from ~/.ssh/config)")
    sshcfg = user_ssh.host_settings(given, home) if given else user_ssh.HostSettings()
    if sshcfg.proxy:
        raise LightfoldError(
            f"~/.ssh/config reaches {given} through {sshcfg.proxy}, which lightfold cannot use",
            "pass the server's directly reachable address as --ip",
        )
    host = sshcfg.hostname or given or (old.ip if old else None)
    recorded = old if old and old.ip == host else None  # settings recorded for this same server
    key_path: Path | None = None
    if ssh_key:
        key_path = Path(ssh_key).expanduser()
    elif sshcfg.identity_files:
        files = [Path(p) for p in sshcfg.identity_files]
        key_path = next((p for p in files if p.is_file()), files[0])
    elif recorded and recorded.ssh_key:
        key_path = Path(recorded.ssh_key)
    else:
        key_path = default_key(home)
        if key_path is None:
            raise LightfoldError(
                "no SSH key found (~/.ssh/id_ed25519, id_ecdsa or id_rsa)",
                "pass --ssh-key PATH with the private key that logs in to your server",
            )
    if key_path.suffix == ".pub":
        raise LightfoldError(f"{key_path} is a public key",
                             f"pass the private key: --ssh-key {key_path.with_suffix('')}")
    if not key_path.is_file():
        raise LightfoldError(f"SSH key {key_path} does not exist",
                             "pass --ssh-key PATH with the private key that logs in to your server")
    return config.ProviderConfig(
        ip=host,
        username=user or sshcfg.user or (recorded.username if recorded else None) or "root",
        port=port or sshcfg.port or (recorded.port if recorded else None) or 22,
        ssh_key=str(key_path.resolve()),
    )


def imported_keys(text: str) -> list[str]:
    """The host keys given with --host-key / LIGHTFOLD_HOST_KEY, checked before anything connects."""
    try:
        keys = user_ssh.public_keys(text)
    except ValueError as e:
        keys, why = [], str(e)
    else:
        why = "it is empty"
    if not keys:
        raise LightfoldError(f"the imported host key is not an SSH public key ({why})",
                             "pass what `lightfold config export-host-key` printed (e.g. 'ssh-ed25519 AAAA...')")
    return keys


def _trust(pc: config.ProviderConfig, sshcfg: user_ssh.HostSettings, *, accept: bool,
           confirm: Confirm | None, progress: Progress, imported: list[str] | None = None) -> tuple[str, str]:
    """The host key to pin and where trust came from ('pinned', 'known_hosts', 'imported',
    'accepted'); raises when the key changed, is revoked, is not the imported one, or is new and
    not accepted."""
    from lightfold import remote

    assert pc.ip
    mine = openssh.known_hosts_path()
    lookup = sshcfg.host_key_alias or pc.ip
    user_files = [Path(p) for p in sshcfg.known_hosts_files] or [Path.home() / ".ssh" / "known_hosts"]
    pinned = user_ssh.read_known_keys([mine], pc.ip, pc.port).keys
    user = user_ssh.read_known_keys(user_files, lookup, pc.port)
    types = {user_ssh.key_type(k) for k in (imported or pinned + user.keys)}
    presented = remote.run_sync(user_ssh.server_host_key(pc.ip, pc.port, types, CONNECT_TIMEOUT))
    seen = remote.fingerprint(presented)
    verdict = user_ssh.judge(presented, pinned, user)
    pattern = user_ssh.host_pattern(pc.ip, pc.port)
    if verdict.kind == "changed":
        file = str(mine) if verdict.where == "lightfold" else (user.sources[0] if user.sources else str(user_files[0]))
        was = ", ".join(remote.fingerprint(k) for k in verdict.expected)
        raise LightfoldError(
            f"the host key of {pc.ip} changed: {file} has {was}, the server now presents {seen}",
            f"if the server was reinstalled, remove the old key with `ssh-keygen -R {pattern} -f {file}` and "
            "rerun; otherwise do not connect (the connection may be intercepted)",
        )
    if verdict.kind == "revoked":
        raise LightfoldError(f"the host key of {pc.ip} ({seen}) is marked @revoked in your known_hosts",
                             "do not connect; ask the server's administrator for its current host key")
    if imported is not None:
        if presented not in imported:
            want = ", ".join(remote.fingerprint(k) for k in imported)
            raise LightfoldError(
                f"the host key of {pc.ip} is not the imported one: expected {want}, the server presents {seen}",
                "if the server was rebuilt, export its key again (`lightfold config export-host-key`) and update "
                "the secret; otherwise do not connect (the connection may be intercepted)",
            )
        progress(f"host key {seen} matches the imported one")
        return presented, "imported"
    if verdict.kind == "pinned":
        progress(f"host key {seen} matches the one lightfold pinned")
        return presented, "pinned"
    if verdict.kind == "known":
        progress(f"host key {seen} is already trusted in {user.sources[0]}")
        return presented, "known_hosts"
    if accept:
        progress(f"trusting the new host key of {pc.ip}: {seen} (--accept-new-host-key)")
        return presented, "accepted"
    if confirm is not None:
        if confirm(f"The host key of {pc.ip} is not known yet. Its fingerprint is {seen}. Trust it?"):
            return presented, "accepted"
        raise LightfoldError(f"the host key of {pc.ip} ({seen}) was not trusted",
                             "compare it with the server's own fingerprint, then rerun and answer yes")
    raise LightfoldError(
        f"the host key of {pc.ip} is not known yet: {seen}",
        "compare it with the server's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console), "
        "then rerun with --accept-new-host-key",
    )


def _validate(target: str, pc: config.ProviderConfig, host_key: str, progress: Progress) -> dict[str, str]:
    """Log in with exactly `host_key` trusted, check the server and write the created marker."""
    from lightfold import remote

    assert pc.ip and pc.ssh_key

    async def run(known: Path) -> dict[str, str]:
        try:
            conn = await remote.connect(pc.ip, pc.port, pc.username, pc.ssh_key, known, timeout=CONNECT_TIMEOUT)
        except LightfoldError as e:
            if "refused the SSH key" in e.problem:
                raise LightfoldError(
                    f"{pc.username}@{pc.ip} refused the SSH key {pc.ssh_key}",
                    f"authorize it on the server (ssh-copy-id -i {pc.ssh_key}.pub -p {pc.port} {pc.username}@{pc.ip}),"
                    " or pass --ssh-key/--user for a login that works",
                ) from None
            raise
        async with conn:
            res = await conn.run(f"sh -c {shlex.quote(FACTS_SCRIPT)}", check=False, timeout=30,
                                 display="check the server")
            facts = parse_facts(res.stdout)
            check_facts(facts, pc.username, pc.ip)
            marker = {"target": target, "provider": NAME, "created_at": int(time.time()), "user": pc.username}
            await conn.run(marker_command(pc.username), input=json.dumps(marker) + "\n", timeout=30,
                           display=f"write {CREATED_MARKER}")
            return facts

    with tempfile.TemporaryDirectory(prefix="lightfold-byos-") as tmp:
        known = Path(tmp) / "known_hosts"
        known.write_text(f"{user_ssh.host_pattern(pc.ip, pc.port)} {host_key}\n")
        progress(f"checking {pc.username}@{pc.ip}:{pc.port} (key login, sudo, OS, systemd)")
        return remote.run_sync(run(known))


def create(
    target: str,
    project_path: Path | None = None,
    *,
    force: bool = False,
    progress: Progress = quiet,
    ip: str | None = None,
    user: str | None = None,
    ssh_key: str | None = None,
    port: int | None = None,
    accept_new_host_key: bool = False,
    host_key: str | None = None,
    confirm: Confirm | None = None,
) -> dict[str, Any]:
    """Register the user's server for `target` (a no-op when it already is, unless `force`).
    `host_key`: the server's key(s) as exported elsewhere; only those are trusted. `confirm(question)
    -> bool` asks about an unknown host key (None: refuse without --accept-new-host-key)."""
    imported = imported_keys(host_key) if host_key is not None else None
    cfg = config.load()
    existing = cfg.targets.get(target)
    providers.refuse_other_provider(target, existing, NAME, f"`lightfold destroy --target {target}` and "
                                    f"`lightfold config set provider byos --target {target}`")
    old = existing.provider_config.get(NAME) if existing else None
    home = Path.home()
    pc = resolve(ip, user, port, ssh_key, old, home)
    st = state.load(target)
    if st.created and old and old.ip and not force:
        if (old.ip, old.port, old.username, old.ssh_key) == (pc.ip, pc.port, pc.username, pc.ssh_key):
            progress(f"server {pc.username}@{pc.ip} is already registered for '{target}' "
                     "(use --force to check it again)")
            return _summary(target, old, changed=False)
        raise LightfoldError(
            f"target '{target}' is already registered with {old.username}@{old.ip} port {old.port}",
            f"add --force to use {pc.username}@{pc.ip} port {pc.port} instead",
        )
    sshcfg = user_ssh.host_settings(ip, home) if ip else user_ssh.HostSettings()
    t0 = time.monotonic()
    key, trust = _trust(pc, sshcfg, accept=accept_new_host_key, confirm=confirm, progress=progress,
                        imported=imported)
    facts = _validate(target, pc, key, progress)

    assert pc.ip
    openssh.pin(pc.ip, pc.port, key)
    config.record_server(target, NAME, project_path, ip=pc.ip, username=pc.username, port=pc.port,
                         ssh_key=pc.ssh_key)
    state.update(target, _mark_created)
    if old and old.ip and (old.ip, old.port) != (pc.ip, pc.port):
        _unpin_unless_used(target, old.ip, old.port)
    os_name = facts.get("os_PRETTY_NAME", "")
    progress(f"server {pc.username}@{pc.ip} ({os_name}) registered in {time.monotonic() - t0:.1f}s")
    return _summary(target, pc, changed=True, host_key=_fingerprint(key), host_key_trust=trust, os=os_name)


def _fingerprint(key: str) -> str:
    from lightfold import remote

    return remote.fingerprint(key)


def _mark_created(s: state.TargetState) -> None:
    s.created = True


def _unpin_unless_used(target: str, ip: str, port: int) -> None:
    """Drop lightfold's pin for ip:port unless another target still reaches that server."""
    for name, tc in config.load().targets.items():
        other = tc.server()
        if name != target and other.ip == ip and other.port == port:
            return
    openssh.unpin(ip, port)


# ---- more than one server (`lightfold scale`)

def host_for(target: str, name: str, pc: config.ProviderConfig) -> str:
    """The address of the target's server `name` (`<target>-<n>`: the n-1-th of `hosts`;
    `<target>-lb`: `lb_host`), from the target's config."""
    if name == f"{target}-lb":
        if not pc.lb_host:
            raise LightfoldError(f"target '{target}' names no load balancer server",
                                 f"`lightfold config set provider_config.byos.lb_host ADDRESS -t {target}`")
        return pc.lb_host
    index = int(name.rsplit("-", 1)[1])
    if index - 2 >= len(pc.hosts):
        raise LightfoldError(
            f"target '{target}' lists {len(pc.hosts)} more server{'s' if len(pc.hosts) != 1 else ''} "
            f"(provider_config.byos.hosts): not enough for {index}",
            f"`lightfold config set provider_config.byos.hosts \"ADDRESS ADDRESS ...\" -t {target}`")
    return pc.hosts[index - 2]


def check_new(target: str, names: list[str]) -> None:
    """Before scale makes anything: every server it will add has an address in the config."""
    pc = config.get_target(config.load(), target).provider_config.get(NAME) or config.ProviderConfig()
    for name in names:
        host_for(target, name, pc)


def create_server(target: str, name: str, *, progress: Progress = quiet, accept_new_host_key: bool = False) -> str:
    """Register another server of `target` (an app server or the load balancer's) as `create`
    registers the first: its host key trusted (pinned, in your known_hosts, or with
    --accept-new-host-key), the same login checked, the created marker written. Its address."""
    pc = config.get_target(config.load(), target).provider_config.get(NAME) or config.ProviderConfig()
    other = pc.model_copy(update={"ip": host_for(target, name, pc)})
    assert other.ip
    key, _ = _trust(other, user_ssh.HostSettings(), accept=accept_new_host_key, confirm=None, progress=progress)
    _validate(target, other, key, progress)
    openssh.pin(other.ip, other.port, key)
    return other.ip


def destroy_server(target: str, name: str, ip: str | None) -> bool:
    """Forget one server of `target` (its pinned key); nothing on it changes."""
    if not ip:
        return False
    pc = config.get_target(config.load(), target).provider_config.get(NAME) or config.ProviderConfig()
    _unpin_unless_used(target, ip, pc.port)
    return True


# ---- destroy / state

def destroy(target: str, *, progress: Progress = quiet) -> dict[str, Any]:
    """Forget the target's server: its pinned key, recorded address and state. The server itself
    is never touched — its apps keep running until you remove them there."""
    cfg = config.load()
    tc = cfg.targets.get(target)
    pc = tc.provider_config.get(NAME) if tc else None
    ip, port = (pc.ip, pc.port) if pc else (None, 22)
    st = state.load(target)
    for other in [*(s.ip for s in st.servers if s.ip != ip), *([st.load_balancer.ip] if st.load_balancer else [])]:
        _unpin_unless_used(target, other, port)
    if ip:
        _unpin_unless_used(target, ip, port)

        def drop(c: config.Config) -> None:
            t = c.targets.get(target)
            if t and NAME in t.provider_config:
                p = t.provider_config[NAME]
                p.ip = None
                t.provider_config = {**t.provider_config, NAME: p}

        config.update(drop)
        progress(f"forgot the server {ip} of '{target}'; nothing on the server was changed "
                 f"(its apps keep running: remove them there if you no longer want them)")
    else:
        progress(f"'{target}' has no registered server; nothing to forget")
    state.remove(target)
    return {"target": target, "provider": NAME, "destroyed": False, "forgotten": bool(ip), "ip": ip}


def server_state(target: str) -> str:
    """'running' when the SSH port accepts a connection, else 'unknown' (lightfold cannot tell a
    stopped server from an unreachable one it does not manage)."""
    tc = config.load().targets.get(target)
    pc = tc.provider_config.get(NAME) if tc else None
    if not pc or not pc.ip:
        return "missing"
    try:
        with socket.create_connection((pc.ip, pc.port), timeout=STATE_TIMEOUT):
            return "running"
    except OSError:
        return "unknown"
