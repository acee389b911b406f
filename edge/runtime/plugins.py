"""Where components come from.

Each module listed here exposes `build_components(config, ctx) -> list[Component]`. The supervisor calls
them in order; a package that is not installed (or not written yet) is skipped. Adding a device family
means adding a module here, never editing the supervisor.
"""
from __future__ import annotations

from edge.imports import import_if_present
import logging

log = logging.getLogger("edge.plugins")

BUILDERS = [
    "edge.runtime.housekeeping",
    "drivers.access",
    "drivers.bins",
    "drivers.cameras",
    "edge.analytics",
    "edge.alerts",
    "cloud_bridge",
    "edge.notify",
    "edge.web",
    "edge.deploy",
]


def import_all() -> None:
    """Import every plug-in module first, so their store migrations are registered before the store opens."""
    for name in BUILDERS:
        import_if_present(name)


def build_all(config, ctx) -> list:
    components = []
    for name in BUILDERS:
        module = import_if_present(name)
        if module is None:
            # Every module listed here ships with the gateway: a missing one is a broken install, not a choice.
            log.error("gateway module is not installed; its devices/sinks will not run (reinstall the gateway)",
                      extra={"module": name})
            continue
        builder = getattr(module, "build_components", None)
        if builder is None:
            continue
        built = builder(config, ctx) or []
        components.extend(built)
    return components
