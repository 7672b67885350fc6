"""JavaScript/TypeScript frameworks: recognised by the dependency tables of package.json (never by
a word in a script string) plus their config files, each with its install/build/start plan."""

from __future__ import annotations

import re

from lightfold.detect import traps
from lightfold.detect.model import Framework, Match, Plan, reject
from lightfold.detect.pm import Toolchain
from lightfold.detect.project import Project, strip_js_comments

JS_EXTS = ("js", "mjs", "cjs", "ts", "mts", "cts")
# Scripts that run a file watcher or dev server: not what a production unit should run.
DEV_SCRIPT = re.compile(
    r"\b(nodemon|ts-node-dev|tsx watch|node --watch|--watch\b|next dev|nuxt dev|astro dev|remix dev"
    r"|react-router dev|vite(?!\s+(?:build|preview))\b)"
)
PROD_SCRIPTS = ("start:prod", "start:production", "prod", "production", "serve:prod")


# -- helpers ---------------------------------------------------------------------------------


def config_file(p: Project, stem: str) -> tuple[str | None, str]:
    """(relative name, source without comments) of `<stem>.{js,mjs,cjs,ts,...}`."""
    for ext in JS_EXTS:
        rel = f"{stem}.{ext}"
        src = p.text(rel)
        if src is not None:
            return rel, strip_js_comments(src)
    return None, ""


def dep_evidence(p: Project, name: str) -> str:
    return f'package.json dependency "{name}" {p.node_deps[name]}'.rstrip()


def major(spec: str | None) -> int | None:
    m = re.search(r"(\d+)", spec or "")
    return int(m.group(1)) if m else None


def string_option(src: str, key: str) -> str | None:
    """The string literal assigned to `key:` in a JS config (after comment stripping)."""
    m = re.search(rf"\b{re.escape(key)}\s*:\s*['\"`]([^'\"`]+)['\"`]", src)
    return m.group(1) if m else None


def by_dependency(name: str, *others: str):
    """A matcher: any of the package names in the dependency tables."""

    def match(p: Project) -> Match:
        for dep in (name, *others):
            if dep in p.node_deps:
                return Match([dep_evidence(p, dep)])
        if p.package_json is not None and any(
            re.search(rf"(?<![\w@/-]){re.escape(name)}(?![\w-])", s) for s in p.scripts.values()
        ):
            return reject(f'"{name}" appears only in a package.json script, not in the dependencies')
        return Match()

    return match


def build_script(p: Project, tc: Toolchain, fallback: str | None) -> str | None:
    if "build" in p.scripts:
        return tc.run("build")
    return tc.exec(fallback) if fallback else None


def hardcoded_port_in(script: str) -> str | None:
    m = re.search(r"(?:\bPORT=|--port[ =]|\s-p\s+)(\d{2,5})\b", script)
    return m.group(1) if m else None


def check_port_usage(p: Project, entry: str | None, plan: Plan) -> None:
    """Warn when the server file listens on a literal port and never reads process.env.PORT."""
    if not entry:
        return
    candidates = [entry]
    if re.match(r"^(dist|build|lib|out)/", entry):
        stem = re.sub(r"^(dist|build|lib|out)/", "src/", entry).rsplit(".", 1)[0]
        candidates += [f"{stem}.ts", f"{stem}.mts", f"{stem}.js"]
    for rel in candidates:
        src = p.text(rel)
        if src is None:
            continue
        src = strip_js_comments(src)
        if re.search(r"(process\.env|Bun\.env|Deno\.env\.get\(|import\.meta\.env)\W+PORT|\benv\.PORT\b", src):
            return
        m = re.search(r"\.listen\(\s*(\d{2,5})\b", src) or re.search(r"\bport\s*[:=]\s*(\d{2,5})\b", src)
        if m:
            plan.warnings.append(
                f"{rel} listens on the hard-coded port {m.group(1)} and ignores $PORT: read "
                "process.env.PORT (otherwise the health check of the new release fails)"
            )
        return


