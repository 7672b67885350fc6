"""The app's other processes and cron jobs: which release they run, moving them to another one,
and what `status` reports of them.

A release's release.json names its processes (`[{"name", "command", "count", "stop_timeout"}]`)
and cron jobs (`[{"name", "schedule", "command", "timeout", "deploy_grace"?}]`); the build wrote a launcher for
each (`.lightfold/proc/<name>`, `.lightfold/cron/<name>`). The units are templates configure
wrote (`Layout.proc_unit_file`, `Layout.cron_unit_file`): they run `Layout.procs_link`'s release
with `Layout.procs_env`. The agent writes one timer per cron job (`Layout.cron_timer_file`).

Moving (`move_procs`, called by the switch after the web slot passed its health check and the
smoke window): stop every old instance (SIGTERM, then SIGKILL after its stop_timeout: the unit's
TimeoutStopSec, set per instance by a drop-in), point the procs link and write the env file,
start `count` instances of each process of the new release, and only then write, update or remove
the timers. A cron run that is active keeps running on the release it started with (its unit was
started through the old link, whose target directory stays on disk until cleanup): by default it
finishes there (within its timeout); with the job's `deploy_grace` (seconds) the move schedules a
transient timer (`layout.cron_grace_unit`) that stops that run once the grace is over — only that
run: it compares the unit's InvocationID, so a later run (the next trigger, on the new release) is
never stopped, and it leaves the run alone when the jobs were moved back to its release (a failed
deploy; the run's release is its main process's working directory, `run_release`), as does the
move back itself. `deploy_grace = 0` stops the run with the old process instances. No two runs of a job
overlap: systemd never starts a unit that is still active, and every run holds the job's flock
(`Layout.cron_lock`, taken by the launcher), which `lightfold run` of the job's command takes too;
a timer rewritten with the same schedule keeps its last-trigger time (Persistent=false: no
catch-up run), so a deploy never makes a job run twice. An instance that fails to start makes the
move fail: the caller moves the processes back (`move_procs` to the old release) and flips traffic back.
"""

from __future__ import annotations

import calendar
import os
import time

from .core import AgentError, run, step, warn
from .envfile import parse_env_file, render_env_file
from .files import link_release, read_json, read_text, restore_link, write_atomic
from .layout import (
    CRON_LOCKED_EXIT,
    INVOCATION_ID_RE,
    Layout,
    cron_grace_unit,
    cron_timer,
    cron_unit,
    is_release_id,
    proc_instance,
    proc_unit,
)
from .systemd import journal_tail, parse_systemctl_show, systemctl, unit_state

# How long a started instance must stay up before it counts as started.
START_SETTLE_SECONDS = 2.0


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
    if not cron_here(lay):  # not the primary: no cron, and none of the primary's own processes
        cron = []
        procs = [p for p in procs if p.get("servers") != "primary"]
    return procs, cron


def cron_here(lay: Layout) -> bool:
    """Whether this server runs the app's cron jobs (and its processes marked servers = "primary"):
    not on the app servers of a target on more than one server other than its primary (configure
    writes "cron": false in their app.json)."""
    try:
        cfg = read_json(lay.app_json, {})
    except AgentError:
        cfg = {}
    return not (isinstance(cfg, dict) and cfg.get("cron") is False)


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
    """A timestamp of `systemctl show --timestamp=unix` as ISO 8601 UTC, None when unset. Some
    properties (a timer's NextElapseUSecRealtime on older systemd) ignore the style: their
    "Thu 2026-12-03 17:49:00 UTC" form and raw microseconds are read too."""
    value = (value or "").strip()
    seconds = None
    try:
        if value.startswith("@"):
            seconds = float(value[1:])
        elif value.isdigit():
            seconds = int(value) / 1e6
        elif value.endswith((" UTC", " GMT")):
            seconds = calendar.timegm(time.strptime(value.split(" ", 1)[1][:-4], "%Y-%m-%d %H:%M:%S"))
    except (ValueError, IndexError, OverflowError):
        return None
    if not seconds or seconds <= 0 or seconds > 1e11:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


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
        svc = show(unit, ("ActiveState", "Result", "ExecMainStartTimestamp", "ExecMainStatus"))
        tim = show(timer, ("NextElapseUSecRealtime", "LastTriggerUSec"))
        last = unix_to_iso(svc.get("ExecMainStartTimestamp")) or unix_to_iso(tim.get("LastTriggerUSec"))
        active = svc.get("ActiveState") in ("active", "activating")
        result = "running" if active else (svc.get("Result") if last else None)
        if result == "success" and svc.get("ExecMainStatus") == str(CRON_LOCKED_EXIT):
            result = "skipped"  # it found the job's flock held: another run was still going
        out_cron.append({"name": c["name"], "schedule": c.get("schedule", ""), "unit": unit, "timer": timer,
                         "last_run": last, "last_result": result,
                         "next_run": unix_to_iso(tim.get("NextElapseUSecRealtime")), "release": rid})
    return {"processes": out_procs, "cron": out_cron}


