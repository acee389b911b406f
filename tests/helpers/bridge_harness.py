"""Test harness for the cloud bridge: a real store + bus + supervisor with the uplink (no other plug-ins), a
county simulator, and small waiting helpers. Shared by tests/test_bridge_*.py and bench/uplink.py."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

from edge.clock import Clock, SystemClock
from edge.config import Config
from edge.runtime.bus import EventBus
from edge.runtime.context import RuntimeContext
from edge.runtime.supervisor import Supervisor
from edge.store import Store


def make_config(data_dir: Path, broker: str, *, gateway_id: str = "gw-test-1", compound_id: str = "cp-test",
                county_code: str = "330106", uplink: dict | None = None, storage: dict | None = None) -> Config:
    up = {"broker": broker, "keepalive_s": 5, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
          "telemetry_interval_s": 1, "drain_rate_per_s": 0, "connect_timeout_s": 3}
    up.update(uplink or {})
    st = {"path": str(data_dir), "commit_interval_ms": 20}
    st.update(storage or {})
    return Config.model_validate({"gateway": {"id": gateway_id, "compound_id": compound_id,
                                              "county_code": county_code},
                                  "uplink": up, "storage": st, "web": {"enabled": False}})


class Runtime:
    """Store + bus + supervisor running cloud_bridge's components (and any extra ones)."""

    def __init__(self, config: Config, clock: Clock | None = None, extra: list | None = None):
        self.config = config
        self.clock = clock or SystemClock()
        self.extra = extra or []
        self.ctx: RuntimeContext | None = None
        self.supervisor: Supervisor | None = None

    async def start(self) -> "Runtime":
        import cloud_bridge

        store = Store(Path(self.config.storage.path) / "edge.db", clock_ms=self.clock.time_ms)
        bus = EventBus(store, self.clock, self.config.storage.commit_interval_ms)
        self.ctx = RuntimeContext(config=self.config, store=store, bus=bus, clock=self.clock)
        comps = cloud_bridge.build_components(self.config, self.ctx) + list(self.extra)
        self.supervisor = Supervisor(self.ctx, comps, backoff_min=0.05)
        bus.start()
        self.supervisor.start()
        return self

    @property
    def uplink(self):
        return self.ctx.services["uplink"]

    async def stop(self) -> None:
        await self.supervisor.stop()
        await self.ctx.bus.stop()
        self.ctx.store.close()

    def emit(self, n: int, kind: str = "gateway.test", source: str = "dev-1", payload: dict | None = None) -> list:
        out = []
        for i in range(n):
            e = self.ctx.make_event(kind, source, dict(payload or {"i": i}))
            self.ctx.emit(e)
            out.append(e)
        return out


async def wait_until(pred: Callable[[], bool], timeout: float, what: str = "condition", interval: float = 0.02,
                     tick: Callable[[], object] | None = None) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if tick is not None:
            r = tick()
            if asyncio.iscoroutine(r):
                await r
        await asyncio.sleep(interval)
    return time.monotonic() - t0


async def start_county(broker_url: str, db: Path, **kw):
    from simulators.county import County

    county = County(broker_url, db, **kw)
    task = asyncio.create_task(county.run())
    await asyncio.wait_for(county.connected.wait(), 10)
    return county, task


async def stop_county(county, task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    county.close()


class CountyProcess:
    """`python -m simulators.county` in its own process (its own core), read through its SQLite file."""

    def __init__(self, broker_url: str, db: Path, *args: str):
        import subprocess
        import sys

        self.db = Path(db)
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen([sys.executable, "-m", "simulators.county", "--broker", broker_url, "--db",
                                      str(db), "--report", "--gap-grace", "1.0", *args], cwd=root,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def _query(self, sql: str, args=()) -> list:
        import sqlite3

        if not self.db.exists():
            return []
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()

    def unique(self, gateway_id: str) -> int:
        r = self._query("SELECT count(*) FROM messages WHERE gateway_id = ?", (gateway_id,))
        return r[0][0] if r else 0

    def seqs(self, gateway_id: str) -> list[int]:
        return [s for (s,) in self._query("SELECT seq FROM messages WHERE gateway_id = ? ORDER BY seq", (gateway_id,))]

    def event_ids(self, gateway_id: str) -> set[str]:
        return {e for (e,) in self._query("SELECT event_id FROM messages WHERE gateway_id = ?", (gateway_id,))}

    def subscribes(self) -> int:
        r = self._query("SELECT value FROM meta WHERE key = 'subscribes'")
        return int(r[0][0]) if r else 0

    async def wait_subscribed(self, at_least: int = 1, timeout: float = 15) -> None:
        """Until the simulator has (re)subscribed `at_least` times in total. Needed after a broker restart:
        mosquitto 2.0.11 does not restore shared subscriptions from its persistence file, so events published
        before the consumers re-subscribe find no subscriber (PUBACK 0x10)."""
        await wait_until(lambda: self.subscribes() >= at_least, timeout, f"county subscribed x{at_least}")

    def stop(self, timeout: float = 10) -> dict:
        import json
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError(f"county simulator printed no report: {out[-500:]!r} {err[-2000:]!r}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
