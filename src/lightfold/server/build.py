"""The build of one release on the server, as a script (pure: built without I/O).

    extract_command(app, release_id, archive_path) -> str     root: unpack the upload as the build user
    build_script(app, detection, deploy, release_id, *, deps_hash=None, reuse_from=None,
                 release_info=None, app_subdir=None, run_release=True) -> str
                                                              root: the build, run as the build user,
                                                              then the release phase as the app user

Paths come from lightfold.agent.layout (`Layout(app)`). The build script is run as root in one
ssh exec (`bash -s`, script on stdin). It loads the release's env snapshot (`env_file(id)`,
written by the agent's `write_env`, when present) so build-time variables such as NEXT_PUBLIC_*
work, then runs the build as the build user `lfb-<app>` (privileges dropped before the app's env
applies: see ENV_LOADER) inside `release(id)`/<app_root>, and then the release phase as the app
user `lf-<app>`, in a transient unit confined like the app's (`layout.release_unit`). Releases
are immutable: the build user owns them, and the build ends by removing every group/other write
bit and set-id bit, so the app only ever reads its release (and its deps):
  1. dependencies: reused when the lockfile is unchanged, else a frozen install (the detection's
     install command):
       node/ruby/php: `cp -al` (hard links) of node_modules / vendor/bundle / vendor from the
         release `reuse_from` (the caller passes it only when its lockfile hash is the same);
       python: venvs are not relocatable, so the venv lives at `deps(<deps_hash>)`/.venv
         (reused when complete) and is symlinked to <app_root>/.venv;
  2. build (deploy.build_command wins over the detection's);
     the install is run once more when it failed the way a transient registry failure looks
     (resets, timeouts, 5xx: `LF_NET_RE` in the template), after the package manager's own retries;
  3. `.lightfold/start` (non-static apps; deploy.start_command wins) and `.lightfold/release.json`
     in the release root — the slots link to the release root, the start script cds to app_root;
     dirs a framework writes at run time (`SCRATCH`: Next.js' .next/cache, Rails' tmp and log)
     become links into the process's private /tmp, and Python bytecode is compiled;
  4. the release phase, as the app user: the storage dirs, then the release command (the
     detection's, e.g. migrations: it writes the app's data, never its code).
stdout carries only JSON events (`parse_event` in lightfold.server.plan reads them):
    {"build": "install", "status": "start", "command": "npm ci"}
    {"build": "install", "status": "reused", "from": "..."} / "done" / "skipped"
    {"build": "build", "status": "failed", "command": ..., "exit": 1, "output": [last 20 lines]}
    {"build": "install", "status": "retry", "exit": 1, "network": {"url": ..., "registry": ...}}
    {"build": "install", "status": "failed", ..., "network": {...}}    (a network-class failure)
    {"build": "finish", "status": "done"}
and the commands' own output is streamed on stderr. The script exits 1 on failure.

`dependency_hash(files)` (in lightfold.project) hashes the files named by `lockfiles(detection)`.
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import shlex
from typing import Any

from lightfold.agent import layout
from lightfold.agent.layout import Layout
from lightfold.errors import LightfoldError
from lightfold.server import pyversion, runtime
from lightfold.server.app import app_root_of, app_user, build_user, check_app_name, render_template
from lightfold.server.django_settings import support_files
from lightfold.server.seal import reap_lines, reuse_lines, seal_lines

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Where each runtime keeps the dependencies a frozen install creates in the app directory.
_COPIED_DEPS = {"node": "node_modules", "ruby": "vendor/bundle", "php": "vendor"}

# Directories (relative to the app) a framework writes into at run time; the release is read-only
# to the app, so each becomes a link to <layout.scratch_root(app)>/<dir>, in the process's private
# /tmp (made by the launchers; systemd gives each unit its own /tmp).
SCRATCH = {"nextjs": (".next/cache",), "rails": ("tmp", "log")}
scratch_root = layout.scratch_root


def scratch_dirs(detection: Any) -> tuple[str, ...]:
    return SCRATCH.get((getattr(detection, "framework", None) or "").lower(), ())


# Python package managers that need pip inside the venv (uv and pdm bring their own installer,
# and ensurepip costs seconds).
_PIP_USERS = ("pip", "pipenv", "poetry", None)

# Files whose content decides the dependencies (any one that exists counts).
LOCKFILES = {
    "node": ("package.json", "package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "yarn.lock",
             "bun.lock", "bun.lockb", ".yarnrc.yml", ".npmrc", "pnpm-workspace.yaml"),
    "python": ("pyproject.toml", "uv.lock", "poetry.lock", "pdm.lock", "Pipfile", "Pipfile.lock",
               "requirements.txt", "setup.py", "setup.cfg", ".python-version", "runtime.txt"),
    "ruby": ("Gemfile", "Gemfile.lock"),
    "php": ("composer.json", "composer.lock"),
    "go": ("go.mod", "go.sum"),
    "rust": ("Cargo.toml", "Cargo.lock"),
    "java": ("pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle", "gradle.lockfile"),
    "elixir": ("mix.exs", "mix.lock"),
}


def release_dir(app: str, release_id: str, root: str = layout.ROOT) -> str:
    check_app_name(app)
    check_release_id(release_id)
    return Layout(app, root).release(release_id)


def check_release_id(release_id: str) -> None:
    if not layout.is_release_id(release_id):
        raise LightfoldError(f"'{release_id}' is not a valid release id",
                             "release ids are 14 digits (YYYYMMDDHHMMSS); see `lightfold status`")


def lockfiles(detection: Any) -> tuple[str, ...]:
    """Names (relative to the app root) whose content decides the installed dependencies."""
    return LOCKFILES.get(runtime.runtime_of(detection), ())


def extract_command(app: str, release_id: str, archive_path: str | None = None) -> str:
    """Create the release dir and unpack the tar.gz into it as the build user (so nothing in it is
    root's or the app's, and root never writes below releases/): the uploaded `archive_path`
    (then deleted), or stdin when None."""
    rel, user = release_dir(app, release_id), build_user(app)
    inner = f"umask 022 && mkdir -m 755 {rel} && exec tar -xzf - -C {rel} --no-same-owner --no-same-permissions"
    missing = (f"this server was configured by an earlier lightfold (it has no build user {user}): "
               f"run `lightfold configure --target {app}` (or `lightfold deploy`), then push again")
    unpack = (f"{{ id -u {user} >/dev/null 2>&1 || {{ echo {shlex.quote(missing)} >&2; exit 1; }}; }}"
              f" && runuser -u {user} -- sh -c {shlex.quote(inner)}")
    if archive_path is None:
        return unpack
    archive = shlex.quote(archive_path)
    return f"{unpack} < {archive} && rm -f {archive}"


def warm_up() -> None:
    """Load and compile the build script's template (jinja2 included) ahead of the first
    `build_script`, e.g. in a thread while the server answers another request."""
    from lightfold.server.app import _templates

    _templates().get_template("build.sh.j2")


def build_script(
    app: str, detection: Any, deploy: Any, release_id: str, *,
    deps_hash: str | None = None, reuse_from: str | None = None,
    release_info: dict[str, Any] | None = None, app_subdir: str | None = None, run_release: bool = True,
) -> str:
    """The whole build as a bash script for root (see the module docstring)."""
    kw = dict(deps_hash=deps_hash, reuse_from=reuse_from, release_info=release_info, app_subdir=app_subdir,
              run_release=run_release)
    build = user_build_script(app, detection, deploy, release_id, phase="build", **kw)
    release = user_build_script(app, detection, deploy, release_id, phase="release", **kw)
    lay = Layout(app)
    deps_kind, deps_dir, reuse_dir = deps_layout(lay, runtime.runtime_of(detection), app_root_of(detection, app_subdir),
                                                 release_id, deps_hash, reuse_from)
    reuse = (f"{reuse_dir}/{deps_dir}", lay.deps_stage(release_id)) if reuse_dir else None
    seal = [lay.release(release_id), *([deps_dir] if deps_kind == "python" else [])]
    return _as_build_and_app_users(app, release_id, build, release, seal=seal, reuse=reuse)


def release_phase_script(app: str, detection: Any, deploy: Any, release_id: str, *, app_subdir: str | None = None,
                         release_info: dict[str, Any] | None = None) -> str:
    """Root's script for a release built on another server and shipped here (a target on more
    than one server): no build, and the release phase without the release command (it ran once,
    on the primary): the storage dirs only. Empty when there is nothing to do."""
    release = user_build_script(app, detection, deploy, release_id, phase="release", run_release=False,
                                app_subdir=app_subdir, release_info=release_info)
    return _as_build_and_app_users(app, release_id, "true", release) if release else ""


def user_build_script(
    app: str, detection: Any, deploy: Any, release_id: str, *,
    deps_hash: str | None = None, reuse_from: str | None = None,
    release_info: dict[str, Any] | None = None, app_subdir: str | None = None, run_release: bool = True,
    prefix: str = "", phase: str = "all",
) -> str:
    """The build as the unprivileged script root runs: `phase` "build" (the build user's: deps,
    build, launchers, release.json, sealed read-only), "release" (the app user's: storage dirs and
    the release command; empty when there are none) or "all" (both in one script: tests run it for
    real as the current user). `prefix` moves every server path under a directory."""
    lay = Layout(app, prefix or layout.ROOT)
    rel = release_dir(app, release_id, lay.root)
    if reuse_from is not None:
        check_release_id(reuse_from)
    root = app_root_of(detection, app_subdir)
    kind = runtime.runtime_of(detection)
    static = bool(getattr(detection, "static", False))
    start = (getattr(deploy, "start_command", None) or getattr(detection, "start", None) or "").strip()
    build = (getattr(deploy, "build_command", None) or getattr(detection, "build", None) or "").strip()
    install = (getattr(detection, "install", None) or "").strip()
    release_cmd = (getattr(detection, "release", None) or "").strip() if run_release else ""
    from lightfold.detect.traps import refuse_blocked

    refuse_blocked(detection)
    if not static and not start:
        raise LightfoldError(
            f"no start command for {app} (framework {getattr(detection, 'framework', '?')})",
            f"set one: lightfold config set {app} deploy.start_command '<command that listens on $PORT>'",
        )
    app_dir_abs = rel if root == "." else f"{rel}/{root}"
    deps_kind, deps_dir, reuse_dir = deps_layout(lay, kind, root, release_id, deps_hash, reuse_from)
    info = {
        "id": release_id, "app": app,
        "framework": getattr(detection, "framework", None), "runtime": kind,
        "build": build or None, "release": release_cmd or None, "start": None if static else start,
        "static": static,
        "app_root": root, "deps_hash": deps_hash, **(release_info or {}),
        **release_procs(detection),
    }
    scripts = {} if static else {**launchers(app, detection, root, start, cache=lay.cache_dir, lay=lay),
                                 **support_files(detection)}
    storage = [check_storage_dir(d) for d in getattr(detection, "storage", None) or []]
    limit = release_timeout(detection)
    scratch = () if static else scratch_dirs(detection)
    if phase == "release" and not storage and not release_cmd:
        return ""
    home = lay.cache_dir if phase == "release" else lay.build_cache_dir
    return render_template(
        "build.sh.j2", phase=phase,
        app=app, user=app_user(app) if phase == "release" else build_user(app), release_id=release_id,
        release_dir=rel, app_root=root,
        meta_dir=lay.release_meta(release_id), start_path=lay.start_script(release_id),
        release_json=lay.release_info(release_id),
        home=home, path=build_path(detection, app_dir_abs),
        scratch=scratch, scratch_root=scratch_root(app),
        tool_env=sorted(runtime.tool_env(detection, home, app_dir_abs, build=True).items()),
        python=pyversion.build_interpreter(detection) or "",
        venv_args="" if getattr(detection, "package_manager", None) in _PIP_USERS else " --without-pip",
        other_node_pm=bool(runtime.node_package_managers(detection)),
        deps_kind=deps_kind, deps_dir=deps_dir, reuse_dir=reuse_dir, stage_dir=lay.deps_stage(release_id),
        install=install, build=build, release_cmd=release_cmd, release_timeout=limit,
        release_run=f"timeout --kill-after=10 {limit} bash -o pipefail -c {shlex.quote(release_cmd)}",
        launchers=[(f"{lay.release_meta(release_id)}/{name}", _b64(text)) for name, text in scripts.items()],
        storage=[(d, lay.storage(d)) for d in storage], storage_root=lay.storage_dir,
        release_json_b64=_b64(json.dumps(info, indent=2, sort_keys=True) + "\n"),
    )


def deps_layout(lay: Layout, kind: str, root: str, release_id: str, deps_hash: str | None,
                reuse_from: str | None) -> tuple[str, str, str]:
    """(kind, dir, reuse_dir) of a release's dependencies: "python" and the venv's dir under
    deps/, "copy" and the dir inside the app (node_modules, vendor/...) with the app dir of the
    release they are reused from ("" when none), or "none"."""
    deps_kind, deps_dir = "none", ""
    if kind == "python":
        deps_kind, deps_dir = "python", lay.deps(deps_hash or "release-" + release_id)
    elif kind in _COPIED_DEPS:
        deps_kind, deps_dir = "copy", _COPIED_DEPS[kind]
    reuse_dir = ""
    if reuse_from and deps_kind == "copy":
        reuse_dir = lay.release(reuse_from) + ("" if root == "." else f"/{root}")
    return deps_kind, deps_dir, reuse_dir


# Stands for the app's directory in the start script until it is rendered as "$LF_APP".
_APP_DIR = "\0app\0"


def start_script(app: str, detection: Any, app_root: str, start: str, cache: str | None = None) -> str:
    """`.lightfold/start`: the launcher of the web process (systemd gives it PORT and the env)."""
    return launcher(app, detection, app_root, start, cache=cache)


def launchers(app: str, detection: Any, app_root: str, start: str, cache: str | None = None,
              lay: Layout | None = None) -> dict[str, str]:
    """Every launcher of a non-static release, by its path relative to the release's .lightfold/:
    `start` (the web process), `exec` (runs its arguments: `lightfold run`), `proc/<name>` per
    process and `cron/<name>` per cron job of the detection. All the same preamble.

    A cron launcher holds its job's flock (`Layout.cron_lock`) for the whole run, so no two runs
    of a job overlap whatever started them: the timer, a second trigger, or `lightfold run` of the
    job's exact command, which `exec` hands to the job's launcher (`cron_dispatch`)."""
    lay = lay or Layout(app)
    cron = getattr(detection, "cron", None) or []
    out = {"start": launcher(app, detection, app_root, start, cache=cache),
           "exec": launcher(app, detection, app_root, None, cache=cache, what="Command in the release",
                            before_exec=cron_dispatch(cron))}
    for p in getattr(detection, "processes", None) or []:
        out[f"proc/{check_process_name(p.name)}"] = launcher(app, detection, app_root, p.command, cache=cache,
                                                            what=f"Process {p.name}", nested=True)
    for c in cron:
        name = check_process_name(c.name)
        out[f"cron/{name}"] = launcher(app, detection, app_root, c.command, cache=cache, what=f"Cron job {name}",
                                       nested=True, before_exec=cron_lock_lines(name, lay.cron_lock(name)))
    return out


def cron_lock_lines(name: str, lock: str) -> list[str]:
    """sh lines taking cron job `name`'s flock on fd 9 without waiting (util-linux flock, in every
    Debian): the job's command inherits the fd, so the lock is held until the run's last process
    is gone. A run that finds it held says so on stderr (the journal) and exits
    layout.CRON_LOCKED_EXIT."""
    q = shlex.quote(lock)
    busy = (f"lightfold: cron job {name} is already running (another run holds {lock}): "
            "this run is skipped, so the job never overlaps itself")
    return [
        f"mkdir -p -m 700 {shlex.quote(posixpath.dirname(lock))} && exec 9>>{q} || exit 1",
        f"if ! flock -n 9; then echo {shlex.quote(busy)} >&2; exit {layout.CRON_LOCKED_EXIT}; fi",
    ]


def cron_dispatch(cron: list[Any]) -> list[str]:
    """sh lines of the `exec` launcher: a command that is exactly a cron job's (`lightfold run --
    'python cleanup.py'`: one argument, which run_script passes as `/bin/sh -c CMD`; or its words
    as an argv) runs through that job's launcher, under its lock."""
    if not cron:
        return []
    lines = ['if [ "$#" = 3 ] && [ "$1" = /bin/sh ] && [ "$2" = -c ]; then LF_CMD=$3; else LF_CMD="$*"; fi',
             'case "$LF_CMD" in']
    for c in cron:
        name = check_process_name(c.name)
        lines.append(f'  {shlex.quote(c.command)}) exec "$LF_RELEASE/{layout.META}/cron/{name}" ;;')
    lines.append("esac")
    return lines


def check_process_name(name: str) -> str:
    if not layout.is_process_name(name):
        raise LightfoldError(f"'{name}' is not a valid process or cron job name",
                             "use lowercase letters, digits and '_' (at most 30, starting with a letter)")
    return name


def launcher(app: str, detection: Any, app_root: str, command: str | None, cache: str | None = None,
             what: str = "Start", nested: bool = False, before_exec: list[str] | None = None) -> str:
    """A launcher script: cd to the app, the runtime's PATH, venv and tool env, then exec `command`
    (None: exec the script's own arguments, `"$@"`). systemd gives it the release's env (and PORT
    for the web process). `app_root`: the app's directory in the release ("." or a monorepo
    subdir).

    Every path into the release is found from the script's own location, never written in: an
    env-only release is a hard-linked copy of another one, and must keep working after the
    release it was copied from is cleaned up. `nested`: the script lives one level below .lightfold/."""
    sub = "" if app_root in (".", "") else "/" + app_root.strip("/")
    lines = [
        "#!/bin/sh",
        f"# {what} of {app} (generated by lightfold). systemd sets the release's env.",
        f'LF_RELEASE=$(cd "$(dirname "$0")/..{"/.." if nested else ""}" && pwd -P) || exit 1',
        f"LF_APP={_dq('$LF_RELEASE' + sub)}",
        'cd "$LF_APP" || exit 1',
        f"PATH={_dq(':'.join(_app_bins(detection, _APP_DIR) + [DEFAULT_PATH]))}",
        "export PATH",
    ]
    if runtime.runtime_of(detection) == "python":
        # The release and the venv are read-only to the app (bytecode was compiled by the build).
        lines += [f"VIRTUAL_ENV={_dq(_APP_DIR + '/.venv')}", "export VIRTUAL_ENV",
                  "PYTHONDONTWRITEBYTECODE=1", "export PYTHONDONTWRITEBYTECODE"]
    scratch = scratch_dirs(detection)
    if scratch:  # the release's links into this process's private /tmp (see SCRATCH)
        root = scratch_root(app)
        lines.append(f"mkdir -p -m 700 {shlex.quote(root)} && mkdir -p "
                     + " ".join(shlex.quote(f"{root}/{d}") for d in scratch) + " || exit 1")
    for name, value in sorted(runtime.tool_env(detection, cache or Layout(app).cache_dir, _APP_DIR).items()):
        lines += [f"{name}={_dq(value)}", f"export {name}"]
    lines += before_exec or []
    if command is None:
        lines.append('exec "$@"')
    else:
        lines.append(_exec_line((getattr(detection, "start_exec", None) or {}).get(command) or command))
    return "\n".join(lines) + "\n"


def _dq(value: str) -> str:
    r"""`value` in double quotes for sh, with `"`, `\`, `$` and backquotes escaped — except the app
    directory (`_APP_DIR`), which becomes "$LF_APP", and "$LF_RELEASE", which stays a variable."""
    parts = []
    for piece in re.split(f"({re.escape(_APP_DIR)}|\\$LF_RELEASE)", value):
        if piece == _APP_DIR:
            parts.append("$LF_APP")
        elif piece == "$LF_RELEASE":
            parts.append(piece)
        else:
            parts.append(re.sub(r'(["\\$`])', r"\\\1", piece))
    return '"' + "".join(parts) + '"'


def build_path(detection: Any, app_dir_abs: str) -> str:
    return ":".join(_app_bins(detection, app_dir_abs) + [DEFAULT_PATH])


def _app_bins(detection: Any, app_dir_abs: str) -> list[str]:
    dirs = []
    if runtime.runtime_of(detection) == "python":
        dirs.append(f"{app_dir_abs}/.venv/bin")
    if runtime.uses_node(detection):
        dirs.append(f"{app_dir_abs}/node_modules/.bin")
    if runtime.runtime_of(detection) == "ruby":
        dirs.append(f"{app_dir_abs}/bin")
    return dirs + runtime.bin_dirs(detection)


# A start command that is one simple command can replace the shell, so systemd's signals reach
# the app itself (leading NAME=value assignments stay in front of `exec`, which exports them);
# anything with shell syntax runs under `sh -c` (also exec'd).
_SHELL_SYNTAX = re.compile(r"[;&|<>()`\n]|\$\(")
_ASSIGNMENTS = re.compile(r"""^((?:[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"[^"]*"|[^\s'"])*\s+)*)(.*)$""", re.S)


def _exec_line(start: str) -> str:
    if _SHELL_SYNTAX.search(start):
        return f"exec /bin/sh -c {shlex.quote(start)}"
    m = _ASSIGNMENTS.match(start)
    assert m is not None  # the pattern matches any string
    return f"{m.group(1)}exec {m.group(2)}"


# python3 -c ENV_LOADER <agent's parent dir> <env file> <user> <build command>, run by root: the
# agent's own parser reads the env snapshot exactly as systemd will at run time (PORT is the slot's
# business, not the build's). Root opens the snapshot without following a symlink, drops to the
# build (or app) user in-process (groups, gid, uid) and only then applies the app's env, exec'ing
# bash by absolute path with a clean environment (none of root's own variables): no PATH,
# LD_PRELOAD or LD_LIBRARY_PATH of the app ever reaches a process running as root.
ENV_LOADER = f"""\
import os, pwd, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
from {layout.AGENT_PACKAGE}.envfile import parse_env_file
env_file, user, command = sys.argv[2:5]
try:
    fd = os.open(env_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
except FileNotFoundError:
    app_env = {{}}
else:
    with os.fdopen(fd, encoding="utf-8") as f:
        app_env = parse_env_file(f.read())
app_env.pop("PORT", None)
pw = pwd.getpwnam(user)
os.initgroups(user, pw.pw_gid)
os.setgid(pw.pw_gid)
os.setuid(pw.pw_uid)
env = {{"PATH": {DEFAULT_PATH!r}, "LANG": "C.UTF-8"}}
env.update(app_env)
env.update(HOME=pw.pw_dir, SHELL=pw.pw_shell or "/bin/sh", USER=user, LOGNAME=user)
os.execve("/bin/bash", ["bash", "-c", command], env)
"""


def _as_build_and_app_users(app: str, release_id: str, build: str, release: str, *,
                            seal: list[str] | None = None, reuse: tuple[str, str] | None = None) -> str:
    """Root's script: `build` as the build user through ENV_LOADER; then (when there is one)
    `release` as the app user in a transient unit with the app unit's user, env file and sandbox
    (`server.app.sandbox_properties`): the release command is confined like the app, and nothing
    it starts outlives it. Neither reads root's stdin (the script itself arrives there).

    The build user owns only what it builds: before the build, root hard-links the dependencies
    to reuse (`reuse`: the older release's dir, the stage dir the build moves into place; see
    `reuse_lines`), and after it, once nothing of the build user runs any more, root takes the
    release and its new venv (`seal`): a later build (a hostile postinstall) cannot change a
    sealed release, the live one, or the deps they share."""
    from lightfold.server.app import sandbox_properties

    builder, user = build_user(app), app_user(app)
    env_file = Layout(app).env_file(release_id)
    loader = f"/usr/bin/python3 -c {shlex.quote(ENV_LOADER)} {layout.AGENT_DIR} \"$LF_ENV\""
    lines = [
        "#!/bin/bash",
        f"# Build release {release_id} of {app} as {builder}"
        + (f", then its release phase as {user}" if release else "") + " (generated by lightfold).",
        "set -uo pipefail",
        "cd /",
        f"LF_ENV={shlex.quote(env_file)}",
        f"LF_BUILD={shlex.quote(build)}",
        *(reuse_lines(builder, *reuse) if reuse else []),
        f'{loader} {builder} "$LF_BUILD" < /dev/null',
        "LF_RC=$?",
        *reap_lines(builder),
        *([f"rm -rf {shlex.quote(reuse[1])}"] if reuse else []),  # a stage the build did not take
        *(seal_lines(seal) if seal else []),
    ]
    if not release:
        return "\n".join([*lines, 'exit "$LF_RC"', ""])
    props = [f"User={user}", f"Group={user}", "WorkingDirectory=/", f"EnvironmentFile=-{env_file}",
             *sandbox_properties(app)]
    return "\n".join([
        *lines,
        '[ "$LF_RC" = 0 ] || exit "$LF_RC"',
        f"LF_RELEASE={shlex.quote(release)}",
        "exec systemd-run --quiet --collect --wait --pipe --service-type=exec"
        f" --unit={shlex.quote(layout.release_unit(app, release_id))} "
        # systemd expands $NAME and ${NAME} in a command line itself: "$$" passes one "$" through
        + " ".join(f"-p {shlex.quote(p)}" for p in props) + ' -- /bin/bash -c "${LF_RELEASE//\\$/\\$\\$}" < /dev/null',
        "",
    ])


# How `docker build` (BuildKit and the classic builder) says it could not get a base image: errors
# that name the image (group 1), and errors that only name the registry; then the lines that name
# the image when the error does not (BuildKit's metadata step, the classic builder's FROM step).
_NAMING_FAILURES = (
    re.compile(r"failed to resolve source metadata for (\S+?):\s"),
    re.compile(r"pull access denied for ([^\s,]+)"),
    re.compile(r"manifest for (\S+) not found"),
)
_PULL_FAILURES = (
    *_NAMING_FAILURES,
    re.compile(r"error pulling image configuration"),
    re.compile(r"""Get "?https://[^/"\s]+/v2/"?: (?:dial tcp|net/http|context deadline)"""),
    re.compile(r"""failed to (?:do request|fetch|authorize).*https://[^/\s"]+/v2/"""),
)
_IMAGE_NAMED = (
    *_NAMING_FAILURES,
    re.compile(r"load metadata for (\S+?):?$"),
    re.compile(r"^Step \d+/\d+ : FROM (\S+)", re.I),
)


