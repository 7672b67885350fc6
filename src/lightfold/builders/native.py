"""The native builder: the detected runtime from apt, the build as the app user, nginx in front
(static sites are served by nginx directly). The build script lives in lightfold.server.build."""

from __future__ import annotations

from typing import Any


class NativeBuilder:
    name = "native"
    available_check = "true"
    replaces_runtime = False

    def configure_steps(self, spec: Any) -> tuple:
        return ()

    def serves_static(self, detection: Any) -> bool:
        return bool(getattr(detection, "static", False))
