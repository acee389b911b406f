"""`edge probe` for bin sensors and `probe_device()` for `edge doctor`, against the simulators on real ptys."""
from __future__ import annotations

import asyncio
import json

import pytest

from drivers.bins import ModbusLevelBusDriver
from drivers.bins.probe import list_serial_ports, probe_device, probe_modbus_async, probe_uart_async
from edge.config.devices import ModbusLevelBus, RegisterMap, SerialPort, UartLevelSensor
from simulators.bins.faults import FaultPlan
from simulators.bins.harness import BinsHarness
from simulators.bins.modbus_sim import ModbusLevelSimulator, SimSensor
from simulators.bins.scenario import BinScenario
from simulators.bins.uart_sim import UartLevelSimulator


def scenario(mm: int, temp: float = 30.0) -> BinScenario:
    import time
    return BinScenario(time.monotonic, empty_mm=1200, full_mm=250, temperature_c=temp).distance_to(mm)


@pytest.fixture
async def bus(tmp_path):
    sim = ModbusLevelSimulator([SimSensor(1, scenario(754)), SimSensor(3, scenario(400, 21.5))],
                               link_path=tmp_path / "ttyRS485", faults=FaultPlan(seed=2))
    await sim.start()
    yield sim
    await sim.stop()


def bus_cfg(path: str, units=(1, 3)) -> ModbusLevelBus:
    return ModbusLevelBus.model_validate({
        "type": "modbus_level", "id": "bus-x", "serial": {"port": path}, "timeout_s": 0.2,
        "sensors": [{"unit": u, "bin": f"bin{u}", "empty_mm": 1200, "full_mm": 250} for u in units]})


async def test_is_sensor_3_responding_and_what_does_it_read(bus):
    r = await probe_modbus_async(SerialPort(port=bus.path), [3, 1, 2], timeout_s=0.2)
    u3, u1, u2 = (r["detail"]["units"][u] for u in (3, 1, 2))
    assert u3["answers"] and u3["distance_mm"] == 400 and u3["temperature_c"] == 21.5
    assert u1["distance_mm"] == 754 and u1["temperature_c"] == 30.0
    assert not u2["answers"] and u2["reads"]["distance_processed"]["status"] == "no_response"
    assert not r["ok"] and "2/3 sensor(s) answer" in r["summary"]
    assert "unit 2 is silent" in r["fix"]
    assert r["detail"]["baudrate"] == 9600 and r["detail"]["framing"] == "8N1"


async def test_probe_explains_garbled_wrong_address_and_wrong_map(bus):
    bus.faults = FaultPlan(seed=1, crc_rate=1.0)
    r = await probe_modbus_async(SerialPort(port=bus.path), [1], timeout_s=0.2)
    assert not r["ok"] and "garbled" in r["fix"] and "9600 8N1" in r["fix"]
    bus.faults = FaultPlan(seed=1, wrong_address_rate=1.0)
    r = await probe_modbus_async(SerialPort(port=bus.path), [1], timeout_s=0.2)
    assert "answered as address 2 when asked for 1" in r["fix"]
    bus.faults = FaultPlan()
    odd = RegisterMap(distance_processed=0x0000, distance_realtime=None, temperature=None)
    r = await probe_modbus_async(SerialPort(port=bus.path), [1], odd, timeout_s=0.2)
    assert r["detail"]["units"][1]["reads"]["distance_processed"]["exception"] == "illegal data address"
    assert not r["ok"] and "wrong register map" in r["fix"]


async def test_probe_device_for_doctor(bus, tmp_path):
    r = await asyncio.to_thread(probe_device, bus_cfg(bus.path), 1.0)  # doctor calls it synchronously
    assert r["ok"], r
    assert r["summary"].startswith("bus-x: ") and "46.9 % full" in r["summary"]
    assert set(r) == {"ok", "summary", "fix", "detail"} and r["fix"] == ""
    # called from inside a running loop it runs in its own thread; a missing adapter is a clear answer
    gone = probe_device(bus_cfg(str(tmp_path / "no-such-adapter")), 0.5)
    assert not gone["ok"] and "cannot open" in gone["summary"] and "by-id" in gone["fix"]
    assert not probe_device(object())["ok"]


