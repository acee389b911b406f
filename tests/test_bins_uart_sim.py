"""UART ultrasonic sensor (A02YYUW / DYP): driver <-> streaming simulator over a real pty, events in SQLite."""
from __future__ import annotations

import asyncio

import pytest

from drivers.bins import UartLevelDriver
from drivers.bins.level import fill_pct
from edge.config.devices import UartLevelSensor
from simulators.bins.faults import FaultPlan
from simulators.bins.harness import BinsHarness
from simulators.bins.scenario import BinScenario
from simulators.bins.uart_sim import UartLevelSimulator

VECTOR = bytes.fromhex("FF 07 A1 A7")  # 1953 mm


def uart_config(path: str, **kw) -> UartLevelSensor:
    base = {"type": "uart_level", "id": "bin-c1", "bin": "c1", "station": "st-c", "serial": {"port": path},
            "empty_mm": 2500, "full_mm": 300, "offline_after_s": 5, "evaluate_every_s": 1}
    return UartLevelSensor.model_validate(base | kw)


async def start_rig(h, tmp_path, **scenario_kw):
    scenario = BinScenario(h.clock.monotonic, **({"empty_mm": 2500, "full_mm": 300, "jitter_mm": 5} | scenario_kw))
    sim = UartLevelSimulator(scenario, link_path=tmp_path / "by-id" / "usb-a02yyuw", period_s=0.01,
                             faults=FaultPlan(seed=5))
    await sim.start()
    return sim, scenario


def frames_arrive(h, drv, n=3):
    """A before_step hook: let at least n more frames reach the driver (they stream in real time)."""
    async def hook():
        start = drv.link.bytes_in
        await h.wait_for(lambda: drv.link.bytes_in >= start + 4 * n, what=f"{n} frames")
    return hook


async def test_issue_vector_after_garbage(tmp_path):
    async with BinsHarness(tmp_path / "data") as h:
        sim, scenario = await start_rig(h, tmp_path)
        try:
            sim.silent = True
            drv = h.start(UartLevelDriver(uart_config(sim.path, median_window=1)))
            await h.settle()
            await asyncio.sleep(0.05)  # frames in flight before silence are flushed by the driver's open
            drv.link.take()
            sim.send_raw(bytes.fromhex("00 13 FF FF 07") + VECTOR + bytes.fromhex("FF 07"))  # junk, frame, partial
            await h.wait_for(lambda: drv.link.bytes_in >= 11, what="bytes")
            await h.advance(1)
            [level] = await h.events("bin.level")
            assert level.payload["distance_mm"] == 1953
            assert level.payload["fill_pct"] == fill_pct(drv.cfg, 1953) == 24.9
            assert level.source == "bin-c1" and level.payload["sensor"] == "bin-c1"
            assert level.payload["station"] == "st-c"
            st = drv.health()
            assert st["frames"] == 1 and st["checksum_errors"] >= 1 and st["garbage_bytes"] >= 3
        finally:
            await sim.stop()


def test_ghost_sequence_has_no_majority():
    """The premise of the median test: seed 1 at 10 % ghosts never puts 5 ghosts in 9 consecutive frames."""
    s = BinScenario(lambda: 0.0, empty_mm=2500, full_mm=300, jitter_mm=5, ghost_rate=0.1, seed=1)
    flags = []
    for _ in range(3000):
        before = s.ghosts
        s.echo_mm()
        flags.append(s.ghosts > before)
    assert sum(flags) > 250
    assert max(sum(flags[i:i + 9]) for i in range(len(flags) - 9)) <= 4


async def test_fill_curve_with_ghost_echoes_is_median_filtered(tmp_path):
    async with BinsHarness(tmp_path / "data") as h:
        sim, scenario = await start_rig(h, tmp_path, ghost_rate=0.1, seed=1)
        try:
            scenario.fill_to(60, over_s=300)
            drv = h.start(UartLevelDriver(uart_config(sim.path, median_window=9, evaluate_every_s=10)))
            await h.wait_for(lambda: drv.link.bytes_in >= 4 * 12, what="first frames")
            await h.advance(300, step=10, before_step=frames_arrive(h, drv, 6))
            assert scenario.ghosts > 10  # ghosts read far too full...
            assert not await h.events("bin.full")  # ...the median never does
            scenario.fill_to(96, over_s=60)
            await h.advance(90, step=10, before_step=frames_arrive(h, drv))
            scenario.empty()
            await h.advance(40, step=10, before_step=frames_arrive(h, drv, 9))
            full = await h.events("bin.full")
            assert [e.payload["state"] for e in full] == ["raised", "cleared"]
            levels = [e.payload["fill_pct"] for e in await h.events("bin.level")]
            assert max(levels) >= 90 and levels[-1] <= 5
            peak = levels.index(max(levels))
            assert all(b >= a - 2 for a, b in zip(levels[:peak], levels[1:peak + 1]))  # no ghost dips/spikes
            assert drv.health()["state"] == "online"
        finally:
            await sim.stop()


