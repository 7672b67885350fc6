"""nginx for one app: the site, the shared http-context file, the initial upstream, the reload.

Files (their paths come from lightfold.agent.layout):
    NGINX_SHARED_CONF      shared `map` (keepalive + WebSocket upgrade)
    nginx_site(app)        upstream lightfold_<app> + server block(s)
    Layout(app).upstream   `server 127.0.0.1:<blue port>;` written only when absent: the agent owns
                           it afterwards
    ACME_ROOT              webroot for ACME http-01 challenges
Debian's default site is removed. The step ends with `nginx -t` + reload; if `nginx -t` fails the
step's files are put back and nginx keeps serving the previous configuration.
"""

from __future__ import annotations

import posixpath

from lightfold.agent import layout
from lightfold.agent.layout import ACME_ROOT, NGINX_SHARED_CONF, Layout
from lightfold.server.app import AppSpec, render_template
from lightfold.server.plan import EnsureDir, NginxReload, Remove, Step, WriteFile

SHARED_CONF = NGINX_SHARED_CONF
# Debian's own site, which would answer for every name before ours.
DEBIAN_DEFAULT_SITE = posixpath.join(layout.NGINX_SITES, "default")
CLIENT_MAX_BODY_SIZE = "64m"

# Frameworks (or detection variants, e.g. Vite's "react") whose build is a single-page app:
# unknown paths fall back to /index.html.
SPA_FRAMEWORKS = frozenset({
    "react", "vite", "vue", "angular", "svelte", "solid", "preact", "cra", "create-react-app", "spa",
    "ember", "elm",
})


def site_path(app: str) -> str:
    return layout.nginx_site(app)


def upstream_path(app: str) -> str:
    return Layout(app).upstream


def static_root(spec: AppSpec) -> str:
    out = spec.output_path or "."
    current = spec.layout.current
    return current if out == "." else f"{current}/{out}"


def try_files(spec: AppSpec) -> str:
    names = {(getattr(spec.detection, a, None) or "").lower() for a in ("framework", "variant")}
    if names & SPA_FRAMEWORKS:
        return "$uri $uri/ /index.html"
    # Static site generators write about/index.html or about.html for /about.
    return "$uri $uri.html $uri/ =404"


def site_text(spec: AppSpec) -> str:
    return render_template(
        "site.conf.j2",
        app=spec.name,
        upstream=layout.nginx_upstream_name(spec.name),
        upstream_include=upstream_path(spec.name),
        acme_root=ACME_ROOT,
        tls=spec.tls,
        http2_directive=spec.http2_directive,
        domain=spec.domain or "",
        server_name=spec.domain or "_",
        default_server=spec.default_server,
        client_max_body_size=CLIENT_MAX_BODY_SIZE,
        static=spec.static,
        static_root=static_root(spec),
        try_files=try_files(spec),
    )


def shared_conf_text() -> str:
    return render_template("http.conf.j2")


def initial_upstream_text(spec: AppSpec) -> str:
    return render_template("upstream.conf.j2", app=spec.name, port=spec.ports[0])


def nginx_step(spec: AppSpec) -> Step:
    return Step("nginx", (
        EnsureDir(ACME_ROOT, 0o755),
        WriteFile(upstream_path(spec.name), initial_upstream_text(spec), only_if_absent=True),
        WriteFile(SHARED_CONF, shared_conf_text()),
        WriteFile(site_path(spec.name), site_text(spec)),
        Remove(DEBIAN_DEFAULT_SITE),
        NginxReload(),
    ))
