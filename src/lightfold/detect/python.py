"""Python frameworks. Dependencies come from the manifests (requirements, pyproject, Pipfile,
setup.py); the application object is found by parsing source with `ast` (a module-level
`app = FastAPI()`, `app = Flask(__name__)`, a `create_app` factory, Django's WSGI_APPLICATION),
so start commands name the real module:variable, never a placeholder."""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass

from lightfold.detect import envvars, traps
from lightfold.detect.model import Framework, Match, Plan, reject
from lightfold.detect.pm import Toolchain, python_install
from lightfold.detect.project import Project

# Application classes: constructor name -> (framework id, interface).
APP_CLASSES = {
    "Flask": ("flask", "wsgi"),
    "FastAPI": ("fastapi", "asgi"),
    "Starlette": ("starlette", "asgi"),
    "Quart": ("quart", "asgi"),
    "Litestar": ("litestar", "asgi"),
    "Bottle": ("bottle", "wsgi"),
    "Falcon": ("falcon", "wsgi"),
}
FACTORY_NAMES = ("create_app", "make_app", "create_application", "app_factory", "get_app")
ENTRY_ORDER = [
    "wsgi.py",
    "asgi.py",
    "main.py",
    "app.py",
    "application.py",
    "server.py",
    "api.py",
    "run.py",
    "__init__.py",
]
SKIP_PARTS = {"tests", "test", "migrations", "docs", "scripts", "examples", "alembic"}
# Words one of which a file must contain before it is parsed (substring tests are far cheaper).
TRIGGER_WORDS = (*APP_CLASSES, "falcon", *FACTORY_NAMES)


@dataclass
class Entry:
    file: str
    module: str  # dotted, relative to app_dir
    var: str  # "app", or "create_app()" for a factory
    kind: str  # flask | fastapi | starlette | ... | factory
    interface: str  # wsgi | asgi
    app_dir: str  # "" or "src"
    factory: bool = False

    @property
    def target(self) -> str:
        return f"{self.module}:{self.var}"


def _module_of(rel: str) -> tuple[str, str]:
    app_dir = ""
    if rel.startswith("src/"):
        app_dir, rel = "src", rel[4:]
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts), app_dir


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name):
            return f.id
        if isinstance(f, ast.Attribute):
            # falcon.App() / falcon.asgi.App()
            if f.attr == "App" and isinstance(f.value, (ast.Name, ast.Attribute)):
                base = f.value.id if isinstance(f.value, ast.Name) else f.value.attr
                if base in ("falcon", "asgi"):
                    return "Falcon"
            return f.attr
    return None


def find_entries(p: Project) -> list[Entry]:
    """Every module-level application object or factory in the project's Python sources."""
    if "python_entries" not in p.memo:
        p.memo["python_entries"] = _find_entries(p)
    return [dataclasses.replace(e) for e in p.memo["python_entries"]]  # callers may adjust them


def _find_entries(p: Project) -> list[Entry]:
    entries: list[Entry] = []
    files = [f for f in p.files if f.endswith(".py") and f.count("/") <= 3][:300]
    for rel in files:
        parts = rel.split("/")
        if SKIP_PARTS & set(parts[:-1]) or parts[-1] in ("setup.py", "conftest.py", "noxfile.py", "manage.py"):
            continue
        src = p.text(rel)
        if not src or len(src) > 200_000 or not any(word in src for word in TRIGGER_WORDS):
            continue
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError):
            continue
        module, app_dir = _module_of(rel)
        if not all(part.isidentifier() for part in module.split(".")):
            continue  # not importable (e.g. a folder named my-app): not an entry point
        imports = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imports |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        factory_kind = next((APP_CLASSES[c][0] for c in APP_CLASSES if APP_CLASSES[c][0] in imports), None)
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                called = _call_name(node.value) if node.value is not None else None
                if not names or called is None:
                    continue
                if called in APP_CLASSES:
                    kind, iface = APP_CLASSES[called]
                    entries.append(Entry(rel, module, names[0], kind, iface, app_dir))
                elif names[0] in ("app", "application") and (called in FACTORY_NAMES or factory_kind):
                    # app = create_app() / app = get_application() in a module that uses the framework
                    kind = factory_kind or "factory"
                    iface = "asgi" if kind in ("fastapi", "starlette", "quart", "litestar") else "wsgi"
                    entries.append(Entry(rel, module, names[0], kind, iface, app_dir))
            elif isinstance(node, ast.FunctionDef) and node.name in FACTORY_NAMES and factory_kind:
                iface = "asgi" if factory_kind in ("fastapi", "starlette", "quart", "litestar") else "wsgi"
                entries.append(Entry(rel, module, f"{node.name}()", factory_kind, iface, app_dir, factory=True))
    return entries


