"""How `lightfold db` and `lightfold backup` results are shown to people (lightfold.cli.render's
counterpart for databases and backups; their JSON documents are the results themselves).
"""

from __future__ import annotations

from typing import Any

from lightfold.cli import output

# ---- db


def show_db_added(result: dict[str, Any]) -> None:
    kind, name = result["kind"], result["target"]
    if not result["changed"]:
        output.ok(f"{kind} for {name} is already set up; nothing changed")
    else:
        output.ok(f"{kind} for {name} is ready, listening on {', '.join(result['listening']) or 'a unix socket'}")
    output.note(f"{result['url']}  (db url --reveal shows the password)")
    output.note(f"the app gets {', '.join(result['names'])} from its next deploy "
                f"(kept in {result['env_file']}, root only; your own env wins on a clash)")


def show_db_status(data: dict[str, Any]) -> None:
    con = output.out()
    for kind, info in data["databases"].items():
        if not info["installed"] and not info["configured"]:
            con.print(f"{kind}: not installed")
            continue
        state = "running" if info["active"] else "[red]not running[/]"
        where = ", ".join(info["listening"]) or "no TCP port"
        con.print(f"[bold]{kind}[/]: {state}, listening on {where}")
        if info["configured"]:
            con.print(f"  {data['target']}: {info['url']}")
            con.print(f"  variables: {', '.join(info['names'])}")
        else:
            con.print(f"  {data['target']}: no credentials (`lightfold db add {kind}`)")


def show_db_url(data: dict[str, Any]) -> None:
    output.out().print(data["url"], markup=False, highlight=False, soft_wrap=True)


def show_db_removed(result: dict[str, Any]) -> None:
    kind, name = result["kind"], result["target"]
    if not result["changed"]:
        output.ok(f"{name} has no {kind} credentials; nothing changed")
        return
    output.ok(f"{name}'s {kind} credentials removed; its next deploy has no {kind} variables")
    if result["purged"] and kind in ("postgres", "mysql"):
        output.note("the database and " + ("role" if kind == "postgres" else "user") + " were dropped")
    elif kind == "redis":
        output.note("the keys stay (Redis has one keyspace for every app)")
    else:
        output.note("the database and its data stay (--purge drops them)")


def show_backup_created(result: dict[str, Any]) -> None:
    from lightfold.release.storage import human_size

    m = result["manifest"]
    output.ok(f"backup {result['id']} of {result['target']}: {', '.join(m['parts'])}, "
              f"{human_size(sum(p['bytes'] for p in m['parts'].values()))} encrypted, in {m['seconds']}s")
    for kind in ("postgres", "mysql"):
        if kind in m["parts"]:
            tables = m["parts"][kind]["tables"]
            output.note(f"{kind}: {len(tables)} tables, {sum(tables.values())} rows (recorded in the manifest)")
    if result.get("pushed"):
        output.note("copied off the server")
    if result.get("pruned"):
        output.note(f"removed {len(result['pruned'])} older backup(s) (backup.keep)")


def backup_line(b: dict[str, Any]) -> str:
    from lightfold.release.storage import human_size

    parts = []
    for name, p in b["parts"].items():
        if "tables" in p:
            parts.append(f"{name} ({len(p['tables'])} tables, {sum(p['tables'].values())} rows)")
        elif "keys" in p:
            parts.append(f"{name} ({p['keys']} keys)")
        else:
            parts.append(f"{name} ({p.get('files', 0)} files)")
    v = b.get("verify")
    verified = "not verified" if not v else (f"verified {v['at']}" if v["ok"] else "VERIFY FAILED")
    return f"{b['id']}  {human_size(b['bytes']):>9}  {', '.join(parts)}  [{b.get('label') or ''}]  {verified}"


def show_backup_list(data: dict[str, Any]) -> None:
    con = output.out()
    if not data["backups"]:
        con.print(f"no backups of {data['target']} yet (`lightfold backup create`)")
    for b in data["backups"]:
        con.print(backup_line(b), markup=False, highlight=False)
    if data.get("incomplete"):
        output.note(f"{data['incomplete']} incomplete backup(s) (not usable; removed by the next create)")
    remote = data.get("remote")
    if remote:
        if remote.get("error"):
            output.warn(f"off-server copy {remote['path']}: {remote['error']}")
        else:
            output.note(f"off-server copy {remote['path']}: {len(remote['ids'])} backup(s)")
    sched = data.get("schedule")
    if sched and sched["enabled"]:
        if sched["last_ok"] is False:
            output.warn(f"the last scheduled backup FAILED ({sched['last_run']}): see "
                        f"`lightfold ssh -t {data['target']} -- journalctl -u {data['unit']}.service`")
        else:
            output.note(f"scheduled (timer {'running' if sched['active'] else 'stopped'}); last run: "
                        f"{sched['last_run'] or 'not yet'}")


def show_backup_verified(result: dict[str, Any]) -> None:
    if result["ok"]:
        checks = ", ".join(f"{k} ({', '.join(f'{n} {v[n]}' for n in ('tables', 'rows', 'keys', 'files') if n in v)})"
                           for k, v in result["checks"].items())
        output.ok(f"backup {result['id']} restores: {checks}; scratch copy dropped ({result['seconds']}s)")
    else:
        output.warn(f"backup {result['id']} is BAD:")
        for line in result["problems"]:
            output.note(line)


def show_backup_restored(result: dict[str, Any]) -> None:
    restored = ", ".join(f"{k} ({', '.join(f'{n} {v[n]}' for n in v)})" for k, v in result["restored"].items())
    output.ok(f"restored {result['id']} into {result['target']}: {restored} in {result['seconds']}s")
    if result.get("backup_before"):
        output.note(f"what was there before is backup {result['backup_before']}")


def show_backup_downloaded(result: dict[str, Any]) -> None:
    output.ok(f"backup {result['id']} in {result['path']} ({', '.join(result['files'])}), checked against its manifest")
    output.note("decrypt with: age -d -i ~/.lightfold/backup-identity.txt FILE.age")


def show_backup_schedule(result: dict[str, Any]) -> None:
    if result["schedule"]:
        output.ok(f"{result['timer']}: {result['schedule']}, keeping {result['keep']} backups"
                  + ("" if result["changed"] else " (nothing changed)"))
    else:
        output.ok(f"no backup schedule for {result['target']} (`lightfold config set backup.schedule daily`)")
