"""How every command's result is shown: the JSON document where the command builds one from a
result object (`*_json`; stable keys documented in README.md), and the lines for people
(`show_*`). Commands call `output.emit(data, as_json, lambda: show_x(...))`.

Imported by the fast path (lightfold.cli.fastpath) before Typer loads, so it imports nothing at
module level but lightfold.cli.output.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from lightfold.cli import output


def _seconds(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in timings.items()}


# ---- detect


def show_detection(d, explain: bool) -> None:
    """`lightfold detect` (a lightfold.detect.Detection), with `--explain` the evidence and candidates."""
    from rich.markup import escape
    from rich.table import Table

    con = output.out()
    version = f" {d.runtime_version}" if d.runtime_version else ""
    variant = f" ({d.variant})" if d.variant else ""
    con.print(f"[bold]{escape(d.framework_name)}[/]{escape(variant)}  [dim]{d.framework}[/]")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    rows = [
        ("app", d.app_root),
        ("workspace", f"{d.workspace_root} (app in {d.app_subdir})" if d.workspace_root else None),
        ("runtime", f"{d.runtime}{version}" + (f" (+ {', '.join(d.extra_runtimes)})" if d.extra_runtimes else "")),
        ("package manager", d.package_manager if not d.package_manager_version else
         f"{d.package_manager} {d.package_manager_version} (from {d.package_manager_version_source})"),
        ("install", d.install),
        ("build", d.build),
        ("start", d.start if not d.static else f"static: nginx serves {d.output_dir}/"),
        ("release", d.release),
        ("processes", ", ".join(f"{p.name} ×{p.count}: {p.command}" if p.count > 1 else f"{p.name}: {p.command}"
                                for p in d.processes)),
        ("cron", ", ".join(f"{c.name} [{c.schedule}]: {c.command}" + _cron_limits(c) for c in d.cron)),
        ("storage", ", ".join(f"{s}/" for s in d.storage)),
        ("databases", ", ".join(d.databases) + " (set up by deploy: `lightfold db add`)" if d.databases else None),
        ("port", str(d.port) if d.port else None),
        ("health path", d.health_path if not d.static else None),
        ("project file", ", ".join(d.manifest_sources)),
        ("env required", ", ".join(d.env_required) if d.env_required else None),
        ("env optional", ", ".join(d.env_optional) if d.env_optional else None),
        (
            "dockerfile",
            f"yes (EXPOSE {d.dockerfile_port})" if d.dockerfile_port else "yes" if d.has_dockerfile else None,
        ),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, escape(str(value)))
    con.print(table)
    for w in d.warnings:
        con.print(f"[yellow]![/] {escape(w)}")
    for f in d.fixes:
        con.print(f"[cyan]→[/] {escape(f)}")
    if d.blocked:
        con.print(f"[red]✗[/] {escape(d.blocked)}")
    if not explain:
        return
    con.print("\n[bold]evidence[/]")
    for s in d.signals:
        con.print(f"  • {escape(s)}")
    if d.manifest_keys:
        con.print("\n[bold]project file[/] [dim](config.json's deploy.* > lightfold.toml > Procfile > detection)[/]")
        for key, source in d.manifest_keys.items():
            con.print(f"  • {escape(key)} [dim]← {escape(source)}[/]")
    con.print("\n[bold]candidates[/] [dim](earlier precedence wins)[/]")
    for c in d.explain:
        mark = "[green]✓ won [/]" if c.won else ("[yellow]· lost[/]" if c.matched else "[dim]✗ no  [/]")
        evidence = f" [dim]— {escape('; '.join(c.evidence))}[/]" if c.evidence else ""
        con.print(f"  {mark} #{c.rank:<2} {c.framework:<13} {escape(c.reason)}{evidence}")
    con.print("  [dim]frameworks not listed had no signal at all[/]")
    from lightfold.builders import select

    choice = select(d)
    con.print(f"\n[bold]builder[/] {choice.name} [dim]— {escape(choice.reason)}[/]")
    con.print("  [dim]rules: --builder/config wins; a Dockerfile → dockerfile; Node/Python with nixpacks on the "
              "server → nixpacks; otherwise native[/]")


def _cron_limits(job: Any) -> str:
    """' (timeout 50s, deploy grace 20s)': a cron job's limits as `detect` shows them."""
    grace = getattr(job, "deploy_grace", None)
    parts = [f"timeout {job.timeout}s", *(() if grace is None else (f"deploy grace {grace}s",))]
    return f" ({', '.join(parts)})"


