"""Durable push delivery of alerts to group chats (WeCom, DingTalk, Feishu/Lark) and JSON webhooks."""
from .outbox import PushOutbox, ensure_schema
from .service import Notifier


def build_components(config, ctx):
    """One Notifier whenever channels are configured (without channels there is nothing to push to)."""
    if not config.alerts.channels:
        return []
    ensure_schema(ctx.store)
    n = Notifier()
    n.attach(ctx)
    return [n]


__all__ = ["Notifier", "PushOutbox", "build_components", "ensure_schema"]
