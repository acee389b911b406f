"""UHPPOTE driver against the controller simulator over real UDP sockets, into a real SQLite store."""
import asyncio
import socket

import pytest

from drivers.access.uhppote import index_key
from edge.clock import FakeClock
from simulators.access.harness import AccessRig
from simulators.access.uhppote_sim import SimRecord, UhppoteSimulator, status_packet

SERIAL = 405419896


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def device(sim: UhppoteSimulator, listen_port: int, **kw) -> dict:
    d = {"type": "uhppote", "id": "gate-north", "serial": SERIAL, "address": "127.0.0.1", "port": sim.port,
         "listen_host": "127.0.0.1", "listen_port": listen_port, "listener_address": f"127.0.0.1:{listen_port}",
         "doors": {1: "北门入口", 2: "北门出口", 3: "东门", 4: "车库"}, "poll_interval_s": 30, "timeout_s": 0.2,
         "retries": 1}
    d.update(kw)
    return d


def mixed_traffic(sim: UhppoteSimulator, n: int) -> dict[str, int]:
    """n controller records of every sort; returns how many events of each kind they should become."""
    expected: dict[str, int] = {}
    for i in range(n):
        door = 1 + i % 4
        k = i % 10
        if k < 5:
            sim.swipe(8_000_000 + i, door=door, granted=True, direction=1 + i % 2)
            kind = "access.granted"
        elif k == 5:
            sim.swipe(8_000_000 + i, door=door, granted=False, reason=5 + i % 11)
            kind = "access.denied"
        elif k == 6:
            sim.door_opened(door)
            kind = "door.opened"
        elif k == 7:
            sim.door_closed(door)
            kind = "door.closed"
        elif k == 8:
            sim.button(door)
            kind = "door.button"
        else:
            sim.forced(door)
            sim.doors_open[door - 1] = False
            kind = "door.forced"
        expected[kind] = expected.get(kind, 0) + 1
    return expected


def access_events(rig: AccessRig):
    """Events made from controller records, in record order (several share one BCD second)."""
    return sorted((e for e in rig.events() if "record_index" in e.payload), key=lambda e: e.payload["record_index"])


@pytest.fixture
async def sim():
    s = await UhppoteSimulator(SERIAL).start()
    yield s
    await s.stop()


async def test_push_then_backfill_across_gateway_downtime(tmp_path, sim):
    listen = free_udp_port()
    for i in range(5):  # history recorded before this gateway ever saw the controller
        sim.swipe(100 + i)
    dev = device(sim, listen, backfill_on_first_start=1000)

    rig = await AccessRig(tmp_path, [dev]).start()
    try:
        await rig.wait_events("device.online")
        await rig.wait_for(lambda: len(access_events(rig)) == 5, what="first-start import of 5 records")
        assert sim.listener == ("127.0.0.1", listen)  # the driver told the controller where to push
        assert sim.special_events is True
        # live pushes (the poll interval is 30 s, so these can only arrive by push)
        sim.swipe(8165537, door=3)
        sim.door_opened(2)
        sim.swipe(42, door=1, granted=False)
        await rig.wait_for(lambda: len(access_events(rig)) == 8, timeout=3, what="3 pushed events")
        kinds = [e.kind for e in access_events(rig)][-3:]
        assert kinds == ["access.granted", "door.opened", "access.denied"]
        await rig.wait_for(lambda: rig.store.kv_get(index_key(SERIAL)) == 8, what="index persisted after commit")
        assert rig.component("gate-north").counters["backfilled"] == 5
    finally:
        await rig.stop()

    # --- gateway down: the controller keeps logging (and pushing into the void) ---
    expected = mixed_traffic(sim, 100)
    assert sim.last_index == 108 and sim.stats["pushes"] >= 100

    rig = await AccessRig(tmp_path, [dev]).start()  # same data dir: same SQLite file
    try:
        await rig.wait_for(lambda: rig.store.kv_get(index_key(SERIAL)) == 108, timeout=10,
                           what="backfill up to index 108")
        evs = access_events(rig)
        indexes = [e.payload["record_index"] for e in evs]
        assert sorted(indexes) == list(range(1, 109)), "every record exactly once"
        got: dict[str, int] = {}
        for e in evs:
            if e.payload["record_index"] > 8:
                got[e.kind] = got.get(e.kind, 0) + 1
        assert got == expected
        forced = [e for e in evs if e.kind == "door.forced"]
        assert forced and all(e.severity.value == "critical" for e in forced)
        assert all(e.payload["door_name"] in ("北门入口", "北门出口", "东门", "车库") for e in evs)
        c = rig.component("gate-north")
        assert c.counters["backfilled"] == 100 and c.counters["duplicates"] == 0
        await rig.wait_for(lambda: sim.downloaded_index == 108, what="downloaded-index register written")
        # event times are the controller's record times (local BCD -> UTC)
        r100 = sim.record(100)
        e100 = next(e for e in evs if e.payload["record_index"] == 100)
        assert e100.payload["device_time"] == r100.timestamp.strftime("%Y-%m-%d %H:%M:%S")
    finally:
        await rig.stop()

    # --- a crash between commit and index update: records are fetched again but stored once ---
    rig = await AccessRig(tmp_path, [dev]).start(run=False)
    rig.store.kv_set(index_key(SERIAL), 60)
    rig.run(rig.component("gate-north"))
    try:
        await rig.wait_for(lambda: rig.component("gate-north").counters["backfilled"] == 48, what="re-fetch")
        await rig.wait_for(lambda: rig.store.kv_get(index_key(SERIAL)) == 108, what="index back at 108")
        assert sorted(e.payload["record_index"] for e in access_events(rig)) == list(range(1, 109))
    finally:
        await rig.stop()


