"""Detection rules that need a purpose-built project: precedence and its explanation, package
manager and monorepo rules, warnings, runtime versions, skipped directories and speed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from lightfold.detect import NothingDetected, detect, traps
from lightfold.detect.pm import VENV_PREFIX
from lightfold.errors import UsageError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "detect"

REQUIRED_KEYS = {
    "framework",
    "language",
    "package_manager",
    "runtime_version",
    "install",
    "build",
    "start",
    "port",
    "health_path",
    "static",
    "output_dir",
    "env_required",
    "warnings",
    "signals",
    "app_root",
    "runtime",
    "has_dockerfile",
    "dockerfile_port",
}


def make(root: Path, files: dict[str, str | dict]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content) if isinstance(content, dict) else content)
    return root


def candidate(d, framework: str):
    return next(c for c in d.explain if c.framework == framework)


# -- precedence and --explain -------------------------------------------------------------------


def test_next_only_in_a_script_string_is_rejected_and_explained() -> None:
    d = detect(FIXTURES / "next-in-script-only")
    assert d.framework == "vite"
    nextjs = candidate(d, "nextjs")
    assert not nextjs.matched and "only in a package.json script" in nextjs.reason


@pytest.mark.parametrize("fixture, winner", [("rails", "rails"), ("django-pip", "django"), ("laravel", "laravel")])
def test_backend_framework_beats_its_asset_package_json(fixture: str, winner: str) -> None:
    d = detect(FIXTURES / fixture)
    assert d.framework == winner
    assert [c.framework for c in d.explain if c.won] == [winner]
    # the package.json was seen and lost: by precedence, or because it holds no server of its own
    node_candidates = [c for c in d.explain if c.framework in ("node", "vite", "express")]
    assert node_candidates and not any(c.won for c in node_candidates)
    for c in node_candidates:
        assert f"{winner} has higher precedence" in c.reason or not c.matched


def test_commented_out_static_export_is_a_server_and_says_why() -> None:
    d = detect(FIXTURES / "nextjs-commented-export")
    assert (d.static, d.output_dir) == (False, None)
    assert any("commented out" in s for s in d.signals)


@pytest.mark.parametrize(
    "output, static",
    [
        ("isProd ? 'export' : undefined", True),
        ("process.env.NODE_ENV === 'production' ? 'export' : undefined", True),
        ("process.env.VERCEL ? undefined : 'export'", True),
        ("process.env.NEXT_EXPORT ? 'export' : undefined", False),
        ("process.env.EXPORT_MODE === 'true' ? 'export' : undefined", False),
        ("getOutput() ? 'export' : undefined", False),
    ],
)
def test_conditional_static_export_is_evaluated_for_a_production_build(
    tmp_path: Path, output: str, static: bool
) -> None:
    make(
        tmp_path,
        {
            "package.json": {"dependencies": {"next": "14"}, "scripts": {"build": "next build"}},
            "next.config.js": "const isProd = process.env.NODE_ENV === 'production'\n"
            f"module.exports = {{ output: {output}, trailingSlash: true }}\n",
        },
    )
    d = detect(tmp_path)
    assert d.static is static
    assert any("output" in s for s in d.signals)


@pytest.mark.parametrize("option, warned", [("cacheComponents: true", True), ("// cacheComponents: true", False)])
def test_static_export_with_cache_components_says_next_refuses_it(tmp_path: Path, option: str, warned: bool) -> None:
    """create-next-app 16 writes cacheComponents: true; with output: 'export' Next stops the build."""
    make(
        tmp_path,
        {
            "package.json": {"dependencies": {"next": "16"}, "scripts": {"build": "next build"}},
            "next.config.ts": f"export default {{\n  output: 'export',\n  {option},\n}};\n",
        },
    )
    d = detect(tmp_path)
    assert (d.static, d.output_dir) == (True, "out")
    assert any("PPR cannot be enabled in export mode" in w for w in d.warnings) is warned


@pytest.mark.parametrize("export", [False, True])
def test_next_base_path_is_where_the_health_check_and_the_static_files_go(tmp_path: Path, export: bool) -> None:
    """basePath '/docs': the Next server answers 404 at / and a static export links /docs/_next/...."""
    output = "output: 'export', " if export else ""
    make(
        tmp_path,
        {
            "package.json": {"dependencies": {"next": "16"}, "scripts": {"build": "next build", "start": "next start"}},
            "next.config.js": f"module.exports = {{ {output}basePath: '/docs' }}\n",
        },
    )
    d = detect(tmp_path)
    assert any("basePath '/docs'" in f for f in d.fixes)
    if export:
        assert (d.static, d.output_dir, d.health_path) == (True, ".lightfold-static", "/docs/")
        assert d.build.endswith("&& mkdir -p .lightfold-static && mv out .lightfold-static/docs")
    else:
        assert (d.static, d.health_path) == (False, "/docs")


def test_next_export_under_base_path_serves_the_files_where_the_pages_link_them(tmp_path: Path) -> None:
    build, out, _ = traps.next_export_under_base_path("next.config.js", "true", "out", "/a/b")
    (tmp_path / "out/_next").mkdir(parents=True)
    (tmp_path / "out/index.html").write_text('<script src="/a/b/_next/x.js">')
    subprocess.run(["sh", "-c", build], cwd=tmp_path, check=True)
    assert (tmp_path / out / "a/b/index.html").exists() and (tmp_path / out / "a/b/_next").is_dir()


@pytest.mark.parametrize("preset, fixed", [("vercel", True), ("cloudflare-pages", True), ("node-server", False)])
def test_nuxt_platform_preset_is_built_as_node_server(tmp_path: Path, preset: str, fixed: bool) -> None:
    make(
        tmp_path,
        {
            "package.json": {"dependencies": {"nuxt": "^4"}, "scripts": {"build": "nuxt build"}},
            "nuxt.config.ts": f"export default defineNuxtConfig({{\n  nitro: {{ preset: '{preset}' }},\n}})\n",
        },
    )
    d = detect(tmp_path)
    assert d.start == "HOST=127.0.0.1 node .output/server/index.mjs"
    assert any(f"preset '{preset}'" in f for f in d.fixes) is fixed
    if fixed:  # the build's own sed, run on the project: the config now names node-server
        sed = d.build.split(" && ")[0]
        subprocess.run(["sh", "-c", sed], cwd=tmp_path, check=True)
        assert "nitro: { preset: 'node-server' }" in (tmp_path / "nuxt.config.ts").read_text()
        assert d.build.endswith("npm run build")


GO_MAIN = 'package main\n\nimport "net/http"\n\nfunc main() { http.ListenAndServe(":8080", nil) }\n'


@pytest.mark.parametrize("require, install", [("", None), ("require example.com/x v1.0.0\n", "go mod download")])
def test_a_go_module_downloads_only_what_it_requires(tmp_path: Path, require: str, install: str | None) -> None:
    make(tmp_path, {"go.mod": f"module example.com/hello\n\ngo 1.22\n{require}", "main.go": GO_MAIN})
    assert detect(tmp_path).install == install


def test_nodemon_start_script_runs_the_file_with_node(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": {"dependencies": {"express": "4"}, "scripts": {"start": "nodemon index.js"}},
            "index.js": "const app = require('express')()\napp.listen(process.env.PORT || 3000)\n",
        },
    )
    d = detect(tmp_path)
    assert d.start == "node index.js"
    assert any("nodemon" in w for w in d.warnings)


def test_bun_app_without_start_script_runs_its_dev_entry(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": {"dependencies": {"hono": "^4"}, "scripts": {"dev": "bun run --hot src/index.ts"}},
            "bun.lockb": "x",
            "src/index.ts": "import { Hono } from 'hono'\nconst app = new Hono()\nexport default app\n",
        },
    )
    d = detect(tmp_path)
    assert (d.framework, d.package_manager, d.start) == ("hono", "bun", "bun run src/index.ts")


def test_bun_init_project_runs_its_module_entry(tmp_path: Path) -> None:
    """`bun init` writes "module": "index.ts" and no start script; a Bun.serve server there is an app."""
    make(
        tmp_path,
        {
            "package.json": {"name": "b", "module": "index.ts", "devDependencies": {"@types/bun": "latest"}},
            "bun.lock": "{}",
            "index.ts": 'Bun.serve({ routes: { "/": new Response("Bun!") } });\n',
        },
    )
    d = detect(tmp_path)
    assert (d.framework, d.package_manager, d.start) == ("node", "bun", "bun index.ts")
    assert any('package.json "module"' in w for w in d.warnings)


def test_module_entry_in_typescript_is_not_a_node_entry_without_bun(tmp_path: Path) -> None:
    make(tmp_path, {"package.json": {"name": "lib", "module": "index.ts"}, "index.ts": "Bun.serve({})\n"})
    with pytest.raises(NothingDetected):
        detect(tmp_path)


def test_blazor_webassembly_is_a_static_site(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "Client.csproj": '<Project Sdk="Microsoft.NET.Sdk.BlazorWebAssembly">\n'
            "<PropertyGroup><TargetFramework>net8.0</TargetFramework></PropertyGroup></Project>\n",
        },
    )
    d = detect(tmp_path)
    assert (d.framework, d.variant, d.static, d.output_dir, d.start) == (
        "aspnetcore",
        "blazor-wasm",
        True,
        "out/wwwroot",
        None,
    )


def test_rust_binaries_in_src_bin(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "Cargo.toml": '[package]\nname = "svc"\nversion = "0.1.0"\n\n[dependencies]\naxum = "0.7"\n',
            "src/lib.rs": "pub fn app() {}\n",
            "src/bin/server.rs": 'fn main() { let _ = std::env::var("PORT"); }\n',
            "src/bin/migrate.rs": "fn main() {}\n",
        },
    )
    d = detect(tmp_path)
    assert (d.framework, d.start) == ("axum", "./target/release/server")
    assert any("several binaries" in w for w in d.warnings)


def test_rust_workspace_starts_the_binary_crate(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nresolver = "2"\n',
            "Cargo.lock": "version = 3\n",
            "crates/api/Cargo.toml": '[package]\nname = "api"\nversion = "0.1.0"\n\n[dependencies]\naxum = "0.7"\n',
            "crates/api/src/lib.rs": "pub fn router() {}\n",
            "crates/server/Cargo.toml": '[package]\nname = "server"\nversion = "0.1.0"\n\n'
            '[dependencies]\napi = { path = "../api" }\n',
            "crates/server/src/main.rs": 'fn main() { let _ = std::env::var("PORT"); }\n',
        },
    )
    d = detect(tmp_path)
    assert (d.framework, d.build, d.start) == (
        "axum",
        "cargo build --release --locked -p server",
        "./target/release/server",
    )


def test_dockerfile_next_to_a_framework_reports_both() -> None:
    d = detect(FIXTURES / "nextjs-dockerfile")
    assert (d.framework, d.has_dockerfile, d.dockerfile_port) == ("nextjs", True, 3000)
    assert candidate(d, "dockerfile").matched and not candidate(d, "dockerfile").won


def test_actix_in_dev_dependencies_does_not_make_an_axum_crate_actix() -> None:
    d = detect(FIXTURES / "rust-axum")
    assert d.framework == "axum"
    assert "actix" not in {c.framework for c in d.explain}


def test_to_json_is_one_serialisable_object_with_the_documented_keys() -> None:
    data = detect(FIXTURES / "express").to_json()
    assert set(data) >= REQUIRED_KEYS and "explain" not in data
    json.dumps(data)
    with_explain = detect(FIXTURES / "express").to_json(explain=True)
    assert with_explain["explain"][0]["won"] is True


# -- package managers and monorepos ---------------------------------------------------------------


def test_package_manager_field_decides_yarn_berry(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": {
                "name": "a",
                "packageManager": "yarn@4.1.1",
                "dependencies": {"express": "^4"},
                "scripts": {"start": "node index.js"},
            },
            "yarn.lock": "# yarn lockfile v1\n",
            "index.js": "require('express')().listen(process.env.PORT)\n",
        },
    )
    d = detect(tmp_path)
    assert (d.package_manager, d.install) == ("yarn-berry", "yarn install --immutable")


def test_several_lockfiles_pick_one_and_warn(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": {"name": "a", "dependencies": {"express": "^4"}, "scripts": {"start": "node i.js"}},
            "package-lock.json": {"lockfileVersion": 3},
            "pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
        },
    )
    d = detect(tmp_path)
    assert d.package_manager == "pnpm"
    assert any("several lockfiles" in w for w in d.warnings)


def test_no_lockfile_means_a_plain_install(tmp_path: Path) -> None:
    make(tmp_path, {"package.json": {"name": "a", "dependencies": {"next": "14.2.3"}}})
    d = detect(tmp_path)
    assert (d.install, d.build) == ("npm install", "npx next build")
    assert any("no lockfile" in w for w in d.warnings)


def test_workspace_walk_up_stops_at_the_git_root(tmp_path: Path) -> None:
    make(tmp_path, {"pnpm-workspace.yaml": "packages:\n  - 'repo/*'\n", "pnpm-lock.yaml": "lockfileVersion: '9.0'\n"})
    app = make(
        tmp_path / "repo" / "app",
        {
            "package.json": {"name": "a", "dependencies": {"koa": "^2"}, "scripts": {"start": "node app.js"}},
        },
    )
    (tmp_path / "repo" / ".git").mkdir()
    d = detect(app)
    assert (d.package_manager, d.workspace_root, d.install) == ("npm", None, "npm install")


def test_monorepo_app_reports_workspace_root_and_subdir() -> None:
    d = detect(FIXTURES / "monorepo-pnpm" / "apps" / "api")
    assert d.workspace_root == str(FIXTURES / "monorepo-pnpm")
    assert d.app_root == str(FIXTURES / "monorepo-pnpm" / "apps" / "api")
    assert d.app_subdir == "apps/api"
    assert any("pnpm" in s for s in d.signals)


def test_uv_workspace_member_uses_the_root_lockfile(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "ws"\nversion = "0"\n\n'
            '[tool.uv.workspace]\nmembers = ["services/*"]\n',
            "uv.lock": "version = 1\n",
            "services/api/pyproject.toml": '[project]\nname = "api"\nversion = "0"\n'
            'dependencies = ["fastapi", "uvicorn"]\n',
            "services/api/main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
        },
    )
    d = detect(tmp_path / "services" / "api")
    # the member has no lockfile of its own: the workspace root's uv.lock rules
    assert (d.package_manager, d.install) == ("uv", "cd ../.. && uv sync --frozen --no-dev")
    assert d.start == "uv run --no-sync uvicorn main:app --host 127.0.0.1 --port $PORT"


def test_pyproject_without_build_system_installs_its_dependencies(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "bot"\nversion = "0"\ndependencies = ["flask>=3", "gunicorn"]\n',
            "app.py": "from flask import Flask\napp = Flask(__name__)\n",
            "helpers.py": "",
        },
    )
    assert detect(tmp_path).install == VENV_PREFIX + ".venv/bin/pip install 'flask>=3' gunicorn"


def test_uv_lock_beats_poetry_lock_unless_poetry_owns_the_dependencies() -> None:
    assert detect(FIXTURES / "fastapi-uv-and-poetry").package_manager == "uv"
    assert detect(FIXTURES / "flask-poetry-and-uv").package_manager == "poetry"


# -- warnings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture, port", [("koa", "3000"), ("go-echo", "1323"), ("rust-actix", "8080")])
def test_hard_coded_port_is_a_warning(fixture: str, port: str) -> None:
    d = detect(FIXTURES / fixture)
    assert any("hard-coded port " + port in w and "PORT" in w for w in d.warnings), d.warnings


def test_misspelled_requirements_is_a_warning_and_still_installs() -> None:
    d = detect(FIXTURES / "flask-misspelled-requirements")
    assert any("requirments.txt" in w and "requirements.txt" in w for w in d.warnings)
    assert "-r requirments.txt" in d.install


def test_several_entry_points_warn_and_pick_the_conventional_file(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "requirements.txt": "fastapi\nuvicorn\n",
            "main.py": "from fastapi import FastAPI\napp = FastAPI()\n",
            "admin.py": "from fastapi import FastAPI\nadmin = FastAPI()\n",
        },
    )
    d = detect(tmp_path)
    assert d.start == ".venv/bin/uvicorn main:app --host 127.0.0.1 --port $PORT"
    assert any("several entry points" in w for w in d.warnings)


def test_no_application_object_means_no_placeholder_start(tmp_path: Path) -> None:
    make(tmp_path, {"requirements.txt": "fastapi==0.111.0\n", "README.md": "wip\n"})
    d = detect(tmp_path)
    assert d.framework == "fastapi" and d.start is None
    assert any("deploy.start_command" in w for w in d.warnings)


def test_sveltekit_adapter_auto_is_built_with_adapter_node(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": {"name": "s", "scripts": {"build": "vite build"},
                             "devDependencies": {"@sveltejs/kit": "^2", "@sveltejs/adapter-auto": "^3"}},
            "package-lock.json": "{}",
            "svelte.config.js": "import adapter from '@sveltejs/adapter-auto';\n"
            "export default { kit: { adapter: adapter() } };\n",
        },
    )
    d = detect(tmp_path)
    assert d.framework == "sveltekit" and d.warnings == []
    assert d.build == ("npm install --no-save --no-audit --no-fund @sveltejs/adapter-node@5 && "
                       r"""sed -i -E 's#@sveltejs/adapter-auto(["'"'"'])#@sveltejs/adapter-node\1#g' svelte.config.js"""
                       " && npm run build")
    assert d.start == "HOST=127.0.0.1 node build"
    assert d.fixes == ["SvelteKit: svelte.config.js uses @sveltejs/adapter-auto, which builds no Node server; "
                       "lightfold builds with @sveltejs/adapter-node instead (added in the release copy on the "
                       "server, your project is unchanged)"]
    assert d.fixes[0] in d.signals  # detect --explain shows it as evidence too


def test_sveltekit_adapter_in_vite_config_as_sv_create_writes_it(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": {"name": "s", "packageManager": "pnpm@9.15.9", "scripts": {"build": "vite build"},
                             "devDependencies": {"@sveltejs/kit": "^2", "@sveltejs/adapter-vercel": "^5"}},
            "vite.config.ts": "import adapter from '@sveltejs/adapter-vercel';\n"
            "export default defineConfig({ plugins: [sveltekit({ adapter: adapter() })] });\n",
        },
    )
    d = detect(tmp_path)
    assert d.build.startswith("pnpm add -D @sveltejs/adapter-node@5 && sed -i -E ")
    assert d.build.endswith("vite.config.ts && pnpm run build")
    assert "vite.config.ts uses @sveltejs/adapter-vercel" in d.fixes[0]


def test_sveltekit_adapter_node_major_follows_the_kit_major() -> None:
    from lightfold.detect.traps import adapter_node_package

    # adapter-node 5 peers kit ^2.4, 6 peers kit ^3 (npm refuses `latest` 6 next to kit 2)
    assert [adapter_node_package(m) for m in (2, 3, None, 9)] == [
        "@sveltejs/adapter-node@5", "@sveltejs/adapter-node@6", "@sveltejs/adapter-node", "@sveltejs/adapter-node"]


def test_sveltekit_node_and_static_adapters_need_no_fix(tmp_path: Path) -> None:
    make(tmp_path, {"package.json": {"name": "s", "devDependencies": {"@sveltejs/kit": "^2",
                                                                     "@sveltejs/adapter-node": "^5"}},
                    "svelte.config.js": "import adapter from '@sveltejs/adapter-node';\n"})
    d = detect(tmp_path)
    assert d.fixes == [] and "adapter-node" not in (d.build or "")


def test_sveltekit_fixed_build_rewrites_only_the_adapter_import(tmp_path: Path) -> None:
    """The build's sed, run for real on the config sv create writes."""
    import subprocess

    from lightfold.detect.pm import Toolchain
    from lightfold.detect.traps import sveltekit_node_build

    cfg = tmp_path / "vite.config.ts"
    cfg.write_text("import adapter from '@sveltejs/adapter-auto';\n// see @sveltejs/adapter-auto docs\n"
                   "export default { adapter: adapter() };\n")
    cmd = sveltekit_node_build(Toolchain("npm", "package-lock.json"), "vite.config.ts", "auto", None)
    sed = cmd.split(" && ", 1)[1]
    subprocess.run(["bash", "-c", sed], cwd=tmp_path, check=True)
    assert cfg.read_text().splitlines() == [
        "import adapter from '@sveltejs/adapter-node';", "// see @sveltejs/adapter-auto docs",
        "export default { adapter: adapter() };"]


