"""`edge probe uhppote|osdp|wiegand` and probe_device() (what `edge doctor` calls) against the simulators."""
import asyncio
import json

from drivers.access.probe import probe_device
from edge.cli import main as edge_main
from edge.config.devices import OsdpReader, UhppoteController, WiegandSerial
from simulators.access.osdp_sim import OsdpReaderSimulator
from simulators.access.uhppote_sim import UhppoteSimulator
from simulators.access.wiegand_sim import WiegandConverterSimulator


async def test_probe_uhppote_answers_and_silence(capsys):
    sim = await UhppoteSimulator(405419896).start()
    try:
        sim.swipe(8165537)
        sim.clock_offset_s = 120
        cfg = UhppoteController(type="uhppote", id="gate", serial=405419896, address="127.0.0.1", port=sim.port)
        r = await asyncio.to_thread(probe_device, cfg, 1.0)
        assert r["ok"] is True and r["fix"] == ""
        assert r["detail"]["event_index"] == 1 and 118 <= r["detail"]["drift_s"] <= 122
        assert "answers" in r["summary"]

        wrong = cfg.model_copy(update={"serial": 1})
        r = await asyncio.to_thread(probe_device, wrong, 0.3)
        assert r["ok"] is False and "does not answer" in r["summary"] and "UDP port" in r["fix"]

        rc = await asyncio.to_thread(edge_main, ["probe", "uhppote", "--serial", "405419896", "--address",
                                                 "127.0.0.1", "--port", str(sim.port), "--json"])
        out = json.loads(capsys.readouterr().out)
        assert rc == 0 and out["ok"] is True and out["detail"]["serial"] == 405419896

        rc = await asyncio.to_thread(edge_main, ["probe", "uhppote", "--discover", "--broadcast",
                                                 f"127.0.0.1:{sim.port}", "--timeout", "0.5"])
        text = capsys.readouterr().out
        assert rc == 0 and "405419896" in text and "v8.92" in text
    finally:
        await sim.stop()


def test_probe_osdp_reader_and_missing_port(tmp_path, capsys):
    sim = OsdpReaderSimulator(tmp_path / "ttyOSDP", address=2, serial_number=0x12345678).start()
    try:
        cfg = OsdpReader(type="osdp", id="r", serial={"port": str(sim.path), "baudrate": 115200}, address=2)
        r = probe_device(cfg, 3.0)
        assert r["ok"] is True, r
        assert r["detail"]["serial_number"] == "0x12345678" and "reader online" in r["summary"]
        wrong_addr = probe_device(cfg.model_copy(update={"address": 5}), 1.0)
        assert wrong_addr["ok"] is False and "address" in wrong_addr["fix"]
        rc = edge_main(["probe", "osdp", "--port", str(sim.path), "--baud", "115200", "--address", "2"])
        assert rc == 0 and capsys.readouterr().out.startswith("OK ")
    finally:
        sim.stop()
    gone = probe_device(OsdpReader(type="osdp", id="r", serial={"port": str(tmp_path / "nope")}), 0.5)
    assert gone["ok"] is False and "cannot open" in gone["summary"] and "dialout" in gone["fix"]


async def test_probe_wiegand_converter(tmp_path):
    sim = WiegandConverterSimulator(tmp_path / "ttyW", "ascii_bits").start()
    try:
        cfg = WiegandSerial(type="wiegand_serial", id="w", serial={"port": str(sim.path)}, profile="ascii_bits")
        probe = asyncio.create_task(asyncio.to_thread(probe_device, cfg, 0.6))
        await asyncio.sleep(0.2)  # the probe has the port open (opening flushes what was sent before)
        sim.card(90, 324)
        r = await probe
        assert r["ok"] is True and r["detail"]["cards"] == ["90:324"]
    finally:
        sim.stop()


def test_probe_never_raises_on_a_foreign_device():
    r = probe_device(object())
    assert r["ok"] is False and "not an access device" in r["summary"]
