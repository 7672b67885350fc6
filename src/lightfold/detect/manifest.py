"""The app's own settings, checked into its repository: `lightfold.toml` and a `Procfile` at the
app's root (the directory `lightfold detect` is pointed at; in a monorepo the app's folder).

    read(root) -> Manifest        both files, validated and merged (pure: reads the two files only)

Who wins, per setting (README, "lightfold.toml"):
    the target's config.json (deploy.start_command, build_command, health_*)
      > lightfold.toml > Procfile > what detection derived from the framework.
config.json's part is applied where it is used (the build script, app.json), so a Detection
carries the project's view: this module's result over the detection's.

Procfile rules: `name: command` lines (blank lines and '#' comments are skipped); `web` is the
start command, `release` the release command, any other name is a process with count 1. Names
follow `lightfold.agent.layout.is_process_name` (lowercase letters, digits, '_'); anything else,
a duplicate name or a line without a command is an error naming the line.

lightfold.toml's schema and its messages are in `lightfold.detect.toml_schema` (pydantic, only
imported when the file exists); `[processes.<name>]` there wins over the Procfile's line of the
same name key by key (a `count` alone keeps the Procfile's command).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

from lightfold.agent.layout import is_process_name
from lightfold.detect.model import CronSpec, ProcessSpec
from lightfold.errors import LightfoldError
from lightfold.names import unsafe_subpath

TOML_FILE = "lightfold.toml"
PROCFILE = "Procfile"
PROCESS_NAME_RULE = "lowercase letters, digits and '_', starting with a letter, at most 30 characters"
# Process names that are not processes: `web` is the start command, `release` the release command.
RESERVED_PROCESS_NAMES = {"web": "start", "release": "release"}
# Directories a storage dir may not be (or be in): the server builds or owns them in every release.
NOT_STORAGE = (".lightfold", ".git", ".venv", "node_modules")


@dataclass
class Manifest:
    """What lightfold.toml and the Procfile say, merged (lightfold.toml winning)."""

    sources: list[str] = field(default_factory=list)  # the files read, e.g. ["lightfold.toml", "Procfile"]
    keys: dict[str, str] = field(default_factory=dict)  # setting -> the file it came from
    start: str | None = None
    build: str | None = None
    release: str | None = None
    release_timeout: int | None = None
    health_path: str | None = None
    health_status: int | None = None
    health_timeout: int | None = None
    health_host: str | None = None
    storage: list[str] = field(default_factory=list)
    processes: list[ProcessSpec] = field(default_factory=list)
    cron: list[CronSpec] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)  # lightfold.agent.layout.DB_KINDS: what deploy sets up

    def source_of(self, key: str) -> str | None:
        return self.keys.get(key)


def read(root: Path) -> Manifest:
    """lightfold.toml and the Procfile of the app at `root`, merged; an empty Manifest when the
    app has neither. Raises LightfoldError (file, key or line, fix) on anything invalid."""
    root = Path(root)
    procfile = parse_procfile(_text(root / PROCFILE), PROCFILE) if (root / PROCFILE).is_file() else {}
    toml = None
    if (root / TOML_FILE).is_file():
        from lightfold.detect import toml_schema

        toml = toml_schema.load(root / TOML_FILE)
    return merge(toml, procfile)


def merge(toml, procfile: dict[str, str]) -> Manifest:
    """A parsed lightfold.toml (`toml_schema.ProjectFile` or None) over a parsed Procfile."""
    m = Manifest()
    if procfile:
        m.sources.append(PROCFILE)
    if toml is not None:
        m.sources.insert(0, TOML_FILE)
    for key, name in (("start", "web"), ("release", "release")):
        if name in procfile:
            setattr(m, key, procfile[name])
            m.keys[key] = PROCFILE
    procs: dict[str, ProcessSpec] = {
        name: ProcessSpec(name, command) for name, command in procfile.items() if name not in RESERVED_PROCESS_NAMES
    }
    for name in procs:
        m.keys[f"processes.{name}"] = PROCFILE
    if toml is not None:
        for key in ("start", "build", "release", "release_timeout"):
            value = getattr(toml, key)
            if value is not None:
                setattr(m, key, value)
                m.keys[key] = TOML_FILE
        if toml.health is not None:
            for key in ("path", "status", "timeout", "host"):
                value = getattr(toml.health, key)
                if value is not None:
                    setattr(m, f"health_{key}", value)
                    m.keys[f"health.{key}"] = TOML_FILE
        if toml.storage:
            m.storage = list(toml.storage)
            m.keys["storage"] = TOML_FILE
        for name, table in toml.processes.items():
            procs[name] = _process(name, table, procs.get(name))
            keeps_command = table.command is None and name in procfile
            m.keys[f"processes.{name}"] = f"{TOML_FILE} (command from {PROCFILE})" if keeps_command else TOML_FILE
        for name, table in toml.cron.items():
            m.cron.append(CronSpec(name, table.schedule, table.command, table.timeout, table.deploy_grace))
            m.keys[f"cron.{name}"] = TOML_FILE
        if toml.databases is not None and toml.databases.kinds():
            m.databases = toml.databases.kinds()
            m.keys["databases"] = TOML_FILE
    m.processes = list(procs.values())
    return m


def _process(name: str, table, procfile_line: ProcessSpec | None) -> ProcessSpec:
    command = table.command or (procfile_line.command if procfile_line else None)
    if command is None:
        raise LightfoldError(
            f"{TOML_FILE}: processes.{name} has no command (and the {PROCFILE} has no '{name}:' line)",
            f"add command = \"...\" under [processes.{name}] in {TOML_FILE}",
        )
    return ProcessSpec(name, command, table.count, table.stop_timeout, table.servers)


# -- Procfile --------------------------------------------------------------------------------------

_LINE = re.compile(r"([^:\s]+)\s*:(.*)")


def parse_procfile(text: str, where: str = PROCFILE) -> dict[str, str]:
    """{name: command} in the file's order. Raises LightfoldError naming the line."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if not m:
            raise LightfoldError(f"{where} line {number} is not 'name: command': {line[:80]!r}",
                                 "write it as e.g. 'worker: python worker.py', or comment it out with '#'")
        name, command = m.group(1), m.group(2).strip()
        if not is_process_name(name):
            raise LightfoldError(
                f"{where} line {number}: {name!r} is not a valid process name",
                f"rename it to {suggest_name(name)!r} ({PROCESS_NAME_RULE})",
            )
        if not command:
            raise LightfoldError(f"{where} line {number}: '{name}' has no command",
                                 f"write the command after '{name}:', or remove the line")
        if name in entries:
            raise LightfoldError(f"{where} line {number}: '{name}' is listed twice", "keep one of the two lines")
        entries[name] = command
    return entries


