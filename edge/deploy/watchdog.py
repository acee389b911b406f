"""systemd integration of the running gateway: READY=1 after start-up, WATCHDOG=1 from the health check,
STATUS= lines for `systemctl status`, STOPPING=1 on the way out.

The pings are paced with asyncio.sleep (real time), never ctx.clock: systemd's watchdog runs on real time,
and a ping must come from the event loop itself so that a blocked loop stops the pings.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from edge.runtime.component import Component

from .health import CheckResult, HealthCheck, LoopLagProbe
from .sdnotify import Notifier, NotifyError, watchdog_interval_s
from .testhooks import install_freeze_hook, remove_freeze_hook

log = logging.getLogger("edge.deploy.watchdog")

DEFAULT_STATUS_INTERVAL_S = 15.0


class SystemdNotify(Component):
    name = "systemd-notify"
    # Not "critical": if this component dies the pings stop and systemd restarts the gateway anyway.
    critical = False

    def __init__(self, notifier: Notifier | None = None, *, watchdog_s: float | None = None,
                 status_interval_s: float = DEFAULT_STATUS_INTERVAL_S, outbox_stall_s: float = 180.0,
                 critical_grace_s: float = 120.0):
        self.notifier = notifier
        self._watchdog_s = watchdog_s
        self.status_interval_s = status_interval_s
        self.outbox_stall_s = outbox_stall_s
        self.critical_grace_s = critical_grace_s
        self.ready = False
        self.pings = 0
        self.withheld = 0
        self.checks = 0
        self.last: CheckResult | None = None
        self.last_status: str | None = None
        self.lag: LoopLagProbe | None = None
        self.checker: HealthCheck | None = None
        self.hook_armed = False

    @property
    def watchdog_s(self) -> float | None:
        return self._watchdog_s if self._watchdog_s is not None else watchdog_interval_s()

    def _send(self, **fields: Any) -> None:
        assert self.notifier is not None
        self.notifier.notify(**fields)
        if "STATUS" in fields:
            self.last_status = str(fields["STATUS"])

    async def run(self, ctx) -> None:
        if self.notifier is None:
            self.notifier = Notifier()
        wd = self.watchdog_s
        # systemd recommends pinging at half the timeout; the check must finish well inside that.
        interval = wd / 2 if wd else self.status_interval_s
        self.lag = LoopLagProbe(tick_s=min(0.25, interval / 4))
        self.checker = HealthCheck(ctx, self.lag, loop_lag_max_s=min(5.0, wd / 2) if wd else 5.0,
                                   store_timeout_s=min(10.0, interval * 0.8), outbox_stall_s=self.outbox_stall_s,
                                   critical_grace_s=self.critical_grace_s)
        lag_task = asyncio.create_task(self.lag.run(), name="watchdog-loop-lag")
        loop = asyncio.get_running_loop()
        self.hook_armed = install_freeze_hook(loop, lambda text: self._send(STATUS=text))
        log.info("systemd notify started", extra={"notify_socket": self.notifier.address, "watchdog_s": wd,
                                                  "interval_s": interval})
        try:
            await self._start_up(ctx, interval)
            while True:
                await asyncio.sleep(interval)
                await self._tick()
        finally:
            lag_task.cancel()
            if self.hook_armed:
                remove_freeze_hook(loop)
            try:
                self._send(STOPPING=1, STATUS="Stopping")
            except NotifyError:
                log.exception("could not tell systemd that the gateway is stopping")

    async def _start_up(self, ctx, interval: float) -> None:
        """READY=1 once the store has taken the gateway.started event and the first health check passes."""
        t0 = time.monotonic()
        while True:
            result = await self._check()
            if result.ok and ctx.bus.health().get("committed", 0) > 0:
                break
            waiting = "; ".join(result.problems) or "waiting for the first commit to the store"
            self._send(STATUS=f"Starting: {waiting}")
            await asyncio.sleep(min(0.2, interval))
        self.ready = True
        status = result.status_line()
        self._send(READY=1, STATUS=status)
        log.info("gateway ready; told systemd", extra={"startup_s": round(time.monotonic() - t0, 3),
                                                      "status": status})

    async def _check(self) -> CheckResult:
        assert self.checker is not None
        self.checks += 1
        result = await self.checker.check()
        was_ok = self.last.ok if self.last else True
        self.last = result
        if not result.ok and (was_ok or self.withheld % 20 == 0):
            log.error("health check failed; withholding the systemd watchdog ping",
                      extra={"problems": result.problems, "facts": result.facts})
        elif result.ok and not was_ok:
            log.warning("health check passes again", extra={"facts": result.facts})
        return result

    async def _tick(self) -> None:
        result = await self._check()
        status = result.status_line()
        if result.ok:
            fields: dict[str, Any] = {"STATUS": status} if status != self.last_status else {}
            if self.watchdog_s:
                fields["WATCHDOG"] = 1
                self.pings += 1
            if fields:
                self._send(**fields)
        else:
            self.withheld += 1
            self._send(STATUS=status)

    def health(self) -> dict[str, Any]:
        n = self.notifier
        return {
            "notify_socket": n.address if n else None, "watchdog_s": self.watchdog_s, "ready": self.ready,
            "checks": self.checks, "pings": self.pings, "withheld": self.withheld,
            "healthy": self.last.ok if self.last else None,
            "problems": self.last.problems if self.last else [],
            "status": self.last_status, "notify_sent": n.sent if n else 0,
            "loop_lag_worst_s": round(self.lag.worst_s, 3) if self.lag else None,
            "store_probes": self.checker.probes if self.checker else 0,
            "store_probe_failures": self.checker.probe_failures if self.checker else 0,
            "test_hook_armed": self.hook_armed,
        }
