"""The uplink as the real gateway runs it: loaded through edge/runtime/plugins.py by edge.runtime.Gateway."""
from __future__ import annotations

from edge.runtime import Gateway
from tests.helpers.bridge_harness import make_config, start_county, stop_county, wait_until


async def test_gateway_process_loads_the_uplink_and_delivers_its_lifecycle_events(mosquitto, tmp_path):
    county, ctask = await start_county(mosquitto.url, tmp_path / "county.db")
    gw = Gateway(make_config(tmp_path / "gw", mosquitto.url))
    ctx = await gw.start()
    try:
        up = ctx.services["uplink"]
        assert "uplink" in gw.supervisor.slots
        await wait_until(lambda: up.connected, 15, "uplink connected")
        await wait_until(lambda: county.report()["per_gateway"].get("gw-test-1", {}).get("unique", 0) >= 1, 15,
                         "gateway.started delivered")
    finally:
        await gw.stop()
    await wait_until(lambda: county.report()["per_gateway"]["gw-test-1"]["status"] == "stopped", 5, "stopped status")
    rep = county.report()
    await stop_county(county, ctask)
    assert rep["schema_errors"] == 0, rep["schema_error_samples"]
    kinds = {k for (k,) in county_db_kinds(tmp_path / "county.db")}
    assert "gateway.started" in kinds


def county_db_kinds(path):
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT DISTINCT kind FROM messages").fetchall()
    finally:
        con.close()
