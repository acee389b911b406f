"""Console API against a real in-process gateway: login, roles, CSRF, throttling, alerts, evidence, events,
live stream, dashboard, stations, snapshots, metrics, tokens, users, settings, bad input."""
from __future__ import annotations

import asyncio
import json
import logging
import re

import aiohttp
import cv2
import numpy as np
import pytest

from edge.clock import FakeClock
from test_web_harness import LANE_PHOTO, PASSWORD, start_harness, wait_for

SECRET_YAML = """  channels:
    - id: hook
      type: webhook
      url: http://127.0.0.1:9/hook?key=topsecretkey
      secret: s3cr3t-value
  routes:
    - name: never
      kinds: [nothing.matches]
      channels: [hook]
"""


@pytest.fixture
async def h(tmp_path, monkeypatch):
    harness = await start_harness(tmp_path, monkeypatch)
    yield harness
    await harness.stop()


async def test_everything_needs_login_except_login_page_and_healthz(h):
    c = await h.client()
    for path in ["/api/me", "/api/alerts", "/api/alerts/x", "/api/events", "/api/dashboard", "/api/stations",
                 "/api/zones", "/api/devices", "/api/settings", "/api/users", "/api/tokens", "/api/notify",
                 "/api/stream", "/api/media/abc", "/api/cameras/cam-lane-1/snapshot.jpg", "/metrics"]:
        status, body = await c.get(path)
        assert status == 401, path
        assert body == {"error": "login required"}, path
    for method, path in [("POST", "/api/alerts/x/ack"), ("POST", "/api/zones"), ("PUT", "/api/zones/lane-3"),
                         ("DELETE", "/api/zones/lane-3"), ("POST", "/api/users"), ("POST", "/api/logout")]:
        status, _ = await c.request(method, path, json={})
        assert status == 401, (method, path)
    status, _ = await c.get("/")
    assert status == 302
    async with c.session.get(h.base + "/", allow_redirects=False) as r:
        assert r.headers["Location"] == "/login"
    assert (await c.get("/healthz"))[0] == 200
    status, page = await c.get("/login")
    assert status == 200 and b"<form id=\"login\"" in page
    assert (await c.get("/static/css/app.css"))[0] == 200
    assert (await c.get("/static/i18n/zh.json"))[0] == 200


async def test_first_start_setup_link_creates_the_first_installer_once(h):
    web = h.web
    assert web.setup_url and web.setup_url.startswith("http://console.example/setup#token=")  # web.public_url
    token = web.setup_url.split("#token=", 1)[1]
    c = await h.client()
    status, st = await c.get("/api/setup/status")
    assert st == {"needed": True, "token_valid": False}
    status, err = await c.post("/api/setup", {"token": "wrong", "name": "inst", "password": PASSWORD})
    assert status == 400 and "invalid or has expired" in err["error"]
    status, err = await c.post("/api/setup", {"token": token, "name": "inst", "password": "short"})
    assert status == 400 and "at least 10" in err["error"]
    status, me = await c.post("/api/setup", {"token": token, "name": "inst", "password": PASSWORD})
    assert status == 200 and me["role"] == "installer"
    c.csrf = me["csrf"]
    assert (await c.get("/api/me"))[1]["name"] == "inst"
    other = await h.client()
    status, err = await other.post("/api/setup", {"token": token, "name": "evil", "password": PASSWORD})
    assert status == 400 and "already done" in err["error"]
    # a restart with an account present prints no link
    await h.stop()
    await h.start()
    assert h.web.setup_url is None


async def test_setup_link_is_printed_and_logged(tmp_path, monkeypatch, caplog, capsys):
    caplog.set_level(logging.WARNING, logger="edge.web")
    harness = await start_harness(tmp_path, monkeypatch)
    try:
        rec = [r for r in caplog.records if "setup link" in r.getMessage()]
        assert rec and rec[0].setup_url == harness.web.setup_url
        assert harness.web.setup_url in capsys.readouterr().err  # on the console too
    finally:
        await harness.stop()


