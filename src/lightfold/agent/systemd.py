"""systemd and nginx (thin: the e2e tests on real machines cover these)."""

from __future__ import annotations

import os
import time

from .core import JOURNAL_TAIL_LINES, Ran, run
from .files import read_text

SHOW_PROPS = ("ActiveState", "SubState", "Result", "NRestarts", "MainPID", "ExecMainStatus", "ControlGroup")


def parse_systemctl_show(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def unit_state(unit: str) -> dict:
    r = run(["systemctl", "show", unit, "--property=" + ",".join(SHOW_PROPS)])
    props = parse_systemctl_show(r.out) if r.code == 0 else {}
    return {
        "active_state": props.get("ActiveState", "unknown"),
        "sub_state": props.get("SubState", "unknown"),
        "result": props.get("Result"),
        "n_restarts": int(props["NRestarts"]) if props.get("NRestarts", "").isdigit() else None,
        "main_pid": int(props["MainPID"]) if props.get("MainPID", "").isdigit() else None,
        "exit_status": props.get("ExecMainStatus"),
        "cgroup": props.get("ControlGroup") or None,
    }


def unit_crashed(state: dict) -> bool:
    return state["active_state"] in ("failed", "inactive") or state["sub_state"] == "auto-restart"


def unit_pids(state: dict) -> list[int]:
    pids = []
    if state.get("cgroup"):
        text = read_text(f"/sys/fs/cgroup{state['cgroup']}/cgroup.procs") or ""
        pids = [int(p) for p in text.split()]
    if not pids and state.get("main_pid"):
        pids = [state["main_pid"]]
    return pids


def journal_tail(unit: str, lines: int = JOURNAL_TAIL_LINES) -> list[str]:
    r = run(["journalctl", "-u", unit, "-n", str(lines), "--no-pager"], timeout=30)
    return (r.out or r.err).splitlines()[-lines:]


def systemctl(*args: str) -> Ran:
    return run(["systemctl", *args])


NGINX_WORKER = b"nginx: worker process"


def nginx_workers() -> set[int]:
    """Worker processes that accept new connections (a worker told to quit retitles itself
    `nginx: worker process is shutting down` and closes its listening sockets)."""
    pids = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    title = f.read().split(b"\0")[0].strip()
            except OSError:
                continue
            if title == NGINX_WORKER:
                pids.add(int(name))
    return pids


def reload_nginx(settle_seconds: float = 10) -> Ran:
    """`systemctl reload nginx` only signals the master and returns; the old workers keep accepting
    connections until the master has started new ones (and, by design, 100 ms more). Return once no
    worker of the old configuration accepts, so "traffic moved" is true when we say it."""
    before = nginx_workers()
    r = systemctl("reload", "nginx")
    if r.code != 0 or not before:
        return r
    end = time.monotonic() + settle_seconds
    while before & nginx_workers():
        if time.monotonic() >= end:
            return Ran(1, r.out, f"nginx did not take the new configuration within {settle_seconds:g}s "
                                 "(its old workers still accept connections); see `journalctl -u nginx`")
        time.sleep(0.02)
    return r
