"""The DNS check of `lightfold domain add`: does a name resolve to the server's address?

Lookups use the system resolver, or, when $LIGHTFOLD_DNS_SERVER (host:port) is set, that server
through a minimal standard-library DNS client (one A question over UDP), so tests can answer with
a responder on loopback.
"""

from __future__ import annotations

import os
import random
import socket
import struct

from lightfold.errors import LightfoldError

DNS_ENV = "LIGHTFOLD_DNS_SERVER"


def dns_query_packet(name: str, qid: int) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # recursion desired, one question
    qname = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split(".")) + b"\0"
    return header + qname + struct.pack("!HH", 1, 1)  # A, IN


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        n = data[pos]
        if n & 0xC0 == 0xC0:  # compression pointer: two bytes, the name ends here
            return pos + 2
        if n == 0:
            return pos + 1
        pos += n + 1


def parse_dns_answer(data: bytes, qid: int) -> list[str]:
    """The A records of a response (CNAME chains resolved by the server are followed implicitly)."""
    rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    if rid != qid or not flags & 0x8000:
        raise ValueError("not the answer to our query")
    rcode = flags & 0xF
    if rcode == 3:  # NXDOMAIN
        return []
    if rcode != 0:
        raise ValueError(f"DNS server answered rcode {rcode}")
    pos = 12
    for _ in range(qd):
        pos = _skip_name(data, pos) + 4
    found = []
    for _ in range(an):
        pos = _skip_name(data, pos)
        rtype, rclass, _ttl, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rclass == 1 and rdlen == 4:
            found.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return found


def query_a(name: str, server: str, port: int = 53, timeout: float = 2.0, tries: int = 2) -> list[str]:
    last: Exception | None = None
    for _ in range(tries):
        qid = random.randrange(1, 0xFFFF)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            try:
                s.sendto(dns_query_packet(name, qid), (server, port))
                while True:
                    data, _ = s.recvfrom(4096)
                    try:
                        return parse_dns_answer(data, qid)
                    except (ValueError, struct.error, IndexError) as e:
                        if "rcode" in str(e):
                            raise LightfoldError(f"the DNS server {server}:{port} failed to look up {name} ({e})",
                                                 "retry later, or pass --skip-dns-check") from None
                        last = e  # a stray or malformed packet: keep waiting for ours
            except (TimeoutError, OSError) as e:
                last = e
    raise LightfoldError(f"the DNS server {server}:{port} did not answer for {name} ({last})",
                         f"check ${DNS_ENV}, or pass --skip-dns-check")


def resolve_a(name: str) -> list[str]:
    """IPv4 addresses of `name`: from $LIGHTFOLD_DNS_SERVER if set, else the system resolver."""
    server = os.environ.get(DNS_ENV)
    if server:
        host, _, port = server.rpartition(":") if ":" in server else (server, "", "53")
        return sorted(set(query_a(name, host, int(port or 53))))
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return sorted({i[4][0] for i in infos})


def resolve_aaaa(name: str) -> list[str]:
    """IPv6 addresses from the system resolver (none when $LIGHTFOLD_DNS_SERVER is used)."""
    if os.environ.get(DNS_ENV):
        return []
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET6, socket.SOCK_STREAM)
    except (socket.gaierror, OSError):
        return []
    return sorted({i[4][0] for i in infos if not i[4][0].startswith("::ffff:")})


def check_dns(domain: str, ip: str) -> list[str]:
    """Raise, naming the exact A record to create, unless `domain` resolves to `ip`."""
    found = resolve_a(domain)
    if ip in found:
        return found
    record = f"A record: name {domain}, value {ip}"
    if not found:
        problem = f"{domain} does not resolve to any IPv4 address"
    else:
        problem = f"{domain} resolves to {', '.join(found)}, not to the server's IP {ip}"
    raise LightfoldError(
        problem,
        f"create this DNS {record} (TTL 300) at your DNS provider, wait until it resolves, then "
        "retry; or pass --skip-dns-check if the server is reached through another address",
        details=["nothing was changed"],
    )
