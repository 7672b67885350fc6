"""The e2e app of tests/e2e/test_processes.py: Flask on $PORT, a queue in SQLite under storage
(data/queue.db), uploads under storage (uploads/)."""

import os
import sqlite3
from pathlib import Path

from flask import Flask, Response, request

app = Flask(__name__)
VERSION = Path(__file__).resolve().with_name("version.txt").read_text().strip()


def db() -> sqlite3.Connection:
    conn = sqlite3.connect("data/queue.db", timeout=30)
    conn.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, status TEXT, done_by TEXT, runs INTEGER)")
    return conn


@app.get("/")
def index() -> Response:
    return Response(VERSION + "\n", mimetype="text/plain")


@app.get("/healthz")
def health() -> str:
    return "ok"


@app.post("/enqueue/<int:n>")
def enqueue(n: int) -> str:
    with db() as conn:
        conn.executemany("INSERT INTO jobs (status, runs) VALUES ('new', 0)", [()] * n)
    return "ok"


@app.put("/upload/<name>")
def upload(name: str) -> str:
    with open(os.path.join("uploads", os.path.basename(name)), "wb") as f:
        f.write(request.get_data())
    return "ok"


@app.get("/upload/<name>")
def download(name: str) -> Response:
    with open(os.path.join("uploads", os.path.basename(name)), "rb") as f:
        return Response(f.read(), mimetype="application/octet-stream")
