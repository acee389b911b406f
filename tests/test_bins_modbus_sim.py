"""Modbus RTU level-sensor bus: driver <-> pymodbus simulator over real ptys, events in a real SQLite store."""
from __future__ import annotations

import termios

import pytest

from drivers.bins import ModbusLevelBusDriver
from edge.config.devices import ModbusLevelBus
from simulators.bins.faults import FaultPlan
from simulators.bins.harness import BinsHarness
from simulators.bins.modbus_sim import ModbusLevelSimulator, SimSensor
from simulators.bins.scenario import BinScenario

POLL = 10.0


def bus_config(path: str, **kw) -> ModbusLevelBus:
    sensors = kw.pop("sensors", None) or [
        {"unit": 1, "bin": "b1", "station": "st-a", "empty_mm": 1200, "full_mm": 250},
        {"unit": 2, "bin": "b2", "station": "st-a", "empty_mm": 1200, "full_mm": 250},
    ]
    return ModbusLevelBus.model_validate({
        "type": "modbus_level", "id": "bins-a", "serial": {"port": path, "baudrate": 9600, "parity": "N"},
        "poll_interval_s": POLL, "timeout_s": 0.2, "offline_after_missed": 3, "sensors": sensors, **kw})


@pytest.fixture
async def rig(tmp_path):
    """Two sensors on one simulated bus behind an unpluggable USB adapter, a driver, a store."""
    async with BinsHarness(tmp_path / "data") as h:
        s1 = BinScenario(h.clock.monotonic, empty_mm=1200, full_mm=250, temperature_c=25.0)
        s2 = BinScenario(h.clock.monotonic, empty_mm=1200, full_mm=250, temperature_c=24.0)
        sim = ModbusLevelSimulator([SimSensor(1, s1), SimSensor(2, s2)], link_path=tmp_path / "by-id" / "usb-rs485",
                                   faults=FaultPlan(seed=11))
        await sim.start()
        try:
            yield h, sim, s1, s2
        finally:
            await sim.stop()


async def test_wire_bytes_are_the_issue_vectors(rig):
    h, sim, s1, s2 = rig
    s1.distance_to(754)
    s1.heat_to(30.0)
    drv = h.start(ModbusLevelBusDriver(bus_config(sim.path, sensors=[
        {"unit": 1, "bin": "b1", "empty_mm": 1200, "full_mm": 250}])))
    await h.settle()
    # the driver asked exactly the issue's requests, and pymodbus's server answered exactly the issue's replies
    assert bytes(sim.sniffed_requests[:16]) == bytes.fromhex("01 03 01 00 00 01 85 F6 01 03 01 02 00 01 24 36")
    assert bytes(sim.sniffed_replies[:14]) == bytes.fromhex("01 03 02 02 F2 38 A1 01 03 02 01 2C B8 09")
    [level] = await h.events("bin.level")
    assert level.source == "bins-a.1"
    assert level.payload["distance_mm"] == 754
    assert level.payload["temperature_c"] == 30.0
    assert level.payload["fill_pct"] == pytest.approx(46.9, abs=0.05)
    online = {e.payload["device"] for e in await h.events("device.online")}
    assert online == {"bins-a", "bins-a.1"}
    assert drv.health()["sensors"]["bins-a.1"]["ok"] == 2
    # 9600 8N1 really is set on both ends (pymodbus would default to 19200): read the ttys' termios
    for fd in (sim.host._slave, sim.device._slave):
        iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
        assert ispeed == ospeed == termios.B9600
        assert cflag & termios.CSIZE == termios.CS8 and not cflag & (termios.PARENB | termios.CSTOPB)


async def test_fill_curve_raises_and_clears_full_with_hysteresis(rig):
    h, sim, s1, s2 = rig
    s1.fill_to(95, over_s=600)  # 0 -> 95 % over 10 minutes
    s2.fill_to(40, over_s=600)
    drv = h.start(ModbusLevelBusDriver(bus_config(sim.path)))
    await h.advance(660, step=POLL)
    s1.fill_to(80)  # some bags taken out: 80 % is below 90 but not below 70 -> stays full
    await h.advance(60, step=POLL)
    s1.empty()  # the truck came
    await h.advance(60, step=POLL)

    full = await h.events("bin.full", source="bins-a.1")
    assert [e.payload["state"] for e in full] == ["raised", "cleared"]
    assert full[0].payload["fill_pct"] >= 90 and full[0].payload["threshold_pct"] == 90
    assert full[1].payload["fill_pct"] < 70 and full[1].severity.value == "info"
    assert not await h.events("bin.full", source="bins-a.2")  # 40 % never full

    levels = [e.payload["fill_pct"] for e in await h.events("bin.level", source="bins-a.1")]
    assert levels[0] == 0.0 and max(levels) >= 90 and levels[-1] == 0.0
    rising = levels[:levels.index(max(levels)) + 1]
    assert rising == sorted(rising)
    # reported on meaningful change (>= 5 %), not on every poll: ~80 polls, far fewer reports
    assert 15 <= len(levels) <= 35
    h2 = drv.health()["sensors"]["bins-a.1"]
    assert h2["state"] == "online" and h2["missed_total"] == 0 and h2["full"] is False


async def test_periodic_level_report_without_change(rig):
    h, sim, s1, s2 = rig
    s1.fill_to(30)
    h.start(ModbusLevelBusDriver(bus_config(sim.path, sensors=[
        {"unit": 1, "bin": "b1", "empty_mm": 1200, "full_mm": 250, "report_every_s": 300}])))
    await h.advance(1200, step=60)
    ts = [e.ts_ms for e in await h.events("bin.level")]
    assert len(ts) == 5  # t=0 and then every 5 minutes of a steady bin
    assert all(b - a == 300_000 for a, b in zip(ts, ts[1:]))


