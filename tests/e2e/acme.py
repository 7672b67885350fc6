"""A local Let's Encrypt stand-in for e2e tests: Pebble (ACME server) and pebble-challtestsrv
(mock DNS) on the sandbox bridge address, on free ports, for as long as the fixture lives.

    @pytest.fixture(scope="module")
    def acme(shared_sandbox): yield from acme_server(shared_sandbox, tmp_path_factory)

    acme.add_a("app.test", sb.ip)                      # the mock DNS answers app.test -> sb.ip
    sb.lightfold("domain", "add", ..., env=acme.env)   # LIGHTFOLD_ACME_SERVER + LIGHTFOLD_DNS_SERVER
    acme.root                                          # PEM of the root Pebble issues under

Pebble validates HTTP-01 on port 80 of whatever address the mock DNS gives. Its own HTTPS endpoint
is signed by a CA made here, which the machine is told to trust (test setup, via sb.exec). It binds
the bridge address, so it needs a live machine: the fixture takes one and stops before it goes.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MACHINE_CA_PATH = "/usr/local/share/ca-certificates/lightfold-test-acme.crt"


@dataclass
class Acme:
    host: str
    directory: str
    dns: str  # host:port of the mock DNS
    management: str  # challtestsrv's HTTP API
    pebble_management: str
    ca_file: Path  # signs Pebble's HTTPS endpoint
    root_file: Path = field(default=Path())  # root of the certificates Pebble issues

    @property
    def env(self) -> dict[str, str]:
        return {"LIGHTFOLD_ACME_SERVER": self.directory, "LIGHTFOLD_DNS_SERVER": self.dns}

    def _post(self, path: str, body: dict) -> None:
        req = urllib.request.Request(f"{self.management}{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200

    def add_a(self, name: str, ip: str) -> None:
        self._post("/add-a", {"host": name.rstrip(".") + ".", "addresses": [ip]})

    def clear_a(self, name: str) -> None:
        self._post("/clear-a", {"host": name.rstrip(".") + "."})

    def trust(self, sb) -> None:
        """Make machine `sb`'s certbot trust Pebble's HTTPS endpoint, as it trusts Let's Encrypt."""
        sb.exec(f"cat > {MACHINE_CA_PATH} && update-ca-certificates >/dev/null", input=self.ca_file.read_text())

    def get_https(self, url: str) -> bytes:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
            return resp.read()


def free_port(host: str) -> int:
    """A port free for both TCP and UDP on `host` (the mock DNS listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d: Path, host: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=lightfold test ACME CA", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=pebble",
             "-keyout", str(d / "pebble.key"), "-out", str(d / "pebble.csr"))
    (d / "san.ext").write_text(f"subjectAltName=DNS:pebble,DNS:localhost,IP:127.0.0.1,IP:{host}\n")
    _openssl("x509", "-req", "-in", str(d / "pebble.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", str(d / "san.ext"), "-out", str(d / "pebble.pem"))


def acme_server(sb, tmp_path_factory):
    """Generator body of a fixture: yields an `Acme` for machine `sb`, then stops both daemons."""
    if not (shutil.which("pebble") and shutil.which("pebble-challtestsrv") and shutil.which("openssl")):
        pytest.skip("pebble / openssl not installed (apt-get install pebble openssl; scripts/bootstrap.sh)")
    from lightfold.sandbox.layout import layout

    host = layout().host_ip
    d = tmp_path_factory.mktemp("acme")
    make_ca(d, host)
    dns_port, mgmt_port, dir_port, pmgmt_port = (free_port(host) for _ in range(4))
    acme = Acme(
        host=host, directory=f"https://{host}:{dir_port}/dir", dns=f"{host}:{dns_port}",
        management=f"http://{host}:{mgmt_port}", pebble_management=f"https://{host}:{pmgmt_port}",
        ca_file=d / "ca.pem",
    )
    (d / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"{host}:{dir_port}", "managementListenAddress": f"{host}:{pmgmt_port}",
        "certificate": str(d / "pebble.pem"), "privateKey": str(d / "pebble.key"),
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }}))
    procs: list[subprocess.Popen] = []
    try:
        with open(d / "challtestsrv.log", "wb") as log:
            procs.append(subprocess.Popen(
                ["pebble-challtestsrv", "-management", f"{host}:{mgmt_port}", "-dns01", acme.dns,
                 "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "", "-defaultIPv6", ""],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            ))
        # No random validation delay, no random bad nonces, no reuse of earlier authorizations.
        env = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
               "PEBBLE_AUTHZREUSE": "0"}
        with open(d / "pebble.log", "wb") as log:
            procs.append(subprocess.Popen(
                ["pebble", "-config", str(d / "pebble.json"), "-dnsserver", acme.dns],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
            ))
        _wait_ready(acme, procs, d)
        acme.root_file = d / "issuing-root.pem"
        acme.root_file.write_bytes(acme.get_https(f"{acme.pebble_management}/roots/0"))
        acme.trust(sb)
        yield acme
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def _wait_ready(acme: Acme, procs: list[subprocess.Popen], d: Path) -> None:
    deadline = time.monotonic() + 20
    last: Exception | None = None
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        try:
            acme.get_https(acme.directory)
            acme.add_a("probe.invalid", "127.0.0.1")
            acme.clear_a("probe.invalid")
            return
        except OSError as e:
            last = e
            time.sleep(0.1)
    logs = "\n".join(f"{f.name}:\n{f.read_text()[-2000:]}" for f in d.glob("*.log"))
    raise RuntimeError(f"pebble did not start ({last})\n{logs}")
