"""How the results of push, deploy, rollback and status are shown: for each, the JSON document
(`*_json`, stable keys documented in README.md) and the lines for people (`show_*`).

Imported by the fast path (lightfold.cli.fastpath) before Typer loads, so it imports nothing at
module level but lightfold.cli.output.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from lightfold.cli import output


def _seconds(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in timings.items()}


# ---- push and deploy


def push_json(name: str, result) -> dict[str, Any]:
    """A `lightfold.release.push.PushResult` (or the fast path's stand-in for one)."""
    return {
        "target": name, "skipped": result.skipped, "release": result.release, "previous": result.previous,
        "build": result.build, "url": result.url, "timings": _seconds(result.timings),
    }


def show_push(result) -> None:
    if result.skipped:
        output.out().print(f"{result.release} is live at {result.url}")
        return
    t = result.timings
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in t.items() if k not in ("total", "live_after"))
    live = f"traffic moved after {t['live_after']:.1f}s, " if "live_after" in t else ""
    output.ok(f"{result.release} is live at {result.url} ({live}done in {t.get('total', 0):.1f}s: {parts})")


def noop(command: str, name: str, hit, seconds: float, as_json: bool) -> None:
    """A `deploy`/`push` the fast path answered (`hit`: a lightfold.release.noop.Hit), shown as
    the full path would have shown it, plus `fast_path: true` and the check's timings."""
    pushed = SimpleNamespace(skipped=True, release=hit.release, previous=None, build="skipped", url=hit.url,
                             timings={})
    again = "deploys" if command == "deploy" else "pushes"
    output.reporter()("skip", f"nothing changed since release {hit.release} went live: same code, env, settings "
                              f"and server configuration (checked on the server in {hit.seconds:.2f}s; --force "
                              f"{again} anyway)")
    data = push_json(name, pushed)
    if command == "deploy":
        data = {"target": name, "framework": hit.framework, "created": "exists", "configured": "skipped",
                "push": data}
    timings = {"check": round(hit.seconds, 2), "total": round(seconds, 2)}
    output.emit({**data, "timings": timings, "fast_path": True}, as_json, lambda: show_push(pushed))


def deploy_json(name: str, result) -> dict[str, Any]:
    """A `lightfold.release.deploy.DeployResult`."""
    return {
        "target": name, "framework": result.framework, "created": result.created,
        "configured": result.configured, "push": push_json(name, result.push), "timings": _seconds(result.timings),
    }


def show_deploy(result) -> None:
    show_push(result.push)
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items() if k != "total")
    output.note(f"deploy took {result.timings['total']:.1f}s ({parts})")


# ---- rollback


def rollback_json(name: str, result) -> dict[str, Any]:
    """A `lightfold.release.operate.RollbackResult`."""
    return {"target": name, "release": result.release, "previous": result.previous, "slot": result.slot,
            "timings": _seconds(result.timings), "finishing_on_server": result.finishing_on_server}


def show_rollback(result) -> None:
    tm = result.timings
    live = f"traffic moved after {tm['live_after']:.1f}s, " if "live_after" in tm else ""
    output.ok(f"{result.release} is live again (was {result.previous or '-'}; {live}done in {tm['total']:.1f}s)")
    if result.previous:
        output.note(f"{result.previous} is marked rolled-back; a later rollback will not return to it")
    continuing = result.finishing_on_server
    if continuing:
        output.note(f"the server watches {result.release} for {continuing['smoke_seconds']:g}s more (a crash "
                    f"switches traffic back), then drains and stops the old slot; `lightfold status` shows "
                    "the outcome")


# ---- status


def show_status(info: dict[str, Any]) -> None:
    """`lightfold status` for people (the dict is lightfold.release.status.status's)."""
    con = output.out()
    con.print(f"[bold]{info['target']}[/]  ({info['provider'] or 'no provider'})")
    con.print(f"  address  {info['ip'] or '-'}  (ssh {info['ssh_user']}@, port {info['ssh_port']})")
    con.print(f"  server   {info['server_state']}")
    ok = info["ssh"] == "reachable"
    con.print(f"  ssh      [{'green' if ok else 'red'}]{info['ssh']}[/]")
    if info.get("deploy_error"):
        con.print(f"  deploy   [yellow]{info['deploy_error']}[/]")
    if not info.get("live_release"):
        if ok and not info.get("deploy_error"):
            con.print("  release  none live yet")
        return
    who = f" by {info['deployed_by']}" if info.get("deployed_by") else ""
    commit = (info.get("commit") or "-")[:12] + (" (dirty)" if info.get("dirty") else "")
    con.print(f"  release  [bold]{info['live_release']}[/]  commit {commit}, deployed {info['deployed_at']}{who}")
    if info.get("static"):
        con.print("  serving  static files through nginx")
    else:
        unit = info.get("unit") or {}
        con.print(f"  slot     {info['slot']} (port {info['port']}), {unit.get('name')} "
                  f"{unit.get('active_state')}/{unit.get('sub_state')}, {unit.get('restarts')} restarts")
    h = info.get("health_now") or {}
    hs = "[green]healthy[/]" if h.get("ok") else f"[red]unhealthy[/] ({h.get('error') or h.get('status')})"
    con.print(f"  health   {hs}")
    if info.get("domain"):
        cert = info.get("certificate")
        tls = f", certificate expires {cert['expires']} ({cert['days_left']} days)" if cert else ""
        con.print(f"  domain   {info['domain']}{tls}")
    free = info.get("disk_free_bytes")
    if free is not None:
        con.print(f"  disk     {free / 2**30:.1f} GiB free on /srv")
    lock = info.get("lock")
    if lock:
        stale = f" [red](stale: {lock['stale']})[/]" if lock.get("stale") else ""
        con.print(f"  lock     held by {lock['holder']} ({lock['op']}, since {lock['since']}){stale}")
    if info.get("switch_in_progress"):
        con.print("  switch   in progress on the server (smoke window or drain)")
    last = info.get("last_switch")
    if last and not last.get("ok"):
        con.print(f"  last switch [red]failed[/] ({last['op']}, {last['finished_at']}): {last['error']}")
    con.print("  releases " + ", ".join(f"{r['id']} {r['status']}" for r in info.get("releases", [])[:6]))
