"""Server configuration and release builds as plans: pure data, rendered into bash scripts.

Nothing here does I/O; the remote layer runs the scripts (as root, one ssh exec each) and feeds
their stdout lines to `parse_event`. Public API:

    from lightfold.server.app import AppSpec, ports_for, pick_ports
    from lightfold.server.configure import configure_plan     # -> ConfigurePlan(.script, .fingerprint,
                                                              #    .agent_hash, .plan)
    from lightfold.server.markers import marker_read_command, parse_marker
    from lightfold.server.build import extract_command, build_script, lockfiles
    from lightfold.server.plan import parse_event, render, fingerprint

Modules: plan (actions, steps, renderer), runtime (node/python/... installers), app (user, dirs,
systemd unit, app.json, ports), nginx (site, upstream), firewall (ufw), markers (configured
marker), configure (the whole configure plan), build (one release's build script). Templates
(jinja2, StrictUndefined) are in templates/.
"""