def test_vite_without_index_html_is_not_a_spa(tmp_path: Path) -> None:
    make(tmp_path, {"package.json": {"name": "lib", "devDependencies": {"vite": "^5"}}})
    with pytest.raises(NothingDetected) as info:
        detect(tmp_path)
    assert any("vite" in line and "index.html" in line for line in info.value.details)


# -- python entry points ------------------------------------------------------------------------------


def test_django_project_module_comes_from_manage_py_not_a_placeholder(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "requirements.txt": "django>=5\n",
            "src/manage.py": "import os\n"
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings')\nimport django\n",
            "src/shop/settings.py": "WSGI_APPLICATION = 'shop.wsgi.application'\nALLOWED_HOSTS = []\n"
            "ROOT_URLCONF = 'shop.urls'\n",
            "src/shop/urls.py": "from django.urls import path\nurlpatterns = [path('healthz/', lambda r: None)]\n",
            "src/shop/wsgi.py": "from django.core.wsgi import get_wsgi_application\n"
            "application = get_wsgi_application()\n",
        },
    )
    d = detect(tmp_path)
    assert d.framework == "django"
    # ALLOWED_HOSTS = []: the start goes through lightfold's settings wrapper (below).
    assert d.start == traps.django_hosts_start(
        ".venv/bin/gunicorn --bind 127.0.0.1:$PORT --chdir src shop.wsgi:application", "shop.settings")
    assert d.release == traps.django_hosts_start(".venv/bin/python src/manage.py migrate --noinput", "shop.settings")
    assert "gunicorn" in d.install  # not a dependency: installed with the requirements
    assert d.health_path == "/healthz/"


