"""Which version of the language runtime a project asks for, and where it says so.

Sources, first found wins (the app directory, then the workspace root for version files):
  node:   .nvmrc, .node-version, .tool-versions (nodejs), package.json volta.node, engines.node
  python: .python-version, runtime.txt (python-3.x.y), .tool-versions, Pipfile python_version,
          pyproject requires-python / [tool.poetry.dependencies] python, else the floor of a
          dependency that needs a newer Python than it says nowhere else (Django 6: >=3.12)
  ruby:   .ruby-version, .tool-versions, Gemfile `ruby "x"`, Gemfile.lock RUBY VERSION
  go:     go.mod toolchain, then the go directive
  rust:   rust-toolchain(.toml) channel, Cargo.toml rust-version
  php:    composer.json config.platform.php, require.php
  java:   .java-version, .sdkmanrc, pom.xml java.version / maven.compiler.release, gradle toolchain
  dotnet: global.json sdk.version, else the csproj TargetFramework (net8.0 -> 8.0)
  elixir: .tool-versions, mix.exs `elixir: "~> 1.15"`
The value is returned as written (a range such as ">=18" stays a range); `configure` decides.
"""

from __future__ import annotations

import re
from pathlib import Path

from lightfold.detect.project import Project, gemfile_ruby_version, strip_hash_comments


def _first_line(project: Project, rel: str) -> str | None:
    raw = project.text(rel)
    if raw is None:
        return None
    for line in raw.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            return line
    return None


def _tool_versions(project: Project, tool: str) -> str | None:
    for line in (project.text(".tool-versions") or "").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0] == tool:
            return parts[1]
    return None


def runtime_version(project: Project, runtime: str, roots: list[Path] | None = None) -> tuple[str, str] | None:
    """(version, source) for `runtime`, looking in the app and then in `roots` (workspace root)."""
    finder = _FINDERS.get(runtime)
    if finder is None:
        return None
    found = finder(project)
    if found:
        return found
    for root in roots or []:
        found = _version_files(Project(root), runtime)
        if found:
            return found[0], f"{root.name}/{found[1]}"
    return None


def _version_files(project: Project, runtime: str) -> tuple[str, str] | None:
    files = {"node": [".nvmrc", ".node-version"], "python": [".python-version"], "ruby": [".ruby-version"]}
    tools = {"node": "nodejs", "python": "python", "ruby": "ruby"}
    for rel in files.get(runtime, []):
        v = _first_line(project, rel)
        if v:
            return v.removeprefix("v"), rel
    if runtime in tools:
        v = _tool_versions(project, tools[runtime])
        if v:
            return v, ".tool-versions"
    return None


def _node(project: Project) -> tuple[str, str] | None:
    found = _version_files(project, "node")
    if found:
        return found
    pkg = project.package_json or {}
    volta = pkg.get("volta")
    if isinstance(volta, dict) and isinstance(volta.get("node"), str):
        return volta["node"], "package.json volta.node"
    engines = pkg.get("engines")
    if isinstance(engines, dict) and isinstance(engines.get("node"), str):
        return engines["node"], "package.json engines.node"
    return None


def _python(project: Project) -> tuple[str, str] | None:
    found = _version_files(project, "python")
    if found:
        return found
    v = _first_line(project, "runtime.txt")
    if v:
        return v.removeprefix("python-"), "runtime.txt"
    pipfile = project.toml("Pipfile") or {}
    req = pipfile.get("requires") or {}
    for key in ("python_full_version", "python_version"):
        if isinstance(req.get(key), str):
            return req[key], f"Pipfile requires.{key}"
    py = project.pyproject or {}
    rp = (py.get("project") or {}).get("requires-python")
    if isinstance(rp, str):
        return rp, "pyproject.toml requires-python"
    poetry = ((py.get("tool") or {}).get("poetry") or {}).get("dependencies") or {}
    if isinstance(poetry.get("python"), str):
        return poetry["python"], "pyproject.toml [tool.poetry.dependencies] python"
    return _dependency_floor(project)


# Dependencies whose release from that major on needs a newer Python: (major, the Python they need).
_PYTHON_FLOORS = {"django": (6, ">=3.12")}


