"""The one async HTTP client every cloud provider module talks through (aiohttp).

It owns what the three thin clients share: the bearer token, timeouts, retries with backoff for
429 and 5xx (honouring `Retry-After`, else the `RateLimit-Reset` epoch that Hetzner and
DigitalOcean send), turning failures into one `ProviderError`, and keeping the token out of logs
and exception text. Provider modules only say which paths to call and how to read the bodies.

Which failures are retried, and why:
- 429: always (the provider refused the request, so nothing happened).
- 5xx, timeouts, dropped connections: only for idempotent requests (GET, PUT, DELETE). A POST that
  timed out may have created something; it is reported as `ambiguous` and the caller decides
  (`cloud.ensure_server` looks the server up by its tag before trying again).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from lightfold.errors import LightfoldError
from lightfold.secrets import TOKEN_ENV

log = logging.getLogger("lightfold.providers")

LABELS = {"digitalocean": "DigitalOcean", "vultr": "Vultr", "hetzner": "Hetzner Cloud"}
DEFAULT_BASE_URLS = {
    "digitalocean": "https://api.digitalocean.com/v2",
    "vultr": "https://api.vultr.com/v2",
    "hetzner": "https://api.hetzner.cloud/v1",
}
BASE_URL_ENV = {
    "digitalocean": "LIGHTFOLD_DIGITALOCEAN_API_URL",
    "vultr": "LIGHTFOLD_VULTR_API_URL",
    "hetzner": "LIGHTFOLD_HETZNER_API_URL",
}
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class ProviderError(LightfoldError):
    """A provider API call failed. `status` is the HTTP status (0: no response at all), `code` the
    provider's error id (e.g. 'unauthorized', 'rate_limited', 'timeout'). `ambiguous` is true when
    the request may have been carried out even though it failed (a POST that timed out)."""

    def __init__(
        self,
        provider: str,
        status: int,
        code: str,
        message: str,
        fix: str | None = None,
        *,
        ambiguous: bool = False,
    ):
        self.provider, self.status, self.code, self.message = provider, status, code, message
        self.ambiguous = ambiguous
        label = LABELS.get(provider, provider)
        where = f"HTTP {status}" if status else "no response"
        super().__init__(f"{label} API: {message} ({where}, {code})", fix or _default_fix(provider, status))


def _default_fix(provider: str, status: int) -> str:
    env = TOKEN_ENV.get(provider, "the token")
    if status == 401:
        return f"set {env} to a valid API token (or run `lightfold config set-token {provider}`)"
    if status == 403:
        return f"give the token in {env} read and write access"
    if status == 429:
        return "wait a minute and run the command again"
    if status >= 500 or status == 0:
        return f"{LABELS.get(provider, provider)} may be having trouble; run the command again in a minute"
    return "check the values you passed; `lightfold create --help` lists the options"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in total for a retryable failure
    backoff: float = 1.0  # first wait; doubles each time (with jitter)
    max_delay: float = 30.0  # cap on any single wait; a longer Retry-After is reported, not waited out
    timeout: float = 30.0  # seconds for one whole request


def base_url(provider: str) -> str:
    return os.environ.get(BASE_URL_ENV[provider]) or DEFAULT_BASE_URLS[provider]


# What a provider module supplies: turn (status, parsed body) into (code, message).
ErrorReader = Callable[[int, Any], tuple[str, str]]


class ApiClient:
    """`async with ApiClient(...) as api: await api.get("/servers")`. Bodies are parsed JSON."""

    def __init__(
        self,
        provider: str,
        token: str,
        read_error: ErrorReader,
        *,
        base: str | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ):
        self.provider = provider
        self.base = (base or base_url(provider)).rstrip("/")
        self.retry = retry or RetryPolicy()
        self._token = token
        self._read_error = read_error
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback's locals
        return f"ApiClient({self.provider!r}, base={self.base!r})"

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.retry.timeout),
            )
        return self._session

    async def get(self, path: str, params: dict | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: dict) -> Any:
        return await self.request("POST", path, json=body)

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Returns the parsed body (None for an empty one). A path may also be a full URL (the
        'next page' links some providers return) as long as it is under the base URL."""
        if "://" in path and not path.startswith(self.base + "/"):
            # A link pointing elsewhere must not receive the token.
            raise ProviderError(self.provider, 0, "bad_link", f"the API returned a link outside {self.base}")
        url = path if "://" in path else self.base + path
        safe = method in IDEMPOTENT if idempotent is None else idempotent
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                async with self._open().request(method, url, params=_clean(params), json=json) as resp:
                    body = await _body(resp)
                    log.debug("%s %s -> %s (%.2fs)", method, _path(url), resp.status, time.monotonic() - started)
                    if resp.status < 400:
                        return body
                    err = self._error(resp.status, body)
                    retryable = resp.status == 429 or (resp.status >= 500 and safe)
                    if resp.status >= 500 and not safe:
                        err.ambiguous = True
                    if not retryable or attempt >= self.retry.attempts:
                        raise err
                    delay = self._delay(attempt, resp.status, resp.headers)
                    if delay is None:
                        raise err
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
                kind = "timeout" if isinstance(e, TimeoutError) else "connection_error"
                log.debug("%s %s -> %s after %.2fs", method, _path(url), kind, time.monotonic() - started)
                # No connection at all means the request never left: safe to repeat, whatever it was.
                unsent = isinstance(e, aiohttp.ClientConnectorError)
                what = (
                    f"no answer within {self.retry.timeout:g}s" if kind == "timeout"
                    else f"could not connect to {_origin(url)}" if unsent
                    else f"the connection broke ({type(e).__name__})"
                )
                err = ProviderError(self.provider, 0, kind, f"{method} {_path(url)}: {what}",
                                    ambiguous=not (safe or unsent))
                if not (safe or unsent) or attempt >= self.retry.attempts:
                    raise err from None
                delay = self._backoff(attempt)
            log.debug("retrying %s %s in %.2fs (attempt %d of %d)", method, _path(url), delay, attempt + 1,
                      self.retry.attempts)
            await self._sleep(delay)

    def _error(self, status: int, body: Any) -> ProviderError:
        code, message = self._read_error(status, body)
        # A provider might echo what it was sent; the token must never reach a message.
        message = message.replace(self._token, "********") if self._token else message
        fix = None
        if status == 429:
            fix = "the provider is rate limiting this token; wait a minute and run the command again"
        return ProviderError(self.provider, status, code, message, fix)

    def _backoff(self, attempt: int) -> float:
        base = self.retry.backoff * (2 ** (attempt - 1))
        return min(self.retry.max_delay, base * (0.5 + random.random() / 2) if base else 0.0)

    def _delay(self, attempt: int, status: int, headers: Any) -> float | None:
        """How long to wait before the next try; None when the provider asks for longer than we
        are willing to wait (the caller then reports the error instead of hanging).

        `Retry-After` is obeyed exactly. Without it, a 429's `RateLimit-Reset` only shortens our
        own backoff: Hetzner's is when the bucket is *full* again (an hour away at worst) while
        one more request is allowed a second later."""
        asked = retry_after(headers)
        if asked is not None:
            return None if asked > self.retry.max_delay else asked
        backoff = self._backoff(attempt)
        reset = rate_limit_reset(headers) if status == 429 else None
        return backoff if reset is None else min(backoff, reset)


def retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks us to wait (given in seconds or as an HTTP date)."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def rate_limit_reset(headers: Any, now: float | None = None) -> float | None:
    """Seconds until the `RateLimit-Reset` Unix time that Hetzner and DigitalOcean send."""
    value = (headers.get("RateLimit-Reset") or "").strip()
    if not value.isdigit():
        return None
    return max(0.0, float(value) - (time.time() if now is None else now))


async def _body(resp: aiohttp.ClientResponse) -> Any:
    text = await resp.text()
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"_text": text[:500]}


def _clean(params: dict | None) -> dict | None:
    if not params:
        return None
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items() if v is not None}


def _origin(url: str) -> str:
    return url.split("?", 1)[0].split("/", 3)[2] if "://" in url else url


def _path(url: str) -> str:
    """The path of a URL without its query: enough to say what failed, never any secret."""
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0] if "://" in url else url


async def missing_ok(call: Any) -> Any:
    """Await a request; a 404 (the thing is already gone / does not exist) gives None."""
    try:
        return await call
    except ProviderError as e:
        if e.status == 404:
            return None
        raise