def is_bun_project(p: Project) -> bool:
    pm = str((p.package_json or {}).get("packageManager") or "")
    return p.exists("bun.lock") or p.exists("bun.lockb") or pm.startswith("bun@")


def node_entry(p: Project) -> str | None:
    main = (p.package_json or {}).get("main")
    if isinstance(main, str) and main and not main.endswith(".json"):
        main = main.removeprefix("./")
        if p.exists(main) or p.exists(main + ".js") or re.match(r"^(dist|build|lib)/", main):
            return main
    # `bun init` writes "module": "index.ts" and no start script: bun runs that file (TypeScript too).
    module = (p.package_json or {}).get("module")
    if isinstance(module, str) and p.exists(module.removeprefix("./")):
        module = module.removeprefix("./")
        if module.endswith((".js", ".mjs")) or (is_bun_project(p) and module.endswith((".ts", ".mts", ".tsx"))):
            return module
    return p.first(
        "server.js",
        "server.mjs",
        "app.js",
        "index.js",
        "index.mjs",
        "main.js",
        "src/server.js",
        "src/index.js",
        "src/app.js",
        "src/main.js",
        "server/index.js",
    )


def server_start(p: Project, tc: Toolchain, plan: Plan) -> None:
    """Start command for a Node server: the production script, else `node <entry>`."""
    scripts = p.scripts
    start = scripts.get("start")
    prod = next((s for s in PROD_SCRIPTS if s in scripts), None)
    chosen: str | None = None
    if start and DEV_SCRIPT.search(start) and prod:
        chosen = prod
    elif start:
        chosen = "start"
        watched = re.fullmatch(r"\s*nodemon\s+([\w./-]+\.[cm]?js)\s*", start)
        if watched:
            # "nodemon server.js" restarts on file changes; production only needs node.
            runner = "bun" if tc.manager == "bun" else "node"
            plan.start = f"{runner} {watched.group(1)}"
            plan.warnings.append(f'the start script runs nodemon ("{start}"): using "{plan.start}" instead')
            check_port_usage(p, watched.group(1), plan)
            return
        if DEV_SCRIPT.search(start):
            plan.warnings.append(f'the start script runs a development tool ("{start}"): add a production start script')
    elif prod:
        chosen = prod
    entry = None
    if chosen:
        plan.start = tc.run(chosen)
        port = hardcoded_port_in(scripts[chosen])
        if port:
            plan.warnings.append(
                f'the "{chosen}" script hard-codes port {port} and ignores $PORT: use the PORT variable'
            )
        m = re.search(r"\b(?:node|bun|tsx|ts-node)\s+(?:--?[\w-]+(?:=\S+)?\s+)*([\w./-]+)", scripts[chosen])
        entry = m.group(1) if m else node_entry(p)
    else:
        entry = node_entry(p)
        if entry:
            runner = "bun" if tc.manager == "bun" else "node"
            plan.start = f"{runner} {entry}"
            if entry.endswith((".ts", ".mts", ".tsx")):
                plan.warnings.append(f'no start script: running "{plan.start}" (package.json "module"; '
                                     'add a "start" script to choose)')
        elif tc.manager == "bun":
            # Bun runs TypeScript directly; templates often only have `"dev": "bun run --hot src/index.ts"`.
            dev = re.search(
                r"\bbun\s+(?:run\s+)?(?:--(?:hot|watch)\s+)*([\w./-]+\.[cm]?[jt]sx?)\b", scripts.get("dev", "")
            )
            entry = dev.group(1) if dev else p.first("src/index.ts", "index.ts", "src/server.ts", "server.ts")
            if entry:
                plan.start = f"bun run {entry}"
                plan.warnings.append(f'no start script: running "{plan.start}" (add a "start" script to choose)')
    if entry and not entry.endswith((".js", ".mjs", ".cjs", ".ts", ".mts")) and p.exists(entry + ".js"):
        entry += ".js"
    check_port_usage(p, entry, plan)


