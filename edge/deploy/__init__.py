"""Deployment on Raspberry Pi-class gateways: systemd notify/watchdog, provisioning, `edge doctor`.

The running gateway gets one component from here (SystemdNotify); `edge provision` and `edge doctor` live in
edge/deploy/cli.py and are imported only when those commands run.
"""
from __future__ import annotations


def build_components(config, ctx) -> list:
    from .watchdog import SystemdNotify

    return [SystemdNotify()]
