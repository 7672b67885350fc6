"""lightfold.dns: the DNS check of `domain add`, against a real UDP responder on loopback."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from lightfold import dns
from lightfold.errors import LightfoldError


def _answer(query: bytes, addresses: list[str], rcode: int = 0, cname: bool = False) -> bytes:
    qid = struct.unpack("!H", query[:2])[0]
    question = query[12:]
    answers = b""
    count = 0
    if cname:  # a CNAME first, with a compression pointer to the question's name
        target = b"\x04edge\x03cdn\x00"
        answers += b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(target)) + target
        count += 1
    for a in addresses:
        answers += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(a)
        count += 1
    header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, count, 0, 0)
    return header + question + answers


@pytest.fixture
def dns_server():
    """A real UDP DNS responder on loopback: answers from a dict {name: [ips]}."""
    records: dict[str, list[str]] = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(512)
            except TimeoutError:
                continue
            labels, pos = [], 12
            while data[pos]:
                labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
                pos += data[pos] + 1
            name = ".".join(labels)
            if name in records:
                sock.sendto(_answer(data, records[name], cname=name.startswith("www.")), peer)
            else:
                sock.sendto(_answer(data, [], rcode=3), peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield records, f"127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    t.join()
    sock.close()


def test_dns_check_through_an_injected_server(dns_server, monkeypatch):
    records, address = dns_server
    monkeypatch.setenv(dns.DNS_ENV, address)
    records["app.example.com"] = ["203.0.113.9"]
    records["www.example.com"] = ["198.51.100.1", "203.0.113.9"]
    assert dns.resolve_a("app.example.com") == ["203.0.113.9"]
    assert dns.check_dns("www.example.com", "203.0.113.9") == ["198.51.100.1", "203.0.113.9"]

    records["wrong.example.com"] = ["198.51.100.7"]
    with pytest.raises(LightfoldError) as e:
        dns.check_dns("wrong.example.com", "203.0.113.9")
    assert e.value.problem == "wrong.example.com resolves to 198.51.100.7, not to the server's IP 203.0.113.9"
    assert "A record: name wrong.example.com, value 203.0.113.9" in e.value.fix
    with pytest.raises(LightfoldError, match="missing.example.com does not resolve"):
        dns.check_dns("missing.example.com", "203.0.113.9")


def test_dns_server_that_does_not_answer_is_reported(monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(LightfoldError, match="did not answer"):
            dns.query_a("app.example.com", "127.0.0.1", silent.getsockname()[1], timeout=0.2, tries=1)


def test_dns_packet_round_trip():
    q = dns.dns_query_packet("app.example.com", 0x1234)
    assert q[:2] == b"\x12\x34" and b"\x03app\x07example\x03com\x00" in q
    assert dns.parse_dns_answer(_answer(q, ["192.0.2.1"]), 0x1234) == ["192.0.2.1"]
    assert dns.parse_dns_answer(_answer(q, [], rcode=3), 0x1234) == []
    with pytest.raises(ValueError):
        dns.parse_dns_answer(_answer(q, ["192.0.2.1"]), 0x9999)
