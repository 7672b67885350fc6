"""lightfold.toml's schema: `load(path) -> ProjectFile`, or a LightfoldError naming the file, the
key and the fix. The models are the documentation of every key (README, "lightfold.toml").

Like config.json: unknown keys are refused with a spelling hint, and values that reach a unit
file, an nginx file or a shell are checked by the same rules (config.UrlPath, config.Host). Unlike
it, values are strict: TOML has real types, so `count = "2"` is an error, not a 2.
Durations (`release_timeout`, `timeout`, `stop_timeout`, `deploy_grace`) are seconds or a string such as "90s",
"10m", "1h30m".
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from lightfold.config import Host, UrlPath, describe_error
from lightfold.detect.manifest import check_storage, process_name_problem
from lightfold.detect.schedule import on_calendar
from lightfold.errors import LightfoldError

MAX_COUNT = 32  # instances of one process
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", re.ASCII)


def _duration(lo: int, hi: int) -> BeforeValidator:
    def parse(value: Any) -> int:
        seconds = None
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        elif isinstance(value, str):
            text = value.strip().replace(" ", "")
            m = _DURATION.fullmatch(text)
            if text.isdigit():
                seconds = int(text)
            elif text and m:
                h, mi, s = (int(g or 0) for g in m.groups())
                seconds = h * 3600 + mi * 60 + s
        if seconds is None:
            raise ValueError(f"{value!r} is not a duration: write seconds (600) or e.g. \"90s\", \"10m\", \"1h30m\"")
        if not lo <= seconds <= hi:
            raise ValueError(f"{value!r} is {seconds} seconds: use {lo} to {hi} seconds")
        return seconds
    return BeforeValidator(parse)


def _command(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("the command is empty")
    if "\0" in text:
        raise ValueError("the command holds a NUL byte")
    return text


Command = Annotated[str, AfterValidator(_command)]
Schedule = Annotated[str, AfterValidator(on_calendar)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class HealthTable(_Model):
    path: UrlPath | None = Field(None, description="Path checked before traffic moves (default: detected, or /)")
    status: int | None = Field(None, ge=100, le=599, description="Expected status (default: any 2xx or 3xx)")
    timeout: Annotated[int, _duration(1, 3600)] | None = Field(
        None, description="Time the new release has to become healthy (default 60 s)")
    host: Host | None = Field(None, description="Host header of the check (default: the target's domain)")


class ProcessTable(_Model):
    command: Command | None = Field(None, description="Run in the app's directory with the release's env "
                                    "(default: the Procfile's line of the same name)")
    count: int = Field(1, ge=1, le=MAX_COUNT, description="How many instances run")
    stop_timeout: Annotated[int, _duration(1, 3600)] = Field(
        30, description="Time between SIGTERM and SIGKILL when it is stopped (drain)")
    servers: Literal["all", "primary"] = Field(
        "all", description="On a target with several servers: every server runs it (all), or only the "
                           "primary (a scheduler, a queue that must have one consumer)")


class CronTable(_Model):
    schedule: Schedule = Field(description="systemd calendar ('*:0/5') or cron ('*/5 * * * *')")
    command: Command
    timeout: Annotated[int, _duration(1, 86400)] = Field(3600, description="Time a run may take before it is stopped")
    deploy_grace: Annotated[int, _duration(0, 86400)] | None = Field(
        None, description="Time a run going at deploy time may still take on its old release before it is "
                          "stopped (default: it finishes, within its timeout; 0: stopped at once)")


class DatabasesTable(_Model):
    postgres: bool = Field(False, description="PostgreSQL beside the app (`lightfold db add postgres` on deploy)")
    mysql: bool = Field(False, description="MariaDB beside the app (`lightfold db add mysql` on deploy)")
    mariadb: bool = Field(False, description="The same as mysql")
    redis: bool = Field(False, description="Redis beside the app (`lightfold db add redis` on deploy)")

    def kinds(self) -> list[str]:
        """The kinds wanted, in lightfold.agent.layout.DB_KINDS's order."""
        wanted = {"postgres": self.postgres, "mysql": self.mysql or self.mariadb, "redis": self.redis}
        return [k for k, on in wanted.items() if on]

    @model_validator(mode="after")
    def _one_database_url(self) -> DatabasesTable:
        if self.postgres and (self.mysql or self.mariadb):
            raise ValueError("postgres and mysql both give the app DATABASE_URL: choose one of them")
        return self


class ProjectFile(_Model):
    release: Command | None = Field(None, description="Run once per release before the switch (migrations)")
    release_timeout: Annotated[int, _duration(1, 86400)] | None = Field(
        None, description="Time the release command may take (default 10m)")
    storage: list[str] = Field(default_factory=list, description="Persistent directories, relative to the app")
    build: Command | None = Field(None, description="Overrides the detected build command")
    start: Command | None = Field(None, description="Overrides the detected start command (the web process)")
    health: HealthTable | None = None
    processes: dict[str, ProcessTable] = Field(default_factory=dict)
    cron: dict[str, CronTable] = Field(default_factory=dict)
    databases: DatabasesTable | None = None

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: list[str]) -> list[str]:
        return check_storage(value)

    @field_validator("processes", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """`worker = "python worker.py"` (a command) and `worker = 2` (a count) stand for tables."""
        if not isinstance(value, dict):
            return value
        out = {}
        for name, table in value.items():
            if isinstance(table, str):
                table = {"command": table}
            elif isinstance(table, int) and not isinstance(table, bool):
                table = {"count": table}
            out[name] = table
        return out

    @field_validator("processes", "cron")
    @classmethod
    def _names(cls, value: dict, info: Any) -> dict:
        for name in value:
            problem = process_name_problem(name, info.field_name)
            if problem:
                raise ValueError(problem)
        return value


def load(path: Path) -> ProjectFile:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as e:
        raise LightfoldError(f"cannot read {path}: {e}", "make it a readable UTF-8 text file") from e
    except tomllib.TOMLDecodeError as e:
        raise LightfoldError(f"{path} is not valid TOML: {e}", "fix the syntax there (https://toml.io)") from e
    return parse(raw, path)


def parse(raw: dict, path: Path | str) -> ProjectFile:
    try:
        return ProjectFile.model_validate(raw)
    except ValidationError as e:
        errors = e.errors()
        lines = [describe_error(err, ProjectFile) for err in errors]
        raise LightfoldError(f"{path}: {lines[0]}", _fix(errors[0], path), details=lines[1:]) from e


def _fix(err: Any, path: Path | str) -> str:
    loc = [str(p) for p in err["loc"]]
    name = Path(str(path)).name
    if err["type"] == "extra_forbidden":
        keys = _keys_of(loc[:-1])
        return f"remove '{'.'.join(loc)}' from {name} or correct it" + (f" (keys there: {', '.join(keys)})"
                                                                        if keys else "")
    key = ".".join(loc) or "the file"
    if err["type"] == "missing" and len(loc) > 1:
        return f"add {loc[-1]} = ... under [{'.'.join(loc[:-1])}] in {name}"
    return f"change {key} in {name} (README, 'lightfold.toml', lists every key and its values)"


def _keys_of(parent: list[str]) -> list[str]:
    """The keys of the table at `parent` (['processes', 'worker'] -> command, count, stop_timeout)."""
    tables: dict[str, type[BaseModel]] = {"health": HealthTable, "processes": ProcessTable, "cron": CronTable,
                                          "databases": DatabasesTable}
    if not parent:
        return list(ProjectFile.model_fields)
    model = tables.get(parent[0])
    if model is None or (parent[0] not in ("health", "databases") and len(parent) < 2):
        return []
    return list(model.model_fields)
