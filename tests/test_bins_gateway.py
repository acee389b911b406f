"""The whole path through a real Gateway: edge.yaml -> plug-in build_components -> supervisor -> drivers ->
simulators on ptys -> bus -> SQLite store, on a FakeClock."""
from __future__ import annotations

import asyncio
import time

from edge.clock import FakeClock
from edge.config import load_config
from edge.runtime import Gateway
from edge.store import Store
from simulators.bins.modbus_sim import ModbusLevelSimulator, SimSensor
from simulators.bins.scenario import BinScenario
from simulators.bins.uart_sim import UartLevelSimulator


async def settle(components, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not all(c.settled() for c in components):
        assert time.monotonic() < deadline, "bins drivers did not settle"
        await asyncio.sleep(0.002)


async def test_gateway_runs_bin_drivers_from_config(tmp_path):
    clock = FakeClock()
    s1 = BinScenario(clock.monotonic, empty_mm=1200, full_mm=250)
    s2 = BinScenario(clock.monotonic, empty_mm=1200, full_mm=250, temperature_c=21.0)
    s3 = BinScenario(clock.monotonic, empty_mm=2000, full_mm=300)
    modbus = ModbusLevelSimulator([SimSensor(1, s1), SimSensor(2, s2)], link_path=tmp_path / "ttyRS485")
    uart = UartLevelSimulator(s3, link_path=tmp_path / "ttyA02", period_s=0.01)
    await modbus.start()
    await uart.start()
    cfg_path = tmp_path / "edge.yaml"
    cfg_path.write_text(f"""gateway: {{id: gw-bins, compound_id: cp-1, county_code: "330106"}}
storage: {{path: {tmp_path / 'data'}, commit_interval_ms: 10}}
web: {{enabled: false}}
devices:
  - type: modbus_level
    id: bins-a
    serial: {{port: {modbus.path}, baudrate: 9600, parity: N, stopbits: 1}}
    poll_interval_s: 10
    timeout_s: 0.2
    sensors:
      - {{unit: 1, bin: a-kitchen, station: station-a, empty_mm: 1200, full_mm: 250}}
      - {{unit: 2, bin: a-other, station: station-a, empty_mm: 1200, full_mm: 250, register_map: dyp}}
  - type: uart_level
    id: bin-c1
    bin: c-recycle
    serial: {{port: {uart.path}}}
    empty_mm: 2000
    full_mm: 300
    evaluate_every_s: 10
    offline_after_s: 30
stations:
  - {{id: station-a, bins: [a-kitchen, a-other]}}
""")
    cfg = load_config(cfg_path)
    gw = Gateway(cfg, cfg_path, clock=clock)
    await gw.start()
    try:
        bins = [s.component for n, s in gw.supervisor.slots.items() if n.startswith("bins.")]
        assert sorted(c.name for c in bins) == ["bins.modbus.bins-a", "bins.uart.bin-c1"]
        uart_drv = next(c for c in bins if c.name == "bins.uart.bin-c1")
        s1.fill_to(95, over_s=300)
        s3.fill_to(50, over_s=300)
        s2.heat_to(75, over_s=240)
        await settle(bins)
        for _ in range(36):
            start = uart_drv.link.bytes_in
            while uart_drv.link.bytes_in < start + 12:  # UART frames stream in real time
                await asyncio.sleep(0.002)
            await clock.advance(10)
            await settle(bins)
        health = gw.supervisor.health()
        assert health["bins.modbus.bins-a"]["state"] == "running"
        assert health["bins.modbus.bins-a"]["sensors"]["bins-a.1"]["ok"] > 60
        assert health["bins.uart.bin-c1"]["frames"] > 100
    finally:
        await gw.stop()
        await modbus.stop()
        await uart.stop()

    store = Store(tmp_path / "data" / "edge.db")
    try:
        by_kind = store.events_by_kind()
        assert by_kind["gateway.started"] == 1 and by_kind["gateway.stopped"] == 1
        full = store.query_events(kind="bin.full")
        assert [(e.source, e.payload["state"], e.payload["bin"]) for e in full] == [
            ("bins-a.1", "raised", "a-kitchen")]
        temps = [e.payload["trigger"] for e in reversed(store.query_events(kind="bin.temperature"))]
        assert temps[:2] == ["rate_of_rise", "absolute"]
        levels = {e.source for e in store.query_events(kind="bin.level", limit=1000)}
        assert levels == {"bins-a.1", "bins-a.2", "bin-c1"}
        c1 = [e.payload["fill_pct"] for e in store.query_events(kind="bin.level", source="bin-c1", limit=1000)]
        assert max(c1) >= 45
        online = {e.source for e in store.query_events(kind="device.online")}
        assert online == {"bins-a", "bins-a.1", "bins-a.2", "bin-c1"}
        assert not store.query_events(kind="device.offline")
        assert {d["id"]: d["state"] for d in store.devices()}["bins-a.2"] == "online"
        assert store.outbox_depth() > 0  # everything is queued for the uplink too
    finally:
        store.close()
