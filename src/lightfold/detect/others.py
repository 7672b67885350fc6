"""Ruby, PHP and Elixir frameworks, static site generators, plain static HTML and the Dockerfile
fallback, and the table of every framework outside Python and Node (the compiled languages are in
lightfold.detect.compiled). Each is matched on its manifest's dependency declarations (Gemfile
gems, composer require, mix.exs deps), never on a word found anywhere in a file."""

from __future__ import annotations

import re

from lightfold.detect import compiled, envvars
from lightfold.detect.model import Framework, Match, Plan, reject
from lightfold.detect.pm import Toolchain, node_toolchain
from lightfold.detect.project import Project, strip_hash_comments

PHP_SERVER_WARNING = (
    "PHP's built-in server (one worker per process) runs this app; for heavy traffic use "
    "Laravel Octane/FrankenPHP or set deploy.start_command"
)


def _env_example(p: Project) -> list[str]:
    for rel in (".env.example", ".env.sample", ".env.template", ".env.dist", "example.env"):
        text = p.text(rel)
        if text:
            return re.findall(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)\s*=", text, re.M)
    return []


def _node_assets(p: Project, plan: Plan) -> str | None:
    """A backend's JS asset pipeline, when package.json has a build script: its install is added
    to the plan's (and node to its runtimes); returns the command that builds the assets."""
    if p.package_json is None or "build" not in p.scripts:
        return None
    tc = node_toolchain(p)
    plan.extra_runtimes.append("node")
    plan.install = f"{plan.install} && {tc.node_install()}"
    return tc.run("build")


# -- Ruby --------------------------------------------------------------------------------------------


def _gem(p: Project, name: str) -> str | None:
    if name in p.gemfile:
        return f'Gemfile gem "{name}"'
    if name in p.gemfile_lock:
        return f"Gemfile.lock {name} ({p.gemfile_lock[name]})"
    return None


def match_rails(p: Project) -> Match:
    gem = _gem(p, "rails") or _gem(p, "railties")
    app = p.exists("config/application.rb")
    if gem and (app or p.exists("bin/rails")):
        return Match([gem] + (["config/application.rb"] if app else ["bin/rails"]))
    if gem:
        return reject("rails is in the Gemfile but there is no config/application.rb or bin/rails")
    return Match()


def _bundle_install(p: Project) -> str:
    steps = ["bundle config set --local without 'development test'"]
    if p.exists("Gemfile.lock"):
        steps.insert(0, "bundle config set --local deployment true")
    return " && ".join(steps + ["bundle install"])


def plan_rails(p: Project, m: Match, tc: Toolchain) -> Plan:
    plan = Plan(port=3000, install=_bundle_install(p))
    rails = "bin/rails" if p.exists("bin/rails") else "bundle exec rails"
    assets = _node_assets(p, plan)
    if assets:
        m.evidence.append("package.json build script (JS/CSS bundling)")
    has_pipeline = any(_gem(p, g) for g in ("sprockets", "sprockets-rails", "propshaft", "importmap-rails"))
    if has_pipeline or p.is_dir("app/assets") or assets:
        plan.build = f"RAILS_ENV=production SECRET_KEY_BASE_DUMMY=1 {rails} assets:precompile"
    plan.start = f"RAILS_ENV=production {rails} server -b 127.0.0.1 -p $PORT"
    if p.exists("db/schema.rb") or p.is_dir("db/migrate"):
        plan.release = f"RAILS_ENV=production {rails} db:migrate"
    plan.env_required = ["SECRET_KEY_BASE"]
    if p.exists("config/credentials.yml.enc") or p.exists("config/credentials/production.yml.enc"):
        plan.env_required.append("RAILS_MASTER_KEY")
    db = strip_hash_comments(p.text("config/database.yml") or "")
    if "DATABASE_URL" in db or re.search(r"adapter:\s*(postgresql|postgis|mysql2|trilogy)", db):
        plan.env_required.append("DATABASE_URL")
    req, _ = envvars.scan(p, ["config/application.rb", "config/environments/production.rb"])
    plan.env_required = sorted(set(plan.env_required) | set(req))
    routes = strip_hash_comments(p.text("config/routes.rb") or "")
    if re.search(r"""get\s+['"]/?up['"]""", routes):
        plan.health_path = "/up"
    return plan


