"""Provider API tokens: the provider's own env var, then the keyring (when installed and working),
then ~/.lightfold/tokens.json (0600). Tokens are never printed: use `redact()` for display."""

from __future__ import annotations

import os
from pathlib import Path

from lightfold import store
from lightfold.errors import LightfoldError

TOKEN_ENV = {
    "digitalocean": "DIGITALOCEAN_TOKEN",
    "vultr": "VULTR_API_KEY",
    "hetzner": "HCLOUD_TOKEN",
}
_KEYRING_SERVICE = "lightfold"


def tokens_path() -> Path:
    return store.home() / "tokens.json"


def _check_provider(provider: str) -> None:
    if provider not in TOKEN_ENV:
        raise LightfoldError(
            f"'{provider}' has no API token", f"use one of: {', '.join(TOKEN_ENV)}"
        )


def _keyring():
    """The keyring module if it is installed and has a real backend, else None."""
    if os.environ.get("LIGHTFOLD_NO_KEYRING"):
        return None
    try:
        import keyring
        from keyring.backends import fail
    except Exception:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:
        return None
    # A headless box usually has only the "fail" backend (or a chainer of nothing): unusable.
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    return keyring


def _file_tokens() -> dict[str, str]:
    raw = store.read_json(tokens_path())
    if raw is None:
        return {}
    tokens = raw.get("tokens") if isinstance(raw, dict) else None
    if not isinstance(tokens, dict) or not all(isinstance(v, str) for v in tokens.values()):
        raise LightfoldError(f"{tokens_path()}: key 'tokens' must map providers to strings", "fix or remove the file")
    return tokens


def get_token(provider: str) -> tuple[str | None, str]:
    """(token, where it came from). Source is 'env:NAME', 'keyring', 'file' or 'none'."""
    _check_provider(provider)
    env = TOKEN_ENV[provider]
    if os.environ.get(env):
        return os.environ[env], f"env:{env}"
    kr = _keyring()
    if kr is not None:
        try:
            value = kr.get_password(_KEYRING_SERVICE, provider)
        except Exception:
            value = None
        if value:
            return value, "keyring"
    value = _file_tokens().get(provider)
    return (value, "file") if value else (None, "none")


def set_token(provider: str, token: str) -> str:
    """Store a token; returns where it went ('keyring' or the file path)."""
    _check_provider(provider)
    token = token.strip()
    if not token:
        raise LightfoldError("the token is empty", "paste the API token from the provider's console")
    kr = _keyring()
    if kr is not None:
        try:
            kr.set_password(_KEYRING_SERVICE, provider, token)
            return "keyring"
        except Exception:
            pass
    with store.lock(tokens_path()):
        tokens = _file_tokens()
        tokens[provider] = token
        store.write_json(tokens_path(), {"version": 1, "tokens": tokens}, mode=store.PRIVATE)
    return str(tokens_path())


def unset_token(provider: str) -> bool:
    _check_provider(provider)
    removed = False
    kr = _keyring()
    if kr is not None:
        try:
            kr.delete_password(_KEYRING_SERVICE, provider)
            removed = True
        except Exception:
            pass
    with store.lock(tokens_path()):
        tokens = _file_tokens()
        if provider in tokens:
            del tokens[provider]
            store.write_json(tokens_path(), {"version": 1, "tokens": tokens}, mode=store.PRIVATE)
            removed = True
    return removed


def redact(value: str | None) -> str:
    """Shows that a secret is set without showing it."""
    if not value:
        return ""
    return "********"
