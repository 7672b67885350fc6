"""The HTTPS side of the registry proxy: a tiny CONNECT proxy that tunnels only to allowed hosts.

apt-cacher-ng's own CONNECT pass-through cut npm's keep-alive tunnels mid-response under load
(`npm ci` failed with ECONNRESET "Invalid response body ... aborted", reproducibly), so HTTPS
registries (PyPI, npm, https apt sources) go through this instead; apt's plain-HTTP Debian archive
stays with apt-cacher-ng, which caches the .debs. Standard library only; runs detached:

    python -m lightfold.sandbox.tunnel --listen 10.231.0.1:3152 --allow pypi.org,... --pidfile F
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

MAX_HEADER = 16384
CONNECT_TIMEOUT = 30


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


def parse_connect(head: bytes, allowed: frozenset[str]) -> tuple[str, int] | str:
    """(host, port) of an allowed CONNECT request, else the HTTP status line to refuse it with."""
    try:
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    except ValueError:
        return "400 Bad Request"
    if method != "CONNECT":
        return "403 Forbidden"
    host, _, port = target.rpartition(":")
    if host.lower() not in allowed or port != "443":
        return "403 Forbidden"
    return host, 443


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, allowed: frozenset[str]) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
        writer.close()
        return
    verdict = parse_connect(head, allowed)
    if isinstance(verdict, str):
        writer.write(f"HTTP/1.1 {verdict}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()
        return
    try:
        up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*verdict), CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    for w in (writer, up_writer):
        w.close()


async def main(listen: str, allowed: frozenset[str], pidfile: str) -> None:
    host, _, port = listen.rpartition(":")
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, allowed), host, int(port), limit=MAX_HEADER, reuse_address=True
    )
    with open(pidfile + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(pidfile + ".tmp", pidfile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--allow", required=True, help="comma-separated host names")
    ap.add_argument("--pidfile", required=True)
    a = ap.parse_args()
    asyncio.run(main(a.listen, frozenset(h.strip().lower() for h in a.allow.split(",") if h.strip()), a.pidfile))
