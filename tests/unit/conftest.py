"""Unit tests run on the embedded default whatever the environment says: the integration
conftest points SELFMEND_* at Redis and PostgreSQL for the whole session."""

import os

import pytest


@pytest.fixture(autouse=True)
def embedded_settings(monkeypatch):
    for name in [name for name in os.environ if name.startswith("SELFMEND_")]:
        monkeypatch.delenv(name)
