"""pytest fixtures for the OpenRouter Data API emulator (entry point ``pytest11: openrouter``).

Imports only stdlib and pytest at module level; the emulator is imported inside the
fixtures, so registering the plugin costs nothing for test runs that do not use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_openrouter.testing.emulator import Emulator


@pytest.fixture
def openrouter_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """A callable taking ``Emulator`` keyword arguments and returning a started emulator.

    Every emulator it made is stopped at teardown.
    """
    from airflow_provider_openrouter.testing.emulator import Emulator

    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in reversed(started):
        emulator.stop()


@pytest.fixture
def openrouter_emulator(openrouter_emulator_factory: Callable[..., Emulator]) -> Emulator:
    """A fresh, started emulator with default settings but no rate limits."""
    return openrouter_emulator_factory(rpm=None, daily_limit=None)
