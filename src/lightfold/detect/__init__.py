"""Framework and package-manager detection: `detect(path) -> Detection`.

Pure: reads files only (no network, no subprocess), never descends into node_modules, .git,
virtualenvs, vendor or build output. A typical project takes a few milliseconds.

Framework ids (stable, lowercase), in precedence order — when several match, the earliest wins:

 1. Backend frameworks with their own layout; a package.json beside them only builds assets:
    rails, django, laravel, symfony, phoenix, springboot, aspnetcore
 2. JavaScript meta-frameworks (full servers or static exports):
    nextjs, nuxt, react-router (React Router 7 framework mode), remix, sveltekit, astro, gatsby,
    docusaurus, eleventy, angular, vuecli
 3. API / server frameworks: nestjs, fastapi, flask, gin, echo, fiber, chi, axum, actix, fastify,
    hono, koa, express  (NestJS before Express/Fastify because it runs on top of them)
 4. Compiled servers without a known framework: go (net/http `package main`), rust (any other
    binary crate) — a package.json beside them usually builds their frontend
 5. Static site generators: jekyll, hugo
 6. Single-page apps: cra (Create React App), vite (a Vite SPA; `variant` = react / vue / svelte /
    preact / solid / lit / vanilla)
 7. Plain programs: python (ASGI/WSGI app object, Procfile, streamlit or main.py), node (start
    script or server file), php (index.php)
 8. static (index.html at the root or in public/, www/, site/, html/)
 9. dockerfile (only a Dockerfile)

A framework matches on the dependency tables of its manifest (package.json dependencies, Python
requirements/pyproject/Pipfile, Gemfile/Gemfile.lock, composer.json require, go.mod require,
Cargo.toml [dependencies], pom.xml/build.gradle declarations, *.csproj Sdk, mix.exs deps) plus
its conventional files (manage.py, config/application.rb, artisan, angular.json, ...). A name that
appears only in a script string or a comment never counts.

`runtime` (what `configure` installs): node, python, ruby, php, go, rust, java, dotnet, elixir,
static (nginx only) or docker. `extra_runtimes` lists more tools a build needs (node for a Rails or
Laravel asset build, hugo, bun, maven, gradle).

Package managers: bun, pnpm, yarn (classic), yarn-berry, npm; uv, poetry, pdm, pipenv, pip;
bundler; composer; go; cargo; maven, gradle; dotnet; mix. See `pm.py` for the rules, including
monorepos: PATH may point at an app inside a workspace; the lockfile and package manager are
found by walking up to the workspace root (never above the git root), and the install command
then starts with `cd <workspace root> &&`.

The app's own project file (`lightfold.toml`) and a `Procfile` at the app root are read first
(lightfold.detect.manifest): their start, build and release replace the framework's, and they add
the health check, storage dirs, processes, cron jobs and the release time limit (`manifest_keys`
says which file gave which key). A project using SQLite gets a hint to keep its database in a
storage dir (lightfold.detect.sqlite).

Commands (install, build, start, release) are POSIX shell lines run in `app_root` with PORT in
the environment. Servers bind 127.0.0.1:$PORT (nginx on the same machine proxies to it). Static
sites have no start command: nginx serves `output_dir`.
"""

from __future__ import annotations

import re
from pathlib import Path

from lightfold.detect import envvars, node, others, python, sqlite
from lightfold.detect.manifest import PROCFILE, Manifest
from lightfold.detect.manifest import read as read_manifest
from lightfold.detect.model import Candidate, Detection, Framework, Match, Plan
from lightfold.detect.pm import Toolchain, node_toolchain, python_toolchain, simple_toolchain, workspace_members
from lightfold.detect.project import SKIP_DIRS, Project
from lightfold.detect.runtime import runtime_version
from lightfold.errors import LightfoldError, UsageError

__all__ = ["Detection", "Candidate", "NothingDetected", "detect", "PRECEDENCE", "FRAMEWORKS"]

FRAMEWORKS: dict[str, Framework] = {**others.FRAMEWORKS, **python.FRAMEWORKS, **node.FRAMEWORKS}

