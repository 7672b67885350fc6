"""The app's other processes and cron jobs: which release they run, moving them to another one,
and what `status` reports of them.

A release's release.json names its processes (`[{"name", "command", "count", "stop_timeout"}]`)
and cron jobs (`[{"name", "schedule", "command", "timeout"}]`); the build wrote a launcher for
each (`.lightfold/proc/<name>`, `.lightfold/cron/<name>`). The units are templates configure
wrote (`Layout.proc_unit_file`, `Layout.cron_unit_file`): they run `Layout.procs_link`'s release
with `Layout.procs_env`. The agent writes one timer per cron job (`Layout.cron_timer_file`).

Moving (`move_procs`, called by the switch after the web slot passed its health check and the
smoke window): stop every old instance (SIGTERM, then SIGKILL after its stop_timeout: the unit's
TimeoutStopSec, set per instance by a drop-in), point the procs link and write the env file,
start `count` instances of each process of the new release, and only then write, update or remove
the timers. A cron run that is active keeps running on the release it started with (its unit was
started through the old link, whose target directory stays on disk until cleanup); systemd never
starts a second run of a unit that is still active, so a job never overlaps itself, and a timer
rewritten with the same schedule keeps its last-trigger time (Persistent=false: no catch-up run),
so a deploy never makes a job run twice. An instance that fails to start makes the move fail:
the caller moves the processes back (`move_procs` to the old release) and flips traffic back.
"""

from __future__ import annotations

import time

from .core import AgentError, run
from .files import link_release, read_json
from .layout import Layout, cron_timer, cron_unit, proc_instance, proc_unit
from .systemd import parse_systemctl_show, unit_state

# How long a started instance must stay up before it counts as started.
START_SETTLE_SECONDS = 2.0
DROPIN_NAME = "50-lightfold-stop.conf"


# ---------------------------------------------------------------------------------------------
# What a release runs


def release_procs(lay: Layout, rid: str | None) -> tuple[list[dict], list[dict]]:
    """(processes, cron) of release `rid` as its release.json records them (empty for None)."""
    if rid is None:
        return [], []
    try:
        info = read_json(lay.release_info(rid), {})
    except AgentError:
        info = {}
    info = info if isinstance(info, dict) else {}
    procs = [p for p in info.get("processes") or [] if isinstance(p, dict) and p.get("name")]
    cron = [c for c in info.get("cron") or [] if isinstance(c, dict) and c.get("name")]
    return procs, cron


def instances(procs: list[dict]) -> list[tuple[dict, str]]:
    """(process, instance name) for every instance: worker-1, worker-2, ..."""
    return [(p, proc_instance(p["name"], n)) for p in procs for n in range(1, int(p.get("count", 1)) + 1)]


def procs_release(lay: Layout) -> str | None:
    return link_release(lay.procs_link)


# ---------------------------------------------------------------------------------------------
# Status


def show(unit: str, props: tuple[str, ...]) -> dict[str, str]:
    r = run(["systemctl", "show", unit, "--timestamp=unix", "--property=" + ",".join(props)])
    return parse_systemctl_show(r.out) if r.code == 0 else {}


def unix_to_iso(value: str | None) -> str | None:
    """systemctl's `--timestamp=unix` value ("@1700000000") as ISO 8601 UTC, None when unset."""
    if not value or not value.startswith("@"):
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(value[1:])))
    except ValueError:
        return None


def status_view(lay: Layout) -> dict:
    """{"processes": [...], "cron": [...]} of the procs release, as protocol.ProcessState/CronState."""
    rid = procs_release(lay)
    procs, cron = release_procs(lay, rid)
    out_procs = []
    for p, inst in instances(procs):
        unit = proc_unit(lay.app, inst)
        st = unit_state(unit)
        out_procs.append({"name": p["name"], "instance": inst, "unit": unit, "state": st["active_state"],
                          "sub_state": st["sub_state"], "restarts": st["n_restarts"],
                          "release": rid if st["active_state"] in ("active", "activating", "reloading") else None})
    out_cron = []
    for c in cron:
        unit, timer = cron_unit(lay.app, c["name"]), cron_timer(lay.app, c["name"])
        svc = show(unit, ("ActiveState", "Result", "ExecMainStartTimestamp"))
        tim = show(timer, ("NextElapseUSecRealtime", "LastTriggerUSec"))
        last = unix_to_iso(svc.get("ExecMainStartTimestamp")) or unix_to_iso(tim.get("LastTriggerUSec"))
        active = svc.get("ActiveState") in ("active", "activating")
        result = "running" if active else (svc.get("Result") if last else None)
        out_cron.append({"name": c["name"], "schedule": c.get("schedule", ""), "unit": unit, "timer": timer,
                         "last_run": last, "last_result": result,
                         "next_run": unix_to_iso(tim.get("NextElapseUSecRealtime")), "release": rid})
    return {"processes": out_procs, "cron": out_cron}
