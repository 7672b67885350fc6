"""Framework traps that lightfold handles at build time, as plan text (pure: no I/O here).

    sveltekit_adapter(config_rel, config_src, deps) -> str | None     the adapter a SvelteKit app uses
    sveltekit_node_build(tc, config_rel, adapter, build, kit_major) -> str  build with adapter-node
    sveltekit_fix_note(config_rel, adapter) -> str                    the line `detect` and `deploy` show
    astro_server(tc, config_rel, adapter, build) -> (build, fix, blocked)  Astro server output's adapter
    django_literal_hosts(settings_src) -> list | None                 a literal ALLOWED_HOSTS list
    django_hosts_start(start, settings_module) -> str                 start with the hosts wrapper
    conditional_value(expr, config_src) -> str | None                  a `c ? 'a' : 'b'` value in a production build
    next_export_needs_server(config_rel, config_src) -> str | None     Next's output: 'export' with a server-only option
    nuxt_node_server_build(rel, src, build) -> (build, fix)            a Nitro platform preset built as node-server
    next_base_path(config_src) -> str | None                           Next's basePath ('/docs'), None for the root
    next_export_under_base_path(rel, build, out, base) -> (build, out, fix)  a static export served under basePath

Django refuses (400, DisallowedHost) a request whose Host is not in ALLOWED_HOSTS, and
`django-admin startproject` leaves it empty: every request through the server's name fails. When the
settings give a literal list without `*`, lightfold starts the app with DJANGO_SETTINGS_MODULE set to
a generated module (lightfold.server.django_settings) that imports the project's settings and adds
the server's own name (its domain, else its address) from LIGHTFOLD_HOSTS, which the unit sets.

A SvelteKit app on adapter-auto (what `npx sv create` writes) or a platform adapter (vercel,
netlify, cloudflare) builds no Node server: its slot would start `node build` and crash. lightfold
builds it with adapter-node instead: the build first adds @sveltejs/adapter-node with the project's
own package manager and points the config's adapter import at it. Both happen in the release copy
on the server; the project on the laptop is never changed.
"""

from __future__ import annotations

import re
import shlex

from lightfold.detect.pm import Toolchain
from lightfold.errors import LightfoldError

# Adapters whose output is for a platform, not a server lightfold can start.
SVELTEKIT_PLATFORM_ADAPTERS = ("auto", "vercel", "netlify", "cloudflare", "cloudflare-workers")
_ADAPTER_IMPORT = re.compile(r"['\"]@sveltejs/adapter-([\w-]+)['\"]")
_ADD_DEV = {"pnpm": "pnpm add -D", "yarn": "yarn add -D", "yarn-berry": "yarn add -D", "bun": "bun add -d"}
NPM_ADD_DEV = "npm install --no-save --no-audit --no-fund"


def sveltekit_adapter(config_src: str, deps: dict[str, str]) -> str | None:
    """The adapter imported by the config (svelte.config or vite.config), else the one depended on."""
    m = _ADAPTER_IMPORT.search(config_src)
    if m:
        return m.group(1)
    return next((d.split("adapter-", 1)[1] for d in deps if d.startswith("@sveltejs/adapter-")), None)


def needs_node_adapter(adapter: str | None) -> bool:
    return (adapter or "auto") in SVELTEKIT_PLATFORM_ADAPTERS


# @sveltejs/adapter-node's major for each @sveltejs/kit major (its peerDependencies): `latest` may be
# a major made for the next kit, which npm then refuses (ERESOLVE).
ADAPTER_NODE_FOR_KIT = {1: "1", 2: "5", 3: "6"}


def adapter_node_package(kit_major: int | None) -> str:
    version = ADAPTER_NODE_FOR_KIT.get(kit_major) if kit_major is not None else None
    return f"@sveltejs/adapter-node@{version}" if version else "@sveltejs/adapter-node"


def sveltekit_node_build(tc: Toolchain, config_rel: str | None, adapter: str, build: str | None,
                         kit_major: int | None = None) -> str:
    """The build command of a SvelteKit app on `adapter`, made to build with adapter-node (the
    major that `kit_major`, the project's @sveltejs/kit, takes)."""
    add = f"{_ADD_DEV.get(tc.manager or '', NPM_ADD_DEV)} {adapter_node_package(kit_major)}"
    steps = [tc.at_root(add) if tc.workspace_root else add]
    if config_rel and adapter != "node":
        expr = f"s#@sveltejs/adapter-{adapter}([\"'])#@sveltejs/adapter-node\\1#g"
        steps.append(f"sed -i -E {shlex.quote(expr)} {shlex.quote(config_rel)}")
    if build:
        steps.append(build)
    return " && ".join(steps)


