"""SSH connections with pinned host keys, bounded channel use and errors that say what to do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import socket
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import asyncssh

from lightfold.errors import LightfoldError
from lightfold.remote import counter

MAX_CHANNELS = 10  # OpenSSH's default MaxSessions is 10; more would be refused by the server
T = TypeVar("T")
OutputCallback = Callable[[str, str], Any]  # (stream "stdout"|"stderr", line without newline)


class RunResult(NamedTuple):
    exit_status: int
    stdout: str
    stderr: str


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code."""
    return asyncio.run(coro)


def fingerprint(public_key_line: str) -> str:
    """SHA256 fingerprint of 'ssh-ed25519 AAAA…' (as `ssh-keygen -l` prints it)."""
    return asyncssh.import_public_key(public_key_line).get_fingerprint("sha256")


def _host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def pinned_keys(known_hosts: Path, host: str, port: int) -> list[str]:
    """Plain (unhashed) entries for host:port in a known_hosts file, as 'type base64'."""
    want = _host_pattern(host, port)
    keys = []
    try:
        lines = known_hosts.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and not line.startswith(("#", "@")) and want in parts[0].split(","):
            keys.append(f"{parts[1]} {parts[2]}")
    return keys


class Connection:
    """One SSH connection. At most MAX_CHANNELS commands run on it at once; more wait their turn."""

    def __init__(self, conn: asyncssh.SSHClientConnection, host: str, username: str):
        self._conn = conn
        self.host = host
        self.username = username
        self._channels = asyncio.Semaphore(MAX_CHANNELS)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._conn.close()
        await self._conn.wait_closed()

    async def run(
        self,
        cmd: str,
        input: bytes | str | None = None,
        check: bool = True,
        timeout: float | None = 600,
        on_output: OutputCallback | None = None,
        display: str | None = None,
        stop_when: Callable[[str], bool] | None = None,
    ) -> RunResult:
        """Run `cmd` through the login user's shell; returns (exit_status, stdout, stderr).

        `on_output` receives each line as it arrives. `display` names the command in errors
        instead of its text (use it when the command line holds anything secret). `stop_when`:
        return as soon as a stdout line satisfies it (exit status 0, the output so far), leaving
        the command to finish on the server (its channel closes with the connection)."""
        shown = display or (cmd if len(cmd) <= 120 else cmd[:117] + "...")
        data = input.encode() if isinstance(input, str) else input
        counter.record(cmd, data, display)
        async with self._channels:
            try:
                result = await asyncio.wait_for(self._exec(cmd, data, on_output, stop_when), timeout)
            except TimeoutError:
                raise LightfoldError(
                    f"`{shown}` on {self.host} did not finish in {timeout:.0f}s",
                    "check the server (`lightfold ssh`), then retry",
                ) from None
            except (asyncssh.Error, OSError) as e:
                raise LightfoldError(
                    f"lost the SSH connection to {self.host} while running `{shown}` ({error_reason(e)})",
                    "check that the server is up, then retry",
                ) from None
        if check and result.exit_status != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise LightfoldError(
                f"`{shown}` failed on {self.host} (exit {result.exit_status})",
                details=lines[-15:],
            )
        return result

    async def _open(self, cmd: str, with_input: bool) -> asyncssh.SSHClientProcess:
        # sshd frees a session slot a moment after the channel's close reaches us, so a new
        # channel can be refused briefly even below MaxSessions: retry a few times.
        for attempt in range(8):
            try:
                return await self._conn.create_process(
                    cmd, encoding=None, stdin=asyncssh.PIPE if with_input else asyncssh.DEVNULL
                )
            except asyncssh.ChannelOpenError:
                if attempt == 7:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _exec(self, cmd: str, data: bytes | None, on_output: OutputCallback | None,
                    stop_when: Callable[[str], bool] | None = None) -> RunResult:
        proc = await self._open(cmd, data is not None)
        if data is not None:
            proc.stdin.write(data)
            proc.stdin.write_eof()
        chunks: dict[str, list[str]] = {"stdout": [], "stderr": []}

        async def drain(stream: asyncssh.SSHReader, name: str) -> bool:
            """True when a line satisfied `stop_when`."""
            async for raw in stream:
                if not raw:
                    continue
                line = raw.decode(errors="replace")
                chunks[name].append(line)
                if on_output is not None:
                    res = on_output(name, line.rstrip("\n"))
                    if isinstance(res, Awaitable):
                        await res
                if name == "stdout" and stop_when is not None and stop_when(line.rstrip("\n")):
                    return True
            return False

        stopped = False
        try:
            if stop_when is None:
                await asyncio.gather(drain(proc.stdout, "stdout"), drain(proc.stderr, "stderr"))
            else:
                errors = asyncio.create_task(drain(proc.stderr, "stderr"))
                stopped = await drain(proc.stdout, "stdout")
                if stopped:
                    errors.cancel()
                else:
                    await errors
            completed = None if stopped else await proc.wait(check=False)
        finally:
            # The server counts a session until its channel is closed; release our slot only then,
            # or the 11th command would be refused ("open failed"). A command left running (stopped)
            # keeps its channel until it ends there or the connection closes.
            proc.close()
            if not stopped:
                await proc.wait_closed()
        out, err = "".join(chunks["stdout"]), "".join(chunks["stderr"])
        if completed is None:
            return RunResult(0, out, err)
        status = completed.exit_status if completed.exit_status is not None else -1
        return RunResult(status, out, err)

    async def stream(
        self, cmd: str, *, on_stdout: Callable[[bytes], Any], on_stderr: Callable[[bytes], Any],
        stdin_fd: int | None = None, display: str | None = None,
    ) -> int:
        """Run `cmd` with its output handed over as raw bytes as they arrive (a command's binary
        output stays byte-exact), the bytes read from `stdin_fd` (if given, until its EOF) as its
        stdin; returns its exit status (128 + N when signal N ended it). No time limit: the
        caller cancels (Ctrl-C), which closes the channel."""
        shown = display or (cmd if len(cmd) <= 120 else cmd[:117] + "...")
        counter.record(cmd, None, display)
        async with self._channels:
            try:
                proc = await self._open(cmd, stdin_fd is not None)
                feeding, completed = None, None
                try:
                    if stdin_fd is not None:
                        feeding = asyncio.create_task(_feed(proc, stdin_fd))

                    async def pump(reader: asyncssh.SSHReader, sink: Callable[[bytes], Any]) -> None:
                        while chunk := await reader.read(65536):
                            sink(chunk)

                    await asyncio.gather(pump(proc.stdout, on_stdout), pump(proc.stderr, on_stderr))
                    completed = await proc.wait(check=False)
                finally:
                    if feeding is not None:
                        feeding.cancel()
                    proc.close()
                    # Cancelled while the command runs: sshd confirms the close only once the
                    # command has ended (no pty, no SIGHUP), which is the caller's business.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(proc.wait_closed(), None if completed is not None else 2)
            except (asyncssh.Error, OSError) as e:
                raise LightfoldError(
                    f"lost the SSH connection to {self.host} while running `{shown}` ({error_reason(e)})",
                    "check that the server is up; the command may still be running there",
                ) from None
        if completed.exit_status is not None:
            return completed.exit_status
        signals = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "PIPE": 13, "TERM": 15}
        return 128 + signals.get(completed.exit_signal[0], 0) if completed.exit_signal else 255

    async def start(self, cmd: str, timeout: float = 15, *, input: bytes | str | None = None, lines: int = 1,
                    display: str | None = None, on_stderr: Callable[[str], Any] | None = None) -> Started:
        """Start a long-running `cmd` with its stdin held open (after `input`, if given, is written
        to it); returns once it printed its first `lines` lines (or ended its output sooner). It
        runs until `close()` or until this connection drops (then sshd closes its stdin), which is
        what makes it a liveness token for the deploy lock. Holds one channel slot. `display`
        names it as in `run` (use it when `input` holds anything secret: it never shows).
        `on_stderr` gets each stderr line as it arrives, until `close()`."""
        data = input.encode() if isinstance(input, str) else input
        await self._channels.acquire()
        counter.record(cmd, data, display)
        errors = None
        try:
            proc = await self._open(cmd, True)
            try:
                if on_stderr is not None:
                    errors = asyncio.ensure_future(_each_line(proc.stderr, on_stderr))
                if data:
                    proc.stdin.write(data)
                printed = await asyncio.wait_for(_read_lines(proc.stdout, lines), timeout)
            except BaseException:
                if errors is not None:
                    errors.cancel()
                proc.close()
                raise
        except TimeoutError:
            self._channels.release()
            raise LightfoldError(f"`{cmd}` on {self.host} printed nothing in {timeout:.0f}s",
                                 "check the server (`lightfold ssh`), then retry") from None
        except (asyncssh.Error, OSError) as e:
            self._channels.release()
            raise LightfoldError(f"cannot start `{cmd}` on {self.host} ({error_reason(e)})",
                                 "check that the server is up, then retry") from None
        except BaseException:
            self._channels.release()
            raise
        return Started(proc, [raw.decode(errors="replace").strip() for raw in printed], self._channels, errors)

    async def upload(self, source: bytes | str | Path, remote_path: str, mode: int = 0o644) -> None:
        """Write a file atomically (temp file beside it, then rename): a reader never sees half of
        it. `source` is the content (bytes/str) or a local Path."""
        data = source.read_bytes() if isinstance(source, Path) else source
        data = data.encode() if isinstance(data, str) else data
        path = shlex.quote(remote_path)
        parent = shlex.quote(os.path.dirname(remote_path) or ".")
        script = (
            f"set -e; umask 077; mkdir -p {parent}; tmp=$(mktemp {parent}/.lightfold-upload.XXXXXX); "
            f'cat > "$tmp"; chmod {mode:o} "$tmp"; mv -f "$tmp" {path}'
        )
        await self.run(script, input=data, display=f"upload {remote_path}")


