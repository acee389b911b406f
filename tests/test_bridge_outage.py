"""Fault tests 1 and 5: a long broker outage, and a big backlog against a broker with a small Receive Maximum."""
from __future__ import annotations

import asyncio
import sqlite3
import time

import psutil

from cloud_bridge.uplink import AUX_SLOTS, FETCH_BATCH
from edge.clock import FakeClock
from tests.helpers.bridge_harness import CountyProcess, Runtime, make_config, wait_until
from tests.helpers.faultproxy import FaultProxy

GW = "gw-test-1"


async def test_broker_down_ten_minutes_10000_events_all_delivered_no_gap_bounded_memory(mosquitto, tmp_path):
    county = CountyProcess(mosquitto.url, tmp_path / "county.db")
    clock = FakeClock()
    rt = None
    try:
        await county.wait_subscribed()
        cfg = make_config(tmp_path / "gw", mosquitto.url, uplink={
            "reconnect_min_s": 1, "reconnect_max_s": 60, "telemetry_interval_s": 30, "drain_rate_per_s": 4000,
            "max_inflight": 200})
        rt = await Runtime(cfg, clock=clock).start()
        up = rt.uplink
        await wait_until(lambda: up.connected, 10, "first connect")
        mosquitto.stop()
        await wait_until(lambda: not up.connected, 10, "uplink notices the broker is gone")
        rss0 = psutil.Process().memory_info().rss

        # ten simulated minutes: 10,000 events at ~16.7/s while the broker is down
        produced = 0
        for second in range(600):
            n = (second + 1) * 10_000 // 600 - produced
            rt.emit(n, kind="access.granted", source=f"door-{second % 7}", payload={"controller": "c1"})
            produced += n
            await clock.advance(1.0)
            await asyncio.sleep(0.001)
        assert produced == 10_000
        await wait_until(lambda: rt.ctx.bus.committed == 10_000, 20, "all events committed")
        assert not up.connected and up.c["connect_failures"] >= 8  # it kept trying, with backoff up to 60 s
        assert up.c["connect_failures"] < 60  # ... and did not hammer (jittered exponential backoff)
        depth = rt.ctx.store.outbox_depth()
        assert depth == 10_000
        rss_growth = psutil.Process().memory_info().rss - rss0
        assert rss_growth < 60 * 1024 * 1024, rss_growth  # the backlog lives in SQLite, not in memory

        mosquitto.start()
        await county.wait_subscribed(at_least=2)  # fake time is frozen: the gateway waits in its backoff
        t0 = time.monotonic()
        await wait_until(lambda: up.connected, 30, "reconnect", tick=lambda: clock.advance(1.0))
        await wait_until(lambda: county.unique(GW) == 10_000, 60, "county has all 10,000",
                         tick=lambda: clock.advance(0.05))
        drain_s = time.monotonic() - t0
        await wait_until(lambda: rt.ctx.store.outbox_depth() == 0, 10, "outbox empty")
        # memory bound: paho never held more than the window, our read-ahead never more than two batches
        assert up.max_paho_queue <= 200 + AUX_SLOTS
        assert up.max_buffer <= 2 * FETCH_BATCH
        assert up.c["queue_size_errors"] == 0
        # the drain-rate cap held (4000/s with a one-second burst)
        assert drain_s >= (10_000 - 4000) / 4000 * 0.9, drain_s
        assert county.seqs(GW) == list(range(1, 10_001))
    finally:
        if rt is not None:
            await rt.stop()
        rep = county.stop()
    g = rep["per_gateway"][GW]
    assert rep["schema_errors"] == 0, rep["schema_error_samples"]
    assert g["unique"] == 10_000 and g["gaps_open"] == 0 and g["missing"] == 0
    assert g["status"] == "stopped"


async def test_backlog_20000_against_max_inflight_20_no_row_lost_on_failure_reason(mosquitto_factory, tmp_path):
    # honour_receive_maximum=False (paho's own behaviour) was run by hand too: mosquitto 2.0.11 then accepted
    # QoS 1 beyond Receive Maximum without a 0x97; the refusal path is covered by the ACL test (0x87).
    honour = True
    broker = mosquitto_factory("max_inflight_messages 20\nset_tcp_nodelay true\n")
    # --no-resend: a row wrongly marked sent would stay missing at the county, nothing papers over it
    county = CountyProcess(broker.url, tmp_path / "county.db", "--no-resend")
    await county.wait_subscribed()
    link = await FaultProxy("127.0.0.1", broker.port).start()
    link.set("refuse")  # the gateway's uplink is down while the backlog builds
    cfg = make_config(tmp_path / "gw", link.url, uplink={"max_inflight": 1000, "honour_receive_maximum": honour,
                                                         "reconnect_min_s": 0.05, "reconnect_max_s": 0.2})
    rt = await Runtime(cfg).start()
    try:
        for i in range(20):
            rt.emit(1000, kind="bin.level", source=f"bin-{i % 5}", payload={"bin": f"b{i % 5}", "fill_pct": 50})
            await asyncio.sleep(0)
        await wait_until(lambda: rt.ctx.bus.committed == 20_000, 30, "backlog committed")
        await wait_until(lambda: rt.uplink.c["connect_failures"] > 0, 10, "uplink refused while building backlog")
        assert not rt.uplink.connected and rt.ctx.store.outbox_depth() == 20_000
        link.set("pass")
        up = rt.uplink
        await wait_until(lambda: up.connected, 10, "connect")
        assert up.connack.receive_maximum == 20
        await wait_until(lambda: county.unique(GW) == 20_000, 90, "county has all 20,000")
        await wait_until(lambda: rt.ctx.store.outbox_depth() == 0, 10, "outbox empty")
        assert up.c["queue_size_errors"] == 0
        if honour:
            assert up.max_paho_queue <= 20 and not up.rejected
        # every row is marked sent only once, and no row ever marked sent carries a failure reason
        con = sqlite3.connect(rt.ctx.store.path)
        assert con.execute("SELECT count(*) FROM outbox WHERE sent_ms IS NULL").fetchone()[0] == 0
        failed_then_sent = con.execute("SELECT count(*) FROM outbox WHERE last_reason >= 128").fetchone()[0]
        con.close()
        # each refusal was counted on its row, and that row was retried until accepted
        assert (failed_then_sent > 0) == (sum(up.rejected.values()) > 0)
        assert county.seqs(GW) == list(range(1, 20_001))
    finally:
        await rt.stop()
        await link.stop()
        rep = county.stop()
    assert rep["schema_errors"] == 0 and rep["per_gateway"][GW]["gaps_open"] == 0