DJANGO_MANAGE = "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings')\nimport django\n"
DJANGO_WSGI = ("import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings')\n"
               "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n")


@pytest.mark.parametrize("hosts, wsgi, fixed, warning", [
    ("ALLOWED_HOSTS = []", DJANGO_WSGI, True, None),                       # what startproject writes
    ("ALLOWED_HOSTS = ['shop.example.com']  # prod", DJANGO_WSGI, True, None),
    ("ALLOWED_HOSTS = ('a.example',)", DJANGO_WSGI, True, None),
    ("ALLOWED_HOSTS = ['*']", DJANGO_WSGI, False, None),                    # accepts any name already
    ("ALLOWED_HOSTS = os.environ['HOSTS'].split(',')", DJANGO_WSGI, False, None),  # the project decides
    ("ALLOWED_HOSTS = []\nALLOWED_HOSTS += ['x.example']", DJANGO_WSGI, False, None),
    ("ALLOWED_HOSTS = []", DJANGO_WSGI.replace("os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings')",
                                               "os.environ['DJANGO_SETTINGS_MODULE'] = 'site1.settings'"),
     False, "site1/wsgi.py forces its settings module"),
])
def test_django_allowed_hosts_trap(tmp_path: Path, hosts: str, wsgi: str, fixed: bool, warning: str | None):
    make(tmp_path, {"requirements.txt": "django\ngunicorn\n", "manage.py": DJANGO_MANAGE, "site1/__init__.py": "",
                    "site1/settings.py": f"import os\nDEBUG = False\n{hosts}\n"
                                         "WSGI_APPLICATION = 'site1.wsgi.application'\n",
                    "site1/wsgi.py": wsgi})
    d = detect(tmp_path)
    plain = ".venv/bin/gunicorn --bind 127.0.0.1:$PORT site1.wsgi:application"
    assert d.start == (traps.django_hosts_start(plain, "site1.settings") if fixed else plain)
    assert traps.runs_django_wrapper(d.start) is fixed
    assert any("ALLOWED_HOSTS in site1/settings.py" in f for f in d.fixes) == fixed
    if warning:
        assert any(warning in w and "add your domain to ALLOWED_HOSTS" in w for w in d.warnings), d.warnings
    assert not any("DEBUG = True" in w for w in d.warnings)


