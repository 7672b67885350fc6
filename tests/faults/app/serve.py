"""The fault suite's app: the standard library only (no runtime to install, so a deploy takes
seconds). It answers every GET with its version and the release it runs from, and waits
boot_delay.txt seconds before it listens (a switch that lasts long enough to break into), on the
address in listen.txt (127.0.0.1 unless it says otherwise: ::1, 0.0.0.0)."""

import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent  # /srv/<app>/releases/<id>
VERSION = (HERE / "version.txt").read_text().strip()
DELAY = HERE / "boot_delay.txt"
LISTEN = HERE / "listen.txt"
time.sleep(float(DELAY.read_text()) if DELAY.exists() else 0)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{VERSION} {HERE.name}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    address = LISTEN.read_text().strip() if LISTEN.exists() else "127.0.0.1"
    address_family = socket.AF_INET6 if ":" in address else socket.AF_INET


Server((Server.address, int(os.environ["PORT"])), Handler).serve_forever()
