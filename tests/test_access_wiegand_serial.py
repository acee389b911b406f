"""Wiegand reader behind a Wiegand-to-serial converter, simulated on a real pty, into the store."""
import pytest

from simulators.access.harness import AccessRig
from simulators.access.wiegand_sim import WiegandConverterSimulator


def converter(link, profile, **kw) -> dict:
    d = {"type": "wiegand_serial", "id": "gate-reader", "serial": {"port": str(link)}, "profile": profile,
         "door": 2, "name": "南门", "reconnect_max_s": 0.5}
    d.update(kw)
    return d


@pytest.mark.parametrize("profile", ["ascii_hex", "ascii_bits", "binary"])
async def test_profiles_cards_noise_and_parity(tmp_path, profile):
    sim = WiegandConverterSimulator(tmp_path / "ttyW", profile).start()
    rig = await AccessRig(tmp_path / "gw", [converter(sim.path, profile)]).start()
    try:
        await rig.wait_events("device.online")
        sim.card(90, 324)
        sim.inject(b"\x00\xfe\x13")  # glitch on the line
        sim.card(1234, 56789, "wiegand34")
        sim.bits("01011010000011000000111101")  # parity wrong (the bits of the OSDP RAW vector)
        cards = await rig.wait_events("reader.card", n=2)
        assert [(e.payload["credential"], e.payload["credential_type"]) for e in cards] == \
            [("90:324", "wiegand26"), ("1234:56789", "wiegand34")]
        assert cards[0].payload["door"] == 2 and cards[0].payload["door_name"] == "南门"
        c = rig.component("gate-reader")
        await rig.wait_for(lambda: c.counters["parity_errors"] == 1, what="parity error counted")
        assert c.health()["frames"]["noise_bytes"] >= 1 or c.health()["frames"]["bad_frames"] >= 1
    finally:
        await rig.stop()
        sim.stop()


async def test_unplug_replug_and_allow_list(tmp_path):
    sim = WiegandConverterSimulator(tmp_path / "ttyW", "ascii_hex").start()
    rig = await AccessRig(tmp_path / "gw", [converter(sim.path, "ascii_hex", allow=["90:324"])]).start()
    try:
        await rig.wait_events("device.online")
        sim.unplug()
        off = await rig.wait_events("device.offline", timeout=3)
        assert "serial port lost" in off[0].payload["reason"]
        c = rig.component("gate-reader")
        await rig.wait_for(lambda: c.counters["open_failures"] >= 1, what="reopen attempts")
        sim.replug()
        await rig.wait_events("device.online", n=2, timeout=3)
        sim.card(90, 324)
        sim.card(90, 325)
        assert (await rig.wait_events("access.granted"))[0].payload["credential"] == "90:324"
        assert (await rig.wait_events("access.denied"))[0].payload["reason"] == "not on the allow list"
        assert rig.crashed() == []
    finally:
        await rig.stop()
        sim.stop()
