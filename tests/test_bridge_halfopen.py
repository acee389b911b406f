"""Fault test 4: half-open links through the fault proxy (blackhole both ways, then only broker->client).

Each is detected within 1.5x keepalive, nothing is lost, and the duplicates the retransmission causes are
removed by seq at the county.
"""
from __future__ import annotations

import asyncio
import time

from tests.helpers.bridge_harness import Runtime, make_config, start_county, stop_county, wait_until
from tests.helpers.faultproxy import FaultProxy

GW = "gw-test-1"
KEEPALIVE = 2


async def _produce(rt: Runtime, stop: asyncio.Event, rate: float = 100.0) -> int:
    n = 0
    while not stop.is_set():
        rt.emit(5, kind="door.opened", source=f"door-{n % 3}", payload={"controller": "c1", "door": 1})
        n += 5
        await asyncio.sleep(5 / rate)
    return n


async def _detect(rt: Runtime, link: FaultProxy, mode: str) -> float:
    up = rt.uplink
    await wait_until(lambda: up.connected, 10, "connected before the fault")
    await asyncio.sleep(0.5)  # traffic flowing, PUBACKs arriving
    before = up.c["disconnects"]
    link.set(mode)
    t0 = time.monotonic()
    await wait_until(lambda: up.c["disconnects"] > before, 4 * KEEPALIVE, f"detection of {mode}", interval=0.01)
    detected = time.monotonic() - t0
    link.set("pass")
    return detected


async def test_half_open_links_detected_within_1_5_keepalive_nothing_lost_duplicates_removed(mosquitto, tmp_path):
    county, ctask = await start_county(mosquitto.url, tmp_path / "county.db")
    link = await FaultProxy("127.0.0.1", mosquitto.port).start()
    rt = await Runtime(make_config(tmp_path / "gw", link.url, uplink={
        "keepalive_s": KEEPALIVE, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "max_inflight": 50})).start()
    stop = asyncio.Event()
    producer = asyncio.create_task(_produce(rt, stop))
    try:
        both = await _detect(rt, link, "blackhole")
        assert both <= 1.5 * KEEPALIVE, f"blackhole detected after {both:.2f}s"
        assert "no data from the broker" in rt.uplink.last_disconnect
        puback_only = await _detect(rt, link, "down_only")
        assert puback_only <= 1.5 * KEEPALIVE, f"lost PUBACK direction detected after {puback_only:.2f}s"
        await wait_until(lambda: rt.uplink.connected, 10, "reconnected")
        await asyncio.sleep(0.5)
        stop.set()
        produced = await producer
        await wait_until(lambda: rt.ctx.store.outbox_depth() == 0, 20, "outbox drained")
        await wait_until(lambda: county.report()["unique"] == produced, 20, "county has every event")
        rep = county.report()
        g = rep["per_gateway"][GW]
        assert g["gaps_open"] == 0 and g["missing"] == 0
        # in the down_only phase the broker got publishes whose PUBACKs were dropped: they were sent again
        assert rep["duplicates"] > 0 and rt.uplink.c["retried"] > 0
        assert [s for s, _ in county.ordered(GW)] == list(range(1, produced + 1))
        assert rep["schema_errors"] == 0, rep["schema_error_samples"]
        assert link.discarded["down"] > 0 and link.discarded["up"] > 0
    finally:
        stop.set()
        await asyncio.gather(producer, return_exceptions=True)
        await rt.stop()
        await link.stop()
        await stop_county(county, ctask)
