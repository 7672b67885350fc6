"""The queue worker: takes jobs from data/queue.db one at a time; writes 'start'/'stop' lines with
its version and pid to data/worker.log. Version 'broken' exits at once (a failed deploy)."""

import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

VERSION = Path("version.txt").read_text().strip()
if VERSION.endswith("broken"):
    sys.exit("this worker version is broken")


def log(what: str) -> None:
    with open("data/worker.log", "a") as f:
        f.write(f"{what} {VERSION} {os.getpid()} {time.time():.6f}\n")


def stop(*_):
    log("stop")
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
log("start")
print(f"worker {VERSION} started", flush=True)  # the journal's line: `lightfold logs --process worker`
conn = sqlite3.connect("data/queue.db", timeout=30, isolation_level=None)
conn.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, status TEXT, done_by TEXT, runs INTEGER)")
while True:
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute("SELECT id FROM jobs WHERE status = 'new' ORDER BY id LIMIT 1").fetchone()
    if row:
        conn.execute("UPDATE jobs SET status = 'done', done_by = ?, runs = runs + 1 WHERE id = ?", (VERSION, row[0]))
    conn.execute("COMMIT")
    time.sleep(0.05 if row else 0.2)
