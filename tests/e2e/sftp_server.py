"""A real SFTP server for the off-server backup tests: asyncssh (a lightfold dependency) in a
process of its own, public-key login for one key, SFTP only (no shell, no exec), every file
under one root directory (chroot).

    with sftp_server("127.0.0.1", root, authorized_pub) as (port, host_pub): ...
    python tests/e2e/sftp_server.py HOST PORT ROOT HOST_KEY AUTHORIZED_KEYS   # prints "ready"
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


async def _serve(host: str, port: int, root: str, host_key: str, authorized: str) -> None:
    import asyncssh

    class Chroot(asyncssh.SFTPServer):
        def __init__(self, chan):
            super().__init__(chan, chroot=root)

    await asyncssh.listen(host, port, server_host_keys=[host_key], authorized_client_keys=authorized,
                          sftp_factory=Chroot, allow_scp=False)
    print("ready", flush=True)
    await asyncio.Future()


@contextlib.contextmanager
def sftp_server(host: str, root: Path, authorized_pub: Path) -> Iterator[tuple[int, str]]:
    """The server on `host` (a free port), files under `root`, logins by the key in
    `authorized_pub`: (port, its host public key line)."""
    import asyncssh
    from tests.e2e.acme import free_port

    root.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    host_key = root.parent / f"{root.name}-host-key"
    key.write_private_key(str(host_key))
    port = free_port(host)
    proc = subprocess.Popen([sys.executable, __file__, host, str(port), str(root), str(host_key), str(authorized_pub)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "the SFTP server did not start"
        yield port, key.export_public_key().decode().strip()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    h, p, r, k, a = sys.argv[1:6]
    asyncio.run(_serve(h, int(p), r, k, a))