def test_a_django_sqlite_database_goes_through_the_wrapper_even_when_the_hosts_are_fine(tmp_path: Path):
    """startproject's DATABASES: a SQLite file in BASE_DIR, i.e. in the (read-only) release."""
    make(tmp_path, {"requirements.txt": "django\ngunicorn\n", "manage.py": DJANGO_MANAGE, "site1/__init__.py": "",
                    "site1/settings.py": "ALLOWED_HOSTS = ['*']\nWSGI_APPLICATION = 'site1.wsgi.application'\n"
                    "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': 'db.sqlite3'}}\n",
                    "site1/wsgi.py": DJANGO_WSGI})
    d = detect(tmp_path)
    assert d.start.startswith("LIGHTFOLD_DJANGO_SETTINGS=") and d.release.startswith("LIGHTFOLD_DJANGO_SETTINGS=")
    assert [f.split(":")[0] for f in d.fixes] == ["Django"] and "SQLite" in d.fixes[0]


def test_django_debug_true_is_a_warning(tmp_path: Path):
    make(tmp_path, {"requirements.txt": "django\n", "manage.py": DJANGO_MANAGE, "site1/__init__.py": "",
                    "site1/settings.py": "DEBUG = True\nALLOWED_HOSTS = []\n", "site1/wsgi.py": DJANGO_WSGI})
    d = detect(tmp_path)
    assert any(w.startswith("DEBUG = True in the settings") for w in d.warnings)


