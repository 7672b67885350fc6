"""Generated Node apps on one sandbox machine (only with LIGHTFOLD_REALWORLD=all): create-vite Vue
(pnpm), `sv create` SvelteKit (adapter-auto, built with adapter-node), express-generator (yarn
classic), Fastify and Hono minimal servers, a minimal Astro site."""

from __future__ import annotations

import pytest
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import NODE

pytestmark = [pytest.mark.e2e, pytest.mark.realworld_full, pytest.mark.timeout(1500)]


@pytest.mark.parametrize("app", NODE, ids=[a.name for a in NODE])
def test_generated_app_goes_live(machine, app, request):
    deploy_app(machine, app, request)
