"""Generated apps with their own server build, on one sandbox machine (only with
LIGHTFOLD_REALWORLD=all): create-next-app (npm, `next start`) and the same app with Next's
`output: 'export'` (pnpm, static files), Nuxt's minimal starter (Nitro's node-server output),
React Router's default template (SSR, react-router-serve) and `@nestjs/cli new`."""

from __future__ import annotations

import pytest
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import SERVERS

pytestmark = [pytest.mark.e2e, pytest.mark.realworld_full, pytest.mark.timeout(1500)]


@pytest.mark.parametrize("app", SERVERS, ids=[a.name for a in SERVERS])
def test_generated_app_goes_live(machine, app, request):
    deploy_app(machine, app, request)
