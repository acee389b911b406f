"""The one interface every driver, analytic and sink implements."""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import RuntimeContext


class Component(abc.ABC):
    """A long-running part of the gateway.

    `run()` runs until cancelled. Raising an exception counts as a crash: the supervisor records why and
    restarts the component with backoff. Clean-up goes in `finally:` blocks (cancellation is how stop works).
    `health()` must be cheap and never raise; it is polled by the supervisor, the console and telemetry.
    """

    name: str = "component"
    #: critical components make the gateway unhealthy (systemd watchdog) while down
    critical: bool = False

    @abc.abstractmethod
    async def run(self, ctx: "RuntimeContext") -> None:
        ...

    def health(self) -> dict[str, Any]:
        return {}