def direct_start(p: Project, tc: Toolchain, start: str | None, workspace: bool) -> dict[str, str]:
    """{start: script body} when `start` is `<pm> run <script>` and running the body directly does
    what the package manager would: no pre/post hooks, no npm_* variables, no Yarn PnP (it needs
    `yarn node`), not a workspace (the package manager adds the root's .bin too); bun starts fast
    on its own."""
    if not start or workspace or tc.manager in ("bun", "yarn-berry") or p.exists(".pnp.cjs"):
        return {}
    name = next((n for n in p.scripts if tc.run(n) == start), None)
    if name is None or f"pre{name}" in p.scripts or f"post{name}" in p.scripts:
        return {}
    body = p.scripts[name].strip()
    if not body or "npm_" in body or re.search(r"\b(?:npm|yarn|pnpm|npx)\b", body):
        return {}
    return {start: body}


def base_plan(p: Project, tc: Toolchain, port: int) -> Plan:
    plan = Plan(install=tc.node_install(), port=port)
    if tc.manager == "bun":
        plan.extra_runtimes.append("bun")
    return plan


def static_plan(p: Project, tc: Toolchain, output_dir: str, build_fallback: str | None) -> Plan:
    plan = base_plan(p, tc, 0)
    plan.port = None
    plan.static, plan.output_dir = True, output_dir
    plan.build = build_script(p, tc, build_fallback)
    return plan


# -- frameworks ------------------------------------------------------------------------------


def _next_config(p: Project) -> tuple[str | None, str]:
    return config_file(p, "next.config")


def match_next(p: Project) -> Match:
    m = by_dependency("next")(p)
    if m.ok:
        rel, src = _next_config(p)
        if rel:
            m.evidence.append(rel)
    return m



def plan_next(p: Project, m: Match, tc: Toolchain) -> Plan:
    rel, src = _next_config(p)
    raw = p.text(rel) if rel else ""
    export = bool(re.search(r"\boutput\s*:\s*['\"]export['\"]", src))
    conditional = re.search(r"\boutput\s*:\s*([^,}\n]*\?[^,}\n]*['\"]export['\"][^,}\n]*)", src)
    if not export and conditional:
        chosen = traps.conditional_value(conditional.group(1).strip(), src)
        export = chosen == "export"
        if chosen is None:
            m.evidence.append(f"{rel}: output depends on the build environment (taken as a server)")
        else:
            m.evidence.append(
                f"{rel}: output: {conditional.group(1).strip()} gives '{chosen}' in a production build "
                "(NODE_ENV=production, other variables unset)"
            )
    elif not export and raw and re.search(r"\boutput\s*:\s*['\"]export['\"]", raw):
        m.evidence.append(f"{rel}: output: 'export' is commented out (server build)")
    legacy_export = bool(re.search(r"\bnext export\b", p.scripts.get("build", "")))
    if export or legacy_export:
        m.evidence.append(f"{rel}: output: 'export'" if export else 'build script runs "next export"')
        dist = string_option(src, "distDir")
        plan = static_plan(p, tc, dist if export and dist else "out", "next build")
        plan.variant = "static"
        plan.warnings += [w for w in [traps.next_export_needs_server(rel, src)] if export and w]
        base = traps.next_base_path(src)
        if base:
            plan.build, plan.output_dir, fix = traps.next_export_under_base_path(rel, plan.build, plan.output_dir, base)
            plan.health_path = f"{base}/"
            plan.fixes.append(fix)
            m.evidence.append(fix)
        return plan
    plan = base_plan(p, tc, 3000)
    plan.variant = "server"
    plan.build = build_script(p, tc, "next build")
    start = p.scripts.get("start", "")
    if re.match(r"^\s*(?:NODE_ENV=\w+\s+)?(?:node|ts-node|tsx|bun)\s", start):
        # A custom server (server.js calling next()): run it, it decides how to listen.
        m.evidence.append(f'custom server: start script "{start}"')
        plan.variant = "custom-server"
        server_start(p, tc, plan)
    else:
        plan.start = tc.exec("next start -H 127.0.0.1 -p $PORT")
    base = traps.next_base_path(src) or ""
    for route in ("app/api/health/route", "src/app/api/health/route", "pages/api/health", "src/pages/api/health"):
        if any(p.exists(f"{route}.{ext}") for ext in ("ts", "js", "tsx", "jsx")):
            plan.health_path = f"{base}/api/health"
            break
    else:
        plan.health_path = base or "/"
    if base:
        plan.fixes.append(f"Next.js: {rel} sets basePath '{base}': the app answers under {base} only (404 at /), "
                          f"so the health check asks {plan.health_path}")
        m.evidence.append(plan.fixes[-1])
    return plan


