"""Apps none of us wrote, made at test time by each framework's own generator from the registries
this host reaches (the npm registry, PyPI). Where a generator fetches its template from elsewhere
(GitHub), the app is that framework's documented minimal project, written here, and its `note` says so.

Each generator writes a project into an empty directory and commits it as a user's git repository
would hold it (lockfile included, made by the app's own package manager; node_modules ignored).
Nothing generated is edited unless its `note` says so.
"""

from __future__ import annotations

import json
import re
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


def _next_without_google_fonts(project: Path) -> None:
    """create-next-app's layout loads Geist through next/font/google, which downloads the fonts at
    build time (the open internet): the layout keeps everything but those fonts."""
    layout = project / "app/layout.tsx"
    src = layout.read_text()
    lines = [line for line in src.splitlines() if "next/font/google" not in line]
    src = "\n".join(lines) + "\n"
    src = re.sub(r"const geist\w* = Geist\w*\(\{.*?\}\);\n\n?", "", src, flags=re.S)
    src = re.sub(r"\$\{geist\w*\.variable\} ?", "", src)
    layout.write_text(src)


def _create_next(project: Path, manager: str) -> None:
    npx(project, "create-next-app@latest", "create-next-app", "my-app", "--yes", f"--use-{manager}",
        "--skip-install", "--disable-git", "--no-agents-md")
    _generated(project, "my-app")
    _next_without_google_fonts(project)


def next_npm(project: Path) -> None:
    _create_next(project, "npm")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "npx create-next-app --yes (layout without next/font/google)")


def next_export_pnpm(project: Path) -> None:
    """create-next-app with pnpm, then the config line of Next's static-export guide (`output:
    'export'`): the app builds to out/ and is served as static files. The template's
    cacheComponents and partialPrefetching go: Next refuses them in export mode ("PPR cannot be
    enabled in export mode"; lightfold's detect says so)."""
    _create_next(project, "pnpm")
    config = project / "next.config.ts"
    src = config.read_text().replace("const nextConfig: NextConfig = {\n",
                                     "const nextConfig: NextConfig = {\n  output: 'export',\n", 1)
    config.write_text(re.sub(r"\n\s*(cacheComponents|partialPrefetching): true,", "", src))
    assert "output: 'export'" in config.read_text(), config.read_text()
    npx(project, "pnpm@10", "pnpm", "install", "--lockfile-only")
    _git_commit(project, "pnpm create next-app --yes; output: 'export'")


NUXT_APP_VUE = """\
<template>
  <div>
    <NuxtRouteAnnouncer />
    <NuxtWelcome />
  </div>
</template>
"""


def nuxt_npm(project: Path) -> None:
    """create-nuxt downloads its templates from GitHub: Nuxt's minimal starter (the `minimal`
    template: package.json, nuxt.config.ts, app/app.vue), written out."""
    (project / "package.json").write_text(json.dumps({
        "name": "nuxt-app", "type": "module", "private": True,
        "scripts": {"build": "nuxt build", "dev": "nuxt dev", "generate": "nuxt generate",
                    "preview": "nuxt preview", "postinstall": "nuxt prepare"},
        "dependencies": {"nuxt": "^4", "vue": "^3", "vue-router": "^4"},
    }, indent=2) + "\n")
    (project / "nuxt.config.ts").write_text(
        "// https://nuxt.com/docs/api/configuration/nuxt-config\nexport default defineNuxtConfig({\n"
        "  compatibilityDate: '2025-07-15',\n  devtools: { enabled: true }\n})\n")
    (project / "app").mkdir()
    (project / "app/app.vue").write_text(NUXT_APP_VUE)
    (project / ".gitignore").write_text(".output\n.data\n.nuxt\n.nitro\n.cache\ndist\nnode_modules\n.env\n")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "nuxt minimal starter, written out")


