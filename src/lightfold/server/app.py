"""One app on a server: its user, directories, systemd template unit, app.json and ports.

Every path comes from lightfold.agent.layout (`Layout(app)`); what configure makes there (for app
`shop`, run as `lf-shop`, built as `lfb-shop`):
    home                    root 0755     the user's home (read-only for the app)
    releases                root:lfb-shop 1775   one dir per release (the archive, its deps, its
                                          build): the build user's while it builds, root's once
                                          built; sticky, so the build user can't rename a sealed one
    slots                   root          `blue`, `green` -> releases/<id> (the agent owns the links)
    env, run                root 0700     env snapshots / per-slot EnvironmentFile (secrets)
    .lightfold              root          the agent's journal
    deps                    root:lfb-shop 1775   python venvs per lockfile hash (venvs are not
                                          relocatable), root's once built
    build-cache             lfb-shop 0700 HOME during builds (npm/pip/bundler caches)
    cache                   lf-shop 0700  the app's HOME at run time
    storage                 lf-shop 0750  persistent dirs (the build links <app_root>/<dir> to them)
    app.json                              what the agent needs to know about the app
    the template unit                     instances @blue and @green
    the proc and cron templates           instances @<name>-<n> and @<job> (non-static apps)

Immutable releases: a release, and the dependencies it uses, are written only by the build user
while it is built (never by root's commands, never by the app user), then sealed: root's, with
no group or other write bit and no set-id bit. So neither a compromised app nor a later build (a
hostile dependency's install script runs as the build user) can change the live release, an older
release it could be rolled back to, or the shared node_modules / venvs. The app writes its storage
dirs, its cache (HOME) and its private /tmp. A server configured by an earlier version (releases
owned by the app or the build user) is converted by the next configure (`immutable_releases_action`,
idempotent).

`AppSpec` is the input every configure plan builds from; `AppSpec.from_target()` makes it from a
target's config and a detection result.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lightfold.agent import layout
from lightfold.agent.health import ANY_OK
from lightfold.agent.layout import Layout
from lightfold.errors import LightfoldError
from lightfold.names import unsafe_subpath
from lightfold.server.plan import EnsureDir, EnsureUser, Run, Step, SystemdReload, WriteFile

PORT_BASE = 8000
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[?[0-9A-Fa-f:]{2,39}\]?")
HEALTH_TIMEOUT = 60  # seconds a new release has to become healthy, unless the target or project says


@dataclass(frozen=True)
class AppSpec:
    """Everything configure needs to know about one app.

    detection: a `lightfold.detect.Detection` (read by attribute: runtime, framework, static, ...).
    deploy: the target's `DeployConfig`. ports: (blue, green), see `pick_ports`.
    default_server: make this site nginx's default (only when it has no domain and is alone).
    app_subdir: the app's directory inside the release archive when the archive holds more than
    the app (a monorepo's workspace root: the detection's `app_subdir`); default '.'.
    tls: serve HTTPS with the certificate at /etc/letsencrypt/live/<domain>/ (obtain it first,
    e.g. `certbot certonly --webroot -w /var/www/lightfold-acme -d <domain>`).
    ip: the server's address (the app's name for itself when it has no domain: `hosts`).
    http2_directive: the server's nginx takes `http2 on;` (1.25.1+, e.g. Debian 13's 1.26), which
    replaces `listen ... http2` (deprecated there, warned about at every reload); older ones (Debian
    12's 1.22) know only the `listen` form.
    """

    name: str
    detection: Any
    deploy: Any
    ports: tuple[int, int]
    domain: str | None = None
    default_server: bool = False
    tls: bool = False
    app_subdir: str | None = None
    ip: str | None = None
    http2_directive: bool = False
    # False on the app servers of a target on more than one server that are not its primary: the
    # cron jobs run on exactly one server (the agent reads app.json's "cron").
    cron: bool = True

    def __post_init__(self) -> None:
        check_app_name(self.name)
        if self.tls and not self.domain:
            raise LightfoldError(f"app {self.name}: HTTPS needs a domain", "set one with `lightfold domain add`")

    @classmethod
    def from_target(
        cls, name: str, target: Any, detection: Any, ports: tuple[int, int], *,
        default_server: bool = False, tls: bool = False, app_subdir: str | None = None, ip: str | None = None,
        http2_directive: bool = False, cron: bool = True,
    ) -> AppSpec:
        """From a `TargetConfig` (its deploy settings and domain) and a detection."""
        domain = target.domain.domain if target.domain else None
        return cls(name, detection, target.deploy, tuple(ports), domain, default_server, tls, app_subdir, ip,
                   http2_directive, cron)

    @property
    def hosts(self) -> str:
        """The names the app is reached by (its domain, else the server's address), as the unit's
        LIGHTFOLD_HOSTS gives them to the app (lightfold.server.django_settings); '' when unknown."""
        host = self.domain or self.ip or ""
        if not _HOST_NAME.fullmatch(host):
            return ""
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    @property
    def user(self) -> str:
        return app_user(self.name)

    @property
    def layout(self) -> Layout:
        return Layout(self.name)

    @property
    def home(self) -> str:
        return self.layout.home

    @property
    def static(self) -> bool:
        return bool(getattr(self.detection, "static", False))

    @property
    def app_root(self) -> str:
        """The app's directory inside a release ('.' or e.g. 'apps/web')."""
        return app_root_of(self.detection, self.app_subdir)

    @property
    def output_path(self) -> str | None:
        """The static output dir relative to the release root (app_root/output_dir)."""
        out = getattr(self.detection, "output_dir", None)
        if not self.static:
            return None
        return release_subpath(posixpath.join(self.app_root, out or "."),
                               "the static output directory (from the project's build config)")


def check_app_name(name: str) -> None:
    if not layout.is_app_name(name):
        raise LightfoldError(
            f"'{name}' is not a valid app name", "use lowercase letters, digits and '-' (a target name)"
        )


def app_root_of(detection: Any, app_subdir: str | None = None) -> str:
    """The app's directory inside a release: `app_subdir` if given, else the detection's
    `app_root` when it is relative (lightfold.detect gives the laptop's absolute path, which is the
    archive root: '.')."""
    root = app_subdir if app_subdir is not None else getattr(detection, "app_root", None)
    if not root or str(root).startswith("/"):
        return "."
    return release_subpath(str(root), "the app's directory in the workspace")


def release_subpath(path: str, what: str = "the app's directory") -> str:
    """A normalised path inside a release ('.' for the root). It ends up in nginx's `root`, in unit
    files and in shell commands, so anything but plain directory names is refused (escapes like
    '../x', ';', quotes, spaces, newlines), naming `what` it is."""
    norm = posixpath.normpath(path or ".")
    why = unsafe_subpath(norm)
    if why:
        raise LightfoldError(f"{what} {path!r} is not a safe directory inside the project: {why}",
                             "use a plain relative directory such as dist or build/public (in the project's "
                             "build config), or set the output directory of the build to one")
    return norm


def app_user(app: str) -> str:
    """`lf-<app>`; Linux user names stop at 32 characters, so long names get a hash suffix."""
    user = f"lf-{app}"
    if len(user) <= 32:
        return user
    return f"lf-{app[:20]}-{hashlib.sha256(app.encode()).hexdigest()[:8]}"


def build_user(app: str) -> str:
    """`lfb-<app>`: who builds the app's releases (owns them; the app only reads them). Long names
    get a hash suffix, like `app_user`."""
    user = f"lfb-{app}"
    if len(user) <= 32:
        return user
    return f"lfb-{app[:19]}-{hashlib.sha256(app.encode()).hexdigest()[:8]}"


def pick_ports(used: Iterable[int], base: int = PORT_BASE) -> tuple[int, int]:
    """The first pair (base, base+1), (base+2, base+3), ... with neither port in `used`."""
    taken = set(used)
    port = base
    while port in taken or port + 1 in taken:
        port += 2
    if port + 1 > 65535:
        raise LightfoldError("no free pair of ports left for another app", "remove an app from this server")
    return port, port + 1


def ports_in_use(app_jsons: Mapping[str, Mapping[str, Any]], except_app: str | None = None) -> set[int]:
    """Ports of other apps, from their app.json documents keyed by app name."""
    used: set[int] = set()
    for name, doc in app_jsons.items():
        if name == except_app:
            continue
        used.update(int(p) for p in (doc.get("ports") or {}).values())
    return used


def ports_for(app: str, app_jsons: Mapping[str, Mapping[str, Any]]) -> tuple[int, int]:
    """The app's own ports when it already has an app.json, else the next free pair."""
    own = (app_jsons.get(app) or {}).get("ports") or {}
    if "blue" in own and "green" in own:
        return int(own["blue"]), int(own["green"])
    return pick_ports(ports_in_use(app_jsons, except_app=app))


def is_default_site(app: str, ports: tuple[int, int], domain: str | None,
                    app_jsons: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the app's site answers requests for the server's bare address (nginx's
    default_server): the domain-less app configured first, i.e. with the lowest ports. Stable when
    any app is configured again (it used to go to whichever app was alone at its configure)."""
    if domain is not None:
        return False
    for other, cfg in app_jsons.items():
        blue = ((cfg or {}).get("ports") or {}).get("blue")
        if other != app and not (cfg or {}).get("domain") and isinstance(blue, int) and blue < ports[0]:
            return False
    return True


def user_and_dirs_step(spec: AppSpec) -> Step:
    u, b, lay = spec.user, build_user(spec.name), spec.layout
    return Step("app-user", (
        EnsureUser(u, lay.home),
        EnsureUser(b, lay.build_cache_dir),
        EnsureDir(lay.home, 0o755),
        # root's, group-writable for the build user to make the next release in, sticky: it can't
        # rename or delete a sealed (root's) release there (a build could swap the live one)
        EnsureDir(lay.releases_dir, 0o1775, "root", b),
        EnsureDir(lay.slots_dir, 0o755),
        EnsureDir(lay.env_dir, 0o700),
        EnsureDir(lay.run_dir, 0o700),
        EnsureDir(lay.meta, 0o700),  # journal, audit log, last op (app log lines): root only
        EnsureDir(lay.deps_dir, 0o1775, "root", b),  # the same for the venvs
        EnsureDir(lay.build_cache_dir, 0o700, b, b),
        EnsureDir(lay.cache_dir, 0o700, u, u),
        EnsureDir(lay.storage_dir, 0o750, u, u),  # persistent dirs: the build links them into releases
        immutable_releases_action(spec.name),
        not_in_docker_group_action(u),
        EnsureDir(layout.ETC, 0o755),
        EnsureDir(layout.APPS_ETC, 0o755),
        EnsureDir(lay.etc, 0o755),
    ))


def not_in_docker_group_action(user: str) -> Run:
    """The dockerfile builder of earlier versions put the app user in the `docker` group, which
    is root on the server: take it out (the builder no longer needs it, see
    lightfold.builders.dockerfile). Checked first, so a server without it is left alone."""
    return Run(f"gpasswd -d {user} docker >/dev/null",
               unless=f"! id -nG {user} 2>/dev/null | tr ' ' '\\n' | grep -qx docker",
               label=f"{user} not in the docker group (root-equivalent)")


def immutable_releases_action(app: str) -> Run:
    """Releases and deps made by an earlier version belong to the app user or the build user (and
    may have writable bits): make them root's, read-only to everyone else (the releases/ and deps/
    dirs themselves are EnsureDir's). Checked first (`unless`:
    nothing inside is the app or build user's, or group/other-writable, or set-id), so a converted
    server is left alone. chown -R / chmod -R never follow a symlink found inside (the app could
    have planted them)."""
    lay, u, b = Layout(app), app_user(app), build_user(app)
    dirs = f"{shlex.quote(lay.releases_dir)} {shlex.quote(lay.deps_dir)}"
    inside = f"find {dirs} -mindepth 1 -maxdepth 1"
    return Run(
        f"{inside} -exec chown -R --no-dereference root:root {{}} + && {inside} -exec chmod -R go-w,ug-s {{}} +",
        unless=f"[ -z \"$(find {dirs} -mindepth 1 \\( -user {u} -o -user {b} -o \\( ! -type l -perm /6022 \\) \\)"
               " -print -quit)\" ]",
        label=f"releases and deps: root's, read-only to {u} and {b}",
    )


def _writable(lay: Layout) -> str:
    """What the app may write besides its private /tmp: its HOME (cache) and storage. Releases and
    deps are read-only, by ownership and by the unit's ProtectSystem=strict."""
    return " ".join(f"-{p}" for p in (lay.cache_dir, lay.storage_dir))


def unit_text(spec: AppSpec) -> str:
    """The slots' template unit; `%i` (the instance) is the slot."""
    lay = spec.layout
    slot = lay.slot_link("%i")
    return render_template(
        "app.service.j2", app=spec.name, user=spec.user, slot_dir=slot, cache=lay.cache_dir,
        env_file=lay.run_env("%i"), start=posixpath.join(slot, layout.META, "start"), writable=_writable(lay),
        hosts=spec.hosts,
    )


def proc_unit_text(spec: AppSpec) -> str:
    """The other processes' template unit (same sandbox as the slots'); `%i` is `<name>-<n>`, and
    the launcher is `.lightfold/proc/<name>` of the procs release (sh cuts the `-<n>`: `$$` and
    `%%` are systemd's escapes of `$` and `%`)."""
    lay = spec.layout
    launcher = posixpath.join(lay.procs_link, layout.META, "proc")
    return render_template(
        "app.service.j2", kind="proc", app=spec.name, user=spec.user, slot_dir=lay.procs_link, cache=lay.cache_dir,
        env_file=lay.procs_env, start=f"/bin/sh -c 'exec {launcher}/\"$${{1%%%%-*}}\"' lightfold %i",
        writable=_writable(lay), hosts=spec.hosts,
    )


def cron_unit_text(spec: AppSpec) -> str:
    """The cron jobs' template unit; `%i` is the job, run by `.lightfold/cron/<job>` of the procs release."""
    lay = spec.layout
    return render_template(
        "app.service.j2", kind="cron", app=spec.name, user=spec.user, slot_dir=lay.procs_link, cache=lay.cache_dir,
        env_file=lay.procs_env, start=posixpath.join(lay.procs_link, layout.META, "cron", "%i"),
        writable=_writable(lay), hosts=spec.hosts, cron_locked_exit=layout.CRON_LOCKED_EXIT,
    )


def sandbox_properties(app: str) -> list[str]:
    """The sandbox of the app's unit (app.service.j2's [Service] settings from NoNewPrivileges to
    before SyslogIdentifier, rendered for `app`), with its HOME: what `lightfold run` passes to
    systemd-run as `-p` properties, so a one-off command is confined exactly like the app."""
    lay = Layout(app)
    text = render_template(
        "app.service.j2", app=app, user=app_user(app), slot_dir="-", cache=lay.cache_dir, env_file="-", start="-",
        writable=_writable(lay),
    )
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    first = next(i for i, line in enumerate(lines) if line.startswith("NoNewPrivileges="))
    last = next(i for i, line in enumerate(lines) if line.startswith("SyslogIdentifier="))
    home = next(line for line in lines if line.startswith("Environment=HOME="))
    return [home, *lines[first:last]]


def app_json(spec: AppSpec) -> dict[str, Any]:
    """What the agent reads: who runs the app, its ports, how to check it, where static files are."""
    det, dep = spec.detection, spec.deploy
    return {
        "app": spec.name,
        "user": spec.user,
        "ports": {"blue": spec.ports[0], "green": spec.ports[1]},
        "static": spec.static,
        "app_root": spec.app_root,
        "output_dir": spec.output_path,
        # The target's deploy.health_* win over the project's (lightfold.toml [health], detection).
        "health": {
            "path": dep.health_path or getattr(det, "health_path", None) or "/",
            "status": dep.health_status or getattr(det, "health_status", None) or ANY_OK,
            "timeout": dep.health_timeout or getattr(det, "health_timeout", None) or HEALTH_TIMEOUT,
            "host": dep.health_host or getattr(det, "health_host", None) or spec.domain,
        },
        "domain": spec.domain,
        # only where it is off (a single server's app.json is as before)
        **({} if spec.cron else {"cron": False}),
    }


def app_step(spec: AppSpec) -> Step:
    """The systemd template unit and app.json."""
    doc = json.dumps(app_json(spec), indent=2, sort_keys=True) + "\n"
    return Step("app-unit", (
        WriteFile(spec.layout.unit_file, unit_text(spec)),
        *(() if spec.static else (WriteFile(spec.layout.proc_unit_file, proc_unit_text(spec)),
                                  WriteFile(spec.layout.cron_unit_file, cron_unit_text(spec)))),
        SystemdReload(),
        WriteFile(spec.layout.app_json, doc),
    ))


def render_template(name: str, **values: Any) -> str:
    return _templates().get_template(name).render(**values)


@cache
def _templates():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = shlex.quote  # shell-quote a value in script templates
    return env
