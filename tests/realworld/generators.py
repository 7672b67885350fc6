"""Apps none of us wrote, made at test time by each framework's own generator from the registries
this host reaches (the npm registry, PyPI). Where a generator fetches its template from elsewhere
(GitHub), the app is that framework's documented minimal project, written here, and its `note` says so.

Each generator writes a project into an empty directory and commits it as a user's git repository
would hold it (lockfile included, made by the app's own package manager; node_modules ignored).
Nothing generated is edited unless its `note` says so.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.apps import commit, git

TIMEOUT = 300


@dataclass(frozen=True)
class App:
    name: str  # also the target's suffix
    framework: str  # what `lightfold detect` must name
    pm: str
    make: Callable[[Path], None]
    note: str = ""  # how the app was made when not by its generator as is
    check_path: str = "/"  # a path the live app serves with 200
    expect: str = ""  # a piece of that answer's body


def run(cwd: Path, *argv: str, timeout: int = TIMEOUT) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def npx(cwd: Path, package: str, *argv: str) -> str:
    """A generator or package manager through the host's npm (nothing installed globally)."""
    return run(cwd, "npm", "exec", "--yes", f"--package={package}", "--", *argv)


def _git_commit(project: Path, message: str) -> None:
    gitignore = project / ".gitignore"
    if not gitignore.exists() or "node_modules" not in gitignore.read_text():
        with gitignore.open("a") as f:
            f.write("\nnode_modules/\n")
    git(project, "init", "-q", "-b", "main")
    commit(project, message)


def _generated(project: Path, name: str) -> Path:
    """Generators write into a new directory named `name`: move its content to `project`."""
    made = project / name
    for child in made.iterdir():
        child.rename(project / child.name)
    made.rmdir()
    return project


# -- node --------------------------------------------------------------------------------------


def vite_react_npm(project: Path) -> None:
    npx(project, "create-vite@latest", "create-vite", "app", "--template", "react", "--no-interactive")
    _generated(project, "app")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "npm create vite (react)")


def vite_vue_pnpm(project: Path) -> None:
    npx(project, "create-vite@latest", "create-vite", "app", "--template", "vue", "--no-interactive")
    _generated(project, "app")
    npx(project, "pnpm@9", "pnpm", "install", "--lockfile-only")
    _git_commit(project, "pnpm create vite (vue)")


def sveltekit_npm(project: Path) -> None:
    """`sv create` as is: its default adapter is adapter-auto, which builds no Node server."""
    npx(project, "sv@latest", "sv", "create", "app", "--template", "minimal", "--types", "ts",
        "--no-add-ons", "--no-install")
    _generated(project, "app")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "npx sv create")


def express_generator_yarn(project: Path) -> None:
    npx(project, "express-generator@4", "express", "--no-view", "app")
    _generated(project, "app")
    npx(project, "yarn@1", "yarn", "install", "--ignore-scripts", "--non-interactive")
    _git_commit(project, "npx express-generator; yarn install")


FASTIFY_SERVER = """\
// Fastify's documented getting-started server (fastify.dev/docs/latest/Guides/Getting-Started),
// listening on PORT as a deployed app does.
import Fastify from 'fastify'
const fastify = Fastify({ logger: true })
fastify.get('/', async () => ({ hello: 'world' }))
await fastify.listen({ port: Number(process.env.PORT || 3000), host: '127.0.0.1' })
"""


def fastify_npm(project: Path) -> None:
    """create-fastify is fetched from the registry but its template is in the package: we still use
    the documented minimal server, so the app is the one the docs show."""
    (project / "package.json").write_text(json.dumps({
        "name": "fastify-app", "version": "1.0.0", "private": True, "type": "module",
        "scripts": {"start": "node server.js"}, "dependencies": {"fastify": "^5"},
    }, indent=2) + "\n")
    (project / "server.js").write_text(FASTIFY_SERVER)
    run(project, "npm", "install", "--package-lock-only", "--no-audit", "--no-fund")
    _git_commit(project, "fastify getting started")


HONO_SERVER = """\
// create-hono's nodejs template, written out: create-hono downloads its templates from GitHub,
// which this machine does not reach.
import { serve } from '@hono/node-server'
import { Hono } from 'hono'

const app = new Hono()
app.get('/', (c) => c.text('Hello Hono!'))

serve({ fetch: app.fetch, port: Number(process.env.PORT || 3000) }, (info) => {
  console.log(`Server is running on http://localhost:${info.port}`)
})
"""


def hono_npm(project: Path) -> None:
    (project / "package.json").write_text(json.dumps({
        "name": "hono-app", "type": "module", "scripts": {"start": "node src/index.js"},
        "dependencies": {"@hono/node-server": "^1", "hono": "^4"},
    }, indent=2) + "\n")
    (project / "src").mkdir()
    (project / "src/index.js").write_text(HONO_SERVER)
    run(project, "npm", "install", "--package-lock-only", "--no-audit", "--no-fund")
    _git_commit(project, "create-hono nodejs template, written out")