JEKYLL_DIRS = ("_posts", "_layouts", "_includes", "_data")


def match_jekyll(p: Project) -> Match:
    gem = _gem(p, "jekyll") or _gem(p, "github-pages")
    if gem and p.exists("_config.yml"):
        return Match([gem, "_config.yml"])
    if gem:
        return reject("jekyll is in the Gemfile but there is no _config.yml")
    dirs = [d for d in JEKYLL_DIRS if p.is_dir(d)]
    if p.exists("_config.yml") and dirs and not p.exists("Gemfile"):
        return Match(["_config.yml", f"{dirs[0]}/ (GitHub Pages layout, no Gemfile)"], {"no_gemfile": True})
    return Match()


def plan_jekyll(p: Project, m: Match, tc: Toolchain) -> Plan:
    config = strip_hash_comments(p.text("_config.yml") or "")
    dest = re.search(r"^destination:\s*['\"]?([^'\"\s]+)", config, re.M)
    plan = Plan(
        install=_bundle_install(p),
        build="JEKYLL_ENV=production bundle exec jekyll build",
        static=True,
        output_dir=dest.group(1).strip("./") if dest else "_site",
    )
    if m.data.get("no_gemfile"):
        plan.package_manager = "bundler"
        plan.install = "bundle init && bundle add github-pages"  # what GitHub Pages builds with
        plan.warnings.append(
            "no Gemfile: github-pages (jekyll) is added at deploy time; commit a Gemfile to pin the versions"
        )
    return plan


# -- PHP ---------------------------------------------------------------------------------------------


def _composer_install(prefix: str = "") -> str:
    return f"{prefix}composer install --no-dev --optimize-autoloader --no-interaction --no-progress"


def match_laravel(p: Project) -> Match:
    if "laravel/framework" in p.composer_deps:
        if p.exists("artisan"):
            return Match(
                [f'composer.json require "laravel/framework" {p.composer_deps["laravel/framework"]}', "artisan"]
            )
        return reject("laravel/framework is required but there is no artisan file (a package, not an app)")
    return Match()


def plan_laravel(p: Project, m: Match, tc: Toolchain) -> Plan:
    plan = Plan(port=8000, install=_composer_install())
    plan.build = _node_assets(p, plan)
    if "laravel/octane" in p.composer_deps:
        plan.start = "php artisan octane:start --host=127.0.0.1 --port=$PORT"
        plan.variant = "octane"
    else:
        plan.start = "PHP_CLI_SERVER_WORKERS=4 php artisan serve --host=127.0.0.1 --port=$PORT"
        plan.warnings.append(PHP_SERVER_WARNING)
    plan.release = "php artisan migrate --force"
    plan.env_required = ["APP_KEY"]
    boot = p.text("bootstrap/app.php") or ""
    health = re.search(r"health:\s*['\"](/[^'\"]*)['\"]", boot)
    if health:
        plan.health_path = health.group(1)
    return plan


def match_symfony(p: Project) -> Match:
    if "symfony/framework-bundle" in p.composer_deps:
        ev = [f'composer.json require "symfony/framework-bundle" {p.composer_deps["symfony/framework-bundle"]}']
        if p.exists("bin/console") or p.exists("public/index.php"):
            return Match(ev + ["bin/console" if p.exists("bin/console") else "public/index.php"])
        return reject("symfony/framework-bundle is required but there is no bin/console or public/index.php")
    return Match()


def plan_symfony(p: Project, m: Match, tc: Toolchain) -> Plan:
    plan = Plan(port=8000, install=_composer_install("APP_ENV=prod "))
    plan.build = _node_assets(p, plan)
    plan.start = "APP_ENV=prod php -S 127.0.0.1:$PORT -t public"
    plan.warnings.append(PHP_SERVER_WARNING)
    required = {"APP_SECRET"}
    for rel in p.glob(r"config/(?:packages/)?[\w.-]+\.ya?ml") + [".env"]:
        for name in re.findall(r"%env\((?:[\w-]+:)*([A-Z][A-Z0-9_]*)\)%", p.text(rel) or ""):
            if name == "DATABASE_URL" or rel.startswith("config/"):
                required.add(name)
    plan.env_required = sorted(required - {"APP_ENV"})
    if p.exists("migrations") or "doctrine/doctrine-migrations-bundle" in p.composer_deps:
        plan.release = "APP_ENV=prod php bin/console doctrine:migrations:migrate --no-interaction"
    return plan