def plan_nuxt(p: Project, m: Match, tc: Toolchain) -> Plan:
    ver = p.node_deps.get("nuxt") or p.node_deps.get("nuxt3") or ""
    rel, src = config_file(p, "nuxt.config")
    build = p.scripts.get("build", "")
    generate = p.scripts.get("generate", "")
    nuxt2 = major(ver) == 2
    if nuxt2:
        if re.search(r"\btarget\s*:\s*['\"]static['\"]", src) or "nuxt generate" in build:
            m.evidence.append("Nuxt 2 static target")
            plan = static_plan(p, tc, "dist", None)
            plan.build = tc.run("generate") if generate else tc.exec("nuxt generate")
            return plan
        plan = base_plan(p, tc, 3000)
        plan.build = build_script(p, tc, "nuxt build")
        plan.start = tc.exec("nuxt start --hostname 127.0.0.1 --port $PORT")
        return plan
    static_preset = re.search(r"\bpreset\s*:\s*['\"]static['\"]", src)
    if re.search(r"\bnux[ti] generate\b", build) or static_preset:
        m.evidence.append("static generation (nuxt generate / static preset)")
        plan = static_plan(p, tc, ".output/public", "nuxi generate")
        return plan
    plan = base_plan(p, tc, 3000)
    plan.build = build_script(p, tc, "nuxi build")
    plan.start = "HOST=127.0.0.1 node .output/server/index.mjs"
    plan.build, fix = traps.nuxt_node_server_build(rel, src, plan.build)
    plan.fixes += [fix] if fix else []
    m.evidence += [fix] if fix else []
    return plan


def _sveltekit_config(p: Project) -> tuple[str | None, str]:
    """The config that names the adapter: svelte.config, or vite.config (newer `sv create`)."""
    rel, src = config_file(p, "svelte.config")
    if "@sveltejs/adapter-" in src:
        return rel, src
    vite_rel, vite_src = config_file(p, "vite.config")
    return (vite_rel, vite_src) if "@sveltejs/adapter-" in vite_src else (rel, src)


def plan_sveltekit(p: Project, m: Match, tc: Toolchain) -> Plan:
    rel, src = _sveltekit_config(p)
    adapter = traps.sveltekit_adapter(src, p.node_deps) or "auto"
    m.evidence.append(f"adapter: @sveltejs/adapter-{adapter}" + (f" ({rel})" if rel else ""))
    if adapter == "static":
        plan = static_plan(p, tc, string_option(src, "pages") or "build", "vite build")
        plan.variant = "static"
        return plan
    plan = base_plan(p, tc, 3000)
    plan.variant = "node"
    plan.build = build_script(p, tc, "vite build")
    plan.start = f"HOST=127.0.0.1 node {string_option(src, 'out') or 'build'}"
    if traps.needs_node_adapter(adapter):
        kit = major(p.node_deps.get("@sveltejs/kit"))
        plan.build = traps.sveltekit_node_build(tc, rel, adapter, plan.build, kit)
        plan.fixes.append(traps.sveltekit_fix_note(rel, adapter))
        m.evidence.append(plan.fixes[-1])
    elif adapter != "node":
        plan.warnings.append(f"SvelteKit uses @sveltejs/adapter-{adapter}, which does not produce a Node server: "
                             "install @sveltejs/adapter-node and use it in svelte.config.js")
    return plan


