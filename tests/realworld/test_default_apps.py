"""Three generated apps in the default suite, on one sandbox machine: plain HTML (static, nginx),
Flask's quickstart (pip, gunicorn) and `npm create vite` React (a static SPA: a client-side route
answers with index.html, the history fallback)."""

from __future__ import annotations

import pytest
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import DEFAULT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]


@pytest.mark.parametrize("app", DEFAULT, ids=[a.name for a in DEFAULT])
def test_generated_app_goes_live(machine, app, request):
    deploy_app(machine, app, request)