def sveltekit_fix_note(config_rel: str | None, adapter: str) -> str:
    where = config_rel or "package.json"
    return (f"SvelteKit: {where} uses @sveltejs/adapter-{adapter}, which builds no Node server; lightfold "
            "builds with @sveltejs/adapter-node instead (added in the release copy on the server, "
            "your project is unchanged)")


ASTRO_ADD_NODE = "astro add node --yes"


def astro_server(tc: Toolchain, config_rel: str | None, adapter: str | None,
                 build: str | None) -> tuple[str | None, str | None, str | None]:
    """Astro server output: (build, fix note, blocked). No adapter: the build first runs Astro's own
    `astro add node --yes` (standalone mode) in the release copy. Another platform's adapter
    (vercel, netlify, ...) cannot be swapped safely (its options differ): one line saying what to change."""
    where = config_rel or "astro.config"
    if adapter == "node":
        return build, None, None
    if adapter is None:
        add = tc.exec(ASTRO_ADD_NODE)
        note = (f"Astro: {where} asks for server output with no adapter; lightfold builds with @astrojs/node "
                f"(`{add}` in the release copy on the server, your project is unchanged)")
        return (f"{add} && {build}" if build else add), note, None
    return build, None, (f"Astro server output needs @astrojs/node, but {where} uses @astrojs/{adapter}: "
                         f"replace it with `npx astro add node` (or set output: 'static')")


DJANGO_SETTINGS_WRAPPER = "lightfold_django_settings"
DJANGO_SETTINGS_DIR = "python"  # under the release's .lightfold/
_HOSTS_ASSIGN = re.compile(r"^ALLOWED_HOSTS\s*(=|\+=)\s*(.*)$", re.M)
_HOSTS_CHANGED = re.compile(r"^\s*ALLOWED_HOSTS\s*(?:\+=|\.(?:append|extend|insert)\()", re.M)


def django_literal_hosts(settings_src: str) -> list[str] | None:
    """ALLOWED_HOSTS when the settings set it to a literal list or tuple of strings (the last
    module-level assignment wins) and never add to it; None when it is computed (from the env, a
    split, ...) or changed later: then it is the project's to decide."""
    import ast

    if _HOSTS_CHANGED.search(settings_src):
        return None
    found = _HOSTS_ASSIGN.findall(settings_src)
    if not found or found[-1][0] != "=":
        return None
    value = found[-1][1].split("#", 1)[0].strip()
    try:
        hosts = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(h, str) for h in hosts):
        return None
    return list(hosts)


def django_hosts_start(start: str, settings_module: str) -> str:
    """The start command with the settings wrapper in front: the project's own settings module is
    kept (a DJANGO_SETTINGS_MODULE in the app's env wins over the detected one)."""
    return (f'LIGHTFOLD_DJANGO_SETTINGS="${{DJANGO_SETTINGS_MODULE:-{settings_module}}}" '
            f"DJANGO_SETTINGS_MODULE={DJANGO_SETTINGS_WRAPPER} "
            f'PYTHONPATH="$LF_RELEASE/.lightfold/{DJANGO_SETTINGS_DIR}${{PYTHONPATH:+:$PYTHONPATH}}" {start}')


def runs_django_wrapper(command: str | None) -> bool:
    """Whether `command` starts through the settings wrapper (as django_hosts_start writes it)."""
    return f"DJANGO_SETTINGS_MODULE={DJANGO_SETTINGS_WRAPPER} " in (command or "")


def django_hosts_note(settings_rel: str, hosts: list[str]) -> str:
    listed = ", ".join(hosts) if hosts else "empty"
    return (f"Django: ALLOWED_HOSTS in {settings_rel} is {listed}, so Django would answer 400 to the server's "
            "own name; lightfold adds the server's domain (or address) and localhost at run time through a "
            "settings module that imports yours (your project is unchanged)")


def django_sqlite_note(settings_rel: str) -> str:
    return (f"Django: {settings_rel} uses SQLite; a database file inside the project would sit in the release, "
            "which the app cannot write and the next deploy replaces: lightfold keeps it in the app's storage "
            "dir (its django/ subdir, kept across deploys) through the same settings module")


def refuse_blocked(detection) -> None:
    """A detection whose plan is `blocked` stops here, before anything is built or started."""
    blocked = getattr(detection, "blocked", None)
    if blocked:
        raise LightfoldError(blocked, "change the project as this says, then deploy again (nothing was changed)")


BUILD_ENV = {"NODE_ENV": "production"}  # what a production build sees; other variables are unset


