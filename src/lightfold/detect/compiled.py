"""Go, Rust, Java (Spring Boot) and .NET frameworks: the compiled languages, each matched on its
manifest's dependency declarations (go.mod require, Cargo [dependencies], pom/gradle declarations,
csproj Sdk), never on a word found anywhere in a file. Part of lightfold.detect.others.FRAMEWORKS."""

from __future__ import annotations

import fnmatch
import re

from lightfold.detect import envvars
from lightfold.detect.model import Match, Plan, reject
from lightfold.detect.pm import Toolchain
from lightfold.detect.project import Project, strip_js_comments, xml_root

# -- Go ----------------------------------------------------------------------------------------------

GO_FRAMEWORKS = {
    "gin": ("github.com/gin-gonic/gin", 8080),
    "echo": ("github.com/labstack/echo", 1323),
    "fiber": ("github.com/gofiber/fiber", 3000),
    "chi": ("github.com/go-chi/chi", 8080),
}


def _go_module(p: Project, prefix: str) -> str | None:
    mod = p.go_mod
    if mod is None:
        return None
    return next((r for r in mod.requires if r == prefix or r.startswith(prefix + "/")), None)


def match_go_framework(fid: str):
    prefix, _ = GO_FRAMEWORKS[fid]

    def match(p: Project) -> Match:
        req = _go_module(p, prefix)
        if req:
            return Match([f"go.mod require {req} {p.go_mod.requires[req]}"])
        return Match()

    return match


def _go_main_dirs(p: Project) -> list[str]:
    dirs: list[str] = []
    for f in p.files:
        if f.endswith(".go") and not f.endswith("_test.go"):
            d = f.rpartition("/")[0] or "."
            if d not in dirs and re.search(r"^package main\b", p.text(f) or "", re.M):
                dirs.append(d)
    return dirs


def match_go(p: Project) -> Match:
    if p.go_mod is None:
        return Match()
    mains = _go_main_dirs(p)
    if not mains:
        return reject("go.mod but no `package main` (a library, not a program)")
    return Match([f"go.mod module {p.go_mod.module}", f"package main in {mains[0]}"])


def go_plan(fid: str | None):
    def plan(p: Project, m: Match, tc: Toolchain) -> Plan:
        # A module that requires nothing (net/http only) has nothing to download.
        install = "go mod download" if p.go_mod is None or p.go_mod.requires else None
        result = Plan(port=GO_FRAMEWORKS[fid][1] if fid else 8080, install=install)
        mains = _go_main_dirs(p)
        name = re.sub(r"[^\w.-]", "", (p.go_mod.module if p.go_mod else "app").rstrip("/").rsplit("/", 1)[-1])
        name = name or "app"
        if not mains:
            result.warnings.append("no `package main` found: set deploy.build_command and deploy.start_command")
            return result
        preferred = [".", f"cmd/{name}", "cmd/server", "cmd/api", "cmd/web", "cmd/app"]
        main = next((d for d in preferred if d in mains), mains[0])
        if len(mains) > 1:
            result.warnings.append(f"several main packages ({', '.join(mains)}): building {main}")
        target = "." if main == "." else f"./{main}"
        result.build = f"go build -o bin/{name} {target}"
        result.start = f"./bin/{name}"
        m.evidence.append(f"main package {main}")
        sources = [f for f in p.files if f.endswith(".go") and not f.endswith("_test.go")]
        _check_port(p, sources, result, go=True, gin=fid == "gin")
        result.env_required, _ = envvars.scan(p, sources)
        return result

    return plan


def _check_port(p: Project, sources: list[str], plan: Plan, *, go: bool = False, gin: bool = False) -> None:
    """Warn when compiled servers bind a literal port and nothing reads PORT."""
    text = "\n".join(p.text(f) or "" for f in sources)
    if re.search(r"[\"']PORT[\"']", text):
        return
    if gin and re.search(r"\.Run\(\s*\)", text):
        return  # gin's Run() without an address listens on $PORT
    literal = (
        re.search(r"\"(?:[\w.]*|\[::\])?:(\d{2,5})\"", text)
        if go
        else re.search(
            r"\"(?:0\.0\.0\.0|127\.0\.0\.1|localhost|\[::\])?:(\d{2,5})\"|\(\s*\"(?:0\.0\.0\.0|127\.0\.0\.1)\"\s*,\s*(\d{2,5})\s*\)",
            text,
        )
    )
    if literal:
        port = next(g for g in literal.groups() if g)
        plan.port = int(port)
        plan.warnings.append(
            f"the server binds the hard-coded port {port} and never reads PORT: read the PORT environment "
            "variable (otherwise the health check of the new release fails)"
        )


