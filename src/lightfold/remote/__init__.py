"""The one module that speaks SSH (asyncssh). Everything else reaches a server through it.

    conn = await connect(host, port, username, client_key_path, known_hosts_path)
    status, out, err = await conn.run("systemctl is-system-running", check=False)
    await conn.upload(b"...", "/etc/lightfold/created", 0o644)

Host keys are always checked strictly against lightfold's own known_hosts (pinned when lightfold
created the server); connect failures become LightfoldError with the fix. `run_sync` runs a
coroutine from synchronous code (the CLI). `openssh` builds the system `ssh` command line for
interactive sessions and edits known_hosts; it does not import asyncssh, so `lightfold ssh` stays
fast — hence the lazy attributes below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightfold.remote.connection import Connection, RunResult, connect, fingerprint, run_sync

__all__ = ["Connection", "RunResult", "connect", "fingerprint", "run_sync"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lightfold.remote import connection

        return getattr(connection, name)
    raise AttributeError(name)
