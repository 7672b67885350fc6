r"""Env files (systemd.exec(5) EnvironmentFile=). Values are always double-quoted: inside double
quotes systemd keeps every byte literally (newlines and CR included) except that a backslash
before one of " \ ` $ is removed; it expands no $VAR. So escaping exactly those four characters
makes every value arrive byte-exact. NUL cannot be carried by an environment at all."""

from __future__ import annotations

import json

from .core import AgentError
from .layout import DB_KINDS, Layout, is_env_name

ENV_ESCAPED = '"\\`$'


def check_env(env) -> dict[str, str]:
    if not isinstance(env, dict):
        raise AgentError("env must be a JSON object of NAME: value", "send {\"env\": {\"NAME\": \"value\"}}")
    clean: dict[str, str] = {}
    for name, value in env.items():
        if not is_env_name(name):
            raise AgentError(
                f"invalid environment variable name {name!r}",
                "use letters, digits and _ only, not starting with a digit (e.g. DATABASE_URL)",
            )
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise AgentError(f"the value of {name} must be a string", f"quote the value of {name}")
        value = str(value)
        if "\x00" in value:
            raise AgentError(f"the value of {name} contains a NUL byte", "environment values cannot hold NUL")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise AgentError(f"the value of {name} is not valid UTF-8", f"fix the value of {name}") from e
        clean[name] = value
    return clean


def quote_env_value(value: str) -> str:
    return '"' + "".join("\\" + c if c in ENV_ESCAPED else c for c in value) + '"'


def render_env_file(env: dict[str, str], header: str | None = None) -> str:
    lines = [f"# {header}"] if header else []
    lines += [f"{name}={quote_env_value(value)}" for name, value in check_env(env).items()]
    return "\n".join(lines) + "\n"


def parse_env_file(text: str) -> dict[str, str]:
    """Parse EnvironmentFile syntax the way systemd does (a port of its env-file.c state machine)."""
    newline, whitespace, comments = "\n\r", " \t\n\r", "#;"
    env: dict[str, str] = {}
    state = "pre_key"
    key: list[str] = []
    value: list[str] = []
    key_ws = value_ws = None  # index where trailing whitespace starts, as systemd tracks it

    def push():
        k = "".join(key[:key_ws] if key_ws is not None else key)
        env[k] = "".join(value)

    for c in text.split("\x00", 1)[0]:
        if state == "pre_key":
            if c in comments:
                state = "comment"
            elif c not in whitespace:
                state, key, key_ws = "key", [c], None
        elif state == "key":
            if c in newline:
                state, key = "pre_key", []
            elif c == "=":
                state, value, value_ws = "pre_value", [], None
            else:
                if c not in whitespace:
                    key_ws = None
                elif key_ws is None:
                    key_ws = len(key)
                key.append(c)
        elif state == "pre_value":
            if c in newline:
                push()
                state, key = "pre_key", []
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in whitespace:
                state = "value"
                value.append(c)
        elif state == "value":
            if c in newline:
                if value_ws is not None:
                    del value[value_ws:]
                push()
                state, key = "pre_key", []
            elif c == "\\":
                state, value_ws = "value_escape", None
            else:
                if c not in whitespace:
                    value_ws = None
                elif value_ws is None:
                    value_ws = len(value)
                value.append(c)
        elif state == "value_escape":
            state = "value"
            if c not in newline:
                value.append(c)
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value.append(c)
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value.append(c)
        elif state == "double_escape":
            state = "double"
            if c in ENV_ESCAPED:
                value.append(c)
            elif c != "\n":
                value += ["\\", c]
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in newline:
                state = "pre_key"
        elif state == "comment_escape":
            state = "pre_key" if c in newline else "comment"
    if state in ("pre_value", "value", "value_escape", "single", "double", "double_escape"):
        if state == "value" and value_ws is not None:
            del value[value_ws:]
        push()
    return env


def env_hash(env: dict[str, str]) -> str:
    """sha256 of the env as canonical JSON (sorted keys, UTF-8): equal envs, equal hashes."""
    import hashlib

    canonical = json.dumps(env, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def slot_env(snapshot_text: str | None, port: int) -> dict[str, str]:
    """A slot's environment: the release's snapshot, then PORT (PORT always wins)."""
    env = parse_env_file(snapshot_text) if snapshot_text else {}
    env.pop("PORT", None)
    env["PORT"] = str(port)
    return env


def server_env(lay: Layout) -> dict[str, str]:
    """The variables lightfold keeps on the server for this app (the databases `db add` made),
    from their root-only env files; {} when there are none."""
    env: dict[str, str] = {}
    for kind in DB_KINDS:
        try:
            with open(lay.db_env(kind), encoding="utf-8") as f:
                env.update(parse_env_file(f.read()))
        except FileNotFoundError:
            continue
    return env


def merge_env(own: dict[str, str], server: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """A release's env: the server's variables, then the user's own (the user's win on a clash).
    Returns the env and the clashing names."""
    return {**server, **own}, sorted(set(own) & set(server))