# ---- servers: create, destroy, status


def show_create(name: str, result: dict[str, Any]) -> None:
    if result.get("changed"):
        output.ok(f"server for '{name}' is ready at {result.get('ip')}")
    elif result.get("address_changed"):
        output.ok(f"server for '{name}' moved from {result.get('previous_ip')} to {result.get('ip')} (recorded)")
    else:
        output.ok(f"server for '{name}' already exists at {result.get('ip')} (nothing to do)")
    output.note(f"log in with: lightfold ssh --target {name}")


def show_scale(result: dict[str, Any]) -> None:
    servers, lb = result["servers"], result.get("load_balancer")
    changed = [f"added {', '.join(result['added'])}"] if result["added"] else []
    changed += [f"removed {', '.join(result['removed'])}"] if result["removed"] else []
    output.ok(f"'{result['target']}' runs on {len(servers)} server{'s' if len(servers) != 1 else ''}"
              f" ({'; '.join(changed) or 'nothing to change'})")
    if lb:
        output.note(f"load balancer: {lb['kind']} on {lb['name']} at http://{lb['ip']}/")
    for s in servers:
        output.note(f"{s['name']} {s['ip']} ({s['role']})")


def show_destroy(name: str, result: dict[str, Any]) -> None:
    output.ok(f"forgot the server of '{name}' (the server itself was not changed)" if result.get("forgotten")
              else f"destroyed the server of '{name}'" if result.get("destroyed")
              else f"'{name}' had no server; nothing to do")


# ---- configure, push and deploy


def configure_json(name: str, result) -> dict[str, Any]:
    """A `lightfold.release.configure.ConfigureResult`."""
    return {"target": name, "skipped": result.skipped, "changed": result.changed,
            "unchanged": result.unchanged, "seconds": round(result.seconds, 2), "step_seconds": result.step_seconds,
            "repaired": result.repaired}


def show_configure(name: str, result) -> None:
    if not result.skipped:
        what = ", ".join(result.changed) or "nothing"
        output.ok(f"{name} configured in {result.seconds:.1f}s (changed: {what})")


def configure_servers_json(name: str, results: dict) -> dict[str, Any]:
    """The primary's result as `configure_json`; with more than one server, `servers` too."""
    primary = next(iter(results.values()))
    data = configure_json(name, primary)
    if len(results) > 1:
        data["servers"] = {server: configure_json(name, r) for server, r in results.items()}
    return data


def show_configure_servers(name: str, results: dict) -> None:
    if len(results) == 1:
        show_configure(name, next(iter(results.values())))
        return
    for server, result in results.items():
        show_configure(server, result)



def push_json(name: str, result) -> dict[str, Any]:
    """A `lightfold.release.push.PushResult` (or the fast path's stand-in for one)."""
    return {
        "target": name, "skipped": result.skipped, "release": result.release, "previous": result.previous,
        "build": result.build, "url": result.url, "timings": _seconds(result.timings),
        "finishing_on_server": getattr(result, "finishing_on_server", None),
    }


def show_push(result) -> None:
    if result.skipped:
        output.out().print(f"{result.release} is live at {result.url}")
        return
    t = result.timings
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in t.items() if k not in ("total", "live_after"))
    live = f"traffic moved after {t['live_after']:.1f}s, " if "live_after" in t else ""
    output.ok(f"{result.release} is live at {result.url} ({live}done in {t.get('total', 0):.1f}s: {parts})")
    _finishing_note(result.release, result.finishing_on_server)


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
            "timings": _seconds(result.timings), "finishing_on_server": result.finishing_on_server,
            "migrations_crossed": getattr(result, "migrations", [])}


def show_rollback(result) -> None:
    tm = result.timings
    live = f"traffic moved after {tm['live_after']:.1f}s, " if "live_after" in tm else ""
    output.ok(f"{result.release} is live again (was {result.previous or '-'}; {live}done in {tm['total']:.1f}s)")
    if result.previous:
        output.note(f"{result.previous} is marked rolled-back; a later rollback will not return to it")
    _finishing_note(result.release, result.finishing_on_server)


