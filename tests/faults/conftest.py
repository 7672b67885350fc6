"""The fault matrix (issue 18) runs on the e2e suite's sandbox machines: its fixtures, re-exported."""

from tests.e2e.conftest import sandbox_host, shared_sandbox  # noqa: F401 - pytest finds fixtures here

