"""Fixtures of the conformance kit: ``client`` runs a test against each implementation."""

from __future__ import annotations

import pytest

from .support import CLIENTS, Client


@pytest.fixture(params=CLIENTS, ids=[c.name for c in CLIENTS])
def client(request: pytest.FixtureRequest) -> Client:
    """bokeh.client, then bokeh_nb_client."""
    result: Client = request.param
    return result
