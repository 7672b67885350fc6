"""The native builder: the detected runtime from apt, the build as the app user, nginx in front
(static sites are served by nginx directly). The build script lives in lightfold.server.build."""

from __future__ import annotations

from typing import Any


class NativeBuilder:
    name = "native"
    available_check = "true"
    replaces_runtime = False

    def configure_steps(self, spec: Any) -> tuple:
        """No extra step, except that an app built by the dockerfile builder before loses the slots'
        drop-in that ran its containers (the native slot runs its release's start script)."""
        from lightfold.agent.layout import Layout
        from lightfold.server.plan import Remove, Step, SystemdReload

        return (Step("builder", (Remove(Layout(spec.name).docker_dropin), SystemdReload())),)

    def serves_static(self, detection: Any) -> bool:
        return bool(getattr(detection, "static", False))

    def adapt(self, detection: Any) -> Any:
        return detection

    def lockfiles(self, detection: Any) -> tuple[str, ...]:
        from lightfold.server.build import lockfiles

        return lockfiles(detection)

    def prepare_command(self, app: str, release_id: str, detection: Any, app_subdir: str | None) -> str | None:
        return None

    def prepared(self, detection: Any, output: str) -> tuple[Any, tuple[str, ...]]:
        return detection, ()

    def build_step(self, app: str, release_id: str, reuse_from: str | None) -> str:
        return f"building {release_id}" + (f" (dependencies reused from {reuse_from})" if reuse_from else "")

    def build_script(self, app: str, detection: Any, deploy: Any, release_id: str, *, deps_hash: str | None,
                     reuse_from: str | None, release_info: dict[str, Any], app_subdir: str | None) -> str:
        from lightfold.server.build import build_script

        return build_script(app, detection, deploy, release_id, deps_hash=deps_hash, reuse_from=reuse_from,
                            release_info=release_info, app_subdir=app_subdir)

    def reuse_commands(self, app: str, from_release: str, to_release: str) -> tuple[str, ...]:
        return ()