RR_FILES = {
    "react-router.config.ts": """\
import type { Config } from "@react-router/dev/config";

export default {
  ssr: true,
} satisfies Config;
""",
    "vite.config.ts": """\
import { reactRouter } from "@react-router/dev/vite";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [reactRouter()],
});
""",
    "app/routes.ts": """\
import { type RouteConfig, index } from "@react-router/dev/routes";

export default [index("routes/home.tsx")] satisfies RouteConfig;
""",
    "app/root.tsx": """\
import { Links, Meta, Outlet, Scripts, ScrollRestoration } from "react-router";

export function Layout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <Meta />
        <Links />
      </head>
      <body>
        {children}
        <ScrollRestoration />
        <Scripts />
      </body>
    </html>
  );
}

export default function App() {
  return <Outlet />;
}
""",
    "app/routes/home.tsx": """\
export function meta() {
  return [{ title: "New React Router App" }];
}

export default function Home() {
  return <h1>Welcome to React Router!</h1>;
}
""",
    "tsconfig.json": json.dumps({
        "include": ["**/*", "**/.server/**/*", "**/.client/**/*", ".react-router/types/**/*"],
        "compilerOptions": {
            "lib": ["DOM", "DOM.Iterable", "ES2022"], "types": ["node", "vite/client"], "target": "ES2022",
            "module": "ES2022", "moduleResolution": "bundler", "jsx": "react-jsx",
            "rootDirs": [".", "./.react-router/types"],
            "esModuleInterop": True, "verbatimModuleSyntax": True, "noEmit": True, "resolveJsonModule": True,
            "skipLibCheck": True, "strict": True,
        },
    }, indent=2) + "\n",
}


def react_router_npm(project: Path) -> None:
    """create-react-router downloads its default template from GitHub: that template's files
    (framework mode, SSR, react-router-serve), written out without its Tailwind styling."""
    (project / "package.json").write_text(json.dumps({
        "name": "react-router-app", "private": True, "type": "module",
        "scripts": {"build": "react-router build", "dev": "react-router dev",
                    "start": "react-router-serve ./build/server/index.js", "typecheck": "react-router typegen && tsc"},
        "dependencies": {"@react-router/node": "^7", "@react-router/serve": "^7", "isbot": "^5", "react": "^19",
                         "react-dom": "^19", "react-router": "^7"},
        "devDependencies": {"@react-router/dev": "^7", "@types/node": "^22", "@types/react": "^19",
                            "@types/react-dom": "^19", "typescript": "^5", "vite": "^7"},
    }, indent=2) + "\n")
    for rel, text in RR_FILES.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(text)
    (project / ".gitignore").write_text(".DS_Store\n.env\n/node_modules/\n/.react-router/\n/build/\n")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "create-react-router default template, written out")


def nest_npm(project: Path) -> None:
    npx(project, "@nestjs/cli@latest", "nest", "new", "app", "--skip-install", "--skip-git", "--package-manager", "npm")
    _generated(project, "app")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "npx @nestjs/cli new")


def vite_react_ts_yarn(project: Path) -> None:
    npx(project, "create-vite@latest", "create-vite", "app", "--template", "react-ts", "--no-interactive")
    _generated(project, "app")
    npx(project, "yarn@1", "yarn", "install", "--ignore-scripts", "--non-interactive")
    _git_commit(project, "yarn create vite (react-ts)")


def express_generator_pnpm(project: Path) -> None:
    npx(project, "express-generator@4", "express", "--view=ejs", "app")
    _generated(project, "app")
    npx(project, "pnpm@10", "pnpm", "install", "--lockfile-only")
    _git_commit(project, "npx express-generator --view=ejs; pnpm install")


def koa_generator_npm(project: Path) -> None:
    npx(project, "koa-generator", "koa2", "app")
    _generated(project, "app")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "npx koa-generator koa2")


def bun(cwd: Path, *argv: str) -> str:
    """bun from the npm registry (the `bun` package and its platform binary), through the host's npm."""
    return npx(cwd, "bun@latest", "bun", *argv)


BUN_SERVER = """\
// Bun's HTTP server quickstart (bun.com/docs/api/http): Bun.serve listens on $PORT when it is set.
const server = Bun.serve({
  routes: {
    "/": new Response("Bun!"),
  },
  fetch() {
    return new Response("Not Found", { status: 404 });
  },
});

console.log(`Listening on ${server.url}`);
"""


def bun_serve(project: Path) -> None:
    """`bun init -y` (a blank TypeScript project, "module": "index.ts"), its index.ts made the
    Bun.serve quickstart server."""
    bun(project, "init", "-y")
    (project / "index.ts").write_text(BUN_SERVER)
    _git_commit(project, "bun init -y; Bun.serve quickstart")


def vite_preact_bun(project: Path) -> None:
    bun(project, "create", "vite", "app", "--template", "preact", "--no-interactive")
    _generated(project, "app")
    bun(project, "install", "--ignore-scripts")
    _git_commit(project, "bun create vite (preact); bun install")


GO_MAIN = """\
// The net/http hello world of Go's docs, listening on $PORT (8080 when unset) as Cloud Run's and
// Heroku's Go samples do.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func handler(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "Hi there, I love %s!", r.URL.Path[1:])
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", handler)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
"""


