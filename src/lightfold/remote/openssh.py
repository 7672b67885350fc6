"""The system OpenSSH client for interactive sessions, and lightfold's known_hosts file.

Pure argv building plus the pinning helpers; no asyncssh here."""

from __future__ import annotations

from pathlib import Path

from lightfold import store


def known_hosts_path() -> Path:
    return store.home() / "known_hosts"


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def ssh_argv(
    host: str, port: int, username: str, key: str | None, known_hosts: Path, command: list[str] | None = None
) -> list[str]:
    """`ssh` with lightfold's pinned keys only: a changed or unknown host key is refused."""
    argv = ["ssh", "-p", str(port)]
    if key:
        argv += ["-i", key, "-o", "IdentitiesOnly=yes"]
    argv += [
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "UpdateHostKeys=no",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=15",
        f"{username}@{host}",
    ]
    if command:
        argv += ["--", *command]
    return argv


def without_host(text: str, host: str, port: int) -> str:
    pattern = host_pattern(host, port)
    kept = [line for line in text.splitlines() if not (line.split() and pattern in line.split()[0].split(","))]
    return "".join(line + "\n" for line in kept)


def pin(host: str, port: int, public_key: str) -> None:
    """Trust exactly `public_key` for host:port (replacing any older key for that address, which
    belonged to an earlier machine that had the same IP)."""
    path = known_hosts_path()
    with store.lock(path):
        old = path.read_text() if path.exists() else ""
        line = f"{host_pattern(host, port)} {' '.join(public_key.split()[:2])}\n"
        store.write_atomic(path, (without_host(old, host, port) + line).encode(), 0o600)


def unpin(host: str, port: int) -> None:
    path = known_hosts_path()
    if not path.exists():
        return
    with store.lock(path):
        store.write_atomic(path, without_host(path.read_text(), host, port).encode(), 0o600)