async def test_login_is_throttled_and_recovers_after_the_window(tmp_path, monkeypatch):
    clock = FakeClock()
    harness = await start_harness(tmp_path, monkeypatch, clock=clock)
    try:
        await harness.add_user("mgr", "manager")
        c = await harness.client()
        for _ in range(3):
            status, err = await c.login("mgr", "wrong password!")
            assert status == 401 and err["error"] == "wrong user name or password"
        status, err = await c.login("mgr")  # right password, but locked
        assert status == 429 and err["retry_after_s"] > 0
        async with c.session.post(harness.base + "/api/login", json={"name": "mgr", "password": PASSWORD}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        status, _ = await c.login("nobody", "x" * 12)  # same client address: also locked
        assert status == 429
        await clock.advance(61)
        status, me = await c.login("mgr")
        assert status == 200 and me["role"] == "manager"
        assert harness.web.health()["login_failures"] == 3
    finally:
        await harness.stop()


async def test_session_cookie_flags_and_security_headers(h):
    await h.add_user("mgr", "manager")
    async with aiohttp.ClientSession() as s:
        async with s.post(h.base + "/api/login", json={"name": "mgr", "password": PASSWORD}) as r:
            assert r.status == 200
            cookie = r.headers["Set-Cookie"]
            assert "edge_sid=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Path=/" in cookie and "Secure" not in cookie  # plain http on the LAN
            assert r.headers["Cache-Control"] == "no-store"
        for path in ["/login", "/api/me", "/static/js/core.js", "/healthz"]:
            async with s.get(h.base + path) as r:
                csp = r.headers["Content-Security-Policy"]
                assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["X-Frame-Options"] == "DENY"
                assert r.headers["Referrer-Policy"] == "no-referrer"


async def test_csrf_is_required_on_every_state_change(h):
    mgr = await h.client("manager")
    alert = await h.raise_fire_lane(evidence=False)
    path = f"/api/alerts/{alert['id']}/ack"
    status, err = await mgr.post(path, {}, csrf=False)
    assert status == 403 and "CSRF" in err["error"]
    status, err = await mgr.post(path, {}, headers={"X-CSRF-Token": "forged"})
    assert status == 403 and "CSRF" in err["error"]
    status, err = await mgr.post(path, {}, headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-site" in err["error"]
    status, err = await mgr.request("POST", "/api/logout", json={}, csrf=False)
    assert status == 403
    assert (await h.ctx.store.call(h.ctx.services["alerts"].get, alert["id"]))["state"] == "raised"
    status, body = await mgr.post(path, {"note": "on my way"}, headers={"Origin": h.base})
    assert status == 200 and body["alert"]["state"] == "acknowledged"


async def test_roles_manager_cannot_use_installer_endpoints(h):
    mgr = await h.client("manager")
    for method, path in [("GET", "/api/devices"), ("GET", "/api/settings"), ("GET", "/api/users"),
                         ("GET", "/api/tokens"), ("POST", "/api/users"), ("POST", "/api/tokens"),
                         ("POST", "/api/zones"), ("PUT", "/api/zones/lane-3"), ("DELETE", "/api/zones/lane-3"),
                         ("POST", "/api/zones/lane-3/reference"), ("POST", "/api/devices/bins-bus-a/probe"),
                         ("POST", "/api/notify/hook/test"), ("DELETE", "/api/users/x")]:
        status, err = await mgr.request(method, path, json={})
        assert status == 403 and err["error"] == "this needs an installer account", (method, path)
    for path in ["/api/alerts", "/api/events", "/api/dashboard", "/api/stations", "/api/zones", "/api/notify",
                 "/metrics"]:
        assert (await mgr.get(path))[0] == 200, path
    inst = await h.client("installer")
    for path in ["/api/devices", "/api/settings", "/api/users", "/api/tokens"]:
        assert (await inst.get(path))[0] == 200, path


async def test_alert_list_detail_evidence_acknowledge_resolve(h):
    mgr = await h.client("manager", "wang")
    alert = await h.raise_fire_lane()
    status, body = await mgr.get("/api/alerts?state=active")
    assert status == 200
    row = next(a for a in body["alerts"] if a["id"] == alert["id"])
    assert row["kind"] == "fire_lane.blocked" and row["place"] == "3号楼消防通道" and row["severity"] == "critical"
    assert (await mgr.get("/api/alerts?kind=door.forced"))[1]["alerts"] == []
    assert len((await mgr.get("/api/alerts?zone=lane-3"))[1]["alerts"]) == 1
    status, d = await mgr.get(f"/api/alerts/{alert['id']}")
    assert status == 200 and d["alert"]["state"] == "raised"
    assert [m["content_type"] for m in d["evidence"]] == ["image/jpeg"]
    status, jpeg = await mgr.get(f"/api/media/{d['evidence'][0]['id']}")
    assert status == 200 and jpeg == LANE_PHOTO.read_bytes()
    status, body = await mgr.post(f"/api/alerts/{alert['id']}/ack", {"note": "guard sent"})
    assert status == 200 and body["alert"]["acked_by"] == "wang"
    status, err = await mgr.post(f"/api/alerts/{alert['id']}/ack", {})
    assert status == 409 and "already acknowledged by wang" in err["error"]
    status, err = await mgr.post(f"/api/alerts/{alert['id']}/resolve", {"note": "  "})
    assert status == 400 and "needs a note" in err["error"]
    status, body = await mgr.post(f"/api/alerts/{alert['id']}/resolve", {"note": "bicycles moved"})
    assert status == 200 and body["alert"]["state"] == "resolved" and body["alert"]["note"] == "bicycles moved"
    status, d = await mgr.get(f"/api/alerts/{alert['id']}")
    assert [(x["action"], x["actor"]) for x in d["history"]] == [("raised", None), ("acknowledged", "wang"),
                                                               ("resolved", "wang")]
    status, err = await mgr.post(f"/api/alerts/{alert['id']}/resolve", {"note": "again"})
    assert status == 409 and "already resolved" in err["error"]


async def test_bad_input_gets_a_clear_4xx(h):
    mgr = await h.client("manager")
    alert = await h.raise_door_forced()
    for path in ["/api/alerts/0190a000-0000-7000-8000-000000000000", "/api/events/nope"]:
        status, err = await mgr.get(path)
        assert status == 404 and "no " in err["error"]
    status, err = await mgr.post("/api/alerts/0190a000-0000-7000-8000-000000000000/ack", {})
    assert status == 404 and err["error"].startswith("no alert with id")
    path = f"/api/alerts/{alert['id']}/ack"
    status, err = await mgr.post(path, {"note": "x" * 9000})  # web.max_body_kb: 8
    assert status == 413 and "too large (at most 8 KB)" in err["error"]
    status, err = await mgr.request("POST", path, data=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in err["error"]
    status, err = await mgr.request("POST", path, data=b"note=hi",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and "send JSON" in err["error"]
    status, err = await mgr.request("POST", path, data=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert status == 400 and "JSON object" in err["error"]
    status, err = await mgr.post(path, {"note": 42})
    assert status == 400 and "'note' must be str" in err["error"]
    for q, msg in [("state=bogus", "unknown state"), ("limit=abc", "whole number"), ("limit=100000", "between")]:
        status, err = await mgr.get(f"/api/alerts?{q}")
        assert status == 400 and msg in err["error"], q
    status, err = await mgr.get("/api/media/..%2F..%2Fetc%2Fpasswd")
    assert status in (400, 404) and "error" in err
    status, err = await mgr.get("/api/events?since_ms=yesterday")
    assert status == 400 and "epoch milliseconds" in err["error"]
    assert (await h.ctx.store.call(h.ctx.services["alerts"].get, alert["id"]))["state"] == "raised"


async def test_events_log_search_and_paging(h):
    mgr = await h.client("manager")
    for i in range(5):
        h.ctx.emit_new("bin.level", "bins-bus-a", {"bin": "a-kitchen", "station": "station-a", "fill_pct": 10.0 * i})
    await h.raise_door_forced()
    await wait_for(lambda: h.ctx.store.count_events("bin.level") == 5, what="bin events committed")
    status, body = await mgr.get("/api/events?text=北门入口")
    assert status == 200 and {e["kind"] for e in body["events"]} >= {"door.forced"}
    status, body = await mgr.get("/api/events?kind=bin.*&limit=3")
    assert [e["kind"] for e in body["events"]] == ["bin.level"] * 3
    status, older = await mgr.get(f"/api/events?kind=bin.level&limit=3&before={body['events'][-1]['id']}")
    assert len(older["events"]) == 2
    assert not {e["id"] for e in older["events"]} & {e["id"] for e in body["events"]}
    status, body = await mgr.get("/api/events?source=gate-north")
    assert body["events"] and all(e["source"] == "gate-north" for e in body["events"])
    status, one = await mgr.get(f"/api/events/{body['events'][0]['id']}")
    assert status == 200 and one["gateway_id"] == "gw-web-1"


async def _read_sse(resp, want, timeout=5.0):
    """Read SSE frames until `want(event_name, data)` is true."""
    async def reader():
        name = None
        while True:
            line = (await resp.content.readline()).decode()
            if line.startswith("event: "):
                name = line[7:].strip()
            elif line.startswith("data: ") and name:
                data = json.loads(line[6:])
                if want(name, data):
                    return name, data
    return await asyncio.wait_for(reader(), timeout)


async def test_live_stream_sends_alert_changes_and_events(h):
    mgr = await h.client("manager")
    async with mgr.session.get(h.base + "/api/stream?topics=alert,event") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        await _read_sse(resp, lambda n, d: n == "hello")
        alert_task = asyncio.ensure_future(_read_sse(resp, lambda n, d: n == "alert" and d["payload"]["state"] == "raised"))
        await asyncio.sleep(0.05)
        alert = await h.raise_fire_lane(evidence=False)
        name, data = await alert_task
        assert data["payload"]["alert_id"] == alert["id"] and data["payload"]["alert_kind"] == "fire_lane.blocked"
        ev_task = asyncio.ensure_future(_read_sse(resp, lambda n, d: n == "event" and d["kind"] == "bin.level"))
        await asyncio.sleep(0.05)
        h.ctx.emit_new("bin.level", "bins-bus-a", {"bin": "a-other", "fill_pct": 55.0})
        name, data = await ev_task
        assert data["payload"]["bin"] == "a-other"
        assert len(h.web.hub.clients) == 1


async def test_dashboard_stations_and_snapshot(h):
    mgr = await h.client("manager")
    status, err = await mgr.get("/api/cameras/cam-lane-1/snapshot.jpg")
    assert status == 503 and "no picture from camera cam-lane-1" in err["error"]
    status, err = await mgr.get("/api/cameras/cam-nope/snapshot.jpg")
    assert status == 404
    h.publish_frame()
    status, jpeg = await mgr.get("/api/cameras/cam-lane-1/snapshot.jpg")
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert status == 200 and img.shape[1] == 640
    h.ctx.emit_new("bin.level", "bins-bus-a", {"bin": "a-kitchen", "station": "station-a", "fill_pct": 95.0})
    h.ctx.emit_new("bin.full", "bins-bus-a", {"bin": "a-kitchen", "station": "station-a", "fill_pct": 95.0})
    await wait_for(lambda: h.ctx.store.call(h.ctx.services["alerts"].list, kind="bin.full"), what="bin.full alert")
    status, d = await mgr.get("/api/stations")
    st = d["stations"][0]
    assert st["name"] == "A区垃圾分类投放点" and st["windows"] == ["07:00-09:00", "18:00-21:00"]
    kitchen = next(b for b in st["bins"] if b["id"] == "a-kitchen")
    assert kitchen["fill_pct"] == 95.0 and kitchen["full"] is True
    assert next(b for b in st["bins"] if b["id"] == "a-other").get("fill_pct") is None
    assert [a["kind"] for a in st["alerts"]] == ["bin.full"]
    assert st["stats"] is not None
    status, d = await mgr.get("/api/dashboard")
    assert d["gateway"]["name"] == "绿园小区" and d["gateway"]["healthy"] is True
    assert isinstance(d["outbox"]["depth"], int) and d["uplink"] is None and d["uplink_configured"] is False
    assert [c["id"] for c in d["cameras"]] == ["cam-lane-1"]
    assert {x["id"]: x["state"] for x in d["devices"]}["bins-bus-a"] == "unknown"
    assert d["alerts"]["open"] == 1 and d["components"]["web"]["state"] == "running"


async def test_metrics_in_prometheus_format_with_an_api_token(h):
    inst = await h.client("installer")
    status, tok = await inst.post("/api/tokens", {"name": "prometheus", "role": "manager"})
    assert status == 201 and tok["token"].startswith("edge_")
    await h.raise_door_forced()
    async with aiohttp.ClientSession() as s:
        hdr = {"Authorization": f"Bearer {tok['token']}"}
        async with s.get(h.base + "/metrics", headers=hdr) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await r.text()
        async with s.get(h.base + "/metrics", headers={"Authorization": "Bearer edge_forged"}) as r:
            assert r.status == 401
        async with s.post(h.base + "/api/tokens", headers=hdr, json={"name": "x"}) as r:
            assert r.status == 403  # a manager token cannot do installer things; no CSRF needed for tokens
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? -?[0-9.e+-]+$')
    for line in text.strip().splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    assert 'edge_events_total{kind="door.forced"} 1' in text
    assert re.search(r"^edge_outbox_depth \d+$", text, re.M)
    assert 'edge_component_up{component="web"} 1' in text
    assert re.search(r"^edge_alerts_open 1$", text, re.M)


async def test_users_and_tokens_management(h):
    inst = await h.client("installer", "inst")
    status, err = await inst.post("/api/users", {"name": "li", "role": "manager", "password": "short"})
    assert status == 400 and "at least 10" in err["error"]
    status, err = await inst.post("/api/users", {"name": "li", "role": "boss", "password": PASSWORD})
    assert status == 400 and "role must be" in err["error"]
    status, _ = await inst.post("/api/users", {"name": "li", "role": "manager", "password": PASSWORD})
    assert status == 201
    status, err = await inst.post("/api/users", {"name": "li", "role": "manager", "password": PASSWORD})
    assert status == 400 and "exists already" in err["error"]
    li = await h.client()
    assert (await li.login("li"))[0] == 200
    status, tok = await inst.post("/api/tokens", {"name": "county", "role": "manager"})
    async with aiohttp.ClientSession() as s:
        hdr = {"Authorization": f"Bearer {tok['token']}"}
        async with s.get(h.base + "/api/alerts", headers=hdr) as r:
            assert r.status == 200
        assert (await inst.request("DELETE", f"/api/tokens/{tok['id']}"))[0] == 200
        async with s.get(h.base + "/api/alerts", headers=hdr) as r:
            assert r.status == 401
    status, err = await inst.request("DELETE", "/api/users/inst")
    assert status == 400 and "last installer" in err["error"]
    assert (await inst.request("DELETE", "/api/users/li"))[0] == 200
    assert (await li.get("/api/me"))[0] == 401  # the deleted user's session ended
    assert (await inst.request("DELETE", "/api/users/li"))[0] == 404


async def test_password_change_ends_other_sessions_and_logout(h):
    a = await h.client("manager", "zhao")
    b = await h.client()
    assert (await b.login("zhao"))[0] == 200
    status, err = await a.post("/api/me/password", {"old": "wrong", "new": "another long password"})
    assert status == 400 and "current password is wrong" in err["error"]
    status, body = await a.post("/api/me/password", {"old": PASSWORD, "new": "another long password"})
    assert status == 200
    a.csrf = body["csrf"]
    assert (await a.get("/api/me"))[0] == 200
    assert (await b.get("/api/me"))[0] == 401
    assert (await b.login("zhao"))[0] == 401
    assert (await b.login("zhao", "another long password"))[0] == 200
    assert (await a.post("/api/logout", {}))[0] == 200
    assert (await a.get("/api/me"))[0] == 401


async def test_settings_show_the_config_without_secrets(tmp_path, monkeypatch):
    harness = await start_harness(tmp_path, monkeypatch, alerts_yaml=SECRET_YAML)
    try:
        inst = await harness.client("installer")
        status, s = await inst.get("/api/settings")
        blob = json.dumps(s)
        assert status == 200 and "s3cr3t-value" not in blob and "topsecretkey" not in blob
        assert s["config"]["gateway"]["name"] == "绿园小区" and s["path"].endswith("edge.yaml")
        assert s["config"]["alerts"]["channels"][0]["url"] == "http://127.0.0.1:9/hook?key=***"
        status, n = await inst.get("/api/notify")
        assert "topsecretkey" not in json.dumps(n) and n["enabled"] is True
    finally:
        await harness.stop()


async def test_device_tests_and_clear_lane_reference(h):
    inst = await h.client("installer")
    status, d = await inst.get("/api/devices")
    assert status == 200 and d["devices"][0]["id"] == "bins-bus-a" and d["devices"][0]["bins"] == ["a-kitchen", "a-other"]
    assert d["fire_lanes"] == [{"id": "lane-3", "camera": "cam-lane-1", "name": "3号楼消防通道"}]
    status, err = await inst.post("/api/devices/nope/probe", {})
    assert status == 404
    status, body = await inst.post("/api/devices/bins-bus-a/probe", {})
    if d["devices"][0]["probe"]:  # nothing on /dev/ttyUSB0 here: the probe's own answer says so
        assert status == 200 and body["ok"] is False and body["result"]["summary"].startswith("bins-bus-a")
    else:
        assert status == 501 and "not available in this build" in body["error"]
    status, ev = await inst.get("/api/devices/bins-bus-a/events")
    assert status == 200 and ev["events"] == []
    status, err = await inst.post("/api/zones/nope/reference", {})
    assert status == 404
    status, body = await inst.post("/api/zones/lane-3/reference", {})
    if not d["reference_capture"]:
        assert status == 501 and "not available" in body["error"]
        return
    assert status == 501 and "has not delivered an analysed frame" in body["error"]
    h.publish_frame()
    status, body = await inst.post("/api/zones/lane-3/reference", {})
    assert status == 200, body
    from edge.analytics.clutter import load_reference
    rec = await h.ctx.store.call(load_reference, h.ctx.store, "cam-lane-1")
    assert rec["by"] == "installer1" and rec["camera"] == "cam-lane-1" and rec["frame_size"] == [640, 479]  # 751x563 photo at 640 wide
    assert body["result"]["by"] == "installer1" and "png" not in body["result"]


async def test_poll_a_sensor_now_on_a_simulated_rs485_bus(tmp_path, monkeypatch):
    import simulators.bins.modbus_sim as sim_mod
    from simulators.bins.scenario import BinScenario
    from edge.web import integrations

    assert integrations.probe_fn("modbus_level") is not None, "the console must find drivers.bins.probe"
    import time as _time
    sensors = [sim_mod.SimSensor(1, BinScenario(_time.monotonic, empty_mm=1200, full_mm=250).distance_to(300)),
               sim_mod.SimSensor(2, BinScenario(_time.monotonic, empty_mm=1200, full_mm=250).distance_to(1100))]
    sim = await sim_mod.ModbusLevelSimulator(sensors, link_path=tmp_path / "ttyRS485").start()
    harness = await start_harness(tmp_path, monkeypatch, serial_port=str(tmp_path / "ttyRS485"))
    try:
        inst = await harness.client("installer")
        status, body = await inst.post("/api/devices/bins-bus-a/probe", {})
        assert status == 200 and body["ok"] is True, body
        units = body["result"]["detail"]["units"]
        assert units["1"]["distance_mm"] == 300 and units["2"]["distance_mm"] == 1100
        assert body["by"] == "installer1"
    finally:
        await harness.stop()
        await sim.stop()