def go_http(project: Path) -> None:
    """go.mod (what `go mod init example.com/hello` writes; go is not on this host) and main.go."""
    (project / "go.mod").write_text("module example.com/hello\n\ngo 1.19\n")
    (project / "main.go").write_text(GO_MAIN)
    git(project, "init", "-q", "-b", "main")
    commit(project, "go mod init; net/http hello")


def angular_npm(project: Path) -> None:
    """`ng new --defaults` of Angular CLI 20 (21 needs Node 22; the server's Node is 20): a static SPA."""
    npx(project, "@angular/cli@20", "ng", "new", "app", "--defaults", "--skip-install", "--skip-git")
    _generated(project, "app")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "npx @angular/cli@20 new --defaults")


def docusaurus_npm(project: Path) -> None:
    npx(project, "create-docusaurus@latest", "create-docusaurus", "site", "classic", "--skip-install", "--javascript")
    _generated(project, "site")
    run(project, "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund")
    _git_commit(project, "npx create-docusaurus classic")


def vite_solid_pnpm(project: Path) -> None:
    npx(project, "create-vite@latest", "create-vite", "app", "--template", "solid-ts", "--no-interactive")
    _generated(project, "app")
    npx(project, "pnpm@10", "pnpm", "install", "--lockfile-only")
    _git_commit(project, "pnpm create vite (solid-ts)")


def create_vue_yarn(project: Path) -> None:
    """`npm create vue -- --default --router` (its engines ask for Node 22.18+ or 24.12+: the
    server's Node is that major, not the default 20), installed with yarn classic (told to ignore
    engines: this host's Node is 20)."""
    npx(project, "create-vue@latest", "create-vue", "app", "--default", "--router")
    _generated(project, "app")
    npx(project, "yarn@1", "yarn", "install", "--ignore-scripts", "--ignore-engines", "--non-interactive")
    _git_commit(project, "npm create vue --default --router; yarn install")


def eleventy_npm(project: Path) -> None:
    """Eleventy has no generator: its quick start (11ty.dev/docs): `npm init -y`, `npm install
    @11ty/eleventy`, an index.md; the build script runs eleventy."""
    run(project, "npm", "init", "-y")
    package = json.loads((project / "package.json").read_text())
    package["scripts"] = {"build": "eleventy"}
    (project / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    run(project, "npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "@11ty/eleventy")
    (project / "index.md").write_text("# Heading\n\nHello from Eleventy.\n")
    _git_commit(project, "eleventy quick start")


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
# Frameworks with their own server build (only with LIGHTFOLD_REALWORLD=all).
SERVERS = [
    App("next", "nextjs", "npm", next_npm, note="create-next-app; layout without next/font/google (downloads fonts)",
        expect="To get started"),
    App("next-export", "nextjs", "pnpm", next_export_pnpm, expect="To get started",
        note="create-next-app + output: 'export' (static), less cacheComponents (a server feature)"),
    App("nuxt", "nuxt", "npm", nuxt_npm, note="Nuxt minimal starter, written out (create-nuxt needs GitHub)"),
    App("react-router", "react-router", "npm", react_router_npm,
        note="create-react-router default template, written out (GitHub)", expect="Welcome to React Router!"),
    App("nest", "nestjs", "npm", nest_npm, expect="Hello World!"),
]
# More package managers and small servers (only with LIGHTFOLD_REALWORLD=all).
MORE = [
    App("vite-yarn", "vite", "yarn", vite_react_ts_yarn, check_path="/client/route", expect='<div id="root">'),
    App("express-pnpm", "express", "pnpm", express_generator_pnpm, expect="Welcome to Express"),
    App("koa", "koa", "npm", koa_generator_npm, expect="Hello Koa 2!"),
    App("bun", "node", "bun", bun_serve, note="bun init + Bun.serve quickstart", expect="Bun!"),
    App("preact-bun", "vite", "bun", vite_preact_bun, check_path="/client/route", expect='<div id="app">'),
    App("go", "go", "go", go_http, note="net/http hello world reading PORT, written out", expect="Hi there"),
]
# Static sites of other generators (only with LIGHTFOLD_REALWORLD=all).
SITES = [
    App("angular", "angular", "npm", angular_npm, check_path="/client/route", expect="<app-root>"),
    App("docusaurus", "docusaurus", "npm", docusaurus_npm, check_path="/docs/intro/", expect="Tutorial Intro"),
    App("solid", "vite", "pnpm", vite_solid_pnpm, check_path="/client/route", expect='<div id="root">'),
    App("create-vue", "vite", "yarn", create_vue_yarn, check_path="/about", expect='<div id="app">'),
    App("eleventy", "eleventy", "npm", eleventy_npm, note="Eleventy quick start, written out (no generator)",
        expect="Hello from Eleventy."),
]