def plan_remix(p: Project, m: Match, tc: Toolchain) -> Plan:
    _, vite_src = config_file(p, "vite.config")
    classic = "vite" not in p.node_deps and not vite_src
    if re.search(r"\bssr\s*:\s*false\b", vite_src):
        m.evidence.append("vite.config: ssr: false (SPA mode)")
        return static_plan(p, tc, "build/client", "remix vite:build")
    plan = base_plan(p, tc, 3000)
    plan.build = build_script(p, tc, "remix build" if classic else "remix vite:build")
    if "start" in p.scripts:
        server_start(p, tc, plan)
    else:
        plan.start = tc.exec("remix-serve " + ("./build/index.js" if classic else "./build/server/index.js"))
    return plan


def plan_react_router(p: Project, m: Match, tc: Toolchain) -> Plan:
    rel, src = config_file(p, "react-router.config")
    if re.search(r"\bssr\s*:\s*false\b", src):
        m.evidence.append(f"{rel}: ssr: false (static SPA)")
        return static_plan(p, tc, "build/client", "react-router build")
    plan = base_plan(p, tc, 3000)
    plan.build = build_script(p, tc, "react-router build")
    if "start" in p.scripts:
        server_start(p, tc, plan)
    else:
        plan.start = tc.exec("react-router-serve ./build/server/index.js")
    return plan


def plan_astro(p: Project, m: Match, tc: Toolchain) -> Plan:
    rel, src = config_file(p, "astro.config")
    output = re.search(r"\boutput\s*:\s*['\"](server|hybrid|static)['\"]", src)
    adapter = re.search(r"['\"]@astrojs/(node|vercel|netlify|cloudflare|deno)['\"]", src)
    server = (output and output.group(1) in ("server", "hybrid")) or (adapter and adapter.group(1) == "node")
    out_dir = string_option(src, "outDir") or "dist"
    if not server:
        plan = static_plan(p, tc, out_dir, "astro build")
        plan.variant = "static"
        return plan
    m.evidence.append(f"{rel}: " + (f"output: '{output.group(1)}'" if output else "node adapter"))
    plan = base_plan(p, tc, 4321)
    plan.variant = "server"
    plan.build = build_script(p, tc, "astro build")
    plan.start = f"HOST=127.0.0.1 node ./{out_dir}/server/entry.mjs"
    plan.build, fix, plan.blocked = traps.astro_server(tc, rel, adapter and adapter.group(1), plan.build)
    plan.fixes += [fix] if fix else []
    m.evidence += [x for x in (fix, plan.blocked) if x]
    if adapter and adapter.group(1) == "node" and re.search(r"\bmode\s*:\s*['\"]middleware['\"]", src):
        plan.warnings.append("@astrojs/node is in middleware mode: use mode: 'standalone' to get a server")
    return plan


def plan_gatsby(p: Project, m: Match, tc: Toolchain) -> Plan:
    return static_plan(p, tc, "public", "gatsby build")


def plan_docusaurus(p: Project, m: Match, tc: Toolchain) -> Plan:
    return static_plan(p, tc, "build", "docusaurus build")


def plan_eleventy(p: Project, m: Match, tc: Toolchain) -> Plan:
    out = "_site"
    for stem in (".eleventy", "eleventy.config"):
        _, src = config_file(p, stem)
        found = re.search(r"\boutput\s*:\s*['\"]([^'\"]+)['\"]", src)
        if found:
            out = found.group(1).strip("./") or "_site"
            break
    return static_plan(p, tc, out, "eleventy")


def match_angular(p: Project) -> Match:
    m = by_dependency("@angular/core")(p)
    if m.ok and p.exists("angular.json"):
        m.evidence.append("angular.json")
    return m


