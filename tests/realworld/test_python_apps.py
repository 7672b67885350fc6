"""Generated Python apps on one sandbox machine (only with LIGHTFOLD_REALWORLD=all):
`django-admin startproject` (pip) and a uv FastAPI project."""

from __future__ import annotations

import pytest
from tests.realworld.conftest import deploy_app
from tests.realworld.generators import PYTHON

pytestmark = [pytest.mark.e2e, pytest.mark.realworld_full, pytest.mark.timeout(1500)]


@pytest.mark.parametrize("app", PYTHON, ids=[a.name for a in PYTHON])
def test_generated_app_goes_live(machine, app, request):
    deploy_app(machine, app, request)
