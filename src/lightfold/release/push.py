"""`lightfold push`: ship the project as a new release and switch to it only once it is healthy.

One SSH exec each (a one-file redeploy makes 5, the status read included, 4 of them starting
python3 once on the server):
    status (agent)      what is live, with its code fingerprint and env hash, read with the builder's
                        facts (deploy: with configure's); `decide` (pure) says skipped / env-only /
                        deps-reused / full. Meanwhile, in threads: what this laptop ships (git, the
                        file list, hashes) and the build's code and template are loaded
    lock + mark + env   one deploy per app at a time (lightfold.release.locking: the agent's lock,
                        held by the exec's own shell, released on every path), the journal says
                        building, and the release's env snapshot is written (on stdin, never on a
                        command line): one agent process (agent 4; older ones and --lock-wait: the
                        holder, the lock, then mark + write_env, three execs)
    upload + unpack     a deterministic tar.gz of the shipped files on stdin, unpacked as the app user
    build               the builder's script (lightfold.builders): install (reusing the live release's
                        dependencies when the lockfiles are unchanged) and build, as the app user,
                        its output teed into the build log; an env-only change copies the live
                        release instead (hard links) and does not build
    activate            the agent's health-gated blue/green switch in its own transient unit,
                        answering as soon as traffic moved (--no-wait) or at the end
    unlock              (only when the switch did not take the lock over)

Any failure leaves the live release serving; the new one is marked failed in the server journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shlex
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightfold import state
from lightfold.agent.layout import Layout
from lightfold.agent.protocol import StatusReply, SwitchResult
from lightfold.errors import LightfoldError
from lightfold.release import agent_client, facts, space
from lightfold.release.locking import deploy_lock
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, actor, as_root, source_layout

if TYPE_CHECKING:
    from lightfold.remote import Connection



@dataclass
class PushResult:
    skipped: bool
    release: str | None
    previous: str | None = None
    build: str = "full"  # full | deps-reused | env-only | skipped
    url: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    activation: SwitchResult | None = None

    @property
    def finishing_on_server(self) -> dict[str, Any] | None:
        return self.activation.finishing_on_server() if self.activation else None


@dataclass
class _Local:
    """What this laptop knows about the release it is about to make."""

    root: Path  # what ships (the project, or its workspace)
    subdir: str | None  # where the app is inside `root`
    files: list[str]
    env: dict[str, str]
    fingerprint: str  # code + deploy settings, without env values
    env_hash: str  # unkeyed until the server's status is read (`_keyed`)
    commit: str | None
    dirty: bool


def _warm_up() -> None:
    """What a release's making needs after the status read (the builders, the archive, the build
    script's template), loaded in a thread while the server answers: ~0.1 s of imports and jinja2
    compiling that otherwise waited until after the lock. Never fails: it is only a head start
    (whatever went wrong here goes wrong again, and is reported, where the build needs it)."""
    with contextlib.suppress(Exception):
        from lightfold import builders  # noqa: F401
        from lightfold.project import build_archive  # noqa: F401
        from lightfold.release import scripts  # noqa: F401
        from lightfold.server import build, plan  # noqa: F401

        build.warm_up()


def _local(target: Target, detection: Any) -> _Local:
    from lightfold.detect.manifest import storage_paths
    from lightfold.project import deploy_fingerprint, env_for_release, git_state, project_files

    root, subdir = source_layout(target, detection)
    files = project_files(root, storage_paths(getattr(detection, "storage", None) or [], subdir))
    env = env_for_release(target.config, target.project)
    git = git_state(root)
    return _Local(
        root, subdir, files, env, deploy_fingerprint(root, target.config, {}, files), env_hash(env),
        git.commit, git.dirty,
    )


def _keyed(local: _Local, status: StatusReply) -> _Local:
    """`local` with the env hash the server would store: keyed with its key, folded with its own
    variables' hash."""
    return replace(local, env_hash=release_env_hash(env_hash(local.env, status.env_key),
                                                    status.server_env.get("hash")))


def release_env_hash(own_hash: str, server_hash: str | None) -> str:
    """The env hash of a release: the user's env, folded with the hash of the variables the server
    keeps for the app (`db add`; the agent's status `server_env`), so a database added since the
    live release makes the next deploy a new (env-only) release instead of "nothing to push"."""
    import hashlib

    return own_hash if not server_hash else hashlib.sha256(f"{own_hash}+server:{server_hash}".encode()).hexdigest()