def test_flask_app_in_a_package_init(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "requirements.txt": "Flask\ngunicorn\n",
            "run.py": "from blog import app\napp.run(port=5000)\n",
            "blog/__init__.py": "from flask import Flask\napp = Flask(__name__)\nfrom blog import routes\n",
            "blog/routes.py": "from blog import app\n",
        },
    )
    assert detect(tmp_path).start == ".venv/bin/gunicorn --bind 127.0.0.1:$PORT blog:app"


def test_fastapi_app_built_by_a_project_function(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "requirements.txt": "fastapi==0.111.0\nuvicorn==0.29.0\n",
            "app/main.py": "from fastapi import FastAPI\n\n\ndef get_application() -> FastAPI:\n"
            "    return FastAPI()\n\n\napp = get_application()\n",
        },
    )
    assert detect(tmp_path).start == ".venv/bin/uvicorn app.main:app --host 127.0.0.1 --port $PORT"


# -- runtime versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files, runtime_version",
    [
        ({".nvmrc": "v18.19.0\n", "package.json": {"engines": {"node": ">=20"}}}, "18.19.0"),
        ({"package.json": {"engines": {"node": ">=20"}}}, ">=20"),
        ({".tool-versions": "nodejs 21.6.1\nruby 3.3.0\n", "package.json": {}}, "21.6.1"),
    ],
)
def test_node_version_sources_in_order(tmp_path: Path, files: dict, runtime_version: str) -> None:
    files["package.json"] = {
        **files["package.json"],
        "name": "x",
        "dependencies": {"express": "4"},
        "scripts": {"start": "node a.js"},
    }
    make(tmp_path, files)
    assert detect(tmp_path).runtime_version == runtime_version


