"""Unit tests run on the embedded default whatever the environment says: the integration
conftest points SELFMEND_* at Redis and PostgreSQL for the whole session."""

import os

import pytest

from selfmend.config import Settings
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.patterns import Pattern
from selfmend.system import System


@pytest.fixture(autouse=True)
def embedded_settings(monkeypatch):
    for name in [name for name in os.environ if name.startswith("SELFMEND_")]:
        monkeypatch.delenv(name)


def built_in(name: str) -> Pattern:
    """The catalogue's pattern of that name, as shipped."""
    [pattern] = [pattern for pattern in BUILTIN_PATTERNS if pattern.name == name]
    return pattern


@pytest.fixture
def system(tmp_path):
    """A system on the embedded store with the catalogue as shipped (a test module may define
    its own ``system``)."""
    return System.from_settings(Settings(home=tmp_path), patterns=BUILTIN_PATTERNS)
