"""What the three fake cloud APIs share: an aiohttp.web app with stateful servers whose machines
come from a pluggable VM backend, auth, pagination helpers, rate limits, injectable faults, and
two ways to run (in-process on 127.0.0.1:<random port> in a background thread, or standalone).

The VM backend decides what "a server boots" means: `LoopbackBackend` hands out 127.0.0.x and
boots nothing (client unit tests); the e2e wiring plugs in one that boots a sandbox machine.

Control endpoints (no auth, never rate limited or faulted):
  POST /__fault {"status": 429|500|…, "count": N, "retry_after": S}  next N API requests fail so
       (optional "method": "POST", "path": "/v1/servers": only requests matching both count;
       a 5xx so answered was refused before the handler ran: nothing was created)
  POST /__fault {"timeout_after_create": true, "hang": S}  next create makes the server, then
       holds the answer for S seconds (default 60), past the client's timeout
  POST /__move {"id": SERVER_ID}  the server changes its public IPv4 (as after a provider-side
       migration or a released primary IP): the VM backend boots a new machine from the server's
       user data (same authorized keys, new address; the host key on the old machine's disk is
       carried over, as a real disk is — lightfold replaces the user-data key after its first
       login — but other disk contents are NOT), the old machine is removed, and the API reports
       the new address.
       Answers {"id", "old_ip", "ip"} once the new machine is up.
  GET  /__state  {"servers": [...], "ssh_keys": [...], "load_balancers": [...], "requests": N}

Load balancers (`lightfold scale`): a fake load balancer really carries traffic. Its create
starts a machine from the VM backend (`start_balancer`) running HAProxy configured from the load
balancer's targets and health check through the repo's own HAProxy plan
(lightfold.server.haproxy); the API reports that machine's address as the load balancer's, and it
turns active only once HAProxy runs. Changing the targets re-renders and reloads that HAProxy
(graceful: requests in flight finish) before the API answers. The backends' health the API
reports is HAProxy's own check, read on its stats socket. Private networks hold the sandbox
addresses: a server's private address is its machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import json
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web


class VmBackend(Protocol):
    def boot(self, name: str, user_data: str | None, image: str | None = None) -> str:
        """Start a machine for a new server; returns its IPv4. May block (run in a thread).
        `image`: the OS the server was created with, as the provider names it ('debian-12',
        'Debian 13 x64 (trixie)')."""

    def destroy(self, name: str) -> None:
        """Remove the machine; a name that was never booted is fine."""

    # Optional: `host_key(name) -> (private, public) | None`, the host key on the machine's disk
    # now, which a move carries over (as a real provider's disk does).

    # Load balancers: a machine running HAProxy for each.
    def start_balancer(self, name: str) -> str:
        """Start the load balancer's machine; its IPv4."""

    def configure_balancer(self, name: str, backends: list[tuple[str, str]], health_path: str,
                           health_host: str | None) -> None:
        """HAProxy on :80 to `backends` ((name, address) on :80), checked on `health_path`."""

    def balancer_health(self, name: str) -> dict[str, bool]:
        """Backend name -> UP, as HAProxy's checks see it."""

    def destroy_balancer(self, name: str) -> None: ...

    # The private address range of the machines (what a fake VPC reports as its range).
    private_range: str


def with_host_key(user_data: str, private: str, public: str) -> str:
    """lightfold's #cloud-config with another host key (the one a moved server's disk holds)."""
    from lightfold.providers.cloud import read_user_data

    config = read_user_data(user_data)
    config["ssh_keys"] = {"ed25519_private": private, "ed25519_public": public}
    return "#cloud-config\n" + json.dumps(config, indent=1) + "\n"


