r"""Env files (systemd.exec(5) EnvironmentFile=). Values are always double-quoted: inside double
quotes systemd keeps every byte literally (newlines and CR included) except that a backslash
before one of " \ ` $ is removed; it expands no $VAR. So escaping exactly those four characters
makes every value arrive byte-exact. NUL cannot be carried by an environment at all."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

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


KEYED_PREFIX = "hmac-sha256:"


def env_hash(env: dict[str, str], key: str | None = None) -> str:
    """A hash of the env as canonical JSON (sorted keys, UTF-8): equal envs, equal hashes. With the
    server's `key` (`env_hash_key`) an HMAC-SHA256, marked `hmac-sha256:`: without the key, a
    low-entropy value (a short password, a port) can't be found by hashing guesses."""
    canonical = json.dumps(env, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    if key:
        return KEYED_PREFIX + hmac.new(bytes.fromhex(key), canonical, hashlib.sha256).hexdigest()
    return hashlib.sha256(canonical).hexdigest()


def env_hash_key(lay: Layout) -> str:
    """The server's env-hash key (hex), made once (32 random bytes, 0600 root). A racing second
    agent reads the winner's key; an unreadable or malformed key file is an error, never replaced
    (every stored hash would stop matching)."""
    path = lay.env_hash_key
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as f:
        key = f.read().strip()
    try:
        if len(bytes.fromhex(key)) < 16:
            raise ValueError("too short")
    except ValueError as e:
        raise AgentError(f"{path} does not hold an env-hash key ({e})",
                         f"remove {path} (the next deploy makes a new key and one env-only release)") from e
    return key


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