def env_hash(env: dict[str, str], key: str | None = None) -> str:
    """The agent's own function: keyed with the server's key (StatusReply.env_key), the hashes
    compare with those the server stores."""
    from lightfold.agent.envfile import env_hash as agent_env_hash

    return agent_env_hash(env, key)


@dataclass(frozen=True)
class Decision:
    """What a push does (`decide`): `kind` is skipped (the live release already is this code, env
    and settings), env-only (only the env changed: copy the live build), deps-reused (build anew,
    the dependencies hard-linked from `reuse_from`) or full; `live` is the live release."""

    kind: str
    live: str | None
    reuse_from: str | None = None

    @property
    def skipped(self) -> bool:
        return self.kind == "skipped"


def decide(status: StatusReply, fingerprint: str, env_hash: str, *, force: bool = False,
           builder: str = "native", deps_hash: str | None = None) -> Decision:
    """Push's choice from the server's status and what this laptop would ship. Pure.

    `fingerprint`: code + deploy settings (no env values); `env_hash`: the env's; `builder`: the
    builder this push uses; `deps_hash`: the lockfiles' hash (None when the builder has none).
    `force` never skips and never copies, but still reuses unchanged dependencies."""
    live, entry, info = status.live.release, status.live_entry(), status.live.info or {}
    if not live:
        return Decision("full", None)
    same_code = entry is not None and entry.fingerprint == fingerprint
    if not force and same_code and entry.env_hash == env_hash:
        return Decision("skipped", live)
    if not force and same_code and (info.get("builder") or "native") == builder:
        return Decision("env-only", live, live)
    if deps_hash and info.get("deps_hash") == deps_hash:
        return Decision("deps-reused", live, live)
    return Decision("full", live)


def new_release_id(existing: list[str], now: dt.datetime | None = None) -> str:
    """YYYYMMDDHHMMSS in UTC, later than every existing release (ids sort by time)."""
    t = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0, tzinfo=None)
    newest = max(existing, default="")
    while (rid := t.strftime("%Y%m%d%H%M%S")) <= newest:
        t += dt.timedelta(seconds=1)
    return rid


def public_url(target: Target) -> str:
    domain = target.config.domain
    if domain:
        return f"{'https' if domain.ssl else 'http'}://{domain.domain}/"
    return f"http://{target.server.ip}/"


def facts_to_read(target: Target, detection: Any) -> tuple:
    """What push decides from, read in one exec: the agent's status, and whether nixpacks is on
    the server when that decides the builder."""
    from lightfold import builders

    wanted = [facts.status(target.name, target.server.ip)]
    if builders.asks_server(detection, target.config.builder):
        wanted.append(facts.nixpacks())
    return tuple(wanted)


