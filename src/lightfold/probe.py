"""A bounded availability probe: steady HTTP(S) GETs against one URL while something else happens
(a deploy, a rollback), counting every failed request and the worst latency.

Bounded on purpose: at most `rate` requests per second (capped at 400), for at most
`max_seconds`, and it stops by itself. Each request opens a new connection, as independent
clients would, so a moment with nothing listening shows up as a failure.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_RATE = 400


@dataclass
class ProbeResult:
    total: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # first few reasons, for the test message
    bodies: dict[str, int] = field(default_factory=dict)  # response body -> count (which release answered)

    @property
    def worst_ms(self) -> float:
        return max(self.latencies_ms, default=0.0)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0

    def summary(self) -> str:
        return (
            f"{self.failed} failed / {self.total} requests, median {self.median_ms:.1f} ms, "
            f"worst {self.worst_ms:.1f} ms"
        )


class Probe:
    """Use as a context manager around the operation under test:

        with Probe("http://10.0.0.5/", expect_status=200) as probe:
            deploy()
        assert probe.result.failed == 0, probe.result.summary()
    """

    def __init__(
        self,
        url: str,
        *,
        rate: int = 100,
        workers: int = 4,
        max_seconds: float = 300,
        expect_status: int = 200,
        host: str | None = None,
        cafile: str | None = None,
        timeout: float = 5.0,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"probe needs an http(s) URL, not {url!r}")
        self.scheme, self.address = parts.scheme, parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host = host or parts.netloc
        self.rate = min(max(rate, 1), MAX_RATE)
        self.workers = max(1, min(workers, self.rate))
        self.max_seconds = max_seconds
        self.expect_status = expect_status
        self.timeout = timeout
        self.ssl_context = None
        if self.scheme == "https":
            self.ssl_context = ssl.create_default_context(cafile=cafile)
        self.result = ProbeResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Probe:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        interval = self.workers / self.rate
        for i in range(self.workers):
            t = threading.Thread(target=self._run, args=(deadline, interval, i * interval / self.workers), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> ProbeResult:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 2)
        return self.result

    def _run(self, deadline: float, interval: float, offset: float) -> None:
        next_at = time.monotonic() + offset
        while not self._stop.is_set() and time.monotonic() < deadline:
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            next_at += interval
            self._one()

    def _connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return _PinnedHTTPS(self.address, self.port, self.host.split(":")[0], self.ssl_context, self.timeout)
        return http.client.HTTPConnection(self.address, self.port, timeout=self.timeout)

    def _one(self) -> None:
        t0 = time.perf_counter()
        reason = None
        body = b""
        try:
            conn = self._connection()
            try:
                conn.request("GET", self.path, headers={"Host": self.host, "Connection": "close"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != self.expect_status:
                    reason = f"HTTP {resp.status}"
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            reason = f"{type(e).__name__}: {e}"
        elapsed = (time.perf_counter() - t0) * 1000
        with self._lock:
            r = self.result
            r.total += 1
            r.latencies_ms.append(elapsed)
            if reason:
                r.failed += 1
                if len(r.failures) < 10:
                    r.failures.append(reason)
            else:
                key = body[:200].decode("utf-8", "replace").strip()
                r.bodies[key] = r.bodies.get(key, 0) + 1


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed address, verifying the certificate for `server_name` (SNI), so a domain
    that no DNS resolves can be probed at the server's IP."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(address, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)
