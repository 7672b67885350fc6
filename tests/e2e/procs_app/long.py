"""The long cron job: runs far longer than its schedule's minute (a run spans every deploy), writing
'begin', an 'alive' line every second and 'end' (version, pid, time) to data/long.log."""

import os
import time
from pathlib import Path

VERSION = Path("version.txt").read_text().strip()


def log(what: str) -> None:
    with open("data/long.log", "a") as f:
        f.write(f"{what} {VERSION} {os.getpid()} {time.time():.6f}\n")


log("begin")
for _ in range(300):
    time.sleep(1)
    log("alive")
log("end")
