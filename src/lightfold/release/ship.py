"""A built release, shipped from the server that built it to another server of the same target
(a target on more than one server: one build per release, the same release id and content
everywhere).

Through this laptop, over the SSH module: a tar of the release directory (and, for Python, the
venv it links to) is read from the source server as root and unpacked on the other one as the
build user, who owns releases there too; the journal there says building with what the source's
release.json says, the release's env snapshot is written from this laptop's env (as push does),
and the release phase runs without the release command (it ran once, where the release was built).
The release can then be activated there with the server's own health-gated switch.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from typing import TYPE_CHECKING, Any

from lightfold.agent.layout import Layout
from lightfold.errors import LightfoldError
from lightfold.release import agent_client
from lightfold.release.report import Report, silent
from lightfold.release.target import Target, as_root, source_layout

if TYPE_CHECKING:
    from lightfold.remote import Connection


def paths_to_ship(app: str, release_id: str, info: dict[str, Any]) -> list[str]:
    """What the release is, relative to the app's home: its directory, and the Python venv it
    links to (deps/<hash>, outside the release)."""
    lay = Layout(app)
    found = [lay.release(release_id)]
    if info.get("runtime") == "python":
        found.append(lay.deps(info.get("deps_hash") or f"release-{release_id}"))
    return [p.removeprefix(lay.srv).lstrip("/") for p in found]


def pack_command(app: str, release_id: str, info: dict[str, Any]) -> str:
    lay = Layout(app)
    paths = " ".join(shlex.quote(p) for p in paths_to_ship(app, release_id, info))
    return f"tar -C {shlex.quote(lay.srv)} -czf - {paths}"


def unpack_command(app: str) -> str:
    """Unpacked as the build user, modes kept (releases are sealed read-only: GNU tar sets a
    directory's mode after its files)."""
    from lightfold.server.app import build_user

    lay = Layout(app)
    inner = f"umask 022 && exec tar -xzpf - -C {shlex.quote(lay.srv)} --no-same-owner"
    return f"runuser -u {build_user(app)} -- sh -c {shlex.quote(inner)}"


async def read_info(conn: Connection, app: str, release_id: str) -> dict[str, Any]:
    res = await conn.run(as_root(conn, f"cat {shlex.quote(Layout(app).release_info(release_id))}"),
                         display="read release.json")
    return json.loads(res.stdout)


async def ship(src: Connection, dst: Connection, target: Target, detection: Any, release_id: str, *,
               report: Report = silent) -> dict[str, float]:
    """Make `release_id` (built and live on `src`) ready to activate on `dst`; timings."""
    from lightfold.project import env_for_release
    from lightfold.release.push import env_hash, release_env_hash
    from lightfold.server.build import release_phase_script

    app = target.name
    timings: dict[str, float] = {}
    t = time.monotonic()
    info = await read_info(src, app, release_id)
    status = await agent_client.status(dst, app)
    if release_id in [r.id for r in status.releases]:
        report("skip", f"{dst.host} already has release {release_id}")
        return timings
    env = env_for_release(target.config, target.project)
    info = {**info, "env_hash": release_env_hash(env_hash(env, status.env_key), status.server_env.get("hash"))}
    await agent_client.mark_building(dst, app, release_id, info, env)
    try:
        chunks: list[bytes] = []
        errors: list[bytes] = []
        code = await src.stream(as_root(src, pack_command(app, release_id, info)), on_stdout=chunks.append,
                                on_stderr=errors.append, display="pack the release")
        if code != 0:
            raise LightfoldError(f"packing release {release_id} on {src.host} failed (exit {code})",
                                 details=b"".join(errors).decode(errors="replace").splitlines()[-10:])
        data = b"".join(chunks)
        timings["pack"] = time.monotonic() - t
        t = time.monotonic()
        report("step", f"shipping release {release_id} to {dst.host} ({len(data) / 2**20:.1f} MiB)")
        await dst.run(as_root(dst, unpack_command(app)), input=data, display="unpack the shipped release",
                      timeout=1800)
        timings["unpack"] = time.monotonic() - t
        script = release_phase_script(app, detection, target.config.deploy, release_id,
                                      app_subdir=source_layout(target, detection)[1], release_info=info)
        if script:
            await dst.run(as_root(dst, "bash -s"), input=script, display="the release phase (storage dirs)")
    except BaseException as e:
        reason = e.problem if isinstance(e, LightfoldError) else f"interrupted ({type(e).__name__})"
        with contextlib.suppress(Exception):  # the original error matters more than this mark
            await agent_client.journal_mark(dst, app, release_id, "failed", reason=reason)
        raise
    return timings
