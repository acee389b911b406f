"""The health check behind the systemd watchdog: WATCHDOG=1 is sent only when this passes.

Four questions, each with a plain-words answer for `systemctl status`:
  1. Is the event loop responsive?   (lag of a 0.25 s ticker; a frozen loop also stops the check itself)
  2. Is the store writable?           (the bus committed since the last check, else a one-row probe write)
  3. Is the outbox moving when online? (uplink connected with a backlog but no progress for outbox_stall_s)
  4. Are critical components up?      (down longer than critical_grace_s; short restarts are the supervisor's job)

The uplink lives in cloud_bridge/ and is read defensively through ctx.supervisor.health(): the component whose
health has "connected" and "outbox_depth" (or "depth") is taken as the uplink; a last-progress time (any key with
"progress": epoch ms/s, monotonic seconds, an age or an ISO string) or a moving sent/acked/published counter
counts as progress.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from typing import Any

log = logging.getLogger("edge.deploy.health")

PROBE_KEY = "deploy.watchdog_probe"
_COUNTER_KEYS = ("sent", "acked", "published", "delivered", "puback", "pubacks", "sent_total", "acked_total")


@dataclasses.dataclass
class CheckResult:
    ok: bool
    problems: list[str]  # why the watchdog is withheld (empty when ok)
    notes: list[str]  # degraded-but-alive facts worth showing (uplink offline, component restarting)
    facts: dict[str, Any]

    def status_line(self, max_len: int = 240) -> str:
        """One line for STATUS= (systemctl status shows it as 'Status: "..."')."""
        if not self.ok:
            text = "UNHEALTHY (watchdog withheld): " + "; ".join(self.problems)
        else:
            text = ("Degraded: " + "; ".join(self.notes)) if self.notes else "Running"
            text += f" | {self.facts.get('components_running', 0)}/{self.facts.get('components', 0)} components"
            up = self.facts.get("uplink")
            if up:
                text += f", uplink {'connected' if up.get('connected') else 'offline'}, " \
                        f"outbox {up.get('outbox_depth', '?')}"
            text += f", {self.facts.get('committed', 0)} events stored"
        return text if len(text) <= max_len else text[: max_len - 1] + "…"


class LoopLagProbe:
    """Measures how late a short sleep wakes up: the event loop's responsiveness.

    Uses the real monotonic clock, not ctx.clock: the watchdog is about real time, and a FakeClock in tests
    must not hide a blocked loop.
    """

    def __init__(self, tick_s: float = 0.25):
        self.tick_s = tick_s
        self.window_max_s = 0.0
        self.worst_s = 0.0
        self.ticks = 0
        self.last_tick = time.monotonic()

    async def run(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            lag = max(0.0, now - t0 - self.tick_s)
            self.window_max_s = max(self.window_max_s, lag)
            self.worst_s = max(self.worst_s, lag)
            self.ticks += 1
            self.last_tick = now

    def take_window(self) -> float:
        """Worst lag since the last call, including a tick that is overdue right now."""
        overdue = max(0.0, time.monotonic() - self.last_tick - self.tick_s)
        lag, self.window_max_s = max(self.window_max_s, overdue), 0.0
        return lag


def _depth(h: dict) -> Any:
    return h["outbox_depth"] if "outbox_depth" in h else h.get("depth")


def find_uplink(health: dict[str, dict]) -> tuple[str, dict] | None:
    """cloud_bridge's component is named "uplink"; any component reporting connected + an outbox depth counts."""
    candidates = [(n, h) for n, h in health.items()
                  if isinstance(h, dict) and "connected" in h and ("outbox_depth" in h or "depth" in h)]
    candidates.sort(key=lambda nh: nh[0] != "uplink")
    return candidates[0] if candidates else None


