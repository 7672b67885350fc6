"""Static sites of other generators on one sandbox machine (only with LIGHTFOLD_REALWORLD=all):
`ng new --defaults` (Angular CLI 20, an SPA), `create-docusaurus classic`, create-vite Solid (pnpm),
`npm create vue` (yarn classic; its engines ask for Node 22.18+) and Eleventy's quick start."""

from __future__ import annotations

import pytest
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import SITES

pytestmark = [pytest.mark.e2e, pytest.mark.realworld_full, pytest.mark.timeout(1500)]


@pytest.mark.parametrize("app", SITES, ids=[a.name for a in SITES])
def test_generated_app_goes_live(machine, app, request):
    deploy_app(machine, app, request)