async def push(
    conn: Connection, target: Target, detection: Any, *,
    force: bool = False, lock_wait: int = 0, report: Report = silent, server_facts: dict[str, Any] | None = None,
    choice: Any = None, wait: bool = True, rollout: Any = None,
) -> PushResult:
    """`server_facts`: the values of `facts_to_read` when the caller read them already (deploy
    reads them with configure's); a missing status is read here. `choice`: the deploy's builder
    (lightfold.builders.Choice), chosen once; by default push chooses it (choose_builder).
    `wait=False`: return as soon as traffic moved; the server finishes the smoke window and the
    old slot's drain holding the deploy lock, and a crash in that window flips traffic back there
    (`lightfold status` shows it: last_op). `rollout`: a target on more than one server's
    (lightfold.release.rolling.Rollout): the release is built here, on the primary, and the rollout
    ships and switches it everywhere instead of this server's own activate."""
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    app = target.name
    server_facts = dict(server_facts or {})
    if server_facts.get("status") is None:
        wanted = facts_to_read(target, detection) if choice is None else (facts.status(app, conn.host),)
        # What this laptop ships is worked out (git, the file list, hashes) while the server answers.
        reading = asyncio.ensure_future(facts.read(conn, *wanted))
        warming = asyncio.ensure_future(asyncio.to_thread(_warm_up))
        try:
            local = await asyncio.to_thread(_local, target, detection)
        except BaseException:
            reading.cancel()
            with contextlib.suppress(BaseException):
                await reading
            raise
        server_facts.update(await reading)
    else:
        warming = None
        local = _local(target, detection)
    status: StatusReply = server_facts["status"]
    local = _keyed(local, status)
    choice = choice or choose_builder(target, detection, server_facts.get("nixpacks"), report)
    builder = choice.builder()
    detection = builder.adapt(detection)
    deps_hash = _deps_hash(local, builder.lockfiles(detection))

    def decision_on(status: StatusReply) -> Decision:
        return decide(status, local.fingerprint, local.env_hash, force=force, builder=choice.name,
                      deps_hash=deps_hash)

    decision = decision_on(status)
    if decision.skipped:
        return _skipped(target, status, local, "is live with this code, env and settings; nothing to push "
                                               "(--force pushes anyway)", report)
    release_id = new_release_id([r.id for r in status.releases])
    if decision.kind != "env-only":  # an env-only release is hard links to the live one
        space.check_before_upload(app, status.disk.free_bytes, space.release_bytes(local.root, local.files))
    timings["prepare"] = time.monotonic() - t0

    info = _release_info(local, choice)
    # One exec for the lock, the journal's "building" and the env snapshot, when the agent can.
    early_mark = (agent_client.mark_building_requests(release_id, info, local.env)
                  if not lock_wait and status.agent_version >= agent_client.LINES_VERSION else None)
    t = time.monotonic()
    async with deploy_lock(conn, app, "push", release_id, lock_wait, report, then=early_mark) as held:
        timings["lock"] = time.monotonic() - t
        if held.reply.waited or lock_wait:
            # Another deploy may have gone live while we waited: decide again on fresh facts, and
            # never reuse a release id it took.
            status = await agent_client.status(conn, app)
            local = _keyed(local, status)
            decision = decision_on(status)
            if decision.skipped:
                return _skipped(target, status, local, "went live while we waited, with this code, env and settings",
                                report)
            release_id = new_release_id([r.id for r in status.releases] + [release_id])
        # The agent runs mark + env after the lock only when the lock was free (else they wait for
        # the decision taken again above, on a release id of its own).
        sent = early_mark and len(held.then_replies) == len(early_mark) and not any(
            r.get("skipped") for r in held.then_replies)
        marked = (early_mark, held.then_replies, conn.host) if sent else None
        if warming is not None:
            await warming
        await _make_release(conn, target, detection, choice, local, release_id, decision, deps_hash, timings, report,
                            has_database=bool(status.server_env.get("names")), info=info if sent else None,
                            marked=marked)
        t = time.monotonic()
        report("step", f"activating {release_id}: start the idle slot, health check, switch traffic")
        if rollout is not None:
            activation = await rollout(conn, release_id, decision.live)
        else:
            activation = await agent_client.activate(conn, app, release_id, holder=actor(), early=not wait,
                                                     on_event=agent_client.progress_notes(report))
        held.handed_over = bool(activation.early)  # the switching process releases the lock
        timings["activate"] = time.monotonic() - t
        timings.update(agent_client.switch_timings(activation))
        switched = activation.timings.switched_s if activation.timings else None
        if switched is not None:  # traffic moved before the smoke window and the drain
            timings["live_after"] = t - t0 + switched
    _record(target, release_id, local.commit, local.fingerprint, None)
    timings["total"] = time.monotonic() - t0
    return PushResult(False, release_id, decision.live, decision.kind, public_url(target), timings, activation)


def _skipped(target: Target, status: StatusReply, local: _Local, why: str, report: Report) -> PushResult:
    entry = status.live_entry()
    live = status.live.release
    _record(target, live, entry.commit if entry else None, local.fingerprint, entry.activated_at if entry else None)
    report("skip", f"release {live} {why}")
    return PushResult(True, live, build="skipped", url=public_url(target))


def _deps_hash(local: _Local, lockfiles: tuple[str, ...]) -> str | None:
    """The hash of the lockfiles the build installs from (None: nothing to compare)."""
    from lightfold.project import dependency_hash

    if not lockfiles:
        return None
    app_dir = local.root / local.subdir if local.subdir else local.root
    return dependency_hash(app_dir, lockfiles)