async def test_heat_up_raises_rate_of_rise_then_absolute_then_clears(rig):
    h, sim, s1, s2 = rig
    h.start(ModbusLevelBusDriver(bus_config(sim.path)))
    await h.advance(60, step=POLL)
    s1.heat_to(85.0, over_s=360)  # ~10 C/min: smouldering bin
    await h.advance(300, step=POLL)
    s1.heat_to(30.0, over_s=120)  # put out
    await h.advance(180, step=POLL)

    temps = await h.events("bin.temperature", source="bins-a.1")
    triggers = [e.payload["trigger"] for e in temps]
    assert triggers == ["rate_of_rise", "absolute", "cleared"]
    rate, absolute, cleared = temps
    assert rate.payload["rise_c_per_min"] >= 5 and rate.payload["temperature_c"] < 60
    assert rate.severity.value == "critical"
    assert absolute.payload["temperature_c"] >= 60 and absolute.payload["threshold"] == 60
    assert cleared.payload["temperature_c"] < 55 and cleared.severity.value == "info"
    assert not await h.events("bin.temperature", source="bins-a.2")


async def test_silent_sensor_goes_offline_after_missed_polls_and_back_online(rig):
    h, sim, s1, s2 = rig
    drv = h.start(ModbusLevelBusDriver(bus_config(sim.path)))
    await h.advance(20, step=POLL)
    sim.sensors[2].present = False  # sensor 2 loses power
    await h.advance(20, step=POLL)
    assert not await h.events("device.offline")  # 2 missed polls: not yet
    await h.advance(10, step=POLL)
    [off] = await h.events("device.offline")
    assert off.source == "bins-a.2" and off.payload["missed_polls"] == 3
    assert off.payload["device_type"] == "modbus_level_sensor"
    sim.sensors[2].present = True
    await h.advance(10, step=POLL)
    back = [e for e in await h.events("device.online") if e.source == "bins-a.2"]
    assert len(back) == 2 and back[-1].payload["offline_s"] == pytest.approx(10, abs=0.1)
    devices = {d["id"]: d for d in h.store.devices()}
    assert devices["bins-a.2"]["state"] == "online" and devices["bins-a.1"]["state"] == "online"
    s = drv.health()["sensors"]["bins-a.2"]
    assert s["no_response"] == 3 and s["missed_total"] == 3
    assert drv.health()["sensors"]["bins-a.1"]["missed_total"] == 0

    sim.silent = True  # the whole line goes quiet (A/B wires cut): both sensors go offline
    await h.advance(30, step=POLL)
    offline = sorted(e.source for e in await h.events("device.offline"))
    assert offline == ["bins-a.1", "bins-a.2", "bins-a.2"]


async def test_corrupted_replies_are_counted_per_sensor_and_retried(rig):
    h, sim, s1, s2 = rig
    s1.fill_to(50)
    drv = h.start(ModbusLevelBusDriver(bus_config(sim.path)))
    await h.advance(10, step=POLL)
    for fault in ("crc", "truncate", "wrong_address", "noise"):
        sim.faults.once(fault, unit=1)
        await h.advance(10, step=POLL)
    sim.inject_noise(40)  # garbage between polls, nobody asked
    await h.wait_for(lambda: len(drv.link.rx) >= 40, what="noise to arrive")
    await h.advance(10, step=POLL)
    s = drv.health()["sensors"]["bins-a.1"]
    assert (s["crc_error"], s["truncated"], s["wrong_address"]) == (1, 1, 1)
    assert s["noise_bytes"] > 0 and s["retries"] == 3
    assert s["missed_total"] == 0 and s["state"] == "online"  # the re-ask got a good answer each time
    assert drv.health()["stray_bytes"] >= 40
    assert drv.health()["sensors"]["bins-a.2"]["crc_error"] == 0  # counted for the sensor that was asked

    sim.faults = FaultPlan(seed=3, crc_rate=0.15, truncate_rate=0.1, noise_rate=0.2, wrong_address_rate=0.05)
    await h.advance(150, step=POLL)
    s = drv.health()["sensors"]["bins-a.1"]
    assert s["crc_error"] + s["truncated"] + s["wrong_address"] >= 5
    assert drv.health()["cycles"] >= 21
    assert await h.events("bin.level", source="bins-a.1")


async def test_usb_unplug_replug_reopens_with_backoff(rig):
    h, sim, s1, s2 = rig
    drv = h.start(ModbusLevelBusDriver(bus_config(sim.path)))
    await h.advance(10, step=POLL)
    sim.unplug()
    await h.advance(40, step=1.0)
    hb = drv.health()
    assert hb["port_losses"] == 1 and hb["open_failures"] >= 3 and not hb["port_open"]
    assert hb["backoff_s"] >= 8  # 1, 2, 4, 8 ... capped by reconnect_max_s
    off = await h.events("device.offline")
    assert off[0].source == "bins-a" and off[0].payload["device_type"] == "modbus_bus"
    assert {e.source for e in off} == {"bins-a", "bins-a.1", "bins-a.2"}
    sim.plug()
    await h.advance(40, step=1.0)
    hb = drv.health()
    assert hb["port_open"] and hb["port_opens"] == 2 and hb["bus_state"] == "online"
    back = [e.source for e in await h.events("device.online")]
    assert back.count("bins-a") == 2 and back.count("bins-a.1") == 2 and back.count("bins-a.2") == 2
    assert hb["sensors"]["bins-a.1"]["state"] == "online"