def _finishing_note(release: str | None, continuing: dict[str, Any] | None) -> None:
    """After an early answer: what the server still does on its own."""
    if continuing:
        output.note(f"the server watches {release} for {continuing['smoke_seconds']:g}s more (a crash "
                    f"switches traffic back), then drains and stops the old slot; `lightfold status` shows "
                    "the outcome")


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
    for line in servers_lines(info):
        con.print(line, highlight=False)
    if info.get("security_updates") is not None:
        pending = info["security_updates"]
        reboot = ", [yellow]reboot required[/]" if info.get("reboot_required") else ", no reboot required"
        con.print(f"  updates  {'[yellow]' if pending else ''}{pending} security updates pending"
                  f"{'[/]' if pending else ''}{reboot}")
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
    for line in process_lines(info):
        con.print(line, highlight=False)
    h = info.get("health_now") or {}
    hs = "[green]healthy[/]" if h.get("ok") else f"[red]unhealthy[/] ({h.get('error') or h.get('status')})"
    con.print(f"  health   {hs}")
    if info.get("domain"):
        cert = info.get("certificate")
        tls = f", certificate expires {cert['expires']} ({cert['days_left']} days)" if cert else ""
        con.print(f"  domain   {info['domain']}{tls}")
    from rich.markup import escape

    for kind, db in (info.get("databases") or {}).items():
        state = "[green]running[/]" if db["active"] else "[red]not running[/]"
        where = ", ".join(db["listening"]) or "no TCP port"
        con.print(f"  {kind:<8} {state} on {escape(where)}")
    if info.get("database_env"):
        con.print(f"  db env   {', '.join(info['database_env'])} (values on the server only; `lightfold db status`)")
    free = info.get("disk_free_bytes")
    if free is not None:
        from lightfold.agent.layout import SRV

        con.print(f"  disk     {free / 2**30:.1f} GiB free on {SRV}")
    drift = info.get("configure_drift")
    if drift:
        con.print(f"  drift    [yellow]changed on the server since configure[/]: {', '.join(drift)} "
                  "(the next deploy or `lightfold configure` puts them back)", highlight=False)
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


def servers_lines(info: dict[str, Any]) -> list[str]:
    """`status` lines of a target on more than one server: the load balancer, then each server
    (nothing for a single-server target)."""
    from rich.markup import escape

    lb = info.get("load_balancer")
    servers = info.get("servers") or []
    if not lb and len(servers) <= 1:
        return []
    lines = []
    if lb:
        seen = (f"[red]{escape(str(lb['error']))}[/]" if lb.get("error") is not None
                else f"{len(lb['backends'])} servers (its API does not report their health)"
                if lb.get("healthy_backends") is None
                else f"{lb['healthy_backends']} of {len(lb['backends'])} servers healthy")
        lines.append(f"  balancer {lb['kind']} on {escape(lb['name'])} ({lb['ip']}): {seen}")
    for s in servers:
        marks = {"healthy": "[green]healthy[/]", "unhealthy": "[red]unhealthy[/]"}
        health = marks.get(s.get("health") or "", "unknown")
        lines.append(f"  server   {escape(s['name'])} {s['ip']} ({s['role']}): release {s.get('live_release') or '-'}, "
                     f"{health}")
    return lines


def process_lines(info: dict[str, Any]) -> list[str]:
    """`status` lines of the app's other processes and cron jobs (rich markup, values escaped)."""
    from rich.markup import escape

    lines = []
    for p in info.get("processes") or []:
        style = "green" if p["state"] == "active" else "red" if p["state"] in ("failed", "mixed") else "yellow"
        units = ", ".join(f"{u['instance']} {u['state']}/{u['sub_state']}" for u in p["units"])
        lines.append(f"  process  {escape(p['name'])} x{p['count']} [{style}]{escape(str(p['state']))}[/], "
                     f"{p['restarts']} restarts, release {p['release'] or '-'}: {escape(units)}")
    for c in info.get("cron") or []:
        result = c["last_result"]
        style = "green" if result in ("success", "running") else "dim" if result is None else "red"
        last = f"last {c['last_run']} [{style}]{escape(str(result or '?'))}[/]" if c["last_run"] else "never run yet"
        lines.append(f"  cron     {escape(c['name'])} ({escape(str(c['schedule']))}): {last}, "
                     f"next {c['next_run'] or '-'}")
    return lines


# ---- audit

_SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def show_audit(doc: dict[str, Any]) -> None:
    """`lightfold audit` for people (the dict is lightfold.release.audit.AuditReport.as_json's)."""
    from rich.markup import escape

    con = output.out()
    con.print(f"[bold]{doc['target']}[/]  ({doc['host']})")
    for f in doc["findings"]:
        style = _SEVERITY_STYLE.get(f["severity"], "")
        con.print(f"  [{style}]{f['severity']:<6}[/] {f['check']:<11} {escape(f['subject'])}: {escape(f['message'])}")
        if f["fix"] != "none needed":
            con.print(f"  {'':<6} {'':<11} [dim]fix:[/] {escape(f['fix'])}")
    c = doc["counts"]
    verdict = "[green]no high finding[/]" if doc["ok"] else "[bold red]high findings: fix them first[/]"
    con.print(f"  {c['high']} high, {c['medium']} medium, {c['low']} low, {c['info']} info: {verdict}")


# ---- sync, unlock, targets


def sync_json(r) -> dict[str, Any]:
    """A `lightfold.release.operate.SyncResult`."""
    return {"target": r.target, "ip": r.ip, "created": r.created, "configured": r.configured,
            "live_release": r.live_release, "commit": r.commit, "builder": r.builder, "service": r.service,
            "changed": r.changed, "servers": r.servers, "load_balancer": r.load_balancer}


def show_sync(r) -> None:
    output.ok(f"{r.target}: state rebuilt from {r.ip}" + (f" (changed: {', '.join(r.changed)})"
                                                           if r.changed else " (already in sync)"))
    output.note(f"configured: {'yes' if r.configured else 'no'} · live release: {r.live_release or 'none'}"
                f" · commit: {(r.commit or '-')[:12]} · service: {r.service or '-'}")
    if r.servers:
        output.note(f"servers: {', '.join(r.servers)}" + (f" behind {r.load_balancer}" if r.load_balancer else ""))


def show_unlock(name: str, result: dict[str, Any]) -> None:
    lock = result["lock"]
    if not result["released"]:
        output.ok(f"{name} was not locked; nothing to do")
        return
    what = lock.get("op") or "an operation"
    output.ok(f"released the lock of {lock.get('holder')} ({what}"
              + (f" of {lock['release']}" if lock.get("release") else "")
              + f", since {lock.get('started_at')})")


def show_targets(rows: list[dict[str, Any]]) -> None:
    if not rows:
        output.note("no targets yet: `lightfold deploy --provider local` makes one")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("TARGET", "PROVIDER", "IP", "LIVE RELEASE", "COMMIT", "DEPLOYED"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["target"], r["provider"] or "-", r["ip"] or "-", r["live_release"] or "-",
                      (r["commit"] or "-")[:12], r["deployed_at"] or "-")
    output.out().print(table)


# ---- domain


def _cert_line(cert: dict | None) -> str | None:
    if not cert:
        return None
    if not cert.get("exists"):
        return "certificate: none on the server"
    staging = " (staging)" if cert.get("staging") else ""
    return (f"certificate: {cert.get('issuer')}{staging}, expires {cert['expires']} "
            f"({cert['days_left']} days left)")


def show_domain_added(name: str, result: dict[str, Any]) -> None:
    output.ok(f"{name} is served at {result['url']}")
    line = _cert_line(result.get("certificate"))
    if line:
        output.note(line)


def show_domain_removed(name: str, result: dict[str, Any]) -> None:
    if not result["removed"]:
        output.ok(f"{name} has no domain; nothing to remove")
    else:
        output.ok(f"{result['domain']} removed; {name} is served at {result['url']}")


def show_domain(name: str, data: dict[str, Any]) -> None:
    if not data["domain"]:
        output.out().print(f"{name}: no domain (served by IP)")
        return
    output.out().print(f"{name}: {data['url']}")
    line = _cert_line(data.get("certificate"))
    if line:
        output.out().print(f"  {line}")


# ---- config


def show_config(data: dict[str, Any]) -> None:
    """`config show`: the (redacted) file as JSON, then whether each provider token is set."""
    import json

    from rich.syntax import Syntax

    output.out().print(f"[dim]{data['path']}[/]")
    body = {k: v for k, v in data.items() if k not in ("path", "tokens")}
    output.out().print(Syntax(json.dumps(body, indent=2, ensure_ascii=False), "json", theme="ansi_dark"))
    for provider, info in data["tokens"].items():
        state = f"set ({info['source']})" if info["set"] else "not set"
        output.out().print(f"token [bold]{provider}[/]: {state}")


def show_host_keys(data: dict[str, Any]) -> None:
    """`config export-host-key`: only the keys on stdout, so they can be piped into a secret as they are."""
    import sys

    sys.stdout.write("".join(f"{k}\n" for k in data["keys"]))
    output.note(f"{data['ip']}: {', '.join(data['fingerprints'])}")