# ---------------------------------------------------------------------------------------------
# Moving the processes and timers to a release


def timer_text(app: str, job: dict) -> str:
    return (f"# Generated by lightfold: cron job {job['name']} of {app}.\n"
            "[Unit]\n"
            f"Description=lightfold app {app}: cron job {job['name']}\n\n"
            "[Timer]\n"
            f"OnCalendar={job['schedule']}\n"
            "AccuracySec=1s\n"
            # No catch-up run after a deploy, a reboot or a rewritten timer: a job never runs twice.
            "Persistent=false\n"
            f"Unit={cron_unit(app, job['name'])}\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n")


def check_schedule(job: dict) -> None:
    value = job.get("schedule")
    if not isinstance(value, str) or not value.strip() or any(ord(ch) < 32 or ord(ch) > 126 for ch in value):
        raise AgentError(f"cron job {job.get('name')!r} has no valid schedule ({value!r})",
                         "set `schedule` in lightfold.toml ([cron.<name>]) and deploy again")


def write_if_changed(path: str, text: str) -> bool:
    if read_text(path) == text:
        return False
    write_atomic(path, text.encode(), 0o644)
    return True


def remove_file(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def write_procs_env(lay: Layout, rid: str) -> None:
    """The env of the other processes: the release's snapshot without PORT (the web slot's)."""
    text = read_text(lay.env_file(rid))
    env = parse_env_file(text) if text else {}
    env.pop("PORT", None)
    write_atomic(lay.procs_env, render_env_file(env, f"processes and cron jobs, release {rid}").encode(), 0o600)


def stop_instances(units: list[str], warnings: list[str] | None) -> None:
    """SIGTERM, then SIGKILL after each unit's TimeoutStopSec (its stop_timeout): in parallel."""
    if units:
        step(f"stopping {len(units)} process instance(s): {', '.join(units)}")
        r = systemctl("stop", *units)
        if r.code != 0:
            warn(f"could not stop {', '.join(units)}: {r.err.strip()}", warnings)


def start_instances(units: list[str], settle: float) -> None:
    """Start them and watch them `settle` seconds: each must stay active, without a restart."""
    if not units:
        return
    step(f"starting {len(units)} process instance(s): {', '.join(units)}")
    systemctl("reset-failed", *units)
    r = systemctl("start", *units)
    failed = None if r.code == 0 else (units[0], r.err.strip())
    end = time.monotonic() + settle
    while failed is None:
        for unit in units:
            st = unit_state(unit)
            if st["active_state"] != "active" or st["sub_state"] == "auto-restart" or st["n_restarts"]:
                failed = (unit, f"{st['active_state']}/{st['sub_state']}, result {st['result']}, "
                                f"exit status {st['exit_status']}")
                break
        if failed is None and time.monotonic() >= end:
            return
        time.sleep(0.25)
    unit, why = failed
    raise AgentError(f"process {unit} did not start ({why})",
                     "read the log lines below (`lightfold logs --process`), fix the process, and deploy again",
                     log_tail=journal_tail(unit))


def active_run(unit: str) -> tuple[str, str] | None:
    """(InvocationID, MainPID) of the run of `unit` going now, or None (not running, no valid id)."""
    props = show(unit, ("ActiveState", "InvocationID", "MainPID"))
    inv = props.get("InvocationID", "")
    if props.get("ActiveState") in ("active", "activating") and INVOCATION_ID_RE.fullmatch(inv):
        return inv, props.get("MainPID", "")
    return None


def run_release(lay: Layout, pid: str) -> str | None:
    """The release a running job's main process runs in: its working directory, which the
    launcher set to the release's (resolved) app dir. None when that can't be told."""
    try:
        cwd = os.readlink(f"/proc/{int(pid)}/cwd")
    except (OSError, ValueError):
        return None
    rel = os.path.relpath(cwd, lay.releases_dir)
    rid = rel.split(os.sep, 1)[0]
    return rid if not rel.startswith("..") and is_release_id(rid) else None


def grace_of(job: dict) -> int | None:
    """A job's deploy_grace in seconds, None when a run finishes on its release (unset, or not
    shorter than its timeout, which ends a run anyway)."""
    grace, limit = job.get("deploy_grace"), job.get("timeout", 3600)
    if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
        return None
    return grace if not isinstance(limit, int) or grace < limit else None


# The stopper's program (python3 -c): argv = unit, invocation, procs link, the run's release, grace,
# what to say. No "$" and no "%" in it: systemd would expand them in a command line (measured: a
# doubled "$$" in a `systemd-run --on-active` command did not come back as "$").
GRACE_STOPPER = (
    "import os, subprocess, sys\n"
    "unit, invocation, link, left, grace, said = sys.argv[1:7]\n"
    "now = subprocess.run(['systemctl', 'show', '--value', '-p', 'InvocationID', unit],"
    " capture_output=True, text=True).stdout.strip()\n"
    "if now != invocation:\n"
    "    print(said + ': ended within its deploy grace')\n"
    "    sys.exit(0)\n"
    "try:\n"
    "    on = os.readlink(link)\n"
    "except OSError:\n"
    "    on = ''\n"
    "if on == '../releases/' + left:\n"
    "    print(said + ': the jobs are back on its release, it keeps going')\n"
    "    sys.exit(0)\n"
    "print(said + ': still running ' + grace + 's after the deploy moved the jobs, stopping it (deploy_grace)',"
    " flush=True)\n"
    "os.execvp('systemctl', ['systemctl', 'stop', unit])\n"
)


def grace_stopper(lay: Layout, job: str, invocation: str, grace: int, left: str, token: int) -> list[str]:
    """The systemd-run argv that stops run `invocation` of cron job `job` (a run of release
    `left`) `grace` seconds from now, if that run is still going and the jobs were not moved back
    onto `left` meanwhile (GRACE_STOPPER, run by the server's python3 as root)."""
    unit = cron_unit(lay.app, job)
    said = f"lightfold: cron job {job}, run {invocation} (release {left})"
    return ["systemd-run", "--quiet", "--collect", f"--unit={cron_grace_unit(lay.app, job, invocation, token)}",
            f"--on-active={grace}s", "--timer-property=AccuracySec=1s",
            f"--description=lightfold app {lay.app}: deploy grace of cron job {job}",
            "/usr/bin/python3", "-I", "-c", GRACE_STOPPER, unit, invocation, lay.procs_link, left, str(grace), said]


def runs_to_end(lay: Layout, old: str | None, rid: str | None, old_cron: list[dict]) -> tuple[list[str], list]:
    """The cron runs going now that the move from `old` to `rid` must end, with the grace of
    `old`'s job: (units to stop with the old instances: deploy_grace 0, [(job, invocation, grace,
    the run's release)] to stop later). A run of `rid` itself (a failed deploy moving the jobs back
    to the release the run started in) goes on."""
    now, later = [], []
    if old is None or old == rid:
        return now, later
    for job in old_cron:
        grace = grace_of(job)
        if grace is None:
            continue
        unit = cron_unit(lay.app, job["name"])
        going = active_run(unit)
        if going is None:
            continue
        invocation, pid = going
        of = run_release(lay, pid) or old
        if of == rid:
            continue
        if grace == 0:
            now.append(unit)
        else:
            later.append((job["name"], invocation, grace, of))
    return now, later


def schedule_grace_stops(lay: Layout, later: list, warnings: list[str] | None) -> None:
    token = int(time.time())
    for job, invocation, grace, of in later:
        step(f"cron job {job} is running on release {of}: it is stopped in {grace}s unless it ends first "
             "(deploy_grace)")
        r = run(grace_stopper(lay, job, invocation, grace, of, token))
        if r.code != 0:
            warn(f"could not schedule the deploy grace of cron job {job}: {r.err.strip()}", warnings)


def move_procs(lay: Layout, rid: str | None, warnings: list[str] | None = None, strict: bool = True,
               settle: float = START_SETTLE_SECONDS) -> dict:
    """Move the app's processes and cron timers to release `rid` (None: stop them all). Stop the
    old instances first (never two versions of a worker at once), then point the procs link,
    write the env, start the new ones; a failure to start raises (when `strict`), after which the
    caller moves them back. Returns {"from", "to", "started", "stopped", "timers"}."""
    old = procs_release(lay)
    old_procs, old_cron = release_procs(lay, old)
    new_procs, new_cron = release_procs(lay, rid)
    for job in new_cron:
        check_schedule(job)
    old_units = [proc_unit(lay.app, inst) for _, inst in instances(old_procs)]
    new_units = [proc_unit(lay.app, inst) for _, inst in instances(new_procs)]
    result = {"from": old, "to": rid, "started": new_units, "stopped": old_units, "timers": []}
    if not (old_procs or old_cron or new_procs or new_cron):
        if rid is not None:
            restore_link(lay.procs_link, rid, "../releases/")
            write_procs_env(lay, rid)
        return result
    step(f"moving processes and cron jobs from {old or 'nothing'} to {rid or 'nothing'}")
    end_now, end_later = runs_to_end(lay, old, rid, old_cron)
    stop_instances(old_units + end_now, warnings)
    if rid is not None:
        write_procs_env(lay, rid)
    restore_link(lay.procs_link, rid, "../releases/")
    changed = False
    for p, inst in instances(new_procs):
        conf = f"[Service]\nTimeoutStopSec={int(p.get('stop_timeout', 30))}\n"
        changed |= write_if_changed(lay.unit_dropin(proc_unit(lay.app, inst)), conf)
    for job in new_cron:
        conf = f"[Service]\nRuntimeMaxSec={int(job.get('timeout', 3600))}\n"
        changed |= write_if_changed(lay.unit_dropin(cron_unit(lay.app, job["name"])), conf)
        changed |= write_if_changed(lay.cron_timer_file(job["name"]), timer_text(lay.app, job))
    gone = sorted({c["name"] for c in old_cron} - {c["name"] for c in new_cron})
    for name in gone:  # a run in progress finishes on its release; only the timer goes
        systemctl("disable", "--now", "--quiet", cron_timer(lay.app, name))
        changed |= remove_file(lay.cron_timer_file(name))
    if changed:
        systemctl("daemon-reload")
    if end_later:
        schedule_grace_stops(lay, end_later, warnings)
    try:
        start_instances(new_units, settle)
    except AgentError as e:
        if strict:
            raise
        warn(e.error, warnings)
    stale = [u for u in old_units if u not in new_units]
    for verb, units in (("disable", stale), ("enable", new_units)):
        if units:
            r = systemctl(verb, "--quiet", "--no-reload", *units)
            if r.code != 0:
                warn(f"could not {verb} {', '.join(units)}: {r.err.strip()}", warnings)
    timers = [cron_timer(lay.app, c["name"]) for c in new_cron]
    if timers:
        r = systemctl("enable", "--now", "--quiet", *timers)
        if r.code != 0:
            warn(f"could not enable {', '.join(timers)}: {r.err.strip()}", warnings)
    result["timers"] = timers
    return result
