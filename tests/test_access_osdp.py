"""OSDP reader driver (libosdp ControlPanel) against libosdp's PeripheralDevice on a real pty."""
import pytest

from drivers.access.osdp_frame import build_frame
from simulators.access.harness import AccessRig
from simulators.access.osdp_sim import OsdpReaderSimulator

SCBK = bytes(range(16))


def reader(link, **kw) -> dict:
    d = {"type": "osdp", "id": "reader-b2", "serial": {"port": str(link), "baudrate": 115200}, "address": 1,
         "door": 1, "name": "B2 单元门", "offline_after_s": 1.5, "reconnect_max_s": 1.0}
    d.update(kw)
    return d


@pytest.fixture
def sim(tmp_path):
    s = OsdpReaderSimulator(tmp_path / "ttyOSDP", address=1).start()
    yield s
    s.stop()


async def test_cards_keypad_tamper_into_the_store(tmp_path, sim):
    rig = await AccessRig(tmp_path / "gw", [reader(sim.path, allow=["90:324"])]).start()
    try:
        on = await rig.wait_events("device.online", timeout=5)
        assert on[0].payload == {"device": "reader-b2", "device_type": "osdp", "reason": "gateway started"}
        assert sim.card(90, 324) == "00101101000000001010001000"
        granted = await rig.wait_events("access.granted")
        assert granted[0].payload == {"controller": "reader-b2", "door": 1, "door_name": "B2 单元门",
                                      "credential": "90:324", "credential_type": "wiegand26", "facility_code": 90,
                                      "card_number": 324, "reason": "on the allow list"}
        sim.card(1234, 56789, "wiegand34")
        denied = await rig.wait_events("access.denied")
        assert denied[0].payload["credential"] == "1234:56789"
        assert denied[0].payload["credential_type"] == "wiegand34"
        c = rig.component("reader-b2")
        # the bits inside the RAW vector: framing fine, parity wrong -> counted, no event
        sim.card_bits("01011010000011000000111101")
        await rig.wait_for(lambda: c.counters["card_parity_errors"] == 1, what="parity error counted")
        sim.keypad("1234")
        sim.keypad("#")
        keys = await rig.wait_events("reader.keypad")
        assert keys[0].payload == {"device": "reader-b2", "reader": "0", "keys": "****#"}  # PIN digits masked
        sim.tamper(True)
        t = await rig.wait_events("reader.tamper")
        assert t[0].payload["active"] is True and t[0].severity.value == "critical"
        sim.tamper(False)
        t = await rig.wait_events("reader.tamper", n=2)
        assert t[1].payload["active"] is False
        h = c.health()
        assert h["device_state"] == "online" and h["counters"]["cards"] == 2
        assert h["frames"]["frames"] > 3 and h["frames"]["crc_errors"] == 0
        assert len(rig.events("access.granted")) == 1 and len(rig.events("access.denied")) == 1
    finally:
        await rig.stop()


async def test_noise_bad_crc_short_frames_wrong_address_are_counted(tmp_path, sim):
    rig = await AccessRig(tmp_path / "gw", [reader(sim.path, keypad="clear")]).start()
    try:
        await rig.wait_events("device.online", timeout=5)
        c = rig.component("reader-b2")
        bad_crc = bytearray(build_frame(1, 0x40, reply=True))
        bad_crc[-1] ^= 0xFF
        sim.inject(b"\x00\x11\x22\x33 line noise \x55")
        sim.inject(bytes(bad_crc))
        sim.inject(build_frame(9, 0x40, reply=True))  # a reply from PD 9 on our line
        sim.inject(build_frame(1, 0x45, bytes(12), reply=True)[:7])  # cut short
        await rig.wait_for(lambda: c.health()["frames"]["wrong_address"] >= 1
                           and c.health()["frames"]["crc_errors"] >= 1
                           and c.health()["frames"]["noise_bytes"] >= 10, what="bad input counted")
        # and the reader still works
        sim.keypad("56#")
        keys = await rig.wait_events("reader.keypad")
        assert keys[0].payload["keys"] == "56#"
        sim.card(90, 324)
        cards = await rig.wait_events("reader.card")
        assert cards[0].payload["credential"] == "90:324"
        assert rig.crashed() == [] and c.state == "online"
        assert rig.events("device.offline") == []
    finally:
        await rig.stop()


async def test_unplug_replug_reopens_with_backoff(tmp_path, sim):
    rig = await AccessRig(tmp_path / "gw", [reader(sim.path)]).start()
    try:
        await rig.wait_events("device.online", timeout=5)
        c = rig.component("reader-b2")
        sim.unplug()
        off = await rig.wait_events("device.offline", timeout=5)
        assert "serial port lost" in off[0].payload["reason"] or "no reply" in off[0].payload["reason"]
        await rig.wait_for(lambda: c.counters["open_failures"] >= 1, what="reopen attempts while unplugged")
        assert not sim.path.exists()
        sim.replug()
        on = await rig.wait_events("device.online", n=2, timeout=6)
        assert on[1].payload["reason"] == "answers again"
        sim.card(90, 324)
        await rig.wait_events("reader.card", timeout=3)
        assert c.counters["sessions"] >= 2 and rig.crashed() == []
        assert rig.store.devices()[0]["state"] == "online"
    finally:
        await rig.stop()


async def test_silent_reader_goes_offline_and_comes_back(tmp_path, sim):
    rig = await AccessRig(tmp_path / "gw", [reader(sim.path)]).start()
    try:
        await rig.wait_events("device.online", timeout=5)
        sim.go_silent()  # powered off / A-B wires cut; the USB adapter stays
        off = await rig.wait_events("device.offline", timeout=5)
        assert off[0].payload["reason"].startswith("no reply for")
        sim.resume()
        await rig.wait_events("device.online", n=2, timeout=6)
    finally:
        await rig.stop()


async def test_secure_channel(tmp_path):
    sim = OsdpReaderSimulator(tmp_path / "ttySC", address=3, scbk=SCBK).start()
    rig = await AccessRig(tmp_path / "gw", [reader(sim.path, address=3, scbk=SCBK.hex())]).start()
    try:
        await rig.wait_events("device.online", timeout=8)
        sim.card(90, 324)
        cards = await rig.wait_events("reader.card", timeout=3)
        assert cards[0].payload["facility_code"] == 90
        h = rig.component("reader-b2").health()
        assert h["frames"]["crc_errors"] == 0 and h["frames"]["frames"] > 0
    finally:
        await rig.stop()
        sim.stop()