# -- Rust --------------------------------------------------------------------------------------------

RUST_FRAMEWORKS = {"axum": 3000, "actix-web": 8080}


def _cargo_crates(p: Project) -> list[tuple[str, dict]]:
    """(directory, Cargo.toml) of the crate at the root, or of each workspace member."""
    cargo = p.cargo
    if cargo is None:
        return []
    crates = [("", cargo)] if "package" in cargo else []
    members = ((cargo.get("workspace") or {}).get("members")) or []
    dirs = {f.rpartition("/")[0] for f in p.files if f.endswith("/Cargo.toml")}
    for d in sorted(dirs):
        if any(fnmatch.fnmatch(d, str(g).rstrip("/")) for g in members):
            data = p.toml(f"{d}/Cargo.toml")
            if data and "package" in data:
                crates.append((d, data))
    return crates


def _crate_deps(cargo: dict) -> dict:
    deps = dict(cargo.get("dependencies") or {})
    for target in (cargo.get("target") or {}).values():
        if isinstance(target, dict):
            deps.update(target.get("dependencies") or {})
    return deps


def match_rust_framework(crate: str):
    def match(p: Project) -> Match:
        crates = _cargo_crates(p)
        using = [(d, c) for d, c in crates if crate in _crate_deps(c)]
        if not using:
            return Match()
        # the crate that uses the framework may be a library; the server is a binary crate
        with_bin = [(d, c) for d, c in using if _rust_binaries(p, d, c)]
        any_bin = [(d, c) for d, c in crates if _rust_binaries(p, d, c)]
        d, cargo = (with_bin or any_bin or using)[0]
        where = _in_crate(using[0][0], "Cargo.toml")
        evidence = [f"{where} [dependencies] {crate}"]
        if (d, cargo) is not using[0]:
            evidence.append(f"binary crate {_in_crate(d, 'Cargo.toml')}")
        return Match(evidence, {"crate_dir": d, "cargo": cargo})

    return match


def _in_crate(d: str, rel: str) -> str:
    return f"{d}/{rel}" if d else rel


def _rust_binaries(p: Project, d: str, cargo: dict) -> list[str]:
    """Binary names: [[bin]] tables, else src/main.rs (the package name), else src/bin/*.rs."""
    named = [b["name"] for b in cargo.get("bin") or [] if isinstance(b, dict) and b.get("name")]
    if named:
        return named
    if p.exists(_in_crate(d, "src/main.rs")):
        return [cargo["package"]["name"]]
    folder = _in_crate(d, "src/bin")
    return [n[:-3] for n in p.listdir(folder) if n.endswith(".rs")] + [
        n for n in p.listdir(folder) if p.exists(f"{folder}/{n}/main.rs")
    ]


def match_rust(p: Project) -> Match:
    for d, cargo in _cargo_crates(p):
        if _rust_binaries(p, d, cargo):
            return Match([f"{_in_crate(d, 'Cargo.toml')} with a binary"], {"crate_dir": d, "cargo": cargo})
    if p.cargo is not None:
        return reject("Cargo.toml but no binary crate (src/main.rs, src/bin/ or [[bin]])")
    return Match()


def rust_plan(port: int):
    def plan(p: Project, m: Match, tc: Toolchain) -> Plan:
        cargo, d = m.data["cargo"], m.data["crate_dir"]
        bins = _rust_binaries(p, d, cargo) or [cargo["package"]["name"]]
        preferred = [b for b in bins if b in (cargo["package"]["name"], "server", "api", "web", "app")]
        name = (preferred or bins)[0]
        locked = " --locked" if p.exists("Cargo.lock") else ""
        pkg = f" -p {cargo['package']['name']}" if d else ""
        result = Plan(port=port, install=f"cargo fetch{locked}")
        result.build = f"cargo build --release{locked}{pkg}"
        result.start = f"./target/release/{name}"
        if len(bins) > 1:
            result.warnings.append(f"several binaries ({', '.join(bins)}): starting {name}")
        bin_dir = _in_crate(d, "src/bin")
        sources = [f for f in p.files if f.endswith(".rs") and f.startswith(_in_crate(d, "src/"))]
        sources += [f"{bin_dir}/{n}" for n in p.listdir(bin_dir) if n.endswith(".rs")]
        _check_port(p, sources, result)
        result.env_required, _ = envvars.scan(p, sources)
        return result

    return plan