def _entry_rank(e: Entry) -> tuple:
    name = e.file.rsplit("/", 1)[-1]
    order = ENTRY_ORDER.index(name) if name in ENTRY_ORDER else len(ENTRY_ORDER)
    return (e.factory, e.file.count("/") - (1 if e.app_dir else 0), order, e.file)


def procfile_web(p: Project) -> str | None:
    """The Procfile's web command (detection reads the project file's errors elsewhere: None here)."""
    from lightfold.detect.manifest import parse_procfile
    from lightfold.errors import LightfoldError

    try:
        return parse_procfile(p.text("Procfile") or "").get("web")
    except LightfoldError:
        return None


def pick_entry(p: Project, entries: list[Entry], kinds: tuple[str, ...], plan: Plan, m: Match) -> Entry | None:
    chosen = sorted((e for e in entries if e.kind in kinds), key=_entry_rank)
    instances = [e for e in chosen if not e.factory]
    pool = instances or chosen
    if not pool:
        return None
    web = procfile_web(p) or ""
    best = next(
        (e for e in pool if re.search(rf"(?<![\w.]){re.escape(e.module)}:{re.escape(e.var.rstrip('()'))}", web)), None
    )
    if best:
        m.evidence.append(f"Procfile web names {best.target}")
    best = best or pool[0]
    if len(instances) > 1:
        others = ", ".join(e.target for e in instances if e is not best)
        plan.warnings.append(f"several entry points ({best.target}, {others}): using {best.target}")
    m.evidence.append(f"{best.file}: {best.target} ({best.kind} app)")
    return best


# -- plans -----------------------------------------------------------------------------------------


def _has(p: Project, *names: str) -> bool:
    deps = p.python_deps
    if any(n in deps for n in names):
        return True
    # fastapi[standard] brings uvicorn with it
    return "uvicorn" in names and "standard" in deps.get("fastapi", "")


def _server(p: Project, tc: Toolchain, plan: Plan, package: str, missing: list[str]) -> str:
    """The command for `package` (gunicorn/uvicorn) inside the env; note it when not a dependency."""
    if not _has(p, package):
        missing.append(package)
        plan.warnings.append(
            f"{package} is not in the dependencies: it is installed at deploy time; add it to pin its version"
        )
    return tc.py(package)


def _install(p: Project, tc: Toolchain, missing: list[str]) -> str:
    base = python_install(p, tc, missing if tc.manager == "pip" else [])
    if missing and tc.manager != "pip":
        pkgs = " ".join(missing)
        base += f" && uv pip install {pkgs}" if tc.manager == "uv" else f" && {tc.py('python -m pip install ' + pkgs)}"
    return base


def _misspelling(p: Project, plan: Plan) -> None:
    wrong = p.misspelled_requirements
    if wrong and not p.requirements_file:
        plan.warnings.append(f"found {wrong}: did you mean requirements.txt? (pip and most tools expect that name)")


def _env(p: Project, plan: Plan, files: list[str]) -> None:
    req, opt = envvars.scan(p, files)
    plan.env_required = sorted(set(plan.env_required) | set(req))
    plan.env_optional = sorted(set(plan.env_optional) | set(opt))


