"""The user's own OpenSSH files, read the way `ssh` reads them, for servers lightfold did not create.

- `host_settings(alias)`: HostName, User, Port, IdentityFile (and the few options that change how a
  connection is made) that ~/.ssh/config gives the host name the user typed. First value wins,
  `Host` patterns with `*`, `?` and `!negation`, `Include`; `Match` blocks are skipped (lightfold
  cannot evaluate them the way ssh would, so it does not guess).
- `known_keys(text, host, port)`: the keys a known_hosts text trusts (and revokes) for host:port,
  including hashed entries (HashKnownHosts) and the `[host]:port` form for ports other than 22.
- `public_keys(text)`: the keys in a public key or known_hosts text (a host key imported from a CI
  secret, as `lightfold config export-host-key` printed it).
- `judge(presented, lightfold_keys, user_keys)`: whether a server's host key is trusted, new or
  changed — compared per key type, as ssh does (an RSA key on file says nothing about an Ed25519 one).
- `server_host_key(host, port, key_types)`: the key a server presents (the only asyncssh use here,
  imported lazily so the parsing stays cheap to import and test).
"""

from __future__ import annotations

import base64
import getpass
import glob
import hashlib
import hmac
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"([A-Za-z0-9]+)\s*(?:=\s*|\s+|$)(.*)")
MAX_INCLUDE_DEPTH = 16  # ssh's own limit; stops an Include loop