def _dependency_floor(project: Project) -> tuple[str, str] | None:
    """A pinned or lower-bounded dependency (==, ===, >=, ~=) at a major that needs a newer Python."""
    for name, (major, python) in _PYTHON_FLOORS.items():
        spec = project.python_deps.get(name) or ""
        m = re.match(r"\s*(?:\[[^\]]*\])?\s*(?:===?|>=|~=)\s*(\d+)", spec)
        if m and int(m.group(1)) >= major:
            where = project.requirements_file or "the dependencies"
            return python, f"{where} {name}{spec.split(';')[0].strip()} (needs Python {python.lstrip('>=')})"
    return None


def _ruby(project: Project) -> tuple[str, str] | None:
    found = _version_files(project, "ruby")
    if found:
        return found[0].removeprefix("ruby-"), found[1]
    v = gemfile_ruby_version(project.text("Gemfile") or "", project.text("Gemfile.lock") or "")
    return (v, "Gemfile") if v else None


def _go(project: Project) -> tuple[str, str] | None:
    mod = project.go_mod
    if mod and mod.toolchain:
        return mod.toolchain, "go.mod toolchain"
    if mod and mod.go:
        return mod.go, "go.mod go directive"
    return None


def _rust(project: Project) -> tuple[str, str] | None:
    tc = project.toml("rust-toolchain.toml") or {}
    channel = (tc.get("toolchain") or {}).get("channel")
    if isinstance(channel, str):
        return channel, "rust-toolchain.toml"
    v = _first_line(project, "rust-toolchain")
    if v:
        return v, "rust-toolchain"
    rv = ((project.cargo or {}).get("package") or {}).get("rust-version")
    if isinstance(rv, str):
        return rv, "Cargo.toml rust-version"
    return None


def _php(project: Project) -> tuple[str, str] | None:
    data = project.composer or {}
    platform = ((data.get("config") or {}).get("platform") or {}).get("php")
    if isinstance(platform, str):
        return platform, "composer.json config.platform.php"
    req = (data.get("require") or {}).get("php")
    if isinstance(req, str):
        return req, "composer.json require.php"
    return None


def _java(project: Project) -> tuple[str, str] | None:
    v = _first_line(project, ".java-version")
    if v:
        return v, ".java-version"
    m = re.search(r"^\s*java\s*=\s*(\S+)", project.text(".sdkmanrc") or "", re.M)
    if m:
        return m.group(1), ".sdkmanrc"
    pom = project.text("pom.xml") or ""
    for prop in ("java.version", "maven.compiler.release", "maven.compiler.source", "maven.compiler.target"):
        m = re.search(rf"<{re.escape(prop)}>\s*([\w.]+)\s*</{re.escape(prop)}>", pom)
        if m and not m.group(1).startswith("$"):
            return m.group(1), f"pom.xml {prop}"
    for rel in ("build.gradle", "build.gradle.kts"):
        src = project.text(rel) or ""
        m = re.search(r"JavaLanguageVersion\.of\(\s*(\d+)\s*\)", src) or re.search(
            r"sourceCompatibility\s*=\s*(?:JavaVersion\.VERSION_)?['\"]?([\d._]+)", src
        )
        if m:
            return m.group(1).replace("_", "."), rel
    return None


def _dotnet(project: Project) -> tuple[str, str] | None:
    g = project.json("global.json") or {}
    sdk = g.get("sdk") if isinstance(g, dict) else None
    if isinstance(sdk, dict) and isinstance(sdk.get("version"), str):
        return sdk["version"], "global.json sdk.version"
    return None  # the csproj TargetFramework is filled in by the ASP.NET plan


def _elixir(project: Project) -> tuple[str, str] | None:
    v = _tool_versions(project, "elixir")
    if v:
        return v, ".tool-versions"
    m = re.search(r"""elixir:\s*"([^"]+)\"""", strip_hash_comments(project.text("mix.exs") or ""))
    return (m.group(1), "mix.exs elixir") if m else None


_FINDERS = {
    "node": _node,
    "python": _python,
    "ruby": _ruby,
    "go": _go,
    "rust": _rust,
    "php": _php,
    "java": _java,
    "dotnet": _dotnet,
    "elixir": _elixir,
}