PRECEDENCE = [
    "rails",
    "django",
    "laravel",
    "symfony",
    "phoenix",
    "springboot",
    "aspnetcore",
    "nextjs",
    "nuxt",
    "react-router",
    "remix",
    "sveltekit",
    "astro",
    "gatsby",
    "docusaurus",
    "eleventy",
    "angular",
    "vuecli",
    "nestjs",
    "fastapi",
    "flask",
    "gin",
    "echo",
    "fiber",
    "chi",
    "axum",
    "actix",
    "fastify",
    "hono",
    "koa",
    "express",
    "go",
    "rust",
    "jekyll",
    "hugo",
    "cra",
    "vite",
    "python",
    "node",
    "php",
    "static",
    "dockerfile",
    "custom",
]
assert sorted(PRECEDENCE) == sorted(FRAMEWORKS), "every framework has exactly one place in PRECEDENCE"

LOOKED_FOR = (
    "package.json, requirements.txt / pyproject.toml / Pipfile, manage.py, Gemfile, composer.json, "
    "go.mod, Cargo.toml, pom.xml / build.gradle, *.csproj, mix.exs, a Hugo or Jekyll config, "
    "index.html, Dockerfile, a start command in lightfold.toml or a Procfile"
)
NODE_ENV_FILES = (
    "server.js",
    "index.js",
    "app.js",
    "main.js",
    "src/index.ts",
    "src/index.js",
    "src/server.ts",
    "src/server.js",
    "src/app.ts",
    "src/app.js",
    "src/main.ts",
    "prisma/schema.prisma",
)


MAX_HINT_FOLDERS = 30  # a failed detection looks into this many subfolders for apps, no more


class NothingDetected(LightfoldError):
    """No framework matched (exit code 1)."""