# Host-key signature algorithms that prove a key of each type (RSA keys sign with SHA-2 now).
_ALGS_FOR_TYPE = {"ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]}


@dataclass
class HostSettings:
    """What ~/.ssh/config says for one host name; None = not set there."""

    hostname: str | None = None
    user: str | None = None
    port: int | None = None
    identity_files: list[str] = field(default_factory=list)
    known_hosts_files: list[str] = field(default_factory=list)
    host_key_alias: str | None = None
    proxy: str | None = None  # "ProxyJump x" / "ProxyCommand y": lightfold cannot connect that way


def _split(line: str) -> tuple[str, list[str]] | None:
    """'Keyword args' or 'Keyword = args' -> (lowercased keyword, args); None for blanks/comments."""
    m = _LINE.match(line.strip())
    if m is None or line.strip().startswith("#"):
        return None
    try:
        args = shlex.split(m.group(2), comments=True)
    except ValueError:  # unbalanced quote: take the words as they are
        args = m.group(2).split()
    return m.group(1).lower(), args


def _glob(pattern: str, name: str) -> bool:
    """ssh's patterns know only `*` and `?` (no [classes]: '[host]:port' is literal)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


def host_matches(patterns: list[str], name: str) -> bool:
    """`Host` semantics: some pattern matches and no negated one does (case-insensitive)."""
    name = name.lower()
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _glob(pattern.lstrip("!").lower(), name):
            if negated:
                return False
            matched = True
    return matched


def _expand(value: str, tokens: dict[str, str]) -> str:
    """ssh's %-tokens (%h %d %u %r %%) and a leading ~ in paths."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "%" and i + 1 < len(value):
            out.append(tokens.get(value[i + 1], "%" + value[i + 1]))
            i += 2
        else:
            out.append(value[i])
            i += 1
    text = "".join(out)
    if text.startswith("~/") or text == "~":
        text = tokens["d"] + text[1:]
    return text


def parse_ssh_config(text: str, alias: str, home: Path, *, read=None) -> HostSettings:
    """Settings for `alias` from an ssh_config text. `read(path) -> str | None` resolves Include
    (defaults to reading files; relative paths are under ~/.ssh, as for ssh)."""
    read = read or _read_text
    found: dict[str, list[str]] = {}

    def walk(body: str, active: bool, depth: int) -> bool:
        for line in body.splitlines():
            parsed = _split(line)
            if parsed is None:
                continue
            keyword, args = parsed
            if keyword == "host":
                active = host_matches(args, alias)
            elif keyword == "match":
                active = False  # see module docstring
            elif keyword == "include":
                if not active or depth >= MAX_INCLUDE_DEPTH:
                    continue
                for arg in args:
                    if arg.startswith("~"):
                        pattern = str(home) + arg[1:]
                    else:
                        pattern = arg if arg.startswith("/") else str(home / ".ssh" / arg)
                    for path in sorted(glob.glob(pattern)):
                        content = read(Path(path))
                        if content is not None:
                            walk(content, True, depth + 1)
            elif active and args:
                if keyword == "identityfile":
                    found.setdefault(keyword, []).extend(args[:1])
                elif keyword not in found:
                    found[keyword] = args
        return active

    walk(text, True, 0)
    remote_user = (found.get("user") or [None])[0]
    try:
        local_user = getpass.getuser()
    except Exception:
        local_user = ""
    tokens = {"h": alias, "d": str(home), "u": local_user, "r": remote_user or local_user, "%": "%"}
    hostname = _expand(found["hostname"][0], tokens) if "hostname" in found else None
    tokens["h"] = hostname or alias
    port = None
    if "port" in found:
        try:
            port = int(found["port"][0])
        except ValueError:
            port = None
    proxy = None
    for key, label in (("proxyjump", "ProxyJump"), ("proxycommand", "ProxyCommand")):
        if key in found and found[key][0].lower() != "none":
            proxy = f"{label} {' '.join(found[key])}"
            break
    return HostSettings(
        hostname=hostname,
        user=remote_user,
        port=port,
        identity_files=[_expand(p, tokens) for p in found.get("identityfile", [])],
        known_hosts_files=[_expand(p, tokens) for p in found.get("userknownhostsfile", [])
                           if p.lower() != "none"],
        host_key_alias=(found.get("hostkeyalias") or [None])[0],
        proxy=proxy,
    )


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def host_settings(alias: str, home: Path | None = None) -> HostSettings:
    """What the user's ~/.ssh/config says for `alias` (empty settings when there is no file)."""
    home = home or Path.home()
    text = _read_text(home / ".ssh" / "config")
    return parse_ssh_config(text, alias, home) if text else HostSettings()


# ---- known_hosts

@dataclass
class KnownKeys:
    """Keys ('type base64') a known_hosts text lists for one host:port."""

    keys: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # files they came from (for messages)


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _hashed_match(entry: str, name: str) -> bool:
    """|1|salt|hash entries (HashKnownHosts): HMAC-SHA1 of the name, keyed by the salt."""
    parts = entry.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except ValueError:
        return False
    return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), want)


def _entry_matches(field_text: str, name: str) -> bool:
    if field_text.startswith("|"):
        return _hashed_match(field_text, name)
    return host_matches(field_text.split(","), name)


def known_keys(text: str, host: str, port: int) -> KnownKeys:
    """Keys `text` (a known_hosts file) trusts or revokes for host:port. @cert-authority lines
    are ignored: a CA-signed host certificate is not a key lightfold can pin."""
    name = host_pattern(host, port)
    result = KnownKeys()
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        marker = None
        if parts[0].startswith("@"):
            marker, parts = parts[0], parts[1:]
        if len(parts) < 3 or not _entry_matches(parts[0], name):
            continue
        key = f"{parts[1]} {parts[2]}"
        if marker == "@revoked":
            result.revoked.append(key)
        elif marker is None and key not in result.keys:
            result.keys.append(key)
    return result


def read_known_keys(paths: list[Path], host: str, port: int) -> KnownKeys:
    """`known_keys` over several files (missing ones are skipped)."""
    merged = KnownKeys()
    for path in paths:
        text = _read_text(path)
        if not text:
            continue
        found = known_keys(text, host, port)
        if found.keys or found.revoked:
            merged.sources.append(str(path))
        merged.keys += [k for k in found.keys if k not in merged.keys]
        merged.revoked += found.revoked
    return merged


