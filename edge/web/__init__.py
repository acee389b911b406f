"""The gateway's web console (aiohttp + plain HTML/CSS/JS in static/) for property managers and installers."""
from edge.notify.outbox import ensure_schema

from .component import WebConsole


def build_components(config, ctx):
    if not config.web.enabled:
        return []
    ensure_schema(ctx.store)  # web_* tables: this module is imported after the store was opened
    return [WebConsole(ctx)]


__all__ = ["WebConsole", "build_components"]
