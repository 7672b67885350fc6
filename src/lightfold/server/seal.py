"""Who owns a release, as lines of root's build script (lightfold.server.build): the build user
while it builds it, root once it is built (sealed), so no later build can change it.

    reap_lines(builder)                  kill what the build left running as the build user
    reuse_lines(builder, previous, stage)   root hard-links an older release's dependencies for the
                                         build to move into place
    seal_lines(paths)                    after a good build, the release and its venv become root's
"""

from __future__ import annotations

import json
import shlex


def reuse_lines(builder: str, previous: str, stage: str) -> list[str]:
    """Root hard-links the dependencies of the older (sealed, root's) release `previous` into
    `stage` and gives the build user its directories, so the build can move them into place
    (the files stay the older release's inodes, read-only to the build user: fs.protected_hardlinks
    would not let it link root's files itself). Only with no process of the build user alive, from
    a path with no symlink in it (`realpath` is the path itself), to a stage that does not exist."""
    p, s = shlex.quote(previous), shlex.quote(stage)
    return [
        *reap_lines(builder),
        f'if [ -d {p} ] && [ "$(realpath -e {p})" = {p} ] && [ ! -e {s} ] && [ ! -L {s} ]; then',
        f"  cp -al {p} {s} && find {s} -type d -exec chown {builder}:{builder} {{}} + || rm -rf {s}",
        "fi",
    ]


def seal_lines(paths: list[str]) -> list[str]:
    """After a good build: the release (and its new venv) become root's; -R never follows a symlink."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    failed = json.dumps({"build": "finish", "status": "failed", "command": "seal", "exit": 1,
                         "output": ["could not make the release root's"]})
    return [f'if [ "$LF_RC" = 0 ]; then chown -R --no-dereference root:root {quoted}'
            f" || {{ printf '%s\\n' {shlex.quote(failed)}; LF_RC=1; }}; fi"]


def reap_lines(builder: str) -> list[str]:
    """Kill whatever the build left running as the build user (a dependency's install script can
    fork a daemon): the build user owns the releases, so nothing of it may outlive the build. The
    deploy lock means no other build of the app runs now; each app has its own build user."""
    return [f"for _ in 1 2 3 4 5; do pkill -KILL -U {builder} || break; sleep 0.2; done"]
