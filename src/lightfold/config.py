"""~/.lightfold/config.json: what the user wants for each target.

The models below are the schema and its documentation. Unknown keys are refused (a typo such as
`evn_vars` must not be silently ignored) and every error names the file and the dotted key.
The file holds env values, so it is always written 0600.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from lightfold import store
from lightfold.errors import LightfoldError, UsageError
from lightfold.names import PROVIDERS, is_host, is_target_name, is_url_path, sanitize_target_name  # noqa: F401

CONFIG_VERSION = 1
BUILDERS = ("native", "nixpacks", "dockerfile")


def _rule(ok: Callable[[Any], bool], what: str) -> AfterValidator:
    """A full-string check for a value that reaches a unit file, an nginx file or a shell."""
    def check(value):
        if value is not None and not ok(value):
            raise ValueError(f"{value!r} is not {what}")
        return value
    return AfterValidator(check)


UrlPath = Annotated[str, _rule(is_url_path, "a request path such as /health (no spaces, quotes, ';' or '#')")]
Host = Annotated[str, _rule(is_host, "a host name such as app.example.com, optionally with :port")]
DomainName = Annotated[str, _rule(lambda v: is_host(v) and ":" not in v, "a host name such as app.example.com")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ProviderConfig(_Model):
    ip: str | None = Field(None, description="Public IPv4 address of the server")
    ssh_key: str | None = Field(None, description="Private key used to log in")
    username: str = Field("root", description="SSH login (root or a sudoer)")
    port: int = Field(22, ge=1, le=65535, description="SSH port")
    region: str | None = None
    size: str | None = None
    image: str | None = None
    server_id: str | None = Field(None, description="The provider's id for the server")
    network: Literal["isolated", "nat"] | None = Field(None, description="local provider: network mode")
    hosts: list[DomainName] = Field(default_factory=list, description="byos: the target's other app servers "
                                    "(`lightfold scale`), logged in like the first")
    lb_host: DomainName | None = Field(None, description="byos: the load balancer's server (`lightfold scale`)")

    @field_validator("hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        return value.replace(",", " ").split() if isinstance(value, str) else value


class DeployConfig(_Model):
    env_vars: dict[str, str] = Field(default_factory=dict, description="Environment of the app; wins over .env")
    build_command: str | None = Field(None, description="Overrides the detected build command")
    start_command: str | None = Field(None, description="Overrides the detected start command")
    port: int | None = Field(None, ge=1, le=65535, description="Port the app listens on ($PORT)")
    health_path: UrlPath | None = Field(None, description="Path checked before traffic moves (default: detected)")
    health_status: int | None = Field(None, ge=100, le=599, description="Expected status of the health check "
                                      "(default: any 2xx or 3xx; redirects are not followed)")
    health_timeout: int | None = Field(None, ge=1, le=3600, description="Seconds the new release has to become "
                                       "healthy (default: lightfold.toml's [health] timeout, else 60)")
    health_host: Host | None = Field(None, description="Host header of the health check (default: domain)")

    @field_validator("health_timeout", mode="before")
    @classmethod
    def _legacy_default(cls, value: Any) -> Any:
        """Earlier versions wrote the default (60) into every target: that is no choice of the
        user's, and must not hide lightfold.toml's timeout. 60 is the default anyway."""
        return None if value in (60, "60") else value


class DomainConfig(_Model):
    domain: DomainName
    ssl: bool = True
    email: str | None = Field(None, description="ACME account email (expiry and account notices)")
    acme_server: str | None = Field(None, description="ACME directory URL (default: Let's Encrypt)")


def _flag(value: Any, key: str) -> bool:
    """A yes/no setting: true/false (JSON booleans, or the words from `lightfold config set`)."""
    words = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ValueError(f"security.{key} must be true or false, not {value!r}")


class SecurityConfig(_Model):
    """What configure does to the server beyond the app (README, "On the server")."""

    harden_ssh: bool = Field(True, description="key-only SSH logins (sshd drop-in); false leaves sshd alone")
    updates: bool = Field(True, description="unattended-upgrades for the security origin")
    reboot_window: str | None = Field(None, description="HH:MM: reboot then when an update needs it")
    allow_ports: list[int] = Field(default_factory=list, description="more TCP ports the firewall lets in")

    @field_validator("harden_ssh", "updates", mode="before")
    @classmethod
    def _flags(cls, value: Any, info: Any) -> bool:
        return _flag(value, info.field_name)

    @field_validator("reboot_window", mode="before")
    @classmethod
    def _reboot_window(cls, value: Any) -> str | None:
        import re

        if value is None:
            return None
        if not isinstance(value, str) or not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value.strip()):
            raise ValueError(f"security.reboot_window must be a time of day as HH:MM (e.g. 03:30), not {value!r}")
        return value.strip()

    @field_validator("allow_ports", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> list[int]:
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError("security.allow_ports must be a list of TCP ports, e.g. \"5432 8443\"")
        ports = []
        for item in items:
            try:
                port = int(item)
            except (TypeError, ValueError):
                port = 0
            if isinstance(item, bool) or not 1 <= port <= 65535:
                raise ValueError(f"security.allow_ports: {item!r} is not a TCP port (1-65535)")
            ports.append(port)
        return sorted(set(ports))


# A systemd OnCalendar expression ("daily", "*-*-* 03:30", "Mon..Fri 02:00"): the server's
# `systemd-analyze calendar` has the last word; this only keeps it to one harmless line.
_CALENDAR_RE = r"[A-Za-z0-9:*,./~ +-]{1,80}"
# sftp://user@host[:port][/path]: a user and a host name or IPv4 address (never an option-like
# leading `-`), a port, and a path of plain characters (`/~/x` is relative to the login's home)
SFTP_REMOTE_RE = r"sftp://[a-z_][a-z0-9_.-]{0,31}@[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:[0-9]{1,5})?(/[A-Za-z0-9._/~-]*)?"


def sftp_port(remote: str) -> int:
    """The port of an sftp:// remote (22 when it names none)."""
    host = remote.removeprefix("sftp://").split("/", 1)[0].split("@", 1)[1]
    return int(host.split(":", 1)[1]) if ":" in host else 22