# -- Java --------------------------------------------------------------------------------------------


def _gradle_file(p: Project, d: str = "") -> str | None:
    return p.first(*(f"{d}/{n}" if d else n for n in ("build.gradle.kts", "build.gradle")))


def _pom_is_boot_app(root) -> bool:
    """The module builds a Spring Boot jar (the repackaging plugin, or a web starter)."""
    if any((pl.findtext("artifactId") or "").strip() == "spring-boot-maven-plugin" for pl in root.iter("plugin")):
        return True
    return any(
        (dep.findtext("groupId") or "").strip() == "org.springframework.boot"
        and (dep.findtext("artifactId") or "").startswith(("spring-boot-starter-web", "spring-boot-starter-webflux"))
        for dep in root.iter("dependency")
    )


def _gradle_applies_boot(src: str) -> bool:
    src = strip_js_comments(src)
    return bool(
        re.search(r"""\bid\s*\(?\s*["']org\.springframework\.boot["']""", src)
        or re.search(r"""^\s*apply\s+plugin:\s*["']org\.springframework\.boot["']""", src, re.M)
        or re.search(r"""^\s*\w+\s*\(?\s*["']org\.springframework\.boot:spring-boot-starter""", src, re.M)
    )


def match_spring(p: Project) -> Match:
    pom = p.text("pom.xml")
    root = xml_root(pom) if pom else None
    if root is not None:
        parent = root.find("parent")
        module = _maven_app_module(p, root)
        where = f" (application module {module})" if module else ""
        if parent is not None and (parent.findtext("groupId") or "").strip() == "org.springframework.boot":
            return Match([f"pom.xml parent org.springframework.boot:{parent.findtext('artifactId')}{where}"])
        for dep in root.iter("dependency"):
            if (dep.findtext("groupId") or "").strip() == "org.springframework.boot":
                return Match([f"pom.xml dependency org.springframework.boot:{dep.findtext('artifactId')}{where}"])
        if _pom_is_boot_app(root) or module:
            return Match([f"pom.xml spring-boot-maven-plugin{where}"])
    gradle = _gradle_file(p)
    if gradle and _gradle_applies_boot(p.text(gradle) or ""):
        return Match([f"{gradle} applies org.springframework.boot"])
    sub = _gradle_app_project(p)
    if sub:
        return Match([f"{_gradle_file(p, sub)} applies org.springframework.boot"])
    return Match()


def _maven_app_module(p: Project, root) -> str | None:
    """In a multi-module build, the module that produces the Spring Boot jar."""
    modules = [(m.text or "").strip() for m in root.findall("modules/module")]
    for mod in modules:
        sub = xml_root(p.text(f"{mod}/pom.xml") or "")
        if sub is not None and _pom_is_boot_app(sub):
            return mod
    return None


def _gradle_app_project(p: Project) -> str | None:
    if not (p.exists("settings.gradle") or p.exists("settings.gradle.kts")):
        return None
    for f in p.glob(r"[^/]+/build\.gradle(?:\.kts)?"):
        if _gradle_applies_boot(p.text(f) or ""):
            return f.split("/", 1)[0]
    return None


def _maven_jar(root, prefix: str) -> str:
    final = root.findtext("build/finalName") if root is not None else None
    art = root.findtext("artifactId") if root is not None else None
    ver = root.findtext("version") if root is not None else None
    if ver is None and root is not None:
        ver = root.findtext("parent/version")  # modules usually inherit the version
    if final and "$" not in final:
        return f"{prefix}target/{final}.jar"
    if art and ver and "$" not in art + ver:
        return f"{prefix}target/{art}-{ver}.jar"
    return f"{prefix}target/*.jar"