async def _each_line(stream: asyncssh.SSHReader, sink: Callable[[str], Any]) -> None:
    """`sink` each line of `stream` (without its newline) until it ends."""
    with contextlib.suppress(asyncssh.Error, OSError):
        while raw := await stream.readline():
            sink(raw.decode(errors="replace").rstrip("\n"))


async def _read_lines(stream: asyncssh.SSHReader, n: int) -> list[bytes]:
    """Up to `n` lines of `stream`, fewer when it ends first."""
    got = []
    while len(got) < n and (raw := await stream.readline()):
        got.append(raw)
    return got


async def _feed(proc: asyncssh.SSHClientProcess, fd: int) -> None:
    """Copy what `fd` yields into the process's stdin, then EOF. The reads happen in a daemon
    thread (a blocking read of a terminal or pipe must not keep the program alive at its end)."""
    import threading

    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def read() -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, data)
            except RuntimeError:  # the loop is gone: the command ended first
                return
            if not data:
                return

    threading.Thread(target=read, name="lightfold-stdin", daemon=True).start()
    with contextlib.suppress(asyncssh.Error, OSError, BrokenPipeError):
        while data := await chunks.get():
            proc.stdin.write(data)
            await proc.stdin.drain()
        proc.stdin.write_eof()


class Started:
    """A remote process started by `Connection.start`: the stdout lines it waited for (`lines`,
    the first as `first_line`: "" when it printed none), and `close()`."""

    def __init__(self, proc: asyncssh.SSHClientProcess, lines: list[str], slots: asyncio.Semaphore,
                 errors: asyncio.Future | None = None):
        self._proc = proc
        self.lines = lines
        self.first_line = lines[0] if lines else ""
        self._slots: asyncio.Semaphore | None = slots
        self._errors = errors  # the task handing stderr lines on (Connection.start's on_stderr)

    async def close(self) -> None:
        if self._slots is None:
            return
        slots, self._slots = self._slots, None
        try:
            if self._errors is not None:
                self._errors.cancel()
            with contextlib.suppress(asyncssh.Error, OSError):
                self._proc.stdin.write_eof()
            self._proc.close()
            with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
                await asyncio.wait_for(self._proc.wait_closed(), 5)
        finally:
            slots.release()