def astro_npm(project: Path) -> None:
    """create-astro fetches its templates from GitHub: Astro's documented minimal project
    (docs.astro.build, "Install Astro manually"), with Astro 5 (Node 20 supported)."""
    (project / "package.json").write_text(json.dumps({
        "name": "astro-app", "type": "module", "version": "0.0.1",
        "scripts": {"dev": "astro dev", "build": "astro build", "preview": "astro preview"},
        "dependencies": {"astro": "^5"},
    }, indent=2) + "\n")
    (project / "astro.config.mjs").write_text(
        "// @ts-check\nimport { defineConfig } from 'astro/config';\n\nexport default defineConfig({});\n")
    (project / "src/pages").mkdir(parents=True)
    (project / "src/pages/index.astro").write_text(
        "---\n---\n<html lang=\"en\">\n  <head><meta charset=\"utf-8\" /><title>Astro</title></head>\n"
        "  <body><h1>Astro</h1></body>\n</html>\n")
    run(project, "npm", "install", "--package-lock-only", "--no-audit", "--no-fund")
    _git_commit(project, "astro manual install")


# -- python ------------------------------------------------------------------------------------


# What a user with a current Python on their laptop gets: Python 3.13 (this host has one that uv
# finds; Debian 13's python3 is 3.13; on Debian 12, whose python3 is 3.11, lightfold builds 3.13:
# issue 12, class 1).
LAPTOP_PYTHON = "3.13"


def _uv_venv(where: Path, *packages: str) -> Path:
    """A venv of LAPTOP_PYTHON with `packages`, made by uv (a scratch uv project beside the app)."""
    scratch = where / "gen-uv"
    scratch.mkdir()
    run(scratch, "uv", "init", "-q", "--app", "--vcs", "none", "--name", "gen", "--python", LAPTOP_PYTHON,
        "--no-workspace", ".")
    run(scratch, "uv", "add", "-q", *packages)
    return scratch / ".venv"


def django_pip(project: Path) -> None:
    """`django-admin startproject` as is (Django 6, on Python 3.13), plus the requirements.txt a user
    writes (Django, gunicorn)."""
    venv = _uv_venv(project.parent, "django", "gunicorn")
    run(project, str(venv / "bin/django-admin"), "startproject", "mysite", ".")
    freeze = run(project, "uv", "pip", "freeze", "--python", str(venv / "bin/python")).splitlines()
    keep = [line for line in freeze if line.lower().startswith(("django==", "gunicorn==", "asgiref==", "sqlparse=="))]
    (project / "requirements.txt").write_text("\n".join(keep) + "\n")
    (project / ".gitignore").write_text("__pycache__/\ndb.sqlite3\n")
    git(project, "init", "-q", "-b", "main")
    commit(project, "django-admin startproject")


FASTAPI_MAIN = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def read_root():
    return {"Hello": "World"}
"""


def fastapi_uv(project: Path) -> None:
    """`uv init --app` then `uv add fastapi uvicorn`, with FastAPI's first-steps main.py; uv pins the
    laptop's Python (.python-version 3.13, requires-python >=3.13)."""
    run(project, "uv", "init", "--app", "--name", "fastapi-app", "--python", LAPTOP_PYTHON, "--no-workspace", ".")
    run(project, "uv", "add", "fastapi", "uvicorn")
    (project / "main.py").write_text(FASTAPI_MAIN)
    git(project, "init", "-q", "-b", "main")
    commit(project, "uv init; uv add fastapi uvicorn")


FLASK_APP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello_world():
    return "<p>Hello, World!</p>"
"""


def flask_pip(project: Path) -> None:
    """Flask's quickstart app (flask.palletsprojects.com/quickstart) with gunicorn, as its deploy docs say."""
    (project / "app.py").write_text(FLASK_APP)
    (project / "requirements.txt").write_text("flask\ngunicorn\n")
    (project / ".gitignore").write_text("__pycache__/\n")
    git(project, "init", "-q", "-b", "main")
    commit(project, "flask quickstart")


def static_html(project: Path) -> None:
    (project / "index.html").write_text(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Plain</title></head>"
        "<body><h1>Plain HTML</h1></body></html>\n")
    (project / "about.html").write_text("<!doctype html>\n<title>About</title><p>About page</p>\n")
    git(project, "init", "-q", "-b", "main")
    commit(project, "plain html")


# The default suite runs DEFAULT; `LIGHTFOLD_REALWORLD=all` runs every app.
DEFAULT = [
    App("html", "static", "none", static_html, expect="About page", check_path="/about"),
    App("flask", "flask", "pip", flask_pip, note="Flask quickstart app, written out", expect="Hello, World!"),
    App("react", "vite", "npm", vite_react_npm, check_path="/some/client/route", expect='<div id="root">'),
]
NODE = [
    App("vue", "vite", "pnpm", vite_vue_pnpm, check_path="/client/route", expect='<div id="app">'),
    App("svelte", "sveltekit", "npm", sveltekit_npm),
    App("express", "express", "yarn", express_generator_yarn, expect="Express"),
    App("fastify", "fastify", "npm", fastify_npm, note="Fastify getting-started server", expect="world"),
    App("hono", "hono", "npm", hono_npm, note="create-hono's nodejs template, written out (GitHub)",
        expect="Hello Hono!"),
    App("astro", "astro", "npm", astro_npm, note="Astro manual install (create-astro needs GitHub)",
        expect="<h1>Astro</h1>"),
]
# fastapi first: its configure on the new (Debian 12) machine is the one that builds Python 3.13 (in the table).
PYTHON = [
    App("fastapi", "fastapi", "uv", fastapi_uv, note="uv init --app (Python 3.13) + FastAPI first-steps main.py",
        expect="World"),
    App("django", "django", "pip", django_pip, expect="django"),
]
