"""Server configuration and release builds as plans: pure data, rendered into bash scripts.

Nothing here does I/O; the remote layer runs each script as root in one ssh exec (`bash -s`,
script on stdin) and feeds its stdout lines to `parse_event` (stdout holds only JSON events; a
failure event carries the command, exit code and last 20 output lines, then the script exits 1).

Configure (idempotent; a second run reports nothing changed):
    from lightfold.server.app import AppSpec, ports_for
    from lightfold.server.configure import configure_plan
    from lightfold.server.markers import marker_read_command, parse_marker
    ports = ports_for(app, {name: app_json_doc, ...})          # the app's own, or the next free pair
    spec = AppSpec.from_target(app, target, detection, ports, default_server=..., tls=...)
    cfg = configure_plan(spec, agent_files=bundle.agent_files(), ssh_port=22)
    marker = parse_marker(<output of marker_read_command(app)>)
    if force or not marker or marker["fingerprint"] != cfg.fingerprint: run cfg.script
    runtime.runtime_warnings(detection)                          # runtime newer than Debian's

Push (build of one release, run after the archive is uploaded):
    from lightfold.server.build import extract_command, build_script, lockfiles
    extract_command(app, release_id, "/tmp/upload.tgz")          # unpack as the app user
    build_script(app, detection, target.deploy, release_id, deps_hash=..., reuse_from=...,
                 release_info={...})                             # install/reuse, build, start

Modules: plan (actions, steps, renderer), runtime (node/python/... installers), app (user, dirs,
systemd unit, app.json, ports), nginx (site, upstream), firewall (nftables, revert unless confirmed),
hardening (sshd drop-in, security updates), markers (configured
marker), configure (the whole configure plan), build (one release's build script). Templates
(jinja2, StrictUndefined) are in templates/.
"""
