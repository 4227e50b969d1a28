"""Test helpers: an emulator of OpenRouter's Data API and its pytest fixtures.

Nothing here imports the rest of ``airflow_provider_openrouter``: the emulator is an
independent reading of the API, so it cannot share a misunderstanding with the client.
``Emulator`` is imported lazily so that loading the pytest plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from .emulator import Emulator

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