def detect(path: Path) -> Detection:
    """Detect the framework, package manager and deploy plan of the project at `path`."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"{path} is not a directory", "pass the project directory: lightfold detect PATH")
    project = Project(root)
    manifest = read_manifest(root)  # first: a broken lightfold.toml or Procfile is what to fix
    candidates: list[tuple[int, Framework, Match]] = []
    for rank, fid in enumerate(PRECEDENCE, 1):
        fw = FRAMEWORKS[fid]
        match = fw.match(project)
        if match.ok or match.rejected:
            candidates.append((rank, fw, match))
    matched = [c for c in candidates if c[2].ok]
    if not matched:
        raise _nothing(project, candidates)
    rank, fw, match = matched[0]
    tc = _toolchain(project, fw)
    plan = fw.plan(project, match, tc)
    replaced = _project_commands(plan, manifest, fw, tc)
    detection = _assemble(project, fw, match, tc, plan, candidates)
    _project_settings(project, detection, manifest, replaced)
    return detection


def _project_commands(plan: Plan, m: Manifest, fw: Framework, tc: Toolchain) -> list[str]:
    """lightfold.toml's and the Procfile's start, build and release replace the plan's (before the
    Detection is assembled, so its checks and start_exec see them). Says what was replaced."""
    replaced = []
    if m.start and plan.static:
        plan.warnings.append(f"{m.source_of('start')} sets a start command, but this is a static site "
                             "(nginx serves its files): the start command is not used")
    elif m.start and not (m.source_of("start") == PROCFILE and plan.variant == "procfile"):
        start = m.start
        if m.source_of("start") == PROCFILE:  # Heroku's Procfiles bind every address
            start = python.rebind(start, tc) if fw.runtime == "python" else python.bind_loopback(start)
        if plan.start and plan.start != start:
            replaced.append(f"start from {m.source_of('start')} replaces the detected {plan.start!r}")
        plan.start = start
    for key in ("build", "release"):
        value = getattr(m, key)
        if value:
            if getattr(plan, key) and getattr(plan, key) != value:
                replaced.append(f"{key} from {m.source_of(key)} replaces the detected {getattr(plan, key)!r}")
            setattr(plan, key, value)
    return replaced


def _project_settings(p: Project, d: Detection, m: Manifest, replaced: list[str]) -> None:
    """The rest of the project file: health, storage, processes, cron, the release time limit, and
    what `--explain` shows about them; the SQLite hint."""
    d.manifest_sources = list(m.sources)
    d.manifest_keys = dict(m.keys)
    if m.health_path:
        d.health_path = m.health_path
    d.health_status, d.health_timeout, d.health_host = m.health_status, m.health_timeout, m.health_host
    if m.release_timeout:
        d.release_timeout = m.release_timeout
    d.storage, d.processes, d.cron = list(m.storage), list(m.processes), list(m.cron)
    d.databases = list(m.databases)
    d.signals += replaced  # `--explain` lists manifest_keys apart
    if d.static and (d.processes or d.cron):
        d.warnings.append("this is a static site (no runtime on the server): its processes and cron jobs "
                          "have nothing to run with — deploy it as an app with a start command instead")
    warnings, signals = sqlite.hints(p, d.framework, d.storage)
    d.warnings += warnings
    d.signals += signals


def _toolchain(p: Project, fw: Framework) -> Toolchain:
    if fw.runtime == "node":
        return node_toolchain(p)
    if fw.runtime == "python":
        return python_toolchain(p)
    lock = {
        "ruby": ("bundler", "Gemfile.lock"),
        "php": ("composer", "composer.lock"),
        "go": ("go", "go.sum"),
        "rust": ("cargo", "Cargo.lock"),
        "elixir": ("mix", "mix.lock"),
        "dotnet": ("dotnet", "packages.lock.json"),
    }.get(fw.runtime)
    if lock is None:
        return Toolchain(manager=None)
    manager, lockfile = lock
    present = lockfile if p.exists(lockfile) else None
    return simple_toolchain(manager, present, f"lockfile {lockfile}" if present else f"{manager} (no lockfile)")


def _assemble(p: Project, fw: Framework, match: Match, tc: Toolchain, plan: Plan, candidates: list) -> Detection:
    version = plan.runtime_version or runtime_version(p, fw.runtime, [tc.workspace_root] if tc.workspace_root else None)
    language = fw.language
    if fw.runtime == "node":
        language = "typescript" if p.exists("tsconfig.json") or "typescript" in p.node_deps else "javascript"
    _add_asset_build(p, fw, plan)
    if not plan.static and plan.health_path == "/":
        plan.health_path = _health_route(p, fw) or "/"
    warnings = list(dict.fromkeys(tc.warnings + plan.warnings))
    if fw.id in ("node", "python") and workspace_members(p.root):
        apps = _subfolder_apps(p)
        if apps:
            warnings.append(
                f"this is a workspace root; its apps are {', '.join(apps)}: point PATH at the one to deploy"
            )
    if plan.static:
        plan.start = None
    elif plan.start is None and fw.id != "dockerfile":
        warnings.append("no start command could be derived: set start in lightfold.toml (or deploy.start_command)")

    env_required = set(plan.env_required)
    env_optional = set(plan.env_optional)
    if fw.runtime == "node":
        req, opt = envvars.scan(p, NODE_ENV_FILES)
        env_required |= set(req)
        env_optional |= set(opt)
    example = others._env_example(p)
    env_required |= set(example) & envvars.ALWAYS_REQUIRED
    env_optional |= set(example)
    env_optional -= env_required | envvars.PLATFORM_VARS

    dockerfile = others.dockerfile_name(p)
    signals = list(match.evidence) + tc.evidence
    if version:
        signals.append(f"runtime version {version[0]} from {version[1]}")
    if dockerfile:
        signals.append(f"{dockerfile} present")

    explain = []
    winner_rank = next(r for r, f, _ in candidates if f is fw)
    for rank, f, m in candidates:
        won = f is fw
        if won:
            reason = "highest precedence among the matches"
        elif m.rejected:
            reason = m.rejected
        else:
            reason = f"matched, but {fw.id} has higher precedence (#{winner_rank} vs #{rank})"
        explain.append(Candidate(f.id, f.name, rank, m.ok, won, list(m.evidence), reason))

    own_pm = (plan.package_manager or tc.manager) == tc.manager  # the toolchain's version is about it
    return Detection(
        framework=fw.id,
        framework_name=fw.name,
        language=language,
        runtime=fw.runtime,
        runtime_version=version[0] if version else None,
        runtime_version_source=version[1] if version else None,
        package_manager=plan.package_manager or tc.manager,
        install=plan.install,
        build=plan.build,
        start=plan.start,
        release=plan.release,
        port=None if plan.static else plan.port,
        health_path=plan.health_path,
        static=plan.static,
        output_dir=plan.output_dir if plan.static else None,
        variant=plan.variant,
        env_required=sorted(env_required),
        env_optional=sorted(env_optional),
        warnings=warnings,
        signals=signals,
        app_root=str(p.root),
        workspace_root=str(tc.workspace_root) if tc.workspace_root else None,
        app_subdir=tc.app_subdir if tc.workspace_root else None,
        has_dockerfile=dockerfile is not None,
        dockerfile_port=others.dockerfile_port(p),
        extra_runtimes=list(dict.fromkeys(plan.extra_runtimes)),
        package_manager_version=tc.version if own_pm else None,
        package_manager_version_source=tc.version_source if own_pm else None,
        start_exec=node.direct_start(p, tc, plan.start, bool(tc.workspace_root)) if (
            fw.runtime == "node" and not plan.static) else {},
        explain=explain,
        fixes=list(plan.fixes),
        blocked=plan.blocked,
    )


HEALTH_ROUTE = re.compile(
    r"""(?:\.(?:get|all|route|GET|Get|HandleFunc|Handle)|route)\(\s*["'`]((?:/api)?/(?:healthz?|health-check|ping|up))["'`]"""
)


def _health_route(p: Project, fw: Framework) -> str | None:
    """A health-check route the server declares (`app.get("/health")`, `r.GET("/healthz")`)."""
    if fw.runtime == "node":
        files = [f for f in p.files if f.endswith((".js", ".mjs", ".cjs", ".ts", ".mts")) and f.count("/") <= 2]
    elif fw.runtime in ("go", "rust"):
        files = [f for f in p.files if f.endswith((".go", ".rs"))]
    else:
        return None
    for rel in files[:200]:
        m = HEALTH_ROUTE.search(p.text(rel) or "")
        if m:
            return m.group(1)
    return None


def _add_asset_build(p: Project, fw: Framework, plan: Plan) -> None:
    """A non-Node app with a package.json build script (Tailwind, esbuild, an embedded SPA): run the
    JS install and build first, so collectstatic, go:embed or the asset pipeline find the output."""
    if fw.runtime in ("node", "static", "docker") or "node" in plan.extra_runtimes:
        return
    if p.package_json is None or "build" not in p.scripts:
        return
    tc = node_toolchain(p)
    plan.extra_runtimes.append("node")
    plan.install = " && ".join(filter(None, [plan.install, tc.node_install()]))
    plan.build = " && ".join(filter(None, [tc.run("build"), plan.build]))
    plan.warnings.extend(w for w in tc.warnings if "no lockfile" not in w)


def _subfolder_apps(p: Project) -> list[str]:
    """'apps/web (nextjs)' for each workspace member, or each top-level folder, that holds an app."""
    folders = workspace_members(p.root) or [
        p.root / n for n in p.listdir() if not n.startswith(".") and n not in SKIP_DIRS and (p.root / n).is_dir()
    ]
    hints = []
    for sub in folders[:MAX_HINT_FOLDERS]:
        sp = Project(sub)
        fid = next((fid for fid in PRECEDENCE[:-2] if FRAMEWORKS[fid].match(sp).ok), None)
        if fid:
            hints.append(f"{sub.relative_to(p.root).as_posix()} ({fid})")
    return hints


def _nothing(p: Project, candidates: list) -> NothingDetected:
    details = [f"{f.id}: {m.rejected}" for _, f, m in candidates if m.rejected]
    hints = _subfolder_apps(p)
    if len(hints) > 8:
        hints = hints[:8] + [f"{len(hints) - 8} more"]
    where = f"; apps found in subfolders: {', '.join(hints)} — run `lightfold detect <subfolder>`" if hints else ""
    return NothingDetected(
        f"no supported framework found in {p.root} (looked for {LOOKED_FOR}){where}",
        "point PATH at the app's folder, or say how to start it in lightfold.toml: start = \"./server --port $PORT\" "
        "(and build = \"...\"); lightfold then installs no runtime for it",
        details=details,
    )
