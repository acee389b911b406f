"""Fault-injection hook for the watchdog test: SIGUSR2 blocks the event loop.

Only armed when EDGE_TEST_HOOKS=1 is in the environment (the systemd unit never sets it). The handler runs
inside the loop and sleeps synchronously, which is exactly the fault the watchdog must catch: a blocking call
that stalls every task. EDGE_TEST_FREEZE_S sets how long (default one hour, i.e. until systemd kills us).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Callable

log = logging.getLogger("edge.deploy.testhooks")

ENV_ENABLE = "EDGE_TEST_HOOKS"
ENV_FREEZE_S = "EDGE_TEST_FREEZE_S"


def hooks_enabled(env: dict[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get(ENV_ENABLE) == "1"


def install_freeze_hook(loop: asyncio.AbstractEventLoop, announce: Callable[[str], None]) -> bool:
    """Arm SIGUSR2 → freeze. `announce(text)` is called first (the notifier's STATUS=) so a test knows
    the freeze has begun. Returns whether the hook was armed."""
    if not hooks_enabled():
        return False
    freeze_s = float(os.environ.get(ENV_FREEZE_S, "3600"))

    def freeze() -> None:
        log.warning("test hook: freezing the event loop", extra={"seconds": freeze_s})
        announce(f"TEST HOOK: event loop frozen for {freeze_s:g} s")
        time.sleep(freeze_s)  # blocks the loop on purpose: this is the fault being simulated
        log.warning("test hook: event loop released")

    loop.add_signal_handler(signal.SIGUSR2, freeze)
    log.warning("test hooks armed: SIGUSR2 freezes the event loop", extra={"freeze_s": freeze_s})
    return True


def remove_freeze_hook(loop: asyncio.AbstractEventLoop) -> None:
    if hooks_enabled():
        loop.remove_signal_handler(signal.SIGUSR2)