class LoopbackBackend:
    """127.0.0.x addresses, one per server, and nothing booted (a load balancer records its
    configuration and reports every backend healthy)."""

    private_range = "127.0.0.0/8"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free = iter(range(2, 255))
        self.machines: dict[str, dict[str, Any]] = {}
        self.balancers: dict[str, dict[str, Any]] = {}

    def start_balancer(self, name: str) -> str:
        with self._lock:
            ip = f"127.0.1.{next(self._free)}"
            self.balancers[name] = {"ip": ip, "backends": [], "health_path": None, "health_host": None}
            return ip

    def configure_balancer(self, name: str, backends: list[tuple[str, str]], health_path: str,
                           health_host: str | None) -> None:
        with self._lock:
            self.balancers[name].update(backends=list(backends), health_path=health_path, health_host=health_host)

    def balancer_health(self, name: str) -> dict[str, bool]:
        return {b: True for b, _ip in self.balancers.get(name, {}).get("backends", [])}

    def destroy_balancer(self, name: str) -> None:
        with self._lock:
            self.balancers.pop(name, None)

    def boot(self, name: str, user_data: str | None, image: str | None = None) -> str:
        with self._lock:
            if name in self.machines:
                raise RuntimeError(f"machine {name} already exists")
            ip = f"127.0.0.{next(self._free)}"
            self.machines[name] = {"ip": ip, "user_data": user_data, "image": image}
            return ip

    def destroy(self, name: str) -> None:
        with self._lock:
            self.machines.pop(name, None)


class Invalid(Exception):
    """A request that breaks the documented schema; answered with the provider's 4xx shape."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def check_fields(body: Any, schema: dict[str, tuple[Any, bool]]) -> dict:
    """schema: field -> (type check, required). Type checks: a type, a tuple of types, or
    ('list', item types) / ('map', value types). Raises Invalid naming the first bad field."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    for field, (kind, required) in schema.items():
        if field not in body or body[field] is None:
            if required:
                raise Invalid(f"missing required field '{field}'", field)
            continue
        if not _matches(body[field], kind):
            raise Invalid(f"field '{field}' has the wrong type", field)
    return body


def _matches(value: Any, kind: Any) -> bool:
    if isinstance(kind, tuple) and kind and kind[0] == "list":
        return isinstance(value, list) and all(_matches(v, kind[1]) for v in value)
    if isinstance(kind, tuple) and kind and kind[0] == "map":
        return isinstance(value, dict) and all(isinstance(k, str) and _matches(v, kind[1]) for k, v in value.items())
    if isinstance(value, bool) and (kind is int or (isinstance(kind, tuple) and int in kind)):
        return False  # JSON true is not a number
    return isinstance(value, kind)