def public_keys(text: str) -> list[str]:
    """The keys ('type base64') in `text`, one a line: `type base64 [comment]` (a .pub file) or
    `host type base64` (a known_hosts line). Raises ValueError naming the first line that is neither."""
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        found = next((f"{words[i]} {words[i + 1]}" for i in range(min(2, len(words) - 1))
                      if _is_key(words[i], words[i + 1])), None)
        if found is None:
            raise ValueError(f"line {number} is not an SSH public key")
        if found not in keys:
            keys.append(found)
    return keys


def _is_key(kind: str, blob: str) -> bool:
    """Whether `blob` is base64 of an SSH key blob of type `kind` (the blob starts with its type)."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError:
        return False
    size = int.from_bytes(raw[:4], "big")
    return len(raw) > 4 + size and raw[4:4 + size] == kind.encode()


def key_type(key: str) -> str:
    return key.split()[0]


def algorithms_for(types: set[str]) -> list[str]:
    """Host-key algorithms to ask for so the server presents a key of one of `types`."""
    algs: list[str] = []
    for t in sorted(types):
        algs += _ALGS_FOR_TYPE.get(t, [t])
    return algs


@dataclass(frozen=True)
class Verdict:
    """What to do with a presented host key. kind: 'pinned' (lightfold already trusts it),
    'known' (the user's known_hosts does), 'unknown', 'changed' or 'revoked'."""

    kind: str
    where: str = ""  # 'lightfold' or 'user' for changed/revoked
    expected: tuple[str, ...] = ()  # the keys on file of the presented key's type (changed)


def judge(presented: str, lightfold: list[str], user: KnownKeys) -> Verdict:
    """Compare the presented key ('type base64') with what lightfold pinned and what the user's
    known_hosts lists. A different key of the same type in either place is a change, always."""
    presented = " ".join(presented.split()[:2])
    if presented in user.revoked:
        return Verdict("revoked", "user")
    for where, keys in (("lightfold", lightfold), ("user", user.keys)):
        same_type = [k for k in keys if key_type(k) == key_type(presented)]
        if same_type and presented not in same_type:
            return Verdict("changed", where, tuple(same_type))
    if presented in lightfold:
        return Verdict("pinned")
    if presented in user.keys:
        return Verdict("known")
    return Verdict("unknown")


async def server_host_key(host: str, port: int, key_types: set[str] | None = None, timeout: float = 10) -> str:
    """The host key ('type base64') the server at host:port presents; of one of `key_types` when
    given and the server has one (so it can be compared with keys already on file)."""
    import asyncio

    import asyncssh

    from lightfold.errors import LightfoldError
    from lightfold.remote.connection import error_reason

    async def fetch(algs: list[str] | None) -> str | None:
        kwargs = {"server_host_key_algs": algs} if algs else {}
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(host, port, config=None, **kwargs), timeout)
        if key is None:
            return None
        return " ".join(key.export_public_key("openssh").decode().split()[:2])

    try:
        if key_types:
            try:
                found = await fetch(algorithms_for(key_types))
                if found:
                    return found
            except (asyncssh.KeyExchangeFailed, asyncssh.ProtocolError, asyncssh.DisconnectError):
                pass  # the server has no key of those types: take the one it prefers
        found = await fetch(None)
    except (TimeoutError, asyncssh.TimeoutError):
        raise LightfoldError(
            f"cannot reach {host}:{port} (timed out after {timeout:.0f}s)",
            "check the address and port (--ip, --port) and that the server's firewall allows SSH",
        ) from None
    except (OSError, asyncssh.Error) as e:
        raise LightfoldError(
            f"cannot reach {host}:{port} ({error_reason(e)})",
            "check the address and port (--ip, --port) and that the server runs sshd",
        ) from None
    if not found:
        raise LightfoldError(f"{host}:{port} presented no SSH host key", "check that it is an SSH server")
    return found
