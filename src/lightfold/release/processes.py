"""What `status` and `logs` show of an app's other processes and cron jobs (pure functions).

    processes_status / cron_status   the agent's status reply (`processes`: one entry per unit
                                     instance; `cron`: one per job) as `lightfold status` keys;
                                     an older agent sends neither: empty lists
    log_units                        which units `logs --process NAME` / `--all` read
    labelled_logs_command            journalctl as JSON lines, so each line can be labelled with
                                     the unit it came from
    label_line                       one such line as `<time> <label> <message>` (web:blue,
                                     worker-1, cron:cleanup)
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from typing import Any

from lightfold.agent import layout
from lightfold.errors import UsageError


def _get(entry: Any, key: str, default: Any = None) -> Any:
    """A field of a status entry, whether the protocol class has it (dataclass) or not (dict)."""
    if isinstance(entry, dict):
        return entry.get(key, default)
    return getattr(entry, key, default)


def processes_status(agent: Any) -> list[dict[str, Any]]:
    """One entry per process name: `{name, count, state, restarts, release, units: [{name,
    instance, state, sub_state, restarts}]}`; `state` is the units' common state, or "mixed"."""
    groups: dict[str, dict[str, Any]] = {}
    for p in _get(agent, "processes") or []:
        name = _get(p, "name") or ""
        g = groups.setdefault(name, {"name": name, "count": 0, "state": None, "restarts": 0, "release": None,
                                     "units": []})
        restarts = _get(p, "restarts")
        g["count"] += 1
        g["restarts"] += restarts or 0
        g["release"] = g["release"] or _get(p, "release")
        g["units"].append({"name": _get(p, "unit"), "instance": _get(p, "instance"), "state": _get(p, "state"),
                           "sub_state": _get(p, "sub_state"), "restarts": restarts})
    for g in groups.values():
        states = {u["state"] for u in g["units"]}
        g["state"] = states.pop() if len(states) == 1 else "mixed"
    return list(groups.values())


def cron_status(agent: Any) -> list[dict[str, Any]]:
    """One entry per cron job: `{name, schedule, last_run, last_result, next_run, release, timer}`."""
    keys = ("name", "schedule", "last_run", "last_result", "next_run", "release", "timer")
    return [{k: _get(c, k) for k in keys} for c in _get(agent, "cron") or []]


# ---------------------------------------------------------------------------------------------
# logs


def log_units(app: str, slots: list[str], *, process: str | None = None, everything: bool = False,
              known: list[str] | None = None) -> list[str]:
    """The units (or journalctl unit patterns) of `logs --process NAME` (every instance of it)
    or `logs --all` (the web slots, every process, every cron run). `known`: the process names the
    server reports (None: an older agent that does not say), checked so a typo is an error."""
    if process is not None:
        if not layout.is_process_name(process):
            raise UsageError(f"'{process}' is not a process name",
                             "process names are lowercase letters, digits and '_' (see `lightfold status`)")
        if known is not None and process not in known:
            have = ", ".join(known) if known else "none"
            raise UsageError(f"{app} has no process '{process}' (its processes: {have})",
                             "see `lightfold status`; processes come from lightfold.toml or the Procfile")
        return [layout.proc_unit(app, f"{process}-*")]
    units = [layout.unit_name(app, s) for s in slots]
    if everything:
        units += [layout.proc_unit(app, "*"), layout.cron_unit(app, "*")]
    return units


def journalctl_command(units: list[str], *output: str, lines: int = 100, since: str | None = None,
                       follow: bool = False) -> str:
    """journalctl of `units` (patterns allowed), its output shaped by `output` options. Pure."""
    argv = ["journalctl", "--no-pager", *output, "-n", str(lines)]
    for u in units:
        argv += ["-u", u]
    if since:
        argv += ["--since", since]
    if follow:
        argv.append("-f")
    return shlex.join(argv)


def labelled_logs_command(units: list[str], *, lines: int = 100, since: str | None = None,
                          follow: bool = False) -> str:
    """journalctl of `units` (patterns allowed) as JSON lines with only the fields a label needs
    (`--all`: a long message is kept, not turned into null). Pure."""
    return journalctl_command(units, "--all", "-o", "json", "--output-fields=MESSAGE,_SYSTEMD_UNIT,UNIT",
                              lines=lines, since=since, follow=follow)


def unit_label(app: str, unit: str | None) -> str:
    """web:<slot>, <process>-<n>, cron:<job>, or the unit's own name."""
    unit = (unit or "").removesuffix(".service")
    prefix = layout.unit_prefix(app)
    for head, label in ((f"{prefix}.proc@", ""), (f"{prefix}.cron@", "cron:"), (f"{prefix}@", "web:")):
        if unit.startswith(head) and len(unit) > len(head):
            return label + unit[len(head):]
    return unit or "?"


def _message(value: Any) -> str:
    if isinstance(value, list):  # journald's binary-safe form: a list of bytes
        return bytes(b for b in value if isinstance(b, int) and 0 <= b < 256).decode(errors="replace")
    return "" if value is None else str(value)


def label_line(app: str, raw: str) -> str | None:
    """One journalctl JSON line as `2026-01-01T12:00:00Z worker-1 message`; None for a line that
    is not a journal entry."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(entry, dict):
        return None
    unit = entry.get("_SYSTEMD_UNIT")
    if not unit or unit == "init.scope":  # systemd's own words about the unit name it in UNIT
        unit = entry.get("UNIT") or unit
    try:
        when = dt.datetime.fromtimestamp(int(entry.get("__REALTIME_TIMESTAMP")) / 1e6, dt.UTC)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        stamp = "-"
    return f"{stamp} {unit_label(app, unit)} {_message(entry.get('MESSAGE'))}"