async def test_silence_goes_offline_then_online(tmp_path):
    async with BinsHarness(tmp_path / "data") as h:
        sim, scenario = await start_rig(h, tmp_path)
        try:
            scenario.fill_to(40)
            drv = h.start(UartLevelDriver(uart_config(sim.path)))
            await h.advance(3, before_step=frames_arrive(h, drv))
            sim.silent = True
            await asyncio.sleep(0.03)
            sim.send_raw(sim.frame())  # one last frame for sure, so the last one is seen at t=4
            await h.wait_for(lambda: len(drv.link.rx) >= 4, what="last frame")
            await h.advance(1)
            await h.advance(4)
            assert not await h.events("device.offline")  # 4 s silent, offline_after_s is 5
            await h.advance(2)
            [off] = await h.events("device.offline")
            assert off.source == "bin-c1" and off.payload["reason"] == "silent"
            sim.silent = False
            await h.advance(2, before_step=frames_arrive(h, drv))
            online = await h.events("device.online")
            assert [e.payload["reason"] for e in online] == ["first answer", "answers again"]
            assert online[-1].payload["offline_s"] >= 1
            assert {d["id"]: d["state"] for d in h.store.devices()}["bin-c1"] == "online"
        finally:
            await sim.stop()


async def test_faults_are_counted_and_never_fatal(tmp_path):
    async with BinsHarness(tmp_path / "data") as h:
        sim, scenario = await start_rig(h, tmp_path)
        try:
            scenario.fill_to(50)
            sim.faults = FaultPlan(seed=9, crc_rate=0.2, truncate_rate=0.1, noise_rate=0.1, drop_rate=0.05)
            drv = h.start(UartLevelDriver(uart_config(sim.path, median_window=5)))
            await h.advance(20, before_step=frames_arrive(h, drv, 6))
            sim.send_raw(bytes(range(256)) * 4)  # a burst of every byte value
            await h.advance(5, before_step=frames_arrive(h, drv, 6))
            st = drv.health()
            assert st["checksum_errors"] > 10 and st["garbage_bytes"] > 1000 and st["frames"] > 80
            assert st["state"] == "online" and not await h.events("device.offline")
            [level] = await h.events("bin.level")  # steady 50 %: one report, faults did not move it
            assert level.payload["fill_pct"] == pytest.approx(50, abs=1)
        finally:
            await sim.stop()


async def test_unplug_replug_reopens_with_backoff(tmp_path):
    async with BinsHarness(tmp_path / "data") as h:
        sim, scenario = await start_rig(h, tmp_path)
        try:
            drv = h.start(UartLevelDriver(uart_config(sim.path)))
            await h.advance(2, before_step=frames_arrive(h, drv))
            sim.unplug()
            await h.wait_for(lambda: not drv.link.is_open, what="driver to notice the unplug")
            await h.advance(20)
            st = drv.health()
            assert st["port_losses"] == 1 and st["open_failures"] >= 3 and st["backoff_s"] >= 8
            [off] = await h.events("device.offline")
            assert "EOF" in off.payload["reason"] or "failed" in off.payload["reason"]
            sim.plug()
            for _ in range(20):  # until the backoff timer fires and the port reopens
                await h.advance(1)
                if drv.link.is_open:
                    break
            assert drv.link.is_open
            await h.advance(2, before_step=frames_arrive(h, drv))
            st = drv.health()
            assert st["port_opens"] == 2 and st["state"] == "online"
            online = [(e.ts_ms, e.payload) for e in await h.events("device.online")]
            assert [p["reason"] for _, p in online] == ["first answer", "answers again"], online
        finally:
            await sim.stop()