def asgi_wsgi_start(p: Project, tc: Toolchain, plan: Plan, e: Entry, missing: list[str]) -> str:
    if e.interface == "asgi":
        if _has(p, "uvicorn") or not _has(p, "hypercorn"):
            cmd = _server(p, tc, plan, "uvicorn", missing)
            factory = " --factory" if e.factory else ""
            target = f"{e.module}:{e.var.rstrip('()')}" if e.factory else e.target
            app_dir = f" --app-dir {e.app_dir}" if e.app_dir else ""
            return f"{cmd}{factory} {target} --host 127.0.0.1 --port $PORT{app_dir}"
        target = f"{e.module}:{e.var.rstrip('()')}()" if e.factory else e.target
        chdir = f" --root-path {e.app_dir}" if e.app_dir else ""
        return f"{tc.py('hypercorn')} {target} --bind 127.0.0.1:$PORT{chdir}"
    cmd = _server(p, tc, plan, "gunicorn", missing)
    chdir = f" --chdir {e.app_dir}" if e.app_dir else ""
    return (
        f"{cmd} --bind 127.0.0.1:$PORT{chdir} '{e.target}'"
        if e.factory
        else (f"{cmd} --bind 127.0.0.1:$PORT{chdir} {e.target}")
    )


def micro_plan(kinds: tuple[str, ...], port: int, interface: str | None = None):
    """Plan for an app object of one of `kinds`; `interface` decides what a bare factory serves."""

    def plan_fn(p: Project, m: Match, tc: Toolchain) -> Plan:
        plan = Plan(port=port)
        _misspelling(p, plan)
        entries = m.data.get("entries") or find_entries(p)
        if interface:
            for e in entries:
                if e.kind == "factory":
                    e.interface = interface
        e = pick_entry(p, entries, kinds, plan, m)
        missing: list[str] = []
        if e is None:
            plan.warnings.append(
                f"no module-level {'/'.join(k.title() for k in kinds)}() application found: set "
                "deploy.start_command (e.g. gunicorn --bind 127.0.0.1:$PORT module:app)"
            )
        else:
            plan.start = asgi_wsgi_start(p, tc, plan, e, missing)
            plan.variant = e.interface
            plan.health_path = _health_route(p, e.file) or "/"
        plan.install = _install(p, tc, missing)
        _env(p, plan, ([e.file] if e else []) + ["config.py", "settings.py", "app/config.py", "src/config.py"])
        return plan

    return plan_fn


def _health_route(p: Project, rel: str) -> str | None:
    src = p.text(rel) or ""
    m = re.search(r"""\.(?:get|route|api_route)\(\s*['"](/(?:api/)?health[a-z]*|/up|/ping)['"]""", src)
    return m.group(1) if m else None


# -- Django ----------------------------------------------------------------------------------------


def _manage_py(p: Project) -> str | None:
    """manage.py at the root, or in one subfolder (src/) when the root holds the Python manifest."""
    if p.exists("manage.py"):
        return "manage.py"
    nested = [f for f in p.glob(r"[^/]+/manage\.py") if "django" in (p.text(f) or "").lower()]
    if len(nested) == 1 and _has_python_manifest(p):
        return nested[0]
    return None


# os.environ.setdefault("DJANGO_SETTINGS_MODULE", "x") or os.environ["DJANGO_SETTINGS_MODULE"] = "x"
SETTINGS_MODULE = re.compile(r"DJANGO_SETTINGS_MODULE['\"]\s*(?:,|\]\s*=)\s*['\"]([\w.]+)['\"]")


def match_django(p: Project) -> Match:
    manage = _manage_py(p)
    has_dep = "django" in p.python_deps
    if manage and (has_dep or "django" in (p.text(manage) or "").lower()):
        ev = [manage]
        if has_dep:
            ev.insert(0, f"python dependency django {p.python_deps['django']}".rstrip())
        return Match(ev, {"manage": manage})
    if has_dep:
        return reject("django is a dependency but there is no manage.py")
    return Match()


def _settings_files(p: Project, base: str, settings_mod: str) -> list[str]:
    """The settings module and, for a settings/ package, its siblings (base.py, production.py)."""
    path = base + settings_mod.replace(".", "/")
    if p.is_dir(path):
        folder = path
    elif p.exists(path + ".py"):
        parent = path.rpartition("/")[0]
        if not parent.endswith("settings"):
            return [path + ".py"]
        folder = parent  # proj/settings/production.py star-imports its siblings
    else:
        return []
    return [f"{folder}/{n}" for n in p.listdir(folder) if n.endswith(".py")]


