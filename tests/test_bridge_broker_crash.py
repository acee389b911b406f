"""Fault test 3: mosquitto is SIGKILLed during a backlog drain. It had PUBACKed messages it then lost (its
persistence is a periodic snapshot) and may re-deliver stale ones; the county simulator finds the gaps by seq
and the gateway's resend closes them."""
from __future__ import annotations

import asyncio

from tests.helpers.bridge_harness import CountyProcess, Runtime, make_config, wait_until
from tests.helpers.faultproxy import FaultProxy

GW = "gw-test-1"
N = 6000


async def test_broker_sigkill_during_drain_gaps_found_and_closed_by_resend(mosquitto_factory, tmp_path):
    broker = mosquitto_factory("set_tcp_nodelay true\n")
    county = CountyProcess(broker.url, tmp_path / "county.db")
    link = await FaultProxy("127.0.0.1", broker.port).start()
    link.set("refuse")
    rt = await Runtime(make_config(tmp_path / "gw", link.url, uplink={
        "drain_rate_per_s": 2500, "telemetry_interval_s": 1, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2})).start()
    try:
        await county.wait_subscribed()
        rt.emit(N, kind="bin.full", source="bin-a", payload={"bin": "a"})
        await wait_until(lambda: rt.ctx.bus.committed == N, 20, "backlog committed")
        await asyncio.sleep(1.2)  # the broker's autosave (1 s) has the county's session
        link.set("pass")
        up = rt.uplink
        await wait_until(lambda: up.c["acked"] >= N // 3, 20, "drain under way")
        broker.kill()  # SIGKILL mid-drain
        acked_at_kill = up.c["acked"]
        await wait_until(lambda: not up.connected, 10, "uplink notices")
        broker.start()
        await county.wait_subscribed(at_least=2)
        await wait_until(lambda: rt.ctx.store.outbox_depth() == 0, 30, "gateway drained")
        assert acked_at_kill < N
        await wait_until(lambda: county.unique(GW) == N, 60, "county closed every gap")
        assert county.seqs(GW) == list(range(1, N + 1))
        assert up.c["resent"] > 0  # the gateway republished what the county asked for
        assert up.commands.ok["resend"] > 0
    finally:
        await rt.stop()
        await link.stop()
        rep = county.stop()
    g = rep["per_gateway"][GW]
    assert g["gaps_open"] == 0 and g["missing"] == 0 and g["unique"] == N
    assert g["gaps_resent"] > 0 and g["resend_requests"] > 0
    assert rep["schema_errors"] == 0, rep["schema_error_samples"]
