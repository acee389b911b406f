"""Cloud bridge: the MQTT 5 uplink to the county data centre (store-and-forward from the SQLite outbox).

Contract: docs/mqtt.md and docs/asyncapi.yaml; payload schemas in cloud_bridge/schemas/.
"""
from __future__ import annotations


def build_components(config, ctx):
    if config.uplink is None or not config.uplink.enabled:
        return []
    from . import outbox  # noqa: F401  (registers the migration)
    from .uplink import Uplink

    up = Uplink(config, ctx)
    ctx.services["uplink"] = up
    return [up]
