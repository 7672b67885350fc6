"""The availability probe counts what a client would see: answers, refusals and wrong statuses."""

from __future__ import annotations

import http.server
import socket
import threading
import time

from lightfold.probe import Probe


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        body = f"host={self.headers['Host']}".encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _server(status=200):
    handler = type("H", (_Handler,), {"status": status})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_healthy_server_has_no_failures_and_sees_the_host_header():
    srv = _server()
    with Probe(f"http://127.0.0.1:{srv.server_port}/", rate=50, host="app.test") as probe:
        time.sleep(0.5)
    srv.shutdown()
    r = probe.result
    assert r.total >= 15 and r.failed == 0, r.summary()
    assert set(r.bodies) == {"host=app.test"}


def test_wrong_status_counts_as_failure():
    srv = _server(status=502)
    with Probe(f"http://127.0.0.1:{srv.server_port}/", rate=40) as probe:
        time.sleep(0.3)
    srv.shutdown()
    assert probe.result.failed == probe.result.total > 0
    assert probe.result.failures[0] == "HTTP 502"


def test_a_gap_in_service_is_counted():
    srv = _server()
    port = srv.server_port
    with Probe(f"http://127.0.0.1:{port}/", rate=100) as probe:
        time.sleep(0.3)
        srv.shutdown()
        srv.server_close()
        time.sleep(0.3)
    assert 0 < probe.result.failed < probe.result.total
    assert any("Connection" in f or "refused" in f for f in probe.result.failures)


def test_probe_stops_by_itself():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    probe = Probe(f"http://127.0.0.1:{port}/", rate=20, max_seconds=0.5)
    probe.start()
    time.sleep(1.0)
    total = probe.result.total
    time.sleep(0.3)
    assert probe.result.total == total  # nothing more after max_seconds
    probe.stop()


def test_https_verifies_the_certificate_for_the_host_name(tmp_path):
    import ssl
    import subprocess

    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "1", "-subj", "/CN=app.test", "-addext", "subjectAltName=DNS:app.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    srv = _server()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    url = f"https://127.0.0.1:{srv.server_port}/"
    with Probe(url, rate=20, host="app.test", cafile=str(cert)) as good:
        time.sleep(0.4)
    with Probe(url, rate=20, host="other.test", cafile=str(cert)) as bad:
        time.sleep(0.4)
    srv.shutdown()
    assert good.result.total > 0 and good.result.failed == 0, good.result.summary()
    assert bad.result.failed == bad.result.total > 0  # name mismatch is a failure
