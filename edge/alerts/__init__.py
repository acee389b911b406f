"""Alerts derived from events (rules.py) with a lifecycle (manager.py)."""
from .manager import AlertError, AlertManager
from .rules import RULES, Action


def build_components(config, ctx):
    mgr = AlertManager(cooldown_s=config.alerts.cooldown_s)
    mgr.attach(ctx)
    return [mgr]


__all__ = ["AlertError", "AlertManager", "RULES", "Action", "build_components"]