# -- Elixir ------------------------------------------------------------------------------------------


def match_phoenix(p: Project) -> Match:
    if "phoenix" in p.mix_deps:
        return Match([f'mix.exs dep :phoenix "{p.mix_deps["phoenix"]}"'])
    return Match()


def plan_phoenix(p: Project, m: Match, tc: Toolchain) -> Plan:
    mix = strip_hash_comments(p.text("mix.exs") or "")
    plan = Plan(port=4000)
    plan.install = "mix local.hex --force && mix local.rebar --force && MIX_ENV=prod mix deps.get --only prod"
    steps = ["MIX_ENV=prod mix compile"]
    if '"assets.deploy"' in mix:
        steps.append("MIX_ENV=prod mix assets.deploy")
    elif p.is_dir("assets") or p.is_dir("priv/static"):
        steps.append("MIX_ENV=prod mix phx.digest")
    plan.build = " && ".join(steps)
    plan.start = "MIX_ENV=prod PHX_SERVER=true mix phx.server"
    if "ecto_sql" in p.mix_deps:
        plan.release = "MIX_ENV=prod mix ecto.migrate"
    required = {"SECRET_KEY_BASE"}
    req, _ = envvars.scan(p, ["config/runtime.exs", "config/prod.exs"])
    required |= set(req)
    if "ecto_sql" in p.mix_deps and "DATABASE_URL" in (p.text("config/runtime.exs") or ""):
        required.add("DATABASE_URL")
    plan.env_required = sorted(required)
    return plan


# -- static sites ------------------------------------------------------------------------------------

HUGO_CONFIGS = (
    "hugo.toml",
    "hugo.yaml",
    "hugo.yml",
    "hugo.json",
    "config.toml",
    "config.yaml",
    "config.yml",
    "config/_default/hugo.toml",
    "config/_default/config.toml",
    "config/_default/hugo.yaml",
)


def match_hugo(p: Project) -> Match:
    config = p.first(*HUGO_CONFIGS)
    if config is None:
        return Match()
    dirs = [d for d in ("content", "layouts", "themes", "archetypes") if p.is_dir(d)]
    if config.startswith("hugo.") or (dirs and ("baseurl" in (p.text(config) or "").lower() or "themes" in dirs)):
        return Match([config] + [f"{d}/" for d in dirs])
    if dirs:
        return reject(f"{config} and {dirs[0]}/ but no baseURL/theme: not clearly a Hugo site")
    return Match()


def plan_hugo(p: Project, m: Match, tc: Toolchain) -> Plan:
    config = p.first(*HUGO_CONFIGS) or ""
    text = p.text(config) or ""
    pub = re.search(r"""^\s*publish[Dd]ir\s*[:=]\s*['"]?([^'"\s]+)""", text, re.M)
    plan = Plan(
        static=True, output_dir=pub.group(1) if pub else "public", build="hugo --gc --minify", extra_runtimes=["hugo"]
    )
    if p.package_json is not None and p.node_deps:
        ntc = node_toolchain(p)
        plan.install = ntc.node_install()
        plan.extra_runtimes.append("node")
    netlify = p.text("netlify.toml") or ""
    version = re.search(r"HUGO_VERSION\s*=\s*['\"]([\d.]+)['\"]", netlify)
    if version:
        m.evidence.append(f"hugo {version.group(1)} wanted (netlify.toml HUGO_VERSION)")
    return plan


def match_php(p: Project) -> Match:
    for rel in ("public/index.php", "index.php"):
        if p.exists(rel):
            return Match([rel] + (["composer.json"] if p.composer is not None else []), {"docroot": rel[:-10] or "."})
    return Match()


def plan_php(p: Project, m: Match, tc: Toolchain) -> Plan:
    docroot = m.data["docroot"]
    plan = Plan(port=8000, start=f"php -S 127.0.0.1:$PORT -t {docroot}")
    if p.composer is not None:
        plan.install = _composer_install()
    plan.warnings.append(PHP_SERVER_WARNING)
    return plan


STATIC_DIRS = ("", "public", "www", "site", "html")


