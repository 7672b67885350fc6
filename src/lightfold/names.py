"""Names lightfold accepts: target names (what is valid, and the default one made from a directory
name) and the one list of providers. Kept apart from config.py (pydantic) so the CLI can check a
name without importing the config models, and from lightfold.providers, whose modules import
the config."""

from __future__ import annotations

import re

CLOUD_PROVIDERS = ("digitalocean", "vultr", "hetzner")  # in the order help texts list them
PROVIDERS = ("local", "byos", *CLOUD_PROVIDERS)
TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def sanitize_target_name(text: str) -> str:
    """A valid target name from a directory name: 'My App_2' -> 'my-app-2'."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:31].strip("-")
    return name or "app"