def image_pull_failure(lines: list[str]) -> tuple[str | None, str] | None:
    """(the image, the line saying so) when `docker build`'s output shows a base image that could
    not be pulled, else None."""
    lines = [line.strip() for line in lines]
    failure = next((line for line in lines if any(rx.search(line) for rx in _PULL_FAILURES)), None)
    if failure is None:
        return None
    image = next((m.group(1) for rx in _IMAGE_NAMED for line in lines if (m := rx.search(line))), None)
    return image, failure


# How a process says it could not write (a release command writing into its read-only release).
_READ_ONLY = re.compile(r"readonly database|unable to open database file|Read-only file system|Permission denied"
                        r"|EACCES|EROFS", re.I)


def failure_message(failed: dict[str, Any]) -> tuple[str, str]:
    """(error, fix) for a build's failed event; a network-class install failure names the
    registry and the URL that failed; a Dockerfile whose base image can't be pulled names the
    image and the two ways out."""
    net = failed.get("network") if isinstance(failed.get("network"), dict) else None
    head = f"the build failed at {failed.get('build')}: `{failed.get('command')}` exited {failed.get('exit')}"
    if failed.get("build") == "release" and failed.get("timed_out"):
        return (f"the release command `{failed.get('command')}` did not finish within its limit of "
                f"{failed.get('timeout')} s and was stopped",
                "make it faster, or raise `release_timeout` (seconds) in lightfold.toml — the live release "
                "keeps serving")
    if failed.get("build") == "release" and _READ_ONLY.search("\n".join(str(x) for x in failed.get("output") or [])):
        return (f"{head}: it tried to write into the release, which is read-only to the app",
                "keep what the app writes (a SQLite database, uploads) in a storage dir: `storage = [\"data\"]` in "
                "lightfold.toml, and point the app at it — the live release keeps serving")
    pull = image_pull_failure([str(x) for x in failed.get("output") or []]) if failed.get("build") == "image" else None
    if pull is not None:
        what = f" ({pull[0]})" if pull[0] else ""
        return (f"{head}: the server could not pull the Dockerfile's base image{what}",
                "deploy with `--builder native` (lightfold builds the app from its sources, no image), or let the "
                "server reach that registry (e.g. a mirror in /etc/docker/daemon.json); the live release keeps serving")
    if net is None:
        return head, "fix the build (try it locally), then push again — the live release keeps serving"
    url, registry = net.get("url") or "", net.get("registry") or ""
    where = f" from the registry {registry}" if registry else ""
    what = f" (failing URL: {url})" if url else ""
    return (f"{head}: a network error{where}{what}, also after the package manager's retries and one rerun",
            f"check that the server reaches {registry or 'its package registry'}, then push again"
            " — the live release keeps serving")