def match_static(p: Project) -> Match:
    for d in STATIC_DIRS:
        rel = f"{d}/index.html" if d else "index.html"
        if p.exists(rel):
            return Match([rel], {"dir": d or "."})
    return Match()


def plan_static(p: Project, m: Match, tc: Toolchain) -> Plan:
    return Plan(static=True, output_dir=m.data["dir"])


DOCKERFILES = ("Dockerfile", "dockerfile", "Containerfile")


def dockerfile_name(p: Project) -> str | None:
    return p.first(*DOCKERFILES)


def dockerfile_port(p: Project) -> int | None:
    name = dockerfile_name(p)
    m = re.search(r"^\s*EXPOSE\s+(\d+)", p.text(name) or "" if name else "", re.M | re.I)
    return int(m.group(1)) if m else None


def match_dockerfile(p: Project) -> Match:
    name = dockerfile_name(p)
    return Match([name]) if name else Match()


def plan_dockerfile(p: Project, m: Match, tc: Toolchain) -> Plan:
    return Plan(port=dockerfile_port(p))


def match_custom(p: Project) -> Match:
    """No framework, but the project file says how to start the app: lightfold.toml's `start` (or
    a Procfile's `web`). Last in precedence: any framework lightfold knows wins."""
    from pathlib import Path

    from lightfold.detect.manifest import read

    m = read(Path(p.root))
    return Match([f"start from {m.source_of('start')}: {m.start}"]) if m.start else Match()


def plan_custom(p: Project, m: Match, tc: Toolchain) -> Plan:
    """The start (and build, release) come from the project file; no runtime is installed for it."""
    return Plan(warnings=["no framework lightfold knows: it runs the project file's start command as it is and "
                          "installs no runtime for it (what it runs must be in the project or on the server), "
                          "and the command must listen on $PORT"])


FRAMEWORKS = {
    "rails": Framework("rails", "Ruby on Rails", "ruby", "ruby", match_rails, plan_rails),
    "laravel": Framework("laravel", "Laravel", "php", "php", match_laravel, plan_laravel),
    "symfony": Framework("symfony", "Symfony", "php", "php", match_symfony, plan_symfony),
    "phoenix": Framework("phoenix", "Phoenix", "elixir", "elixir", match_phoenix, plan_phoenix),
    "springboot": Framework("springboot", "Spring Boot", "java", "java", compiled.match_spring, compiled.plan_spring),
    "aspnetcore": Framework("aspnetcore", "ASP.NET Core", "csharp", "dotnet", compiled.match_aspnet,
                            compiled.plan_aspnet),
    "gin": Framework("gin", "Gin", "go", "go", compiled.match_go_framework("gin"), compiled.go_plan("gin")),
    "echo": Framework("echo", "Echo", "go", "go", compiled.match_go_framework("echo"), compiled.go_plan("echo")),
    "fiber": Framework("fiber", "Fiber", "go", "go", compiled.match_go_framework("fiber"), compiled.go_plan("fiber")),
    "chi": Framework("chi", "chi", "go", "go", compiled.match_go_framework("chi"), compiled.go_plan("chi")),
    "axum": Framework("axum", "Axum", "rust", "rust", compiled.match_rust_framework("axum"), compiled.rust_plan(3000)),
    "actix": Framework("actix", "Actix Web", "rust", "rust", compiled.match_rust_framework("actix-web"),
                       compiled.rust_plan(8080)),
    "jekyll": Framework("jekyll", "Jekyll", "ruby", "ruby", match_jekyll, plan_jekyll),
    "hugo": Framework("hugo", "Hugo", "go", "static", match_hugo, plan_hugo),
    "go": Framework("go", "Go (net/http)", "go", "go", compiled.match_go, compiled.go_plan(None)),
    "rust": Framework("rust", "Rust", "rust", "rust", compiled.match_rust, compiled.rust_plan(8080)),
    "php": Framework("php", "PHP", "php", "php", match_php, plan_php),
    "static": Framework("static", "Static HTML", "html", "static", match_static, plan_static),
    "dockerfile": Framework("dockerfile", "Dockerfile", "docker", "docker", match_dockerfile, plan_dockerfile),
    "custom": Framework("custom", "Start command from the project file", "unknown", "none", match_custom,
                        plan_custom),
}