async def test_lost_pushes_make_a_gap_that_is_backfilled(tmp_path, sim):
    listen = free_udp_port()
    rig = await AccessRig(tmp_path, [device(sim, listen)]).start()
    try:
        await rig.wait_events("device.online")
        sim.swipe(1)
        await rig.wait_for(lambda: len(access_events(rig)) == 1, what="first push")
        sim.push_enabled = False  # UDP pushes lost on the way
        for i in range(7):
            sim.swipe(10 + i)
        sim.push_enabled = True
        sim.swipe(99)  # index 9 arrives: 2..8 are missing
        await rig.wait_for(lambda: len(access_events(rig)) == 9, timeout=3, what="gap closed")
        assert sorted(e.payload["record_index"] for e in access_events(rig)) == list(range(1, 10))
        c = rig.component("gate-north")
        assert c.counters["gaps"] == 1 and c.counters["backfilled"] == 7
    finally:
        await rig.stop()


async def test_offline_online_time_sync_and_backfill_after_reconnect(tmp_path, sim):
    sim.clock_offset_s = 3600  # controller clock an hour fast
    listen = free_udp_port()
    rig = await AccessRig(tmp_path, [device(sim, listen, poll_interval_s=0.1, offline_after_missed=2)]).start()
    try:
        await rig.wait_events("device.online")
        c = rig.component("gate-north")
        assert c.time_drift_s == pytest.approx(3600, abs=2)
        assert abs(sim.clock_offset_s) < 2 and c.counters["time_syncs"] == 1
        sim.offline = True  # network cable pulled; people keep badging in
        for i in range(10):
            sim.swipe(500 + i)
        off = await rig.wait_events("device.offline", timeout=5)
        assert off[0].payload["device"] == "gate-north" and off[0].payload["missed_polls"] == 2
        assert rig.store.devices()[0]["state"] == "offline"
        assert access_events(rig) == []
        sim.offline = False
        on = await rig.wait_events("device.online", n=2, timeout=5)
        assert on[-1].payload["reason"] == "answers again" and on[-1].payload["offline_s"] >= 0
        await rig.wait_for(lambda: len(access_events(rig)) == 10, what="backfill after reconnect")
        await rig.wait_for(lambda: rig.store.devices()[0]["state"] == "online", what="device row online")
        assert c.health()["device_state"] == "online"
    finally:
        await rig.stop()