# -- failure, speed, skipped directories ----------------------------------------------------------------


def test_nothing_detected_names_what_was_looked_for_and_the_subfolder_apps(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "README.md": "# fullstack\n",
            "backend/manage.py": "import django\n",
            "backend/requirements.txt": "django\n",
            "frontend/package.json": {"dependencies": {"next": "14"}},
        },
    )
    with pytest.raises(NothingDetected) as info:
        detect(tmp_path)
    message = str(info.value)
    assert "package.json" in message and "go.mod" in message and "start =" in info.value.fix
    assert "backend (django)" in message and "frontend (nextjs)" in message
    assert info.value.exit_code == 1


def test_workspace_root_points_at_its_apps() -> None:
    with pytest.raises(NothingDetected) as info:
        detect(FIXTURES / "monorepo-pnpm")
    assert "apps/api (express), apps/web (nextjs) — run `lightfold detect <subfolder>`" in str(info.value)


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        detect(tmp_path / "nope")


def test_dependency_folders_are_never_read_and_detection_is_fast(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": {"name": "a", "dependencies": {"express": "^4"}, "scripts": {"start": "node index.js"}},
            "package-lock.json": {"lockfileVersion": 3},
            "index.js": "require('express')().listen(process.env.PORT)\n",
        },
    )
    for i in range(150):  # a node_modules and a venv full of framework-looking files
        make(
            tmp_path / "node_modules" / f"pkg{i}",
            {"package.json": {"dependencies": {"next": "14"}}, "manage.py": "import django\n"},
        )
        make(tmp_path / ".venv" / "lib" / f"m{i}", {"app.py": "from flask import Flask\napp = Flask(__name__)\n"})
    start = time.perf_counter()
    d = detect(tmp_path)
    elapsed = time.perf_counter() - start
    assert d.framework == "express"
    assert elapsed < 0.5, f"detection took {elapsed * 1000:.0f} ms"
    from lightfold.detect.project import Project

    listed = Project(tmp_path).files
    assert "index.js" in listed
    assert not [f for f in listed if f.startswith(("node_modules/", ".venv/"))]


