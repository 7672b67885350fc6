"""Detection of the fixture projects in tests/fixtures/detect: one realistic project per framework
and package manager, plus the traps (package.json in a Rails/Django app, commented-out static
export, "next" only in a script, monorepo subfolder, misspelled requirements, competing lockfiles)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightfold.detect import detect
from lightfold.detect.pm import VENV_PREFIX

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "detect"

# fixture (or fixture/subdir) -> fields the detection must have
CASES: dict[str, dict] = {
    # --- Node: meta-frameworks -------------------------------------------------------------------
    "nextjs-server": dict(
        framework="nextjs",
        package_manager="npm",
        install="npm ci",
        build="npm run build",
        start="npx next start -H 127.0.0.1 -p $PORT",
        static=False,
        port=3000,
        runtime="node",
        runtime_version="20.12.2",
        language="typescript",
        health_path="/api/health",
    ),
    "nextjs-export": dict(
        framework="nextjs",
        package_manager="pnpm",
        install="pnpm install --frozen-lockfile",
        build="pnpm run build",
        start=None,
        static=True,
        output_dir="out",
    ),
    "nextjs-commented-export": dict(
        framework="nextjs",
        package_manager="yarn",
        install="yarn install --frozen-lockfile",
        start="yarn next start -H 127.0.0.1 -p $PORT",
        static=False,
        output_dir=None,
    ),
    "nextjs-dockerfile": dict(
        framework="nextjs",
        has_dockerfile=True,
        dockerfile_port=3000,
        static=False,
        start="npx next start -H 127.0.0.1 -p $PORT",
    ),
    "next-in-script-only": dict(
        framework="vite",
        variant="react",
        static=True,
        output_dir="dist",
        package_manager="npm",
    ),
    "nuxt": dict(
        framework="nuxt",
        package_manager="yarn",
        install="yarn install --frozen-lockfile",
        build="yarn run build",
        start="HOST=127.0.0.1 node .output/server/index.mjs",
        static=False,
        runtime_version="20.11.1",
    ),
    "nuxt-static": dict(framework="nuxt", static=True, output_dir=".output/public", start=None),
    "sveltekit-node": dict(
        framework="sveltekit",
        variant="node",
        package_manager="pnpm",
        build="pnpm run build",
        start="HOST=127.0.0.1 node build",
        static=False,
    ),
    "sveltekit-static": dict(
        framework="sveltekit",
        variant="static",
        static=True,
        output_dir="build",
        install="npm ci",
    ),
    "remix": dict(
        framework="remix",
        install="npm ci",
        build="npm run build",
        start="npm run start",
        runtime_version=">=20.0.0",
    ),
    "react-router": dict(
        framework="react-router",
        install="npm ci",
        build="npm run build",
        start="npm run start",
        static=False,
    ),
    "astro-static": dict(framework="astro", variant="static", static=True, output_dir="dist", start=None),
    "astro-server": dict(
        framework="astro",
        variant="server",
        static=False,
        package_manager="pnpm",
        start="HOST=127.0.0.1 node ./dist/server/entry.mjs",
        port=4321,
    ),
    "gatsby": dict(framework="gatsby", package_manager="yarn", static=True, output_dir="public"),
    "docusaurus": dict(
        framework="docusaurus",
        package_manager="yarn-berry",
        install="yarn install --immutable",
        build="yarn run build",
        static=True,
        output_dir="build",
    ),
    "eleventy": dict(framework="eleventy", static=True, output_dir="_site", build="npm run build"),
    "angular": dict(framework="angular", static=True, output_dir="dist/shop-ui/browser", build="npm run build"),
    "vuecli": dict(framework="vuecli", package_manager="yarn", static=True, output_dir="dist"),
    "vite-vue": dict(framework="vite", variant="vue", package_manager="pnpm", static=True, output_dir="www"),
    "vite-svelte": dict(
        framework="vite",
        variant="svelte",
        package_manager="bun",
        install="bun install --frozen-lockfile",
        build="bun run build",
        static=True,
        output_dir="dist",
    ),
    # --- Node: servers ---------------------------------------------------------------------------
    "nextjs-custom-server": dict(framework="nextjs", variant="custom-server", start="npm run start", static=False),
    "cra": dict(framework="cra", variant="react", static=True, output_dir="build", build="npm run build", start=None),
    "static-live-server": dict(framework="static", static=True, output_dir=".", install=None, start=None),
    "express": dict(
        framework="express",
        package_manager="npm",
        install="npm ci",
        build=None,
        start="npm run start",
        static=False,
        env_required=["DATABASE_URL"],
    ),
    "fastify": dict(framework="fastify", package_manager="pnpm", start="pnpm run start"),
    "nestjs": dict(framework="nestjs", build="npm run build", start="npm run start:prod", language="typescript"),
    "hono-bun": dict(
        framework="hono",
        package_manager="bun",
        install="bun install --frozen-lockfile",
        start="bun run start",
        extra_runtimes=["bun"],
    ),
    "koa": dict(framework="koa", package_manager="yarn", start="yarn run start"),
    "plain-node": dict(
        framework="node",
        package_manager="npm",
        install="npm install",
        start="node server.js",
        runtime_version=">=18",
    ),
    "monorepo-pnpm/apps/api": dict(
        framework="express",
        package_manager="pnpm",
        install="cd ../.. && pnpm install --frozen-lockfile",
        build="pnpm run build",
        start="pnpm run start",
        app_subdir="apps/api",
        health_path="/health",
        runtime_version="20",
    ),
    "monorepo-npm/packages/dashboard": dict(
        framework="vite",
        variant="react",
        package_manager="npm",
        install="cd ../.. && npm ci",
        app_subdir="packages/dashboard",
        static=True,
    ),
    # --- Python ------------------------------------------------------------------------------------
    "django-pip": dict(
        framework="django",
        package_manager="pip",
        runtime="python",
        runtime_version="3.12.3",
        # the Tailwind package.json builds first, so collectstatic picks up its output
        install=VENV_PREFIX + ".venv/bin/pip install -r requirements.txt && npm ci",
        build="npm run build && .venv/bin/python manage.py collectstatic --noinput",
        extra_runtimes=["node"],
        start=".venv/bin/gunicorn --bind 127.0.0.1:$PORT mysite.wsgi:application",
        release=".venv/bin/python manage.py migrate --noinput",
        env_required=["DATABASE_URL", "SECRET_KEY"],
        port=8000,
    ),
    "django-poetry": dict(
        framework="django",
        package_manager="poetry",
        install="poetry install --no-root --only main",
        start="poetry run gunicorn --bind 127.0.0.1:$PORT config.wsgi:application",
        build="DJANGO_SETTINGS_MODULE=config.settings.production poetry run python manage.py collectstatic --noinput",
        env_required=["DATABASE_URL", "DJANGO_SECRET_KEY"],
        runtime_version="^3.11",
    ),
    "flask-pip": dict(
        framework="flask",
        package_manager="pip",
        start=".venv/bin/gunicorn --bind 127.0.0.1:$PORT app:app",
        health_path="/healthz",
        env_required=["FLASK_SECRET_KEY"],
        runtime_version="3.12",
    ),
    "flask-factory-uv": dict(
        framework="flask",
        package_manager="uv",
        install="uv sync --frozen --no-dev",
        start="uv run --no-sync gunicorn --bind 127.0.0.1:$PORT wsgi:app",
    ),
    "fastapi-uv": dict(
        framework="fastapi",
        package_manager="uv",
        install="uv sync --frozen --no-dev",
        start="uv run --no-sync uvicorn app.main:app --host 127.0.0.1 --port $PORT",
        health_path="/health",
        env_required=["DATABASE_URL"],
        runtime_version="3.12",
    ),
    "fastapi-uv-and-poetry": dict(
        framework="fastapi",
        package_manager="uv",
        start="uv run --no-sync uvicorn migrated.api:api --host 127.0.0.1 --port $PORT --app-dir src",
    ),
    "flask-poetry-and-uv": dict(
        framework="flask",
        package_manager="poetry",
        install="poetry install --no-root --only main && poetry run python -m pip install gunicorn",
        start="poetry run gunicorn --bind 127.0.0.1:$PORT main:app",
    ),
    "flask-pdm": dict(
        framework="flask",
        package_manager="pdm",
        start="pdm run gunicorn --bind 127.0.0.1:$PORT --chdir src notes.app:app",
    ),
    "flask-misspelled-requirements": dict(
        framework="flask",
        package_manager="pip",
        install=VENV_PREFIX + ".venv/bin/pip install -r requirments.txt gunicorn",
        start=".venv/bin/gunicorn --bind 127.0.0.1:$PORT main:app",
    ),
    "python-asgi-pipenv": dict(
        framework="python",
        variant="asgi",
        package_manager="pipenv",
        install="pipenv install --deploy",
        start="pipenv run uvicorn server:app --host 127.0.0.1 --port $PORT",
        runtime_version="3.11",
    ),
    "python-procfile": dict(
        framework="python",
        start=".venv/bin/gunicorn --bind 127.0.0.1:$PORT --workers 2 service:application",
    ),
    # --- Ruby, PHP -------------------------------------------------------------------------------
    "rails": dict(
        framework="rails",
        runtime="ruby",
        runtime_version="3.3.1",
        package_manager="bundler",
        start="RAILS_ENV=production bin/rails server -b 127.0.0.1 -p $PORT",
        build="RAILS_ENV=production SECRET_KEY_BASE_DUMMY=1 bin/rails assets:precompile",
        release="RAILS_ENV=production bin/rails db:migrate",
        health_path="/up",
        env_required=["DATABASE_URL", "RAILS_MASTER_KEY", "SECRET_KEY_BASE"],
        extra_runtimes=["node"],
    ),
    "jekyll": dict(
        framework="jekyll",
        runtime="ruby",
        package_manager="bundler",
        static=True,
        output_dir="_site",
        build="JEKYLL_ENV=production bundle exec jekyll build",
    ),
    "jekyll-github-pages": dict(
        framework="jekyll", static=True, output_dir="_site", install="bundle init && bundle add github-pages"
    ),
    "php-plain": dict(framework="php", runtime="php", start="php -S 127.0.0.1:$PORT -t public", port=8000),
    "laravel": dict(
        framework="laravel",
        runtime="php",
        package_manager="composer",
        runtime_version="^8.2",
        start="PHP_CLI_SERVER_WORKERS=4 php artisan serve --host=127.0.0.1 --port=$PORT",
        build="npm run build",
        health_path="/up",
        env_required=["APP_KEY"],
        extra_runtimes=["node"],
    ),
    "symfony": dict(
        framework="symfony",
        runtime="php",
        package_manager="composer",
        start="APP_ENV=prod php -S 127.0.0.1:$PORT -t public",
        env_required=["APP_SECRET", "DATABASE_URL"],
    ),
    # --- Go, Rust ----------------------------------------------------------------------------------
    "go-nethttp": dict(
        framework="go",
        runtime="go",
        runtime_version="1.22.2",
        package_manager="go",
        install=None,  # go.mod requires nothing: no download (a redeploy installs nothing)
        build="go build -o bin/hello .",
        start="./bin/hello",
        warnings=[],
    ),
    "go-gin": dict(
        framework="gin",
        runtime_version="1.22.3",
        build="go build -o bin/albums ./cmd/albums",
        health_path="/ping",
        warnings=[],
    ),
    "go-echo": dict(framework="echo", start="./bin/echo-api", port=1323),
    "go-fiber": dict(framework="fiber", warnings=[]),
    "go-chi": dict(framework="chi", build="go build -o bin/chi-svc ./cmd/server"),
    "rust-axum": dict(
        framework="axum",
        runtime="rust",
        package_manager="cargo",
        runtime_version="1.78",
        install="cargo fetch --locked",
        build="cargo build --release --locked",
        start="./target/release/todo-api",
        warnings=[],
    ),
    "rust-actix": dict(framework="actix", start="./target/release/greeter-server", build="cargo build --release"),
    "rust-cli-tool": dict(framework="rust", start="./target/release/ferris-says"),
    # --- JVM, .NET, Elixir -----------------------------------------------------------------------------
    "spring-maven": dict(
        framework="springboot",
        runtime="java",
        runtime_version="21",
        package_manager="maven",
        build="./mvnw -B -DskipTests package",
        health_path="/actuator/health",
        env_required=["DATABASE_URL"],
        start="java -jar target/demo-0.0.1-SNAPSHOT.jar --server.port=$PORT --server.address=127.0.0.1",
    ),
    "spring-gradle": dict(
        framework="springboot",
        runtime_version="17",
        package_manager="gradle",
        build="./gradlew bootJar -x test",
    ),
    "spring-maven-multimodule": dict(
        framework="springboot",
        build="./mvnw -B -DskipTests package -pl shop-web -am",
        start="java -jar shop-web/target/shop-web-1.4.0.jar --server.port=$PORT --server.address=127.0.0.1",
    ),
    "spring-gradle-multiproject": dict(
        framework="springboot",
        build="./gradlew :app:bootJar -x test",
        start="java -jar app/build/libs/*.jar --server.port=$PORT --server.address=127.0.0.1",
    ),
    "aspnet": dict(
        framework="aspnetcore",
        runtime="dotnet",
        runtime_version="8.0",
        health_path="/healthz",
        install="dotnet restore src/TodoApi/TodoApi.csproj",
        build="dotnet publish src/TodoApi/TodoApi.csproj -c Release -o out --no-restore",
        start="ASPNETCORE_URLS=http://127.0.0.1:$PORT dotnet out/TodoApi.dll",
    ),
    "phoenix": dict(
        framework="phoenix",
        runtime="elixir",
        runtime_version="~> 1.14",
        package_manager="mix",
        start="MIX_ENV=prod PHX_SERVER=true mix phx.server",
        release="MIX_ENV=prod mix ecto.migrate",
        build="MIX_ENV=prod mix compile && MIX_ENV=prod mix assets.deploy",
        env_required=["DATABASE_URL", "SECRET_KEY_BASE"],
    ),
    # --- static ------------------------------------------------------------------------------------
    "hugo": dict(
        framework="hugo",
        runtime="static",
        static=True,
        output_dir="public",
        build="hugo --gc --minify",
        extra_runtimes=["hugo"],
    ),
    "static-html": dict(framework="static", runtime="static", static=True, output_dir=".", start=None, build=None),
    "dockerfile-only": dict(framework="dockerfile", has_dockerfile=True, dockerfile_port=8080, start=None),
    "custom-start": dict(framework="custom", runtime="none", static=False, start="./serve.sh", build=None,
                         health_path="/serve.sh"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_detection(name: str) -> None:
    d = detect(FIXTURES / name)
    got = {k: getattr(d, k) for k in CASES[name]}
    assert got == CASES[name], d.to_json()
    if d.static:
        assert d.start is None and d.output_dir
    else:
        assert d.output_dir is None
    if d.start:
        assert "0.0.0.0" not in d.start  # loopback only: nginx on the same machine proxies to it


def test_every_framework_id_has_a_fixture() -> None:
    from lightfold.detect import PRECEDENCE

    covered = {detect(FIXTURES / name).framework for name in CASES}
    assert set(PRECEDENCE) - covered == set()