def _progress_age_s(key: str, value: Any, now_s: float, mono_s: float) -> float | None:
    """Seconds since the uplink last made progress, from whatever shape its health reports."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return max(0.0, now_s - t.timestamp())
    if not isinstance(value, (int, float)):
        return None
    v = float(value)
    if "age" in key or key.endswith("_ago_s"):
        return v / 1000 if key.endswith("_ms") else v
    if key.endswith("_ms") or v > 1e11:
        return max(0.0, now_s - v / 1000)
    if v > 1e8:
        return max(0.0, now_s - v)
    return max(0.0, mono_s - v)  # small numbers: a monotonic timestamp


class HealthCheck:
    def __init__(self, ctx, lag: LoopLagProbe, *, loop_lag_max_s: float = 5.0, store_timeout_s: float = 10.0,
                 outbox_stall_s: float = 180.0, critical_grace_s: float = 120.0):
        self.ctx = ctx
        self.lag = lag
        self.loop_lag_max_s = loop_lag_max_s
        self.store_timeout_s = store_timeout_s
        self.outbox_stall_s = outbox_stall_s
        self.critical_grace_s = critical_grace_s
        self._last_committed: int | None = None
        self._last_failures = 0
        self._uplink_mark: tuple | None = None
        self._uplink_progress_mono: float | None = None
        self._down_since: dict[str, float] = {}
        self.probes = 0
        self.probe_failures = 0
        self.depth_errors = 0
        self.last_depth_error: str | None = None

    # ---- 2. store -------------------------------------------------------------------------------------
    async def _store_problem(self) -> str | None:
        bus = self.ctx.bus.health()
        committed, failures = bus.get("committed", 0), bus.get("commit_failures", 0)
        fresh_commit = (self._last_committed is not None and committed > self._last_committed
                        and failures == self._last_failures)
        self._last_committed, self._last_failures = committed, failures
        if fresh_commit:
            return None  # the bus just wrote to disk: no need to wear the SD card with a probe
        self.probes += 1
        store = self.ctx.store
        try:
            await asyncio.wait_for(store.call(store.kv_set, PROBE_KEY, {"ts_ms": self.ctx.clock.time_ms()}),
                                   timeout=self.store_timeout_s)
        except asyncio.TimeoutError:
            self.probe_failures += 1
            return f"store not writable: a one-row write took over {self.store_timeout_s:g} s (disk hung?)"
        except Exception as exc:
            self.probe_failures += 1
            return f"store not writable: {type(exc).__name__}: {exc}"
        return None

    # ---- 3. uplink ------------------------------------------------------------------------------------
    async def _fresh_depth(self) -> int | None:
        """The outbox backlog now, from cloud_bridge's trigger-maintained counters (one tiny table, so cheap on a
        Pi). The uplink's own health() figure is refreshed only every few seconds and may be stale."""
        try:
            from cloud_bridge import outbox as cb_outbox
        except ImportError:
            return None
        store = self.ctx.store
        try:
            st = await asyncio.wait_for(store.call(cb_outbox.stats, store), timeout=self.store_timeout_s)
            return int(st.depth)
        except Exception as exc:  # table missing (older schema) or store trouble: fall back to health()
            self.depth_errors += 1
            self.last_depth_error = f"{type(exc).__name__}: {exc}"
            return None

    async def _uplink(self, health: dict[str, dict], facts: dict, notes: list[str]) -> str | None:
        found = find_uplink(health)
        if found is None:
            return None
        name, h = found
        mono = time.monotonic()
        fresh = await self._fresh_depth()
        depth = fresh if fresh is not None else _depth(h)
        connected = bool(h.get("connected"))
        facts["uplink"] = {"component": name, "connected": connected, "outbox_depth": depth}
        ages = [a for k, v in h.items() if "progress" in k
                for a in [_progress_age_s(k, v, self.ctx.clock.time(), self.ctx.clock.monotonic())] if a is not None]
        counters = tuple(h.get(k) for k in _COUNTER_KEYS if isinstance(h.get(k), (int, float)))
        mark = (counters, depth)
        progressed = (self._uplink_mark is None or counters != self._uplink_mark[0]
                      or (isinstance(depth, (int, float)) and isinstance(self._uplink_mark[1], (int, float))
                          and depth < self._uplink_mark[1]))
        self._uplink_mark = mark
        if progressed or not depth or not connected:
            self._uplink_progress_mono = mono
        if not connected:
            notes.append(f"uplink offline, {depth} events waiting" if depth else "uplink offline")
            return None
        if not depth:
            return None
        stalled_for = mono - (self._uplink_progress_mono or mono)
        if ages:  # any evidence of progress counts: the uplink's own clock or what we saw change
            stalled_for = min(stalled_for, min(ages))
        facts["uplink"]["stalled_s"] = round(stalled_for, 1)
        if stalled_for > self.outbox_stall_s:
            return (f"outbox stuck: uplink connected but {depth} events not moving for {stalled_for:.0f} s "
                    f"(limit {self.outbox_stall_s:g} s)")
        return None

    # ---- 4. critical components -------------------------------------------------------------------------
    def _components(self, health: dict[str, dict], facts: dict, notes: list[str]) -> list[str]:
        mono = time.monotonic()
        problems = []
        running = 0
        for name, h in health.items():
            state = h.get("state")
            if state == "running":
                running += 1
                self._down_since.pop(name, None)
                continue
            if state in ("restarting", "failed"):
                since = self._down_since.setdefault(name, mono)
                why = f"{name} {state}" + (f" ({h.get('last_error')})" if h.get("last_error") else "")
                if h.get("critical") and mono - since > self.critical_grace_s:
                    problems.append(f"critical component {why} for {mono - since:.0f} s")
                else:
                    notes.append(why)
        facts["components"] = len(health)
        facts["components_running"] = running
        return problems

    async def check(self) -> CheckResult:
        problems: list[str] = []
        notes: list[str] = []
        facts: dict[str, Any] = {}
        lag = self.lag.take_window()
        facts["loop_lag_s"] = round(lag, 3)
        if lag > self.loop_lag_max_s:
            problems.append(f"event loop blocked for {lag:.1f} s (limit {self.loop_lag_max_s:g} s)")
        store_problem = await self._store_problem()
        if store_problem:
            problems.append(store_problem)
        bus = self.ctx.bus.health()
        facts["committed"] = bus.get("committed", 0)
        if bus.get("commit_failures"):
            facts["commit_failures"] = bus["commit_failures"]
        sup = getattr(self.ctx, "supervisor", None)
        try:
            health = sup.health() if sup is not None else {}
        except Exception as exc:  # the supervisor's own report broke: that is a fault, not "healthy"
            health = {}
            problems.append(f"supervisor health report failed: {type(exc).__name__}: {exc}")
        problems += self._components(health, facts, notes)
        uplink_problem = await self._uplink(health, facts, notes)
        if uplink_problem:
            problems.append(uplink_problem)
        return CheckResult(ok=not problems, problems=problems, notes=notes, facts=facts)