def conditional_value(expr: str, src: str) -> str | None:
    """The branch a `cond ? 'a' : b` config value takes in a production build, or None when the
    condition is not a simple test of process.env (or of a constant defined from one)."""
    m = re.fullmatch(r"(.+?)\s*\?\s*(['\"]?[\w-]+['\"]?)\s*:\s*(['\"]?[\w-]+['\"]?)", expr)
    if not m:
        return None
    truth = _env_condition(m.group(1).strip(), src)
    if truth is None:
        return None
    branch = m.group(2) if truth else m.group(3)
    return branch.strip("'\"") if branch[0] in "'\"" else None


def _env_condition(cond: str, src: str, depth: int = 0) -> bool | None:
    negate = cond.startswith("!")
    cond = cond.lstrip("!").strip().strip("()")
    test = re.fullmatch(r"process\.env\.(\w+)(?:\s*(===|==|!==|!=)\s*['\"]([^'\"]*)['\"])?", cond)
    if test:
        value, operator = BUILD_ENV.get(test.group(1)), test.group(2)
        equal = operator in ("===", "==")
        result = bool(value) if operator is None else (value == test.group(3)) == equal
    elif re.fullmatch(r"\w+", cond) and depth == 0:
        defined = re.search(rf"\b(?:const|let|var)\s+{cond}\s*=\s*([^;\n]+)", src)
        result = _env_condition(defined.group(1).strip(), src, 1) if defined else None
    else:
        result = None
    return None if result is None else result != negate


def next_export_needs_server(config_rel: str | None, config_src: str) -> str | None:
    """create-next-app 16 turns on cacheComponents (partial prerendering), which Next refuses in export
    mode: the line that says so before the build fails (a project choice lightfold cannot make for it)."""
    cache = re.search(r"\b(cacheComponents|ppr)\s*:\s*(?:true|['\"]incremental['\"])", config_src)
    if not cache:
        return None
    return (f"{config_rel} sets output: 'export' and {cache.group(1)}, which needs a server: Next stops the build "
            f'("PPR cannot be enabled in export mode"): remove {cache.group(1)} (and partialPrefetching) '
            "for a static site, or remove output: 'export' to deploy a Next server")


def next_base_path(config_src: str) -> str | None:
    m = re.search(r"\bbasePath\s*:\s*['\"`](/[^'\"`]*)['\"`]", config_src)
    base = m.group(1).rstrip("/") if m else ""
    return base if re.fullmatch(r"(/[\w.~-]+)+", base) else None


NEXT_STAGED_EXPORT = ".lightfold-static"


def next_export_under_base_path(config_rel: str | None, build: str | None, out: str | None,
                                base: str) -> tuple[str, str, str]:
    """A static export with basePath '/docs' links its pages and assets as /docs/...: nginx serves the
    site's root, so the build moves out/ to <staged>/docs, and <staged> is what nginx serves."""
    out = out or "out"
    parent = base.rpartition("/")[0]
    stage = (f"rm -rf {NEXT_STAGED_EXPORT} && mkdir -p {shlex.quote(NEXT_STAGED_EXPORT + parent)} && "
             f"mv {shlex.quote(out)} {shlex.quote(NEXT_STAGED_EXPORT + base)}")
    fix = (f"Next.js: {config_rel or 'next.config'} sets basePath '{base}' with output: 'export': lightfold serves "
           f"{out}/ under {base}/ (where its pages link their assets); / answers 404")
    return (f"{build} && {stage}" if build else stage), NEXT_STAGED_EXPORT, fix


# Nitro presets whose output is .output/server/index.mjs listening on PORT.
NITRO_SERVER_PRESETS = ("node-server", "node-cluster", "static")


def nuxt_node_server_build(config_rel: str | None, config_src: str, build: str | None) -> tuple[str | None, str | None]:
    """(build, fix). A Nuxt config with a platform preset (vercel, netlify, cloudflare-pages,
    node-middleware, ...) builds no server to start; the preset in the config wins over NITRO_PRESET,
    so the build first points it at node-server in the release copy on the server."""
    found = re.search(r"\bpreset\s*:\s*['\"]([\w-]+)['\"]", config_src)
    if not config_rel or not found or found.group(1) in NITRO_SERVER_PRESETS:
        return build, None
    preset = found.group(1)
    expr = f"s#(preset[[:space:]]*:[[:space:]]*)(['\"]){re.escape(preset)}(['\"])#\\1\\2node-server\\3#"
    step = f"sed -i -E {shlex.quote(expr)} {shlex.quote(config_rel)}"
    fix = (f"Nuxt: {config_rel} sets the Nitro preset '{preset}', which builds no Node server; lightfold builds "
           "with preset 'node-server' instead (in the release copy on the server, your project is unchanged)")
    return (f"{step} && {build}" if build else step), fix