def plan_angular(p: Project, m: Match, tc: Toolchain) -> Plan:
    ng = p.json("angular.json") or {}
    projects = ng.get("projects") or {}
    name = ng.get("defaultProject")
    if name not in projects:
        name = next((k for k, v in projects.items() if (v or {}).get("projectType") == "application"), None)
    proj = projects.get(name) or {}
    build = ((proj.get("architect") or proj.get("targets") or {}).get("build")) or {}
    builder = str(build.get("builder") or build.get("executor") or "")
    options = build.get("options") or {}
    out = options.get("outputPath") or f"dist/{name or 'app'}"
    application_builder = builder.endswith(":application")
    if isinstance(out, dict):
        base, browser = out.get("base") or f"dist/{name}", out.get("browser", "browser")
    else:
        base, browser = out, "browser" if application_builder else ""
    ssr = application_builder and bool(options.get("ssr") or options.get("server"))
    if ssr:
        m.evidence.append("angular.json: server-side rendering enabled")
        plan = base_plan(p, tc, 4000)
        plan.variant = "ssr"
        plan.build = build_script(p, tc, "ng build")
        script = next((s for s in p.scripts if s.startswith("serve:ssr")), None)
        plan.start = tc.run(script) if script else f"node {base}/server/server.mjs"
        return plan
    output_dir = f"{base}/{browser}".rstrip("/") if browser else base
    plan = static_plan(p, tc, output_dir, "ng build")
    plan.variant = "static"
    return plan


def plan_vuecli(p: Project, m: Match, tc: Toolchain) -> Plan:
    _, src = config_file(p, "vue.config")
    return static_plan(p, tc, string_option(src, "outputDir") or "dist", "vue-cli-service build")


def plan_nest(p: Project, m: Match, tc: Toolchain) -> Plan:
    plan = base_plan(p, tc, 3000)
    plan.build = build_script(p, tc, "nest build")
    cli = p.json("nest-cli.json") or {}
    entry = cli.get("entryFile", "main") if isinstance(cli, dict) else "main"
    source_root = cli.get("sourceRoot", "src") if isinstance(cli, dict) else "src"
    if "start:prod" in p.scripts:
        plan.start = tc.run("start:prod")
    else:
        plan.start = f"node dist/{entry}"
    check_port_usage(p, f"{source_root}/{entry}.ts", plan)
    return plan


def plan_node_server(port: int):
    def plan(p: Project, m: Match, tc: Toolchain) -> Plan:
        result = base_plan(p, tc, port)
        result.build = build_script(p, tc, None)
        server_start(p, tc, result)
        if result.start is None:
            result.warnings.append(
                'no start script and no server file (server.js, index.js, "main"): add a "start" script'
            )
        return result

    return plan


VITE_FLAVOURS = [
    ("@vitejs/plugin-react", "react"),
    ("@vitejs/plugin-react-swc", "react"),
    ("@vitejs/plugin-vue", "vue"),
    ("@sveltejs/vite-plugin-svelte", "svelte"),
    ("@preact/preset-vite", "preact"),
    ("vite-plugin-solid", "solid"),
    ("react", "react"),
    ("vue", "vue"),
    ("svelte", "svelte"),
    ("preact", "preact"),
    ("solid-js", "solid"),
    ("lit", "lit"),
]


def plan_cra(p: Project, m: Match, tc: Toolchain) -> Plan:
    plan = static_plan(p, tc, "build", "react-scripts build")
    plan.variant = "react"
    return plan


def match_vite(p: Project) -> Match:
    m = by_dependency("vite")(p)
    if m.ok:
        rel, src = config_file(p, "vite.config")
        root = string_option(src, "root") or ""
        index = f"{root.strip('./')}/index.html".lstrip("/")
        if not p.exists(index):
            return reject(f"vite is a dependency but there is no {index} (not a single-page app)")
        m.evidence.append(index)
    return m


