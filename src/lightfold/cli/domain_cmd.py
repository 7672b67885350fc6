"""`lightfold domain add|remove|show`: a custom domain with HTTPS for a target."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lightfold.cli import output, render
from lightfold.cli.app import app
from lightfold.cli.options import JsonOpt, PathArg, TargetOpt, YesOpt, interactive, resolve_target

domain_app = typer.Typer(
    name="domain", help="A custom domain with HTTPS (Let's Encrypt) for a target.", no_args_is_help=True,
)
app.add_typer(domain_app, name="domain")


@domain_app.command("add")
def add_cmd(
    domain: Annotated[str, typer.Option("--domain", "-d", help="The domain, e.g. app.example.com.",
                                        show_default=False)],
    path: PathArg = Path("."),
    target: TargetOpt = None,
    ssl: Annotated[bool | None, typer.Option("--ssl/--no-ssl", help="HTTPS with a Let's Encrypt certificate "
                                             "(asked on a terminal; default yes).", show_default=False)] = None,
    email: Annotated[str | None, typer.Option("--email", help="ACME account email.", show_default=False)] = None,
    staging: Annotated[bool, typer.Option("--staging", help="Use Let's Encrypt's staging CA (for tests; "
                                          "browsers don't trust it).")] = False,
    acme_server: Annotated[str | None, typer.Option(
        "--acme-server", envvar="LIGHTFOLD_ACME_SERVER", show_default=False,
        help="ACME directory URL (default: Let's Encrypt).")] = None,
    skip_dns_check: Annotated[bool, typer.Option("--skip-dns-check", help="Don't check that the domain "
                                                 "resolves to the server's IP.")] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve the target at DOMAIN, with HTTPS, HTTP→HTTPS redirect and automatic renewal.

    Example: lightfold domain add --domain app.example.com --target myapp
    """
    import re

    from lightfold.errors import UsageError
    from lightfold.release import domain as step
    from lightfold.release import target as targets
    from lightfold.server.tls import normalize_domain

    name = normalize_domain(domain)
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise UsageError(f"'{email}' is not an email address", "pass --email you@example.com")
    if ssl is None:
        ssl = typer.confirm(f"Enable HTTPS for {name} with Let's Encrypt?", default=True) \
            if interactive(yes) else True
    server = step.acme_server(acme_server, staging) if ssl else None
    t = targets.load(resolve_target(target, path))
    t.server  # noqa: B018 - fails early with "create a server first"
    detection = t.detect()
    result = targets.on_server(t, lambda conn: step.add(
        conn, t, detection, name, ssl_on=ssl, email=email, server=server, skip_dns_check=skip_dns_check,
        report=output.reporter(),
    ))

    output.emit(result, as_json, lambda: render.show_domain_added(t.name, result))


@domain_app.command("remove")
def remove_cmd(
    path: PathArg = Path("."),
    target: TargetOpt = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Also revoke and delete the certificate.")] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve the target by IP again; the certificate is kept unless --revoke.

    Example: lightfold domain remove --target myapp
    """
    from lightfold.release import domain as step
    from lightfold.release import target as targets

    t = targets.load(resolve_target(target, path))
    if revoke and interactive(yes) and t.config.domain:
        typer.confirm(f"Revoke and delete the certificate of {t.config.domain.domain}?", default=False, abort=True)
    if t.config.domain is None:
        result = {"target": t.name, "domain": None, "removed": False}
    else:
        detection = t.detect()
        result = targets.on_server(t, lambda conn: step.remove(conn, t, detection, revoke=revoke,
                                                               report=output.reporter()))

    output.emit(result, as_json, lambda: render.show_domain_removed(t.name, result))


@domain_app.command("show")
def show_cmd(path: PathArg = Path("."), target: TargetOpt = None, as_json: JsonOpt = False) -> None:
    """The target's domain and its certificate's expiry.

    Example: lightfold domain show --target myapp
    """
    from lightfold.release import domain as step
    from lightfold.release import target as targets

    t = targets.load(resolve_target(target, path))
    d = t.config.domain
    if d and d.ssl and t.config.server().ip:
        data = targets.on_server(t, lambda conn: step.show(conn, t))
    else:
        from lightfold.remote import run_sync

        data = run_sync(step.show(None, t))

    output.emit(data, as_json, lambda: render.show_domain(t.name, data))