def plan_spring(p: Project, m: Match, tc: Toolchain) -> Plan:
    plan = Plan(port=8080)
    args = "--server.port=$PORT --server.address=127.0.0.1"
    pom = p.text("pom.xml")
    module = ""
    if pom is not None:
        plan.package_manager = "maven"
        mvn = "./mvnw" if p.exists("mvnw") else "mvn"
        if mvn == "mvn":
            plan.extra_runtimes.append("maven")
        root = xml_root(pom)
        module = (_maven_app_module(p, root) if root is not None else None) or ""
        if module:
            plan.build = f"{mvn} -B -DskipTests package -pl {module} -am"
            plan.start = f"java -jar {_maven_jar(xml_root(p.text(f'{module}/pom.xml') or ''), module + '/')} {args}"
        else:
            plan.build = f"{mvn} -B -DskipTests package"
            plan.start = f"java -jar {_maven_jar(root, '')} {args}"
    else:
        plan.package_manager = "gradle"
        gradle = "./gradlew" if p.exists("gradlew") else "gradle"
        if gradle == "gradle":
            plan.extra_runtimes.append("gradle")
        root_file = _gradle_file(p)
        module = "" if root_file and _gradle_applies_boot(p.text(root_file) or "") else (_gradle_app_project(p) or "")
        task = f":{module}:bootJar" if module else "bootJar"
        plan.build = f"{gradle} {task} -x test"
        plan.start = f"java -jar {module + '/' if module else ''}build/libs/*.jar {args}"
    prefix = f"{module}/" if module else ""
    deps_text = (pom or "") + (p.text(f"{prefix}pom.xml") or "") + (p.text(_gradle_file(p, module) or "") or "")
    if "spring-boot-starter-actuator" in deps_text:
        plan.health_path = "/actuator/health"
    required: set[str] = set()
    resources = f"{prefix}src/main/resources"
    for name in p.listdir(resources):
        if re.fullmatch(r"application[\w-]*\.(?:properties|ya?ml)", name):
            required |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", p.text(f"{resources}/{name}") or ""))
    plan.env_required = sorted(required - {"PORT"})
    return plan


# -- .NET --------------------------------------------------------------------------------------------


def _web_projects(p: Project) -> list[tuple[str, object]]:
    found = []
    for f in p.files:
        if f.endswith(".csproj") and f.count("/") <= 3:
            root = xml_root(p.text(f) or "")
            if root is not None and (root.get("Sdk") or "").strip() in WEB_SDKS:
                found.append((f, root))
    return found


WEB_SDKS = ("Microsoft.NET.Sdk.Web", "Microsoft.NET.Sdk.BlazorWebAssembly")


def match_aspnet(p: Project) -> Match:
    # servers before Blazor WebAssembly clients, shallowest first, test projects last
    projects = sorted(
        _web_projects(p),
        key=lambda x: (x[1].get("Sdk") != WEB_SDKS[0], "test" in x[0].lower(), x[0].count("/"), x[0]),
    )
    if projects:
        return Match([f'{projects[0][0]} Sdk="Microsoft.NET.Sdk.Web"'], {"projects": projects})
    return Match()


def plan_aspnet(p: Project, m: Match, tc: Toolchain) -> Plan:
    projects = m.data["projects"]
    csproj, root = projects[0]
    plan = Plan(port=5000, package_manager="dotnet")
    if len(projects) > 1:
        plan.warnings.append(f"several web projects ({', '.join(f for f, _ in projects)}): using {csproj}")
    assembly = root.findtext(".//AssemblyName") or csproj.rsplit("/", 1)[-1].removesuffix(".csproj")
    tfm = root.findtext(".//TargetFramework") or (root.findtext(".//TargetFrameworks") or "").split(";")[0]
    version = re.match(r"net(?:coreapp)?(\d+\.\d+)", tfm or "")
    if version:
        plan.runtime_version = (version.group(1), f"{csproj} TargetFramework {tfm}")
    plan.install = f"dotnet restore {csproj}"
    plan.build = f"dotnet publish {csproj} -c Release -o out --no-restore"
    if root.get("Sdk") == "Microsoft.NET.Sdk.BlazorWebAssembly":
        plan.static, plan.output_dir, plan.variant = True, "out/wwwroot", "blazor-wasm"
        return plan
    plan.start = f"ASPNETCORE_URLS=http://127.0.0.1:$PORT dotnet out/{assembly}.dll"
    program = p.text(f"{csproj.rpartition('/')[0]}/Program.cs".lstrip("/")) or ""
    health = re.search(r"MapHealthChecks\(\s*\"(/[^\"]*)\"", program)
    if health:
        plan.health_path = health.group(1)
    return plan