def plan_django(p: Project, m: Match, tc: Toolchain) -> Plan:
    plan = Plan(port=8000)
    _misspelling(p, plan)
    manage = m.data["manage"]
    base = manage[: -len("manage.py")]  # "" or "src/"
    chdir = base.rstrip("/")
    text = p.text(manage) or ""
    sm = SETTINGS_MODULE.search(text)
    settings_mod = sm.group(1) if sm else None
    if settings_mod is None:
        found = next((f for f in p.glob(rf"{re.escape(base)}[^/]+/settings(?:\.py|/__init__\.py)")), None)
        settings_mod = (
            found[len(base) :].removesuffix("/__init__.py").removesuffix(".py").replace("/", ".") if found else None
        )
    settings = _settings_files(p, base, settings_mod) if settings_mod else []
    if settings_mod:
        m.evidence.append(f"{manage}: DJANGO_SETTINGS_MODULE={settings_mod}")
    settings_src = "\n".join(p.text(f) or "" for f in settings)
    wsgi = re.search(r"^\s*WSGI_APPLICATION\s*=\s*['\"]([\w.]+)['\"]", settings_src, re.M)
    asgi = re.search(r"^\s*ASGI_APPLICATION\s*=\s*['\"]([\w.]+)['\"]", settings_src, re.M)
    project_pkg = settings_mod.split(".")[0] if settings_mod else None
    wsgi_target = None
    if wsgi:
        mod, _, var = wsgi.group(1).rpartition(".")
        wsgi_target = f"{mod}:{var}"
        m.evidence.append(f"WSGI_APPLICATION = {wsgi.group(1)}")
    elif project_pkg and p.exists(f"{base}{project_pkg}/wsgi.py"):
        wsgi_target = f"{project_pkg}.wsgi:application"
        m.evidence.append(f"{base}{project_pkg}/wsgi.py")
    else:
        found = next(
            (f for f in p.glob(r"(?:[^/]+/){1,2}wsgi\.py") if "get_wsgi_application" in (p.text(f) or "")), None
        )
        if found:
            wsgi_target = found[len(base) : -3].replace("/", ".") + ":application"
            m.evidence.append(found)
    missing: list[str] = []
    cd = f" --chdir {chdir}" if chdir else ""
    asgi_only = (
        (asgi or p.exists(f"{base}{project_pkg}/asgi.py")) and not _has(p, "gunicorn") and _has(p, "uvicorn", "daphne")
    )
    if asgi_only and project_pkg:
        target = f"{project_pkg}.asgi:application"
        if _has(p, "uvicorn"):
            app_dir = f" --app-dir {chdir}" if chdir else ""
            plan.start = f"{tc.py('uvicorn')} {target} --host 127.0.0.1 --port $PORT{app_dir}"
        else:
            plan.start = f"{tc.py('daphne')} -b 127.0.0.1 -p $PORT {target}"
        plan.variant = "asgi"
    elif wsgi_target:
        plan.start = f"{_server(p, tc, plan, 'gunicorn', missing)} --bind 127.0.0.1:$PORT{cd} {wsgi_target}"
        plan.variant = "wsgi"
    else:
        plan.warnings.append(
            "could not find the Django WSGI module (WSGI_APPLICATION or <project>/wsgi.py): set deploy.start_command"
        )
    manage_cmd = tc.py(f"python {manage}")
    # Build and migrate with the settings the server uses, when wsgi.py picks other ones than manage.py.
    wsgi_file = f"{base}{wsgi_target.split(':')[0].replace('.', '/')}.py" if wsgi_target else None
    served = SETTINGS_MODULE.search(p.text(wsgi_file) or "") if wsgi_file else None
    if served and served.group(1) != settings_mod:
        manage_cmd = f"DJANGO_SETTINGS_MODULE={served.group(1)} {manage_cmd}"
        m.evidence.append(f"{wsgi_file} serves {served.group(1)} (manage.py defaults to {settings_mod})")
    if re.search(r"^\s*STATIC_ROOT\s*=", settings_src, re.M):
        plan.build = f"{manage_cmd} collectstatic --noinput"
    elif "django.contrib.staticfiles" in settings_src:
        plan.warnings.append("STATIC_ROOT is not set: collectstatic is skipped and static files are not served")
    plan.release = f"{manage_cmd} migrate --noinput"
    plan.install = _install(p, tc, missing)
    _env(p, plan, settings)
    # SECRET_KEY = os.getenv("X") without a default: Django refuses to start when X is unset.
    bare = re.findall(r"^\s*SECRET_KEY\s*=\s*os\.(?:getenv|environ\.get)\(\s*['\"](\w+)['\"]\s*\)", settings_src, re.M)
    plan.env_required = sorted(set(plan.env_required) | set(bare))
    _django_hosts(p, plan, m, settings, settings_mod, [manage, *([wsgi_file] if wsgi_file else [])])
    urlconf = re.search(r"^\s*ROOT_URLCONF\s*=\s*['\"]([\w.]+)['\"]", settings_src, re.M)
    if urlconf:
        urls = p.text(f"{base}{urlconf.group(1).replace('.', '/')}.py") or ""
        health = re.search(r"""\b(?:re_)?path\(\s*r?['"]\^?((?:api/)?(?:healthz?|health-check|ping)/?)\$?['"]""", urls)
        if health:
            plan.health_path = "/" + health.group(1)
    return plan