def plan_vite(p: Project, m: Match, tc: Toolchain) -> Plan:
    _, src = config_file(p, "vite.config")
    out = string_option(src, "outDir") or "dist"
    plan = static_plan(p, tc, out, "vite build")
    plan.variant = next((flavour for dep, flavour in VITE_FLAVOURS if dep in p.node_deps), "vanilla")
    return plan


STATIC_SERVERS = re.compile(
    r"\b(live-server|http-server|lite-server|browser-sync|serve|parcel|webpack serve|webpack-dev-server)\b"
)


def match_plain_node(p: Project) -> Match:
    if p.package_json is None:
        return Match()
    start = p.scripts.get("start", "")
    desktop = next((d for d in ("electron", "expo", "react-native") if d in p.node_deps), None)
    if desktop:
        return reject(f'"{desktop}" is a dependency: a desktop or mobile app, not a web server')
    if start and STATIC_SERVERS.search(start) and p.exists("index.html"):
        return reject(f'the start script only serves static files ("{start}"): a static site')
    if start or any(s in p.scripts for s in PROD_SCRIPTS):
        return Match(["package.json has a start script"])
    entry = node_entry(p)
    if entry and SERVES.search(p.text(entry) or ""):
        return Match([f"package.json and server file {entry}"])
    if entry:
        return reject(f"{entry} does not start a server (no listen/createServer): a library?")
    return reject("package.json has no start script and no server file")


SERVES = re.compile(r"\.listen\(|createServer\(|\bserve\(|Bun\.serve\(|Deno\.serve\(")


def _dep(name: str, *others: str):
    return by_dependency(name, *others)


FRAMEWORKS = {
    "nextjs": Framework("nextjs", "Next.js", "javascript", "node", match_next, plan_next),
    "nuxt": Framework("nuxt", "Nuxt", "javascript", "node", _dep("nuxt", "nuxt3"), plan_nuxt),
    "sveltekit": Framework("sveltekit", "SvelteKit", "javascript", "node", _dep("@sveltejs/kit"), plan_sveltekit),
    "remix": Framework(
        "remix",
        "Remix",
        "javascript",
        "node",
        _dep("@remix-run/dev", "@remix-run/node", "@remix-run/serve"),
        plan_remix,
    ),
    "react-router": Framework(
        "react-router", "React Router 7", "javascript", "node", _dep("@react-router/dev"), plan_react_router
    ),
    "astro": Framework("astro", "Astro", "javascript", "node", _dep("astro"), plan_astro),
    "gatsby": Framework("gatsby", "Gatsby", "javascript", "node", _dep("gatsby"), plan_gatsby),
    "docusaurus": Framework(
        "docusaurus", "Docusaurus", "javascript", "node", _dep("@docusaurus/core"), plan_docusaurus
    ),
    "eleventy": Framework("eleventy", "Eleventy", "javascript", "node", _dep("@11ty/eleventy"), plan_eleventy),
    "angular": Framework("angular", "Angular", "typescript", "node", match_angular, plan_angular),
    "vuecli": Framework("vuecli", "Vue CLI", "javascript", "node", _dep("@vue/cli-service"), plan_vuecli),
    "nestjs": Framework("nestjs", "NestJS", "typescript", "node", _dep("@nestjs/core"), plan_nest),
    "fastify": Framework("fastify", "Fastify", "javascript", "node", _dep("fastify"), plan_node_server(3000)),
    "hono": Framework("hono", "Hono", "javascript", "node", _dep("hono"), plan_node_server(3000)),
    "koa": Framework("koa", "Koa", "javascript", "node", _dep("koa"), plan_node_server(3000)),
    "express": Framework("express", "Express", "javascript", "node", _dep("express"), plan_node_server(3000)),
    "cra": Framework("cra", "Create React App", "javascript", "node", _dep("react-scripts"), plan_cra),
    "vite": Framework("vite", "Vite SPA", "javascript", "node", match_vite, plan_vite),
    "node": Framework("node", "Node.js", "javascript", "node", match_plain_node, plan_node_server(3000)),
}