def release_timeout(detection: Any) -> int:
    """Seconds the release command may run (lightfold.toml `release_timeout`, default 600)."""
    value = getattr(detection, "release_timeout", None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 600


def release_procs(detection: Any) -> dict[str, Any]:
    """What release.json records of the detection's processes, cron jobs and storage (the agent
    moves the processes and timers of the release it switches to, so a rollback runs its own)."""
    return {
        "processes": [{"name": p.name, "command": p.command, "count": p.count, "stop_timeout": p.stop_timeout,
                       **({"servers": "primary"} if getattr(p, "servers", "all") == "primary" else {})}
                      for p in getattr(detection, "processes", None) or []],
        "cron": [{"name": c.name, "schedule": c.schedule, "command": c.command, "timeout": c.timeout,
                  **({} if getattr(c, "deploy_grace", None) is None else {"deploy_grace": c.deploy_grace})}
                 for c in getattr(detection, "cron", None) or []],
        "storage": list(getattr(detection, "storage", None) or []),
    }


_STORAGE_DIR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*", re.ASCII)


def check_storage_dir(value: str) -> str:
    """A storage directory relative to the app root: plain path components, no '..', no '/' ends."""
    if not isinstance(value, str) or not _STORAGE_DIR.fullmatch(value) or ".." in value.split("/") \
            or len(value) > 200:
        raise LightfoldError(f"'{value}' is not a valid storage directory",
                             "name a directory relative to the app root, e.g. storage = [\"uploads\", \"data\"]")
    return value


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