FORCED_SETTINGS = re.compile(r"os\.environ\[\s*['\"]DJANGO_SETTINGS_MODULE['\"]\s*\]\s*=")


def _django_hosts(p: Project, plan: Plan, m: Match, settings: list[str], settings_mod: str | None,
                  entry_files: list[str]) -> None:
    """DEBUG = True is a warning. The settings wrapper (lightfold.detect.traps) runs the start and
    the release command when a literal ALLOWED_HOSTS without '*' would refuse the server's name, or
    when a SQLite database lies in the project (the release is read-only, and replaced by every
    deploy: the wrapper keeps it in the app's storage) — unless an entry point forces its own
    settings module."""
    texts = {f: p.text(f) or "" for f in settings}
    if any(re.search(r"^DEBUG\s*=\s*True\b", t, re.M) for t in texts.values()):
        plan.warnings.append("DEBUG = True in the settings: Django shows tracebacks and settings to every visitor; "
                             "read it from the env (DEBUG = os.environ.get('DJANGO_DEBUG') == '1')")
    if not plan.start or not settings_mod:
        return
    fixes = []
    assigning = [f for f, t in texts.items() if re.search(r"^ALLOWED_HOSTS\b", t, re.M)]
    lists = [traps.django_literal_hosts(texts[f]) for f in assigning]
    hosts = [h for hs in lists for h in hs or []]
    if assigning and None not in lists and "*" not in hosts:  # else computed, or any name: the project's
        fixes.append(traps.django_hosts_note(assigning[-1], hosts))
    sqlite = next((f for f, t in texts.items() if "django.db.backends.sqlite3" in t), None)
    if sqlite:
        fixes.append(traps.django_sqlite_note(sqlite))
    if not fixes:
        return
    forced = next((f for f in entry_files if FORCED_SETTINGS.search(p.text(f) or "")), None)
    if forced:
        plan.warnings.append(f"{forced} forces its settings module, so lightfold cannot add this server's name to "
                             "ALLOWED_HOSTS nor keep a SQLite database out of the read-only release: add your "
                             "domain to ALLOWED_HOSTS, and put the database in a storage dir (lightfold.toml)")
        return
    plan.start = traps.django_hosts_start(plan.start, settings_mod)
    if plan.release:
        plan.release = traps.django_hosts_start(plan.release, settings_mod)
    plan.fixes += fixes
    m.evidence += fixes


# -- plain Python ------------------------------------------------------------------------------------


def match_fastapi(p: Project) -> Match:
    if "fastapi" not in p.python_deps:
        return Match()
    entries = find_entries(p)
    if not any(e.kind == "fastapi" for e in entries) and any(e.kind == "flask" for e in entries):
        return reject("fastapi is a dependency but the application is a Flask() app")
    return Match([f"python dependency fastapi {p.python_deps['fastapi']}".rstrip()], {"entries": entries})


