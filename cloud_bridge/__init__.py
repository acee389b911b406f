"""Cloud bridge: the MQTT 5 uplink to the county data centre (store-and-forward from the SQLite outbox).

Contract: docs/mqtt.md and docs/asyncapi.yaml; payload schemas in cloud_bridge/schemas/.
"""
from __future__ import annotations


def build_components(config, ctx):
    if config.uplink is None or not config.uplink.enabled:
        return []
    from . import outbox
    from .uplink import Uplink

    # the gateway opened the store before importing plug-ins: apply our migration now, before the first event
    outbox.ensure_schema(ctx.store)

    up = Uplink(config, ctx)
    ctx.services["uplink"] = up
    return [up]