async def _make_release(
    conn: Connection, target: Target, detection: Any, choice: Any, local: _Local, release_id: str,
    decision: Decision, deps_hash: str | None, timings: dict[str, float], report: Report,
    has_database: bool = False, info: dict[str, Any] | None = None, marked: tuple | None = None,
) -> None:
    """`marked`: (the mark_building requests, their replies, the host) when the deploy lock's exec
    sent them already."""
    from lightfold.server.build import extract_command

    app, builder, live_id = target.name, choice.builder(), decision.live
    info = dict(info or _release_info(local, choice))
    try:
        # One exec: the journal says building (a failed push is marked failed below) and the
        # release's env snapshot is written (the build loads it; it lives outside the release dir).
        if marked:
            _, written = agent_client.marked_building(agent_client.raise_unless_ok(*marked[:2], 1, "", marked[2]))
        else:
            _, written = await agent_client.mark_building(conn, app, release_id, info, local.env)
        if written.overridden:
            report("warn", f"your own env sets {', '.join(written.overridden)}: it wins over the value lightfold "
                           "keeps for the database (unset it to use the database's)")
        if decision.kind == "env-only":
            t = time.monotonic()
            report("step", f"only the environment changed: {release_id} reuses the build of {live_id}")
            copy = " && ".join((_copy_release_command(app, live_id, release_id, info),
                                *builder.reuse_commands(app, live_id, release_id)))
            await conn.run(as_root(conn, f"sh -c {shlex.quote(copy)}"), display="copy the live release")
            timings["copy"] = time.monotonic() - t
            return

        from lightfold.project import build_archive

        t = time.monotonic()
        report("step", f"uploading {len(local.files)} files")
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            archive = build_archive(local.root, Path(tmp) / "release.tar.gz", local.files)
            # The archive on stdin, unpacked as it arrives: one exec, and no upload file to delete.
            try:
                await conn.run(as_root(conn, f"bash -c {shlex.quote(extract_command(app, release_id))}"),
                               input=archive.path.read_bytes(), display="upload and unpack the release")
            except LightfoldError as e:
                await space.raise_if_out_of_space(conn, app, "upload", e, e.details)
                raise
        timings["upload"] = time.monotonic() - t

        prepare = builder.prepare_command(app, release_id, detection, local.subdir)
        if prepare:
            detection = await _prepared(conn, builder, detection, prepare, report)
        if has_database and (getattr(detection, "release", None) or "").strip():
            # The build's release phase runs the release command (migrations): a backup first,
            # named in release.json so that a rollback across this release can point at it.
            from lightfold.release import backup

            t = time.monotonic()
            info["backup_before"] = await backup.before_release(conn, target, release_id, report)
            timings["backup"] = time.monotonic() - t
        t = time.monotonic()
        report("step", builder.build_step(app, release_id, decision.reuse_from))
        script = builder.build_script(app, detection, target.config.deploy, release_id, deps_hash=deps_hash,
                                      reuse_from=decision.reuse_from, release_info=info, app_subdir=local.subdir)
        phases = await _run_build(conn, target, script, report, release_id)
        timings["build"] = time.monotonic() - t
        timings.update({f"build_{name}": seconds for name, seconds in phases.items()})
    except BaseException as e:
        reason = e.problem if isinstance(e, LightfoldError) else f"interrupted ({type(e).__name__})"
        # The original error matters more than this mark; the agent reconciles the journal later.
        with contextlib.suppress(Exception):
            await agent_client.journal_mark(conn, app, release_id, "failed", reason=reason)
        raise