async def test_bad_packets_are_counted_and_dropped(tmp_path, sim):
    listen = free_udp_port()
    rig = await AccessRig(tmp_path, [device(sim, listen)]).start()
    try:
        await rig.wait_events("device.online")
        good = status_packet(SERIAL, SimRecord(1, 1, True, 1, 1, 77, sim.now(), 1))
        bad_bcd = bytearray(good)
        bad_bcd[20:27] = b"\xff" * 7  # not a BCD time: decoded, time falls back to the gateway clock
        other_serial = status_packet(123, SimRecord(1, 1, True, 1, 1, 77, sim.now(), 1))
        for pkt in (b"\x17\x20short", good[:1] + b"\x99" + good[2:], b"\x00" * 64, other_serial):
            sim.send_raw_to_listener(pkt)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoof:  # a valid packet, wrong sender
            spoof.bind(("127.0.0.2", 0))
            spoof.sendto(good, ("127.0.0.1", listen))
        sim.last_index = 1
        sim.log[1] = SimRecord(1, 1, True, 1, 1, 77, sim.now(), 1)
        sim.send_raw_to_listener(bytes(bad_bcd))
        c = rig.component("gate-north")
        await rig.wait_for(lambda: len(access_events(rig)) == 1, what="the one valid record")
        h = c.health()["counters"]
        assert h["bad_size"] == 1 and h["bad_header"] == 2 and h["wrong_controller"] == 1
        assert h["wrong_source"] == 1
        assert rig.crashed() == []
        assert c.health()["listener"]["unknown_controller"] == 1
    finally:
        await rig.stop()


async def test_held_open_from_door_contact_with_fake_clock(tmp_path, sim):
    clock = FakeClock()
    sim.clock = clock.time
    listen = free_udp_port()
    rig = await AccessRig(tmp_path, [device(sim, listen, poll_interval_s=10, held_open_s=60)], clock=clock).start()
    try:
        await rig.wait_events("device.online")
        c = rig.component("gate-north")
        sim.door_opened(2)
        await rig.wait_events("door.opened")

        async def tick():  # one fake poll interval, then wait (real time) for the poll it triggers
            n = sim.stats["fn_20"]
            await clock.advance(10)
            await rig.wait_for(lambda: sim.stats["fn_20"] > n, what="a status poll")

        for _ in range(5):  # 50 s open
            await tick()
        await asyncio.sleep(0.05)
        assert rig.events("door.held_open") == []
        for _ in range(2):  # 70 s open
            await tick()
        held = await rig.wait_events("door.held_open")
        assert held[0].payload["door"] == 2 and held[0].payload["door_name"] == "北门出口"
        assert 60 <= held[0].payload["duration_s"] <= 80
        for _ in range(6):  # still open a minute later: reported once per episode
            await tick()
        await asyncio.sleep(0.05)
        assert len(rig.events("door.held_open")) == 1 and c.counters["held_open_detected"] == 1
        sim.door_closed(2)
        await rig.wait_events("door.closed")
    finally:
        await rig.stop()


async def test_gateway_runs_the_driver_from_config(tmp_path, sim):
    """The plug-in path: edge.runtime.Gateway builds drivers.access from edge.yaml devices."""
    from edge.runtime import Gateway
    from simulators.access.harness import make_config

    listen = free_udp_port()
    cfg = make_config(tmp_path / "gw", [device(sim, listen)]).model_copy(
        update={"web": make_config(tmp_path, []).web.model_copy(update={"enabled": False})})
    gw = Gateway(cfg)
    await gw.start()
    try:
        for _ in range(100):
            if gw.ctx.store.count_events("device.online"):
                break
            await asyncio.sleep(0.05)
        sim.swipe(8165537, door=3)
        for _ in range(100):
            if gw.ctx.store.count_events("access.granted"):
                break
            await asyncio.sleep(0.05)
        assert gw.ctx.store.count_events("access.granted") == 1
        assert gw.supervisor.health()["access.gate-north"]["state"] == "running"
    finally:
        await gw.stop()


def test_build_components_shares_listeners_and_refuses_duplicate_serials(tmp_path):
    from drivers.access import build_components
    from simulators.access.harness import make_config

    base = {"type": "uhppote", "address": "127.0.0.1"}
    cfg = make_config(tmp_path, [
        {**base, "id": "a", "serial": 1}, {**base, "id": "b", "serial": 2},
        {**base, "id": "c", "serial": 2},  # same board configured twice
        {**base, "id": "d", "serial": 3, "listen_port": 60011},
        {"type": "osdp", "id": "r", "serial": {"port": "/dev/null"}},
        {"type": "wiegand_serial", "id": "w", "serial": {"port": "/dev/null"}},
    ])
    comps = build_components(cfg, None)
    assert [c.name for c in comps] == ["access.a", "access.b", "access.d", "access.r", "access.w"]
    assert comps[0].listener is comps[1].listener and comps[2].listener is not comps[0].listener