Region = Annotated[str, _rule(lambda v: re.fullmatch(r"[a-z0-9-]{1,40}", v) is not None, "a region such as eu-west-1")]


class BackupConfig(_Model):
    """`lightfold backup` (README, "Backups")."""

    schedule: str | None = Field(None, description="systemd OnCalendar of the server's backup timer, e.g. daily")
    keep: int = Field(7, ge=1, le=1000, description="complete backups kept on the server (and off it)")
    remote: str | None = Field(None, description="off-server copy: s3://bucket/prefix or sftp://user@host[:port]/path "
                                                 "(rclone)")
    remote_endpoint: str | None = Field(None, description="S3-compatible endpoint URL (default: AWS)")
    remote_region: Region | None = Field(None, description="the bucket's region")

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> str | None:
        import re

        if value is None or (isinstance(value, str) and re.fullmatch(_CALENDAR_RE, value.strip())):
            return value.strip() if isinstance(value, str) else None
        raise ValueError(f"backup.schedule must be a systemd calendar expression such as daily or "
                         f"'*-*-* 03:30', not {value!r}")

    @field_validator("remote", mode="before")
    @classmethod
    def _remote(cls, value: Any) -> str | None:
        import re

        if value is None or (isinstance(value, str) and (
                re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,62}(/[A-Za-z0-9._/-]*)?", value.strip())
                or (re.fullmatch(SFTP_REMOTE_RE, value.strip()) and 0 < sftp_port(value.strip()) < 65536))):
            return value.strip().rstrip("/") if isinstance(value, str) else None
        raise ValueError(f"backup.remote must be s3://bucket[/prefix] or sftp://user@host[:port][/path], not {value!r}")

    @field_validator("remote_endpoint", mode="before")
    @classmethod
    def _endpoint(cls, value: Any) -> str | None:
        import re

        if value is None or (isinstance(value, str) and re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+/?", value.strip())):
            return value.strip().rstrip("/") if isinstance(value, str) else None
        raise ValueError(f"backup.remote_endpoint must be a URL such as https://s3.example.com, not {value!r}")


class TargetConfig(_Model):
    project_path: str
    framework: str | None = None
    provider: Literal[PROVIDERS] | None = None  # type: ignore[valid-type]
    builder: Literal["native", "nixpacks", "dockerfile"] | None = None
    provider_config: dict[str, ProviderConfig] = Field(default_factory=dict)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    domain: DomainConfig | None = None
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    backup: BackupConfig = Field(default_factory=BackupConfig)

    def server(self) -> ProviderConfig:
        """Connection settings of the target's provider (empty ones if none recorded yet)."""
        return self.provider_config.get(self.provider or "", ProviderConfig())


class Config(_Model):
    version: int = CONFIG_VERSION
    targets: dict[str, TargetConfig] = Field(default_factory=dict)


def config_path() -> Path:
    return store.home() / "config.json"


def describe_error(err: Any, root: type[BaseModel] | None = None) -> str:
    """One readable line for one pydantic error, with a spelling hint for unknown keys (in the
    schema whose top model is `root`: config.json's by default, lightfold.toml's too)."""
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        parent, key = err["loc"][:-1], str(err["loc"][-1])
        hint = _spelling_hint(parent, key, root or Config)
        return f"unknown key '{loc}'{hint}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"'{loc}': {msg}" if loc else msg


def _spelling_hint(parent: tuple, key: str, root: type[BaseModel] | None = None) -> str:
    model: type[BaseModel] | None = root or Config
    for part in parent:
        if model is None:
            break
        field = model.model_fields.get(str(part))
        if field is None:  # a dict key such as a target name
            continue
        ann = field.annotation
        model = _model_in(ann)
    if model is None:
        return ""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    return None


def parse(raw: Any, path: Path) -> Config:
    if not isinstance(raw, dict):
        raise LightfoldError(f"{path}: the top level must be a JSON object", "fix the file by hand")
    version = raw.get("version", CONFIG_VERSION)
    if isinstance(version, int) and version > CONFIG_VERSION:
        raise LightfoldError(
            f"{path} was written by a newer lightfold (version {version})", "upgrade lightfold"
        )
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        lines = [describe_error(err) for err in e.errors()]
        raise LightfoldError(
            f"{path}: {lines[0]}",
            "fix the file or use `lightfold config set/unset` (nothing was changed)",
            details=lines[1:],
        ) from e
    for name in cfg.targets:
        if not is_target_name(name):
            raise LightfoldError(
                f"{path}: target name '{name}' is invalid",
                "use lowercase letters, digits and '-', at most 31 characters",
            )
    return cfg


def load() -> Config:
    path = config_path()
    raw = store.read_json(path)
    return Config() if raw is None else parse(raw, path)


def save(cfg: Config) -> None:
    store.write_json(config_path(), cfg.model_dump(mode="json", exclude_none=True))


def update(change: Callable[[Config], Any]) -> Config:
    """Read, change and write config.json under an inter-process lock."""
    path = config_path()
    with store.lock(path):
        cfg = load()
        change(cfg)
        save(cfg)
    return cfg


def record_server(target: str, provider: str, project_path: Path | None, **settings: Any) -> None:
    """After a create: the target exists (with its project path, for a new one), uses `provider`,
    and that provider's settings take `settings` (ip, ssh_key, username, port, server_id, ...)."""

    def change(cfg: Config) -> None:
        if target not in cfg.targets:
            path = (project_path or Path.cwd()).expanduser().resolve()
            cfg.targets[target] = TargetConfig(project_path=str(path))
        tc = cfg.targets[target]
        tc.provider = provider
        pc = tc.provider_config.get(provider) or ProviderConfig()
        for name, value in settings.items():
            setattr(pc, name, value)
        tc.provider_config = {**tc.provider_config, provider: pc}

    update(change)


def get_target(cfg: Config, name: str) -> TargetConfig:
    try:
        return cfg.targets[name]
    except KeyError:
        known = ", ".join(sorted(cfg.targets)) or "none yet"
        raise LightfoldError(
            f"no target named '{name}' (known: {known})",
            "run `lightfold deploy --target NAME` in your project, or pass --target",
        ) from None


# ---- dotted-key edits (`lightfold config set/unset`) -------------------------------------------

FREE_KEY_MAPS = ("deploy.env_vars", "provider_config")


def set_builder(target: str, project_path: Path, builder: str) -> None:
    """`--builder X`: remembered in the target's config, as `lightfold config set builder X` would."""
    if builder not in BUILDERS:
        raise UsageError(f"unknown builder '{builder}'", f"use --builder {' | '.join(BUILDERS)}")
    update(lambda c: set_value(c, target, "builder", builder, project_path=project_path))


def set_value(cfg: Config, target: str, key: str, raw: str, project_path: Path | None = None) -> None:
    """Set `key` (dotted, relative to the target) to `raw`, validated by the schema.

    The raw string is handed to pydantic, which turns "3000" into an int where an int is wanted
    and keeps strings (env values) exactly as given.
    """
    data = cfg.model_dump(mode="json", exclude_none=True)
    targets = data.setdefault("targets", {})
    if target not in targets:
        if not is_target_name(target):
            raise LightfoldError(f"invalid target name '{target}'", "use lowercase letters, digits and '-'")
        targets[target] = {"project_path": str((project_path or Path.cwd()).resolve())}
    node = targets[target]
    parts = _split_key(key)
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LightfoldError(f"'{key}': '{part}' is a value, not a section", "set the section's keys instead")
        node = child
    node[parts[-1]] = raw
    _replace(cfg, data, key)


def unset_value(cfg: Config, target: str, key: str) -> bool:
    """Remove `key` from the target (back to its default). Returns False when it was not set."""
    get_target(cfg, target)
    data = cfg.model_dump(mode="json", exclude_none=True)
    node = data["targets"][target]
    parts = _split_key(key)
    for part in parts[:-1]:
        node = node.get(part)
        if not isinstance(node, dict):
            return False
    if parts[-1] not in node:
        return False
    if parts == ["project_path"]:
        raise LightfoldError("project_path cannot be unset", "set it to another directory instead")
    del node[parts[-1]]
    _replace(cfg, data, key)
    return True


def _split_key(key: str) -> list[str]:
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise LightfoldError(f"invalid key '{key}'", "use a dotted key such as deploy.port or deploy.env_vars.NAME")
    # env var names may contain dots only in theory; keep everything after env_vars as one name
    if parts[:2] == ["deploy", "env_vars"] and len(parts) > 3:
        parts = parts[:2] + [".".join(parts[2:])]
    return parts


def _replace(cfg: Config, data: dict, key: str) -> None:
    try:
        new = Config.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = err["loc"][2:] if err["loc"][:1] == ("targets",) else err["loc"]
        where = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{where}'{_spelling_hint(err['loc'][:-1], str(err['loc'][-1]))}"
        else:
            msg = err["msg"] if where == key else f"'{where}': {err['msg']}"
        raise LightfoldError(f"cannot set {key}: {msg}", "see `lightfold config show` for the keys") from e
    cfg.targets = new.targets


def redacted(cfg: Config) -> dict:
    """The config as JSON data with every env value hidden."""
    data = cfg.model_dump(mode="json", exclude_none=True)
    for t in data.get("targets", {}).values():
        env = t.get("deploy", {}).get("env_vars")
        if env:
            t["deploy"]["env_vars"] = {k: "********" for k in env}
    return data