def _release_info(local: _Local, choice: Any) -> dict[str, Any]:
    """What release.json (and the journal's entry) says about the release this push makes."""
    return {
        "commit": local.commit, "dirty": local.dirty, "fingerprint": local.fingerprint,
        "env_hash": local.env_hash, "builder": choice.name, "builder_reason": choice.reason,
        "deployed_by": actor(), "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def choose_builder(target: Target, detection: Any, nixpacks_available: bool | None, report: Report = silent):
    """The builder for this push (lightfold.builders.select); `nixpacks_available` is the server's
    nixpacks fact, read only when it decides (facts_to_read). Records the choice in the target's state."""
    from lightfold import builders

    choice = builders.select(detection, target.config.builder, nixpacks_available)
    report("note", f"builder: {choice.name} ({choice.reason})")
    if choice.note:
        report("note", choice.note)
    state.update(target.name, lambda s: setattr(s, "builder", choice.name))
    return choice


async def _prepared(conn: Connection, builder: Any, detection: Any, command: str, report: Report) -> Any:
    """Run the builder's prepare command on the unpacked release (nixpacks: `nixpacks plan`) and
    give it back its output: the detection the build uses."""
    res = await conn.run(as_root(conn, command), check=False, display=f"{builder.name} prepare")
    if res.exit_status != 0:
        raise LightfoldError(f"`{command}` failed on the server (exit {res.exit_status})",
                             f"fix the project for {builder.name}, or deploy with --builder native",
                             details=res.stderr.strip().splitlines()[-20:])
    detection, notes = builder.prepared(detection, res.stdout)
    for n in notes:
        report("note", n)
    return detection


def _copy_release_command(app: str, live_id: str, release_id: str, info: dict[str, Any]) -> str:
    """Hard-link copy of the live release; release.json is replaced (not edited: it is a hard
    link to the live one) with the new id and env hash. The live release is root's (sealed), so
    root copies it (fs.protected_hardlinks would not let the build user link root's files), with
    no process of the build user alive and to a new path that does not exist; the copy is root's
    throughout, and the temp file is created exclusively, never through a symlink."""
    from lightfold.server.app import build_user

    lay = Layout(app)
    src, dst = lay.release(live_id), lay.release(release_id)
    patch = json.dumps({"id": release_id, **info})
    py = (
        "import json,os,sys;p=sys.argv[1];"
        "d=json.load(open(p));d.update(json.loads(sys.argv[2]));t=p+'.new';"
        "os.path.lexists(t) and os.unlink(t);"
        "f=os.fdopen(os.open(t,os.O_WRONLY|os.O_CREAT|os.O_EXCL|os.O_NOFOLLOW,0o644),'w');"
        "json.dump(d,f,indent=2,sort_keys=True);f.close();os.replace(t,p)"
    )
    user, d = build_user(app), shlex.quote(dst)
    return (f"{{ pkill -KILL -U {user}; true; }} && [ ! -e {d} ] && [ ! -L {d} ]"
            f" && cp -a --link {shlex.quote(src)} {d}"
            f" && python3 -c {shlex.quote(py)} {shlex.quote(lay.release_info(release_id))} {shlex.quote(patch)}")


def build_log_path(app: str, release_id: str) -> str:
    return Layout(app).build_log(release_id)


def build_log_header(app: str, release_id: str) -> str:
    """The build script's first lines: everything it prints also goes to its build log on the
    server (for `lightfold logs --build`; 0600, root's: a build may print values from the env), so
    keeping the log costs no exec of its own."""
    log = shlex.quote(build_log_path(app, release_id))
    folder = shlex.quote(Layout(app).builds_dir)
    return (f"(umask 077; mkdir -p {folder} && : > {log})\n"
            f"exec > >(tee -a {log}) 2> >(tee -a {log} >&2)\n")


async def _run_build(conn: Connection, target: Target, script: str, report: Report,
                     release_id: str) -> dict[str, float]:
    """Run the build; returns the seconds of each of its phases (install, build, ...: from the
    previous phase's end, or the exec's start, to the phase's last event)."""
    from lightfold.release.scripts import run_plan
    from lightfold.server.build import failure_message

    phases: dict[str, float] = {}
    mark = [time.monotonic()]

    def on_event(event: dict[str, Any]) -> None:
        phase, status = event.get("build"), event.get("status")
        if phase and status in ("reused", "done", "skipped", "failed"):
            now = time.monotonic()
            phases[str(phase)] = phases.get(str(phase), 0.0) + now - mark[0]
            mark[0] = now
        if status == "reused":
            report("note", f"{phase}: reused from {event.get('from')}")
        elif status == "retry":
            net = event.get("network") or {}
            where = net.get("url") or net.get("registry") or "?"
            report("note", f"{phase}: network error at {where}; running it once more")
        elif status == "start" and event.get("command"):
            limit = f" (time limit {event['timeout']} s)" if event.get("timeout") else ""
            report("note", f"{phase}: {event['command']}{limit}")

    def on_stderr(line: str) -> None:
        if line.strip():
            report("output", line)

    run = await run_plan(conn, build_log_header(target.name, release_id) + script, on_event, on_stderr=on_stderr,
                         timeout=3600, display="build")
    if run.ok:
        return phases
    failed = run.failed
    output = [*(failed.get("output") or []), *run.stderr.splitlines()[-40:]]
    if space.out_of_space(output):
        raise space.ran_out(target.name, "build", await space.free_now(conn), [str(x) for x in output][-20:])
    if failed:
        raise LightfoldError(*failure_message(failed), details=[str(x) for x in failed.get("output") or []][-20:])
    raise LightfoldError(
        f"the build failed (exit {run.exit_status})", "the live release keeps serving; see the output above",
        details=run.stderr.strip().splitlines()[-20:],
    )


def _record(target: Target, release: str | None, commit: str | None, fingerprint: str, when: str | None) -> None:
    def change(s) -> None:
        s.last_release = release
        s.last_commit = commit
        s.deploy_fingerprint = fingerprint
        s.last_deploy = when or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    state.update(target.name, change)
