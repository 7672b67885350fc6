"""The system OpenSSH client for interactive sessions and quick checks, and lightfold's known_hosts file.

Argv building, the pinning helpers, the login key for servers lightfold creates and `quick_exec`;
no asyncssh here (importing it costs ~250 ms, more than the whole no-op fast path may take)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lightfold import store
from lightfold.errors import LightfoldError
from lightfold.remote import counter


def known_hosts_path() -> Path:
    return store.home() / "known_hosts"


def login_key() -> Path:
    """The private key servers lightfold creates authorize (sandbox machines and cloud servers):
    the user's own (~/.ssh/id_ed25519 or id_rsa), else lightfold's own pair, generated once."""
    for name in ("id_ed25519", "id_rsa"):
        key = Path.home() / ".ssh" / name
        if key.is_file() and Path(f"{key}.pub").is_file():
            return key
    own = store.home() / "ssh" / "id_ed25519"
    if not own.is_file():
        store.ensure_dir(own.parent)
        proc = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lightfold", "-f", str(own)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise LightfoldError(f"could not generate an SSH key at {own}", details=proc.stderr.splitlines())
    return own


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def ssh_argv(
    host: str, port: int, username: str, key: str | None, known_hosts: Path, command: list[str] | None = None,
    *, user_known_hosts: bool = False, tty: bool = False,
) -> list[str]:
    """`ssh` with lightfold's pinned keys only (plus ~/.ssh/known_hosts with `user_known_hosts`, as
    for servers the user brought): a changed or unknown host key is refused. The login goes by
    `-l` and the host after `--`, so a user or host name starting with '-' is never an option.
    `tty`: a terminal on the server for `command` (`-t`), as an interactive command needs."""
    files = [known_hosts, Path.home() / ".ssh" / "known_hosts"] if user_known_hosts else [known_hosts]
    known = " ".join(ssh_option_word(str(f)) for f in files)
    argv = ["ssh", "-p", str(port), *(["-t"] if tty else [])]
    if key:
        argv += ["-i", key, "-o", "IdentitiesOnly=yes"]
    argv += [
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "UpdateHostKeys=no",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=15",
        "-l", username,
        "--", host,  # after `--` neither the host nor the command can be taken for an option
    ]
    return argv + list(command or [])


def require_client() -> None:
    """The system `ssh` client is there (what `lightfold ssh` and `run --pty` exec), or the fix."""
    import shutil

    if shutil.which("ssh") is None:
        raise LightfoldError("the ssh client is not installed", "install it: sudo apt-get install -y openssh-client")


def ssh_option_word(value: str) -> str:
    """One word of an `-o Key=value` list (ssh splits the value at spaces, honouring double quotes)."""
    if any(c in value for c in '"\n\r'):
        raise LightfoldError(f"the path {value!r} cannot be passed to ssh", "use a path without quotes or newlines")
    return f'"{value}"' if any(c.isspace() for c in value) else value


# Key exchanges without the post-quantum hybrid OpenSSH 9 prefers: sntrup761 costs ~140 ms per
# connection on a small machine. asyncssh (the main path) does not offer it either.
QUICK_KEX = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group14-sha256"


def quick_exec(ssh: dict, command: str, timeout: float = 8) -> str | None:
    """stdout of `command` on the server (`ssh` = ip, port, username, key, user_known_hosts), or
    None if anything goes wrong: the caller then takes the slow path, which explains failures.
    Batch mode, no ~/.ssh/config (the main path does not read it at connect time either)."""
    if not command or not ssh.get("ip") or not ssh.get("username"):
        return None
    argv = ssh_argv(ssh["ip"], int(ssh.get("port") or 22), ssh["username"], ssh.get("key"), known_hosts_path(),
                    [command], user_known_hosts=bool(ssh.get("user_known_hosts")))
    argv[1:1] = ["-F", "none", "-o", "BatchMode=yes", "-o", f"KexAlgorithms={QUICK_KEX}", "-T"]
    counter.record(command)
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.decode("utf-8", "replace") if r.returncode == 0 else None


def without_host(text: str, host: str, port: int) -> str:
    pattern = host_pattern(host, port)
    kept = [line for line in text.splitlines() if not (line.split() and pattern in line.split()[0].split(","))]
    return "".join(line + "\n" for line in kept)


def pin(host: str, port: int, public_key: str, *more: str) -> None:
    """Trust exactly `public_key` (and `more`) for host:port (replacing any older key for that
    address, which belonged to an earlier machine that had the same IP)."""
    path = known_hosts_path()
    with store.lock(path):
        old = path.read_text() if path.exists() else ""
        lines = "".join(f"{host_pattern(host, port)} {' '.join(k.split()[:2])}\n" for k in (public_key, *more))
        store.write_atomic(path, (without_host(old, host, port) + lines).encode(), 0o600)


def unpin(host: str, port: int) -> None:
    path = known_hosts_path()
    if not path.exists():
        return
    with store.lock(path):
        store.write_atomic(path, without_host(path.read_text(), host, port).encode(), 0o600)
