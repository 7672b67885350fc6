"""Names lightfold accepts: target names (what is valid, and the default one made from a directory
name) and the one list of providers. Kept apart from config.py (pydantic) so the CLI can check a
name without importing the config models, and from lightfold.providers, whose modules import
the config."""

from __future__ import annotations

import re

CLOUD_PROVIDERS = ("digitalocean", "vultr", "hetzner")  # in the order help texts list them
PROVIDERS = ("local", "byos", *CLOUD_PROVIDERS)
TARGET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}", re.ASCII)  # only through is_target_name (a full match)


def sanitize_target_name(text: str) -> str:
    """A valid target name from a directory name: 'My App_2' -> 'my-app-2'."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:31].strip("-")
    return name or "app"


# --- values that reach a shell, a unit file, an nginx file or a path -------------------------------
# Full-string matches over strict ASCII sets: a value outside them is refused, never escaped, so
# no template has to trust its quoting alone.

PATH_PART = re.compile(r"[A-Za-z0-9._@+][A-Za-z0-9._@+-]*", re.ASCII)  # '..' is refused apart
URL_PATH = re.compile(r"/[A-Za-z0-9._~%+,=:@/-]*(\?[A-Za-z0-9._~%+,=:@/?&-]*)?", re.ASCII)
HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?", re.ASCII)


def is_target_name(value: object) -> bool:
    return isinstance(value, str) and TARGET_NAME.fullmatch(value) is not None


def unsafe_subpath(path: str) -> str | None:
    """Why `path` (relative, '/'-separated) is no safe directory inside a release, or None."""
    if path.startswith("/"):
        return "it is absolute"
    parts = path.split("/")
    if ".." in parts:
        return "it climbs out with '..'"
    bad = next((p for p in parts if not PATH_PART.fullmatch(p)), None)
    if bad is not None:
        return (f"the part {bad!r} holds characters other than letters, digits and . _ - @ +"
                if bad else "it has an empty part ('//' or a trailing '/')")
    return None


def is_url_path(value: object) -> bool:
    """A request path such as /health or /up?full=1 (no space, quote, ';', '$', '{', '#' or control)."""
    return isinstance(value, str) and len(value) <= 1024 and URL_PATH.fullmatch(value) is not None


def is_host(value: object) -> bool:
    """A Host header value: a host name or IPv4 address, with an optional port."""
    return isinstance(value, str) and HOST.fullmatch(value) is not None