def test_typical_project_detects_in_under_50_ms() -> None:
    detect(FIXTURES / "django-pip")  # warm imports
    timings = []
    for name in ("nextjs-server", "django-pip", "rails", "fastapi-uv", "monorepo-pnpm/apps/api"):
        start = time.perf_counter()
        detect(FIXTURES / name)
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 0.05, timings


def _astro(root: Path, config: str, deps: dict[str, str]) -> None:
    package = {"name": "a", "scripts": {"build": "astro build"}, "dependencies": {"astro": "^5", **deps}}
    make(root, {"package.json": package, "package-lock.json": "{}", "astro.config.mjs": config})


def test_astro_server_output_without_adapter_is_built_with_astro_add_node(tmp_path: Path) -> None:
    _astro(tmp_path, "import { defineConfig } from 'astro/config';\n"
           "export default defineConfig({ output: 'server' });\n", {})
    d = detect(tmp_path)
    assert d.build == "npx astro add node --yes && npm run build" and d.blocked is None
    assert d.start == "HOST=127.0.0.1 node ./dist/server/entry.mjs"
    assert d.fixes == ["Astro: astro.config.mjs asks for server output with no adapter; lightfold builds with "
                       "@astrojs/node (`npx astro add node --yes` in the release copy on the server, your project "
                       "is unchanged)"]
    assert d.fixes[0] in d.signals and d.warnings == []


