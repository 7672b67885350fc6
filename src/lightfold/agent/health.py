"""Health: plain HTTP/1.1 GET to 127.0.0.1:<port>, with the Host header the app expects; what a
process listens on, from /proc."""

from __future__ import annotations

import contextlib
import os
import socket
import time

from .files import read_text

# The default expectation: any 2xx or 3xx. A redirect (to a login page, to a locale) is a live app;
# it is not followed, so the check never leaves 127.0.0.1.
ANY_OK = "2xx/3xx"


def status_ok(status: int, expect=ANY_OK) -> bool:
    if expect == ANY_OK or expect is None:
        return 200 <= status < 400
    expected = expect if isinstance(expect, list) else [expect]
    return status in [int(s) for s in expected]


def http_check(port: int, path: str = "/", host: str | None = None, timeout: float = 5.0,
               expect=ANY_OK) -> dict:
    """One GET. Result: healthy, status_code, error (refused|timeout|...), elapsed_ms."""
    import http.client  # imported here: it is the slowest import and most ops never need it

    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=timeout)
    result = {"healthy": False, "status_code": None, "error": None, "port": int(port), "path": path}
    try:
        headers = {"Host": host, "User-Agent": "lightfold-agent"} if host else {"User-Agent": "lightfold-agent"}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read(65536)
        result["status_code"] = resp.status
        result["healthy"] = status_ok(resp.status, expect)
    except ConnectionRefusedError:
        result["error"] = "refused"
    except TimeoutError:
        result["error"] = "timeout"
    except (OSError, http.client.HTTPException) as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    result["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return result


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", int(port))) == 0


def parse_proc_net_tcp(text: str, ipv6: bool = False) -> dict[int, tuple[str, int]]:
    """Listening sockets from /proc/net/tcp{,6}: {inode: (address, port)}."""
    found = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":
            continue
        addr_hex, port_hex = fields[1].split(":")
        found[int(fields[9])] = (decode_proc_addr(addr_hex, ipv6), int(port_hex, 16))
    return found


def decode_proc_addr(hexaddr: str, ipv6: bool) -> str:
    raw = bytes.fromhex(hexaddr)
    # The kernel prints each 32-bit word in host (little-endian) order.
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET6 if ipv6 else socket.AF_INET, raw)


def listening_addresses(pids: list[int]) -> list[str]:
    """Where these processes listen ("127.0.0.1:3000", "[::]:8080"), read from /proc."""
    listening: dict[int, tuple[str, int, bool]] = {}
    for name, v6 in (("tcp", False), ("tcp6", True)):
        text = read_text(f"/proc/net/{name}") or ""
        for inode, (addr, port) in parse_proc_net_tcp(text, v6).items():
            listening[inode] = (addr, port, v6)
    found = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inode = int(target[8:-1])
                    if inode in listening:
                        addr, port, v6 = listening[inode]
                        found.add(f"[{addr}]:{port}" if v6 else f"{addr}:{port}")
    return sorted(found)