def suggest_name(name: str) -> str:
    """A valid process name close to `name` ('worker-high' -> 'worker_high')."""
    fixed = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if not fixed or not fixed[0].isalpha():
        fixed = "p_" + fixed
    return fixed[:30].rstrip("_")


# -- checks shared with the lightfold.toml schema --------------------------------------------------


def process_name_problem(name: object, table: str) -> str | None:
    """Why `name` cannot name a `[processes.<name>]` / `[cron.<name>]` entry, or None."""
    if not is_process_name(name):
        return f"{name!r} is not a valid name ({PROCESS_NAME_RULE}, e.g. {suggest_name(str(name))!r})"
    if table == "processes" and name in RESERVED_PROCESS_NAMES:
        key = RESERVED_PROCESS_NAMES[name]
        return f"'{name}' is not a process here: set the top-level `{key}` key instead"
    return None


def check_storage(dirs: list[str]) -> list[str]:
    """The storage dirs normalised ('uploads/' -> 'uploads'); ValueError saying which one is wrong:
    not a plain directory inside the app (release_subpath's rules), the app itself, a directory
    the server builds, a duplicate, or nested in another one."""
    out: list[str] = []
    for raw in dirs:
        norm = posixpath.normpath(raw) if raw else ""
        why = unsafe_subpath(norm) if norm else "it is empty"
        if why:
            raise ValueError(f"{raw!r} is not a plain directory inside the app: {why}")
        if norm == ".":
            raise ValueError(f"{raw!r} is the app itself: name a directory inside it, e.g. 'data'")
        if norm.split("/")[0] in NOT_STORAGE:
            raise ValueError(f"{raw!r} is inside {norm.split('/')[0]}, which lightfold or the build "
                             "makes in every release: pick another directory")
        for other in out:
            if norm == other:
                raise ValueError(f"{raw!r} is listed twice")
            if norm.startswith(other + "/") or other.startswith(norm + "/"):
                inner, outer = (norm, other) if norm.startswith(other + "/") else (other, norm)
                raise ValueError(f"{inner!r} is inside {outer!r}: list only {outer!r} (it keeps all "
                                 "that is in it)")
        out.append(norm)
    return out


def storage_paths(storage: list[str], app_subdir: str | None) -> list[str]:
    """The storage dirs relative to what ships (the project, or a monorepo's workspace)."""
    if not app_subdir or app_subdir in (".", ""):
        return list(storage)
    return [posixpath.join(app_subdir, d) for d in storage]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise LightfoldError(f"cannot read {path}: {e}", f"make {path.name} a readable UTF-8 text file") from e