def match_flask(p: Project) -> Match:
    if "flask" not in p.python_deps:
        return Match()
    return Match([f"python dependency flask {p.python_deps['flask']}".rstrip()], {"entries": find_entries(p)})


def _has_python_manifest(p: Project) -> bool:
    return bool(
        p.requirements_file
        or p.misspelled_requirements
        or p.pyproject is not None
        or p.exists("Pipfile")
        or p.exists("setup.py")
    )


def match_plain_python(p: Project) -> Match:
    if not _has_python_manifest(p) and not any(f.endswith(".py") and "/" not in f for f in p.files):
        return Match()
    entries = [e for e in find_entries(p) if e.kind not in ("flask", "fastapi")]
    if entries and (_has_python_manifest(p) or "/" not in entries[0].file):
        return Match([f"{entries[0].file}: {entries[0].kind} application"], {"entries": entries})
    if "streamlit" in p.python_deps:
        script = p.first("streamlit_app.py", "app.py", "main.py", "Home.py")
        if script:
            return Match([f"python dependency streamlit, script {script}"], {"streamlit": script})
    if not _has_python_manifest(p):
        return Match()
    web = procfile_web(p)
    if web:
        return Match([f"Procfile web: {web}"], {"procfile": web})
    script = p.first("main.py", "app.py", "server.py", "run.py")
    if script:
        return Match([f"python manifest and {script}"], {"script": script})
    return reject("a Python manifest but no application object, Procfile or main.py/app.py")


def plan_plain_python(p: Project, m: Match, tc: Toolchain) -> Plan:
    if m.data.get("entries"):
        kinds = tuple({e.kind for e in m.data["entries"]})
        plan = micro_plan(kinds, 8000)(p, m, tc)
        return plan
    plan = Plan(port=8000)
    _misspelling(p, plan)
    missing: list[str] = []
    if "streamlit" in m.data:
        script = m.data["streamlit"]
        plan.variant = "streamlit"
        plan.start = (
            f"{tc.py('streamlit')} run {script} --server.port $PORT --server.address 127.0.0.1 --server.headless true"
        )
        plan.port = 8501
    elif "procfile" in m.data:
        web = m.data["procfile"]
        plan.start = rebind(web, tc)
        plan.variant = "procfile"
    else:
        script = m.data["script"]
        plan.start = tc.py(f"python {script}")
        src = p.text(script) or ""
        if "PORT" not in src:
            plan.warnings.append(
                f"{script} does not read the PORT environment variable: make it listen on $PORT "
                "(otherwise the health check of the new release fails)"
            )
        _env(p, plan, [script])
    plan.install = _install(p, tc, missing)
    return plan


def bind_loopback(web: str) -> str:
    """A Procfile web command bound to 127.0.0.1:$PORT instead of every address (`--bind
    0.0.0.0:$PORT`, `-b :$PORT`, `--host 0.0.0.0`): nginx on the same machine proxies to it."""
    cmd = re.sub(r"(--bind|-b)[ =](?:0\.0\.0\.0|\[::\]|[\w.]+)?:\$\{?PORT\}?", r"\1 127.0.0.1:$PORT", web)
    return re.sub(r"--host[ =]0\.0\.0\.0", "--host 127.0.0.1", cmd)


def rebind(web: str, tc: Toolchain) -> str:
    """A Procfile web command, run inside the environment and bound to 127.0.0.1:$PORT."""
    cmd = bind_loopback(web)
    first, _, rest = cmd.partition(" ")
    if first in ("gunicorn", "uvicorn", "hypercorn", "daphne", "waitress-serve", "python", "streamlit"):
        return f"{tc.py(first)} {rest}".strip()
    return cmd


FRAMEWORKS = {
    "django": Framework("django", "Django", "python", "python", match_django, plan_django),
    "fastapi": Framework(
        "fastapi", "FastAPI", "python", "python", match_fastapi, micro_plan(("fastapi", "factory"), 8000, "asgi")
    ),
    "flask": Framework(
        "flask", "Flask", "python", "python", match_flask, micro_plan(("flask", "factory"), 5000, "wsgi")
    ),
    "python": Framework("python", "Python (ASGI/WSGI)", "python", "python", match_plain_python, plan_plain_python),
}
