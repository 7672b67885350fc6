"""More package managers and small servers on one sandbox machine (only with
LIGHTFOLD_REALWORLD=all): create-vite React (yarn classic) and Preact (bun), express-generator
(pnpm), koa-generator (npm), `bun init` with a Bun.serve server, and a Go net/http app."""

from __future__ import annotations

import pytest
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import MORE

pytestmark = [pytest.mark.e2e, pytest.mark.realworld_full, pytest.mark.timeout(1500)]


@pytest.mark.parametrize("app", MORE, ids=[a.name for a in MORE])
def test_generated_app_goes_live(machine, app, request):
    deploy_app(machine, app, request)
