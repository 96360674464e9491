"""The whole suite: temp folders (pytest's ``tmp_path`` too) under the run's own root, and
everything the run took from the machine given back when it ends (``tests.resources``), also
when it is stopped with SIGTERM (``timeout``, a cancelled CI job) as it is with Ctrl-C."""

from __future__ import annotations

import signal

import pytest

from tests import resources


def pytest_configure(config: pytest.Config) -> None:
    try:
        resources.slot()
    except resources.SlotError as error:
        raise pytest.UsageError(str(error)) from None
    if config.option.basetemp is None:
        config.option.basetemp = str(resources.run_root() / "pytest")
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """A run with integration tests holds its slot before any of them starts."""
    if any(item.get_closest_marker("integration") for item in items):
        try:
            resources.claim_slot()
        except resources.SlotError as error:
            pytest.exit(str(error), returncode=pytest.ExitCode.USAGE_ERROR)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    resources.release()
