"""Video and sensor analytics: fire-lane blockage, clutter, litter, off-hours drops, bin overflow fusion,
station statistics. One analytic per file; they are pure (frame/timestamps in, Emissions out) and the
component (component.py) turns their output into events with evidence. Alerts derive from those events
(edge/alerts/rules.py)."""
from __future__ import annotations

from . import station_stats  # noqa: F401  (registers the statistics tables' migration at import time)


def build_components(config, ctx):
    if not config.zones and not config.stations:
        return []
    from .component import AnalyticsComponent

    comp = AnalyticsComponent(config)
    comp.attach(ctx)  # subscribe to bin.full and the frame hub before drivers start producing
    return [comp]


__all__ = ["build_components"]