class FakeCloud:
    """Subclasses define `provider`, `prefix`, `error()`, `routes()` and the record shapes."""

    provider = ""
    prefix = ""  # "/v1" or "/v2": the base URL is http://127.0.0.1:<port><prefix>
    default_per_page = 25
    max_per_page = 50

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] = ("good-token",),
        boot_delay: float = 0.2,
        vm_backend: VmBackend | None = None,
        max_per_page: int | None = None,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
        destroy_on_exit: bool = True,
    ):
        self.tokens = set(tokens)
        self.boot_delay = boot_delay
        self.vm = vm_backend or LoopbackBackend()
        if max_per_page:
            self.max_per_page = max_per_page
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self.destroy_on_exit = destroy_on_exit
        self.servers: dict[str, dict] = {}
        self.ssh_keys: dict[str, dict] = {}
        self.balancers: dict[str, dict] = {}
        self.networks: dict[str, dict] = {}
        self.certificates: dict[str, dict] = {}
        self._balancer_locks: dict[str, asyncio.Lock] = {}
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1000)
        self._faults: deque[dict] = deque()
        self._hang_next_create: float | None = None
        self._moves = 0  # /__move calls so far: names each moved server's new machine
        self._recent: deque[float] = deque()
        self._tasks: set[asyncio.Task] = set()
        self._booting: dict[str, str] = {}  # server id -> machine name, while boot runs
        self._destroying: dict[str, asyncio.Task] = {}  # machine name -> its destroy, while it runs
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- per provider

    def error(self, status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
        raise NotImplementedError

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def mark_running(self, server: dict, ip: str) -> None:
        raise NotImplementedError

    def mark_failed(self, server: dict, reason: str) -> None:
        raise NotImplementedError

    def rate_headers(self) -> dict[str, str]:
        return {}

    # ---- app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        app.add_routes([
            web.post("/__fault", self._fault),
            web.get("/__state", self._state),
            web.post("/__move", self._move),
            *self.routes(),
        ])
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path.startswith("/__"):
            return await handler(request)
        self.requests.append((request.method, request.path))
        fault = next((f for f in self._faults if f.get("method") in (None, request.method)
                      and f.get("path") in (None, request.path)), None)
        if fault is not None:
            fault["count"] -= 1
            if fault["count"] <= 0:
                self._faults.remove(fault)
            headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
            status = fault["status"]
            return self.error(status, *self.fault_words(status), headers=headers | self.rate_headers())
        if self.rate_limit is not None:
            now = time.monotonic()
            while self._recent and self._recent[0] <= now - self.rate_window:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit:
                wait = max(1, int(self._recent[0] + self.rate_window - now + 0.999))
                return self.error(429, *self.fault_words(429), headers={"Retry-After": str(wait)} | self.rate_headers())
            self._recent.append(now)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return self.error(401, *self.fault_words(401))
        try:
            resp = await handler(request)
        except Invalid as e:
            return self.invalid(e)
        except web.HTTPNotFound:
            return self.error(404, *self.fault_words(404))
        for k, v in self.rate_headers().items():
            resp.headers.setdefault(k, v)
        return resp

    def fault_words(self, status: int) -> tuple[str, str]:
        """(code, message) the provider uses for a status."""
        return {
            401: ("unauthorized", "Unable to authenticate you"),
            404: ("not_found", "The resource you were accessing could not be found."),
            429: ("rate_limit_exceeded", "Rate limit exceeded"),
        }.get(status, ("server_error", "Unexpected server-side error"))

    def invalid(self, e: Invalid) -> web.Response:
        return self.error(422, "unprocessable_entity", e.message)

    async def _fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("timeout_after_create"):
            self._hang_next_create = float(body.get("hang", 60))
        if "status" in body:
            self._faults.append({"status": int(body["status"]), "count": int(body.get("count", 1)),
                                 "retry_after": body.get("retry_after"), "method": body.get("method"),
                                 "path": body.get("path")})
        return web.json_response({"ok": True})

    def server_ip(self, server: dict) -> str | None:
        """The public IPv4 the API reports for a stored server (per provider)."""
        raise NotImplementedError

    async def _move(self, request: web.Request) -> web.Response:
        body = await request.json()
        server = self.servers.get(str(body.get("id")))
        if server is None or not server.get("_machine"):
            return web.json_response({"error": "no running server with that id"}, status=404)
        old_name, old_ip = server["_machine"], self.server_ip(server)
        self._moves += 1
        new_name = f"{old_name[:20]}-mv{self._moves}"
        loop = asyncio.get_running_loop()
        # The new machine boots while the old still holds its address, so the address differs.
        user_data = server.get("_user_data")
        disk_key = getattr(self.vm, "host_key", None)
        carried = await loop.run_in_executor(None, disk_key, old_name) if disk_key else None
        if carried and user_data:
            user_data = with_host_key(user_data, *carried)
        ip = await loop.run_in_executor(None, self.vm.boot, new_name, user_data, server.get("_os"))
        server["_machine"] = new_name
        self.mark_running(server, ip)
        await loop.run_in_executor(None, self.vm.destroy, old_name)
        return web.json_response({"id": str(body["id"]), "old_ip": old_ip, "ip": ip})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response({"servers": [self.public(s) for s in self.servers.values()],
                                  "ssh_keys": list(self.ssh_keys.values()),
                                  "load_balancers": [self.public(b) for b in self.balancers.values()],
                                  "requests": len(self.requests)})

    async def _on_startup(self, app: web.Application) -> None:
        self._stopping = asyncio.Event()

    async def _on_cleanup(self, app: web.Application) -> None:
        if self._stopping:
            self._stopping.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.destroy_on_exit:
            names = [s["_machine"] for s in self.servers.values() if s.get("_machine")] + list(self._booting.values())
            for name in names:
                with contextlib.suppress(Exception):
                    await asyncio.get_running_loop().run_in_executor(None, self.vm.destroy, name)
            for balancer in self.balancers.values():
                if balancer.get("_machine"):
                    with contextlib.suppress(Exception):
                        await asyncio.get_running_loop().run_in_executor(None, self.vm.destroy_balancer,
                                                                         balancer["_machine"])

    # ---- helpers for handlers

    def new_id(self) -> int:
        return next(self._ids)

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def maybe_hang(self) -> None:
        """After a create: hold the answer when a timeout_after_create fault is armed."""
        if self._hang_next_create is not None:
            hang, self._hang_next_create = self._hang_next_create, None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), hang)

    def boot_later(self, server: dict, name: str, user_data: str | None, on_done: Callable | None = None,
                   image: str | None = None) -> None:
        """The server's machine boots after `boot_delay` (on `image`, the provider's name for its
        OS; a move boots the same); then it is marked running with its IP."""
        sid = str(server["id"])
        server["_os"] = image

        async def run() -> None:
            await asyncio.sleep(self.boot_delay)
            if sid not in self.servers:  # deleted before it booted
                return
            pending = self._destroying.get(name)
            if pending is not None:  # a deleted server of the same name is still going away
                await asyncio.wait({pending})
            self._booting[sid] = name
            try:
                ip = await asyncio.get_running_loop().run_in_executor(None, self.vm.boot, name, user_data, image)
            except Exception as e:
                self._booting.pop(sid, None)
                # The provider's API says only "off": the reason goes to the test's captured stderr.
                print(f"fake {type(self).__name__}: server {sid} ({name}) boot failed: {e}", file=sys.stderr,
                      flush=True)
                self.mark_failed(server, f"boot failed: {e}")
                if on_done:
                    on_done(False)
                return
            self._booting.pop(sid, None)
            if sid not in self.servers:  # deleted while booting
                await asyncio.get_running_loop().run_in_executor(None, self.vm.destroy, name)
                return
            server["_machine"] = name
            self.mark_running(server, ip)
            if on_done:
                on_done(True)

        self.spawn(run())

    def destroy_later(self, server: dict, on_done: Callable | None = None) -> None:
        name = server.get("_machine")

        async def run() -> None:
            try:
                if name:
                    await asyncio.get_running_loop().run_in_executor(None, self.vm.destroy, name)
            finally:
                if name and self._destroying.get(name) is task:
                    del self._destroying[name]
            if on_done:
                on_done()

        task = self.spawn(run())
        if name:
            self._destroying[name] = task

    # ---- load balancers: per provider, what a record's targets and health check are

    def balancer_backends(self, balancer: dict) -> list[tuple[str, str]]:
        """(backend name, private address) of each of the balancer's targets that has booted."""
        raise NotImplementedError

    def balancer_check(self, balancer: dict) -> tuple[str, str | None]:
        """(health path, Host header) of the balancer's health check."""
        raise NotImplementedError

    def balancer_running(self, balancer: dict, ip: str) -> None:
        """The record once its HAProxy runs at `ip` (status, addresses)."""
        raise NotImplementedError

    def balancer_failed(self, balancer: dict) -> None:
        """The record when its machine did not start (a provider with an action marks that instead)."""

    @property
    def private_range(self) -> str:
        """The range a fake private network reports: the VM backend's machines' (a backend that
        does not say: a documentation range)."""
        return getattr(self.vm, "private_range", "10.0.0.0/8")

    def balancer_up_later(self, balancer: dict, on_done: Callable | None = None) -> None:
        """The balancer's machine starts after `boot_delay`, HAProxy is configured from its
        targets, then the record turns active with the machine's address."""
        bid = str(balancer["id"])
        machine = f"lb{bid[:12]}"

        async def run() -> None:
            await asyncio.sleep(self.boot_delay)
            loop = asyncio.get_running_loop()
            try:
                ip = await loop.run_in_executor(None, self.vm.start_balancer, machine)
                balancer["_machine"], balancer["_ip"] = machine, ip
                if bid not in self.balancers:  # deleted while starting
                    await loop.run_in_executor(None, self.vm.destroy_balancer, machine)
                    return
                await self.apply_balancer(balancer)
            except Exception as e:
                balancer["_error"] = f"start failed: {e}"
                print(f"fake {self.provider}: load balancer {bid}: {balancer['_error']}", file=sys.stderr)
                self.balancer_failed(balancer)
                if on_done:
                    on_done(False)
                return
            self.balancer_running(balancer, ip)
            if on_done:
                on_done(True)

        self.spawn(run())

    async def apply_balancer(self, balancer: dict) -> None:
        """HAProxy on the balancer's machine gets the record's targets now (one change at a time)."""
        if not balancer.get("_machine"):
            return  # still starting: it is configured from the record once up
        lock = self._balancer_locks.setdefault(str(balancer["id"]), asyncio.Lock())
        async with lock:
            path, host = self.balancer_check(balancer)
            await asyncio.get_running_loop().run_in_executor(
                None, self.vm.configure_balancer, balancer["_machine"], self.balancer_backends(balancer), path, host)

    async def balancer_health(self, balancer: dict) -> dict[str, bool]:
        if not balancer.get("_machine"):
            return {}
        return await asyncio.get_running_loop().run_in_executor(None, self.vm.balancer_health, balancer["_machine"])

    def destroy_balancer_later(self, balancer: dict, on_done: Callable | None = None) -> None:
        machine = balancer.get("_machine")

        async def run() -> None:
            if machine:
                await asyncio.get_running_loop().run_in_executor(None, self.vm.destroy_balancer, machine)
            if on_done:
                on_done()

        self.spawn(run())

    def page_bounds(self, request: web.Request) -> tuple[int, int]:
        """(page, per_page) from the query, clamped like the provider does."""
        try:
            page = max(1, int(request.query.get("page", 1)))
            per_page = int(request.query.get("per_page", self.default_per_page))
        except ValueError as e:
            raise Invalid("page and per_page must be integers", "per_page") from e
        return page, max(1, min(per_page, self.max_per_page))

    @staticmethod
    def public(record: dict) -> dict:
        """A stored record without the fake's private keys (those starting with '_')."""
        return {k: v for k, v in record.items() if not k.startswith("_")}

    # ---- running

    def start(self) -> str:
        """Serve on 127.0.0.1:<random port> in a background thread; returns the API base URL."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self.app(), shutdown_timeout=1.0)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                loop.run_until_complete(site.start())
                port = self._runner.addresses[0][1]
                self.base_url = f"http://127.0.0.1:{port}{self.prefix}"
            except BaseException as e:
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=f"fake-{self.provider}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self.base_url

    def stop(self) -> None:
        if self._loop and self._thread:
            if self._stopping is not None:  # release held answers first, so shutdown need not wait
                self._loop.call_soon_threadsafe(self._stopping.set)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FakeCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the fake's loop (to inspect or change state from a test thread safely)."""
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)