async def test_port_held_by_running_gateway_is_reported(bus, tmp_path):
    async with BinsHarness(tmp_path / "data") as h:
        h.start(ModbusLevelBusDriver(bus_cfg(bus.path)))
        await h.settle()
        r = await probe_modbus_async(SerialPort(port=bus.path), [1], timeout_s=0.2)
        assert not r["ok"] and "lock" in r["summary"].lower() and "running gateway" in r["fix"]


async def test_uart_probe(tmp_path):
    import time
    sc = BinScenario(time.monotonic, empty_mm=2500, full_mm=300).distance_to(1953)
    async with UartLevelSimulator(sc, link_path=tmp_path / "ttyA02", period_s=0.02) as sim:
        cfg = UartLevelSensor.model_validate({"type": "uart_level", "id": "u1", "bin": "c1",
                                              "serial": {"port": sim.path}, "empty_mm": 2500, "full_mm": 300})
        r = await probe_uart_async(cfg.serial, 0.4, cfg)
        assert r["ok"] and r["detail"]["distance_mm"] == 1953 and r["detail"]["fill_pct"] == 24.9
        assert r["detail"]["frames"] >= 5
        sim.silent = True
        await asyncio.sleep(0.05)
        r = await probe_uart_async(cfg.serial, 0.3)
        assert not r["ok"] and "silent" in r["summary"]
        sim.silent = False
        sim.faults = FaultPlan(seed=4, crc_rate=0.5)
        r = await probe_uart_async(cfg.serial, 0.4)
        assert not r["ok"] and "bad checksums" in r["summary"]


@pytest.fixture
def run_cli(capsys):
    """The real `edge` argument parser and command, in a worker thread (the simulator needs this loop)."""
    from edge.cli import main

    async def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        try:
            rc = await asyncio.to_thread(main, ["probe", *args])
        except SystemExit as exc:  # argparse rejects bad arguments with exit code 2
            rc = exc.code
        captured = capsys.readouterr()
        return rc, captured.out + captured.err
    return run


async def test_cli_probe_modbus_serial_ports_and_bins(bus, tmp_path, run_cli):
    rc, out = await run_cli("modbus", "--port", bus.path, "--unit", "3", "--empty-mm", "1200", "--full-mm", "250")
    assert rc == 0, out
    assert out.startswith("OK ") and "unit 3: answers, distance 400 mm, 84.2 % full, temperature 21.5 C" in out
    rc, out = await run_cli("modbus", "--port", bus.path, "--unit", "4-5", "--timeout", "0.2", "--json")
    assert rc == 1 and json.loads(out)["detail"]["units"]["4"]["answers"] is False
    rc, out = await run_cli("modbus", "--port", bus.path, "--unit", "300")
    assert rc == 2
    rc, out = await run_cli("serial-ports", bus.path, "--json")
    assert rc == 0 and any(p["device"] == bus.path and p["description"] == "tty (pty)" for p in json.loads(out))
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(f"""gateway: {{id: gw-1, compound_id: cp-1, county_code: "330106"}}
storage: {{path: {tmp_path / 'data'}}}
devices:
  - type: modbus_level
    id: bus-x
    serial: {{port: {bus.path}}}
    timeout_s: 0.2
    sensors:
      - {{unit: 1, bin: b1, empty_mm: 1200, full_mm: 250}}
      - {{unit: 3, bin: b3, empty_mm: 1200, full_mm: 250, register_map: dyp}}
""")
    rc, out = await run_cli("bins", "-c", str(cfg))
    assert rc == 0 and out.startswith("OK   bus-x: ") and "2/2 sensor(s) answer" in out


def test_list_serial_ports_includes_given_paths(tmp_path):
    ports = list_serial_ports([str(tmp_path / "missing")])
    [missing] = [p for p in ports if p["device"].endswith("missing")]
    assert missing["exists"] is False and missing["source"] == "argument"