def error_reason(e: BaseException) -> str:
    """An SSH or socket error in words: refused, an unknown host name, or the error's own reason."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return "unknown host name"
    return getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e) or type(e).__name__


async def connect(
    host: str,
    port: int,
    username: str,
    client_key_path: str | Path,
    known_hosts_path: str | Path,
    *,
    timeout: float = 10,
    user_known_hosts: bool = False,
) -> Connection:
    """Open an SSH connection. The server's host key must be in `known_hosts_path` (or, with
    `user_known_hosts`, in ~/.ssh/known_hosts too); there is no trust-on-first-use."""
    known = Path(known_hosts_path)
    files = [str(known)] if known.exists() else []
    user_file = Path.home() / ".ssh" / "known_hosts"
    if user_known_hosts and user_file.exists():
        files.append(str(user_file))
    trusted: Any = asyncssh.read_known_hosts(files) if files else ([], [], [])
    keys = _client_keys(Path(client_key_path))
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                host, port, username=username, known_hosts=trusted, client_keys=keys,
                agent_path=None if keys else (),
                config=None, connect_timeout=timeout, login_timeout=timeout,
                keepalive_interval=15, preferred_auth="publickey",
            ),
            timeout + 5,
        )
    except asyncssh.HostKeyNotVerifiable:
        raise await _host_key_error(host, port, known) from None
    except asyncssh.PermissionDenied:
        raise LightfoldError(
            f"{username}@{host} refused the SSH key {client_key_path}",
            f"authorize {client_key_path}.pub for {username} on the server, or set the target's ssh_key",
        ) from None
    except (TimeoutError, asyncssh.TimeoutError):
        raise LightfoldError(
            f"cannot reach {host}:{port} (timed out after {timeout:.0f}s)",
            "check that the server is running and the address and port are right",
        ) from None
    except (OSError, asyncssh.Error) as e:
        raise LightfoldError(
            f"cannot reach {host}:{port} ({error_reason(e)})",
            "check that the server is running and the address and port are right",
        ) from None
    return Connection(conn, host, username)


async def connect_when_up(
    host: str, port: int, username: str, client_key_path: str | Path, known_hosts_path: str | Path, *,
    deadline: float, interval: float, on_retry: Callable[[], None] | None = None,
) -> Connection:
    """`connect`, retried every `interval` seconds until the monotonic `deadline` while a new
    server boots. A refused key is final at once (waiting will not fix it); `on_retry` may raise
    to give up early (e.g. when the machine died)."""
    import time

    while True:
        try:
            return await connect(host, port, username, client_key_path, known_hosts_path, timeout=5)
        except LightfoldError as e:
            if time.monotonic() > deadline or "refused the SSH key" in e.problem:
                raise
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(interval)


def _client_keys(path: Path) -> list[asyncssh.SSHKey] | None:
    """The key at `path`; None (use ssh-agent) when it is passphrase-protected and an agent runs."""
    try:
        return [asyncssh.read_private_key(str(path))]
    except FileNotFoundError:
        raise LightfoldError(
            f"SSH key {path} does not exist", "set the target's ssh_key to a key that exists"
        ) from None
    except asyncssh.KeyEncryptionError:
        if os.environ.get("SSH_AUTH_SOCK"):
            return None
        raise LightfoldError(
            f"SSH key {path} is protected by a passphrase", f"add it to your ssh-agent: ssh-add {path}"
        ) from None
    except (asyncssh.KeyImportError, OSError, ValueError) as e:
        raise LightfoldError(f"cannot read SSH key {path} ({e})", "check the file or set another ssh_key") from None


async def _host_key_error(host: str, port: int, known: Path) -> LightfoldError:
    pinned = pinned_keys(known, host, port)
    try:
        presented = await asyncio.wait_for(asyncssh.get_server_host_key(host, port), 10)
        seen = presented.get_fingerprint("sha256") if presented else "unknown"
    except (TimeoutError, OSError, asyncssh.Error, socket.gaierror):
        seen = "unknown"
    if pinned:
        was = ", ".join(fingerprint(k) for k in pinned)
        return LightfoldError(
            f"the host key of {host} changed: pinned {was}, the server now presents {seen}",
            f"if the server was rebuilt, drop the old key with `ssh-keygen -R {_host_pattern(host, port)} "
            f"-f {known}` and pin the new one; otherwise do not connect (the connection may be intercepted)",
        )
    return LightfoldError(
        f"the host key of {host} ({seen}) is not pinned in {known}",
        "lightfold pins host keys when it creates a server; for a server you made yourself, add its key "
        f"to {known} after checking the fingerprint in your provider's console",
    )
