"""The cron job: 'begin'/'end' lines with its version, pid and the minute it was started for, in data/cron.log."""

import os
import time
from pathlib import Path

VERSION = Path("version.txt").read_text().strip()
minute = int(time.time() // 60)


def log(what: str) -> None:
    with open("data/cron.log", "a") as f:
        f.write(f"{what} {minute} {VERSION} {os.getpid()} {time.time():.6f}\n")


log("begin")
print(f"tick {VERSION} for minute {minute}", flush=True)  # the journal's line: `lightfold logs --all`
time.sleep(4)
log("end")