def load_backend(spec: str | None) -> VmBackend:
    """'module:factory' -> factory(); None -> LoopbackBackend()."""
    if not spec:
        return LoopbackBackend()
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "backend")()


def main(cls: type[FakeCloud], argv: list[str] | None = None) -> None:
    """`python -m tests.fakes.<provider> --port N`: serve until SIGINT/SIGTERM. Prints the base
    URL (for LIGHTFOLD_<PROVIDER>_API_URL) on the first line of stdout once listening."""
    p = argparse.ArgumentParser(prog=f"python -m tests.fakes.{cls.provider}")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: pick a free port")
    p.add_argument("--token", action="append", help="accepted API token (repeatable; default 'good-token')")
    p.add_argument("--boot-delay", type=float, default=1.0, help="seconds before a new server starts booting")
    p.add_argument("--max-per-page", type=int, default=None)
    p.add_argument("--rate-limit", type=int, default=None, help="requests per --rate-window seconds")
    p.add_argument("--rate-window", type=float, default=1.0)
    p.add_argument("--vm-backend", default=None, help="module:factory returning an object with boot/destroy")
    args = p.parse_args(argv)
    fake = cls(
        tokens=tuple(args.token or ["good-token"]), boot_delay=args.boot_delay,
        vm_backend=load_backend(args.vm_backend), max_per_page=args.max_per_page,
        rate_limit=args.rate_limit, rate_window=args.rate_window,
    )

    async def serve() -> None:
        runner = web.AppRunner(fake.app(), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        port = runner.addresses[0][1]
        fake.base_url = f"http://{args.host}:{port}{fake.prefix}"
        print(fake.base_url, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        if fake._stopping is not None:
            fake._stopping.set()
        await runner.cleanup()

    asyncio.run(serve())
    sys.exit(0)