def test_astro_server_output_with_a_platform_adapter_is_refused_in_one_line(tmp_path: Path) -> None:
    from lightfold.detect.traps import refuse_blocked
    from lightfold.errors import LightfoldError
    from lightfold.server.build import build_script

    _astro(tmp_path, "import vercel from '@astrojs/vercel';\nexport default { output: 'server', adapter: vercel() };\n",
           {"@astrojs/vercel": "^8"})
    d = detect(tmp_path)
    assert d.blocked == ("Astro server output needs @astrojs/node, but astro.config.mjs uses @astrojs/vercel: "
                         "replace it with `npx astro add node` (or set output: 'static')")
    assert "\n" not in d.blocked and d.blocked in d.signals
    with pytest.raises(LightfoldError) as info:
        refuse_blocked(d)
    assert info.value.problem == d.blocked
    with pytest.raises(LightfoldError):  # push's build refuses it too, before anything runs
        build_script("web", d, None, "20260101000000")


def test_astro_with_the_node_adapter_needs_no_fix(tmp_path: Path) -> None:
    _astro(tmp_path, "import node from '@astrojs/node';\n"
           "export default { output: 'server', adapter: node({mode: 'standalone'}) };\n", {"@astrojs/node": "^9"})
    d = detect(tmp_path)
    assert d.fixes == [] and d.blocked is None and d.build == "npm run build"


@pytest.mark.parametrize("req, version", [
    ("Django==6.0.1\ngunicorn==23.0.0\n", ">=3.12"), ("django>=6.0\n", ">=3.12"), ("Django==5.2.8\n", None),
    ("django\n", None), ("Django<6\n", None),
])
def test_a_dependency_that_needs_a_newer_python_is_the_runtime_version(tmp_path, req, version):
    root = make(tmp_path, {"requirements.txt": req, "manage.py": "import django\n",
                           "mysite/settings.py": "ALLOWED_HOSTS = ['*']\n", "mysite/wsgi.py": "application = None\n"})
    d = detect(root)
    assert d.runtime_version == version
    if version:
        source = d.runtime_version_source
        assert source.startswith("requirements.txt django") and "needs Python 3.12" in source


def test_a_version_file_wins_over_a_dependency_floor(tmp_path):
    root = make(tmp_path, {"requirements.txt": "Django==6.0.1\n", ".python-version": "3.13\n", "manage.py": "",
                           "mysite/settings.py": "", "mysite/wsgi.py": ""})
    assert (detect(root).runtime_version, detect(root).runtime_version_source) == ("3.13", ".python-version")


@pytest.mark.parametrize("files, start", [
    ({"lightfold.toml": 'start = "./server --port $PORT"\n', "server": "#!/bin/sh\n"}, "./server --port $PORT"),
    ({"Procfile": "web: bin/serve\n"}, "bin/serve"),
])
def test_a_start_command_in_the_project_file_deploys_a_project_of_no_known_framework(tmp_path, files, start):
    make(tmp_path, files)
    d = detect(tmp_path)
    assert (d.framework, d.runtime, d.static) == ("custom", "none", False)
    assert d.start.startswith(start.split()[0])
    assert any("installs no runtime" in w and "$PORT" in w for w in d.warnings)


def test_a_known_framework_wins_over_the_project_files_start_and_nothing_at_all_names_lightfold_toml(tmp_path):
    make(tmp_path, {"lightfold.toml": 'start = "node server.js"\n', "server.js": "require('http')\n",
                    "package.json": {"name": "x", "scripts": {"start": "node server.js"}}})
    assert detect(tmp_path).framework == "node"
    empty = tmp_path / "empty"
    make(empty, {"README.md": "nothing here\n"})
    with pytest.raises(NothingDetected) as info:
        detect(empty)
    assert "lightfold.toml" in info.value.fix and "start =" in info.value.fix
