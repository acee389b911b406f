"""Pushes are durable: an alert raised while the webhook server is down is delivered when it comes back,
also across a gateway restart; nothing is lost between the event commit and the push outbox; a push is
given up (logged, counted) after alerts.push_max_age_h; quiet hours hold non-critical pushes; escalation
when nobody acknowledges; routes filter by kind, severity and place."""
from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import pytest

from edge.clock import FakeClock
from edge.config.alerts import RouteConfig
from edge.notify.routing import quiet_until_ms, route_matches
from edge.store import Store
from test_notify_channels import FakeChannels, outbox_rows
from test_web_harness import Harness, start_harness, step, wait_for

HOOK_ONLY = """    - name: duty
      channels: [hook]
"""


async def _wait_attempts(h, n: int):
    async def ok():
        rows = await outbox_rows(h)
        return rows if rows and all(r["attempts"] >= n for r in rows) else None
    return await wait_for(ok, what=f"{n} failed attempt(s)")


async def _all_sent(h, n: int) -> bool:
    rows = await outbox_rows(h)
    return len(rows) == n and all(r["state"] == "sent" for r in rows)


async def test_alert_raised_while_webhook_is_down_is_delivered_when_it_is_back(tmp_path, monkeypatch):
    clock = FakeClock()
    fake = FakeChannels(clock)  # port reserved, nothing listening yet: connection refused
    h = await start_harness(tmp_path, monkeypatch, alerts_yaml=fake.yaml(HOOK_ONLY), clock=clock)
    try:
        alert = await h.raise_door_forced()
        rows = await _wait_attempts(h, 1)
        assert rows[0]["state"] == "pending" and "Connect" in rows[0]["last_error"]
        await step(h, clock, 10)  # still down: more failed attempts, nothing lost
        rows = await outbox_rows(h)
        assert rows[0]["attempts"] >= 2 and rows[0]["state"] == "pending"
        await fake.start()
        await step(h, clock, 10)
        await wait_for(lambda: len(fake.requests["webhook"]) == 1, what="delivery after the server is back")
        await step(h, clock, 30)
        assert len(fake.requests["webhook"]) == 1  # exactly once
        body = fake.requests["webhook"][0]["json"]
        assert body["alert"]["alert_id"] == alert["id"] and fake.problems == []
        assert (await outbox_rows(h))[0]["state"] == "sent"
    finally:
        await h.stop()
        await fake.stop()


async def test_pending_push_survives_a_gateway_restart(tmp_path, monkeypatch):
    clock = FakeClock()
    fake = FakeChannels(clock)
    h = await start_harness(tmp_path, monkeypatch, alerts_yaml=fake.yaml(HOOK_ONLY), clock=clock)
    try:
        alert = await h.raise_fire_lane(evidence=False)
        rows = await _wait_attempts(h, 1)
        await h.stop()  # the gateway goes away with the push still pending
        await fake.start()
        await h.start()  # same config file, same database
        await step(h, clock, 10)
        await wait_for(lambda: len(fake.requests["webhook"]) == 1, what="delivery after the restart")
        await step(h, clock, 30)
        assert len(fake.requests["webhook"]) == 1
        req = fake.requests["webhook"][0]
        assert req["json"]["alert"]["alert_id"] == alert["id"] and req["sign_ok"]
        assert req["headers"]["X-Edge-Delivery"] == f"gw-web-1:{rows[0]['id']}"  # stable id for de-duplication
        after = await outbox_rows(h)
        assert len(after) == 1 and after[0]["state"] == "sent" and after[0]["attempts"] >= 2
    finally:
        await h.stop()
        await fake.stop()


async def test_alert_committed_just_before_a_crash_is_still_pushed(tmp_path, monkeypatch):
    clock = FakeClock()
    fake = await FakeChannels(clock).start()
    h = await start_harness(tmp_path, monkeypatch, alerts_yaml=fake.yaml(HOOK_ONLY), clock=clock)
    try:
        await h.raise_door_forced()
        await wait_for(lambda: len(fake.requests["webhook"]) == 1, what="first push")
        await wait_for(lambda: _all_sent(h, 1), what="first push marked sent")
        # an alert change the bus committed but the push service never saw (power cut in between)
        lost = h.ctx.make_event("alert", "gate-north", {"alert_id": "0190a000-0000-7000-8000-0000000000aa",
                                                        "alert_kind": "door.held_open", "state": "raised",
                                                        "zone": "gate-north:door2", "title": "Door held open: 北门出口"},
                                severity="warning")
        await h.stop()
        store = Store(h.tmp_path / "data" / "edge.db", clock_ms=clock.time_ms)
        store.insert_events([lost])
        store.close()
        await h.start()
        await wait_for(lambda: len(fake.requests["webhook"]) == 2, what="replayed push")
        await wait_for(lambda: _all_sent(h, 2), what="replayed push marked sent")
        assert fake.requests["webhook"][1]["json"]["alert"]["title"] == "Door held open: 北门出口"
        assert h.ctx.services["notify"].stats["replayed"] == 1
        await h.stop()
        await h.start()  # a second restart replays nothing twice
        await step(h, clock, 5)
        assert len(fake.requests["webhook"]) == 2
    finally:
        await h.stop()
        await fake.stop()


async def test_an_alert_change_the_bus_never_delivered_is_found_by_the_periodic_reconcile(tmp_path, monkeypatch):
    clock = FakeClock()
    fake = await FakeChannels(clock).start()
    h = await start_harness(tmp_path, monkeypatch, alerts_yaml=fake.yaml(HOOK_ONLY), clock=clock)
    try:
        await step(h, clock, 1)
        missed = h.ctx.make_event("alert", "gate-north", {"alert_id": "0190a000-0000-7000-8000-0000000000bb",
                                                          "alert_kind": "door.forced", "state": "raised",
                                                          "title": "Door forced open: 北门入口"}, severity="critical")
        await h.ctx.store.call(h.ctx.store.insert_events, [missed])  # in the store, never handed to notify
        await step(h, clock, 300)
        assert fake.requests["webhook"] == []
        await step(h, clock, 400)  # the reconcile runs every 10 minutes
        await wait_for(lambda: len(fake.requests["webhook"]) == 1, what="reconciled push")
        assert fake.requests["webhook"][0]["json"]["alert"]["alert_id"] == "0190a000-0000-7000-8000-0000000000bb"
        assert h.ctx.services["notify"].stats["reconciled"] == 1
    finally:
        await h.stop()
        await fake.stop()


async def test_push_is_given_up_after_max_age_with_a_logged_counted_failure(tmp_path, monkeypatch, caplog):
    clock = FakeClock()
    fake = await FakeChannels(clock).start()
    fake.answers["webhook"] = [(503, {"error": "maintenance"})] * 1000
    yaml = fake.yaml(HOOK_ONLY).replace("  channels:", "  push_max_age_h: 1\n  channels:", 1)
    h = await start_harness(tmp_path, monkeypatch, alerts_yaml=yaml, clock=clock, retry=(60, 600))
    caplog.set_level(logging.WARNING, logger="edge.notify")
    try:
        await h.raise_door_forced()
        await _wait_attempts(h, 1)
        await step(h, clock, 3700, each=600)
        rows = await outbox_rows(h)
        assert rows[0]["state"] == "failed", rows
        assert rows[0]["last_error"].startswith("given up after 1.0 h: HTTP 503")
        health = h.ctx.services["notify"].health()
        assert health["given_up"] == 1 and health["failed"] == 1 and health["pending"] == 0
        gave_up = [r for r in caplog.records if r.getMessage() == "push given up: too old"]
        assert len(gave_up) == 1 and gave_up[0].levelno == logging.ERROR and gave_up[0].channel == "hook"
        inst = await h.client("installer")
        status, metrics = await inst.get("/metrics")
        assert b"edge_notify_failed_total 1\n" in metrics and b"edge_notify_pending 0\n" in metrics
        n_before = len(fake.requests["webhook"])
        assert 5 <= n_before <= 10  # 60 s doubling up to 600 s within the hour
        await step(h, clock, 600)
        assert len(fake.requests["webhook"]) == n_before  # no more attempts
    finally:
        await h.stop()
        await fake.stop()


def _local(y, m, d, hh, mm) -> float:
    return dt.datetime(y, m, d, hh, mm, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


async def test_quiet_hours_hold_non_critical_pushes_and_escalation_needs_an_acknowledgement(tmp_path, monkeypatch):
    clock = FakeClock(start=_local(2026, 6, 1, 23, 0))
    fake = await FakeChannels(clock).start()
    routes = """    - name: night-duty
      kinds: [bin.full, door.*]
      channels: [hook]
      quiet_hours: "22:00-07:00"
      escalate_after_min: 15
      escalate_to: [wecom]
"""
    h = await start_harness(tmp_path, monkeypatch, alerts_yaml=fake.yaml(routes), clock=clock)
    try:
        door = await h.raise_door_forced()  # critical: now, despite quiet hours
        h.ctx.emit_new("bin.full", "bins-bus-a", {"bin": "a-kitchen", "station": "station-a", "fill_pct": 96.0})
        binf = await wait_for(lambda: h.ctx.store.call(h.ctx.services["alerts"].list, kind="bin.full"), what="bin alert")
        binf = binf[0]
        await wait_for(lambda: len(fake.requests["webhook"]) == 1, what="critical push")

        async def four_rows():
            return len(await outbox_rows(h)) == 4
        await wait_for(four_rows, what="push and escalation rows of both alerts")
        await step(h, clock, 60)
        assert [r["json"]["alert"]["alert_kind"] for r in fake.requests["webhook"]] == ["door.forced"]
        rows = {(r["alert_id"], r["purpose"]): r for r in await outbox_rows(h)}
        assert rows[(binf["id"], "push")]["due_ms"] == int(_local(2026, 6, 2, 7, 0) * 1000)
        assert rows[(binf["id"], "escalation")]["due_ms"] == int(_local(2026, 6, 2, 7, 15) * 1000)
        assert rows[(door["id"], "escalation")]["due_ms"] == door["raised_ms"] + 15 * 60_000

        mgr = await h.client("manager", "night-guard")
        status, _ = await mgr.post(f"/api/alerts/{binf['id']}/ack", {"note": "will empty it at 7"})
        assert status == 200
        await step(h, clock, 15 * 60, each=120)  # 23:16: nobody acknowledged the door
        esc = fake.requests["wecom"]
        assert len(esc) == 1
        assert esc[0]["json"]["markdown"]["content"].startswith(
            '### <font color="warning">【15 分钟未确认·升级】 【严重】门被强行打开</font>')
        await step(h, clock, 8 * 3600, each=1800)  # to 07:16 next morning
        kinds = [r["json"]["alert"]["alert_kind"] for r in fake.requests["webhook"]]
        assert kinds == ["door.forced", "bin.full"]
        morning = fake.requests["webhook"][1]["json"]
        assert morning["alert"]["current_state"] == "acknowledged" and "当前：已确认" in morning["text"]
        assert len(fake.requests["wecom"]) == 1  # the bin escalation was cancelled by the acknowledgement
        final = {(r["alert_id"], r["purpose"]): r["state"] for r in await outbox_rows(h)}
        assert final == {(door["id"], "push"): "sent", (door["id"], "escalation"): "sent",
                         (binf["id"], "push"): "sent", (binf["id"], "escalation"): "cancelled"}
        assert fake.problems == []
    finally:
        await h.stop()
        await fake.stop()


def test_route_matching_by_kind_severity_state_and_place():
    r = RouteConfig(name="r", kinds=["fire_lane.blocked", "waste.*"], min_severity="warning",
                    zones=["station-a", "lane-3"], channels=["c"])
    ok = dict(state="raised", alert_kind="waste.litter", severity="warning", places={"ground-a", "station-a"})
    assert route_matches(r, **ok)
    assert not route_matches(r, **ok | {"alert_kind": "door.forced"})
    assert not route_matches(r, **ok | {"severity": "info"})
    assert not route_matches(r, **ok | {"state": "updated"})
    assert not route_matches(r, **ok | {"places": {"station-b"}})
    assert route_matches(RouteConfig(name="all", channels=["c"], states=["raised", "resolved"]),
                         state="resolved", alert_kind="x.y", severity="critical", places=set())


def test_quiet_hours_across_midnight_and_within_a_day():
    tz = "Asia/Shanghai"
    at = lambda *a: int(_local(*a) * 1000)  # noqa: E731
    assert quiet_until_ms("22:00-07:00", at(2026, 6, 1, 23, 30), tz) == at(2026, 6, 2, 7, 0)
    assert quiet_until_ms("22:00-07:00", at(2026, 6, 2, 3, 0), tz) == at(2026, 6, 2, 7, 0)
    assert quiet_until_ms("22:00-07:00", at(2026, 6, 2, 7, 0), tz) is None
    assert quiet_until_ms("22:00-07:00", at(2026, 6, 2, 12, 0), tz) is None
    assert quiet_until_ms("12:00-13:30", at(2026, 6, 2, 12, 10), tz) == at(2026, 6, 2, 13, 30)
    assert quiet_until_ms(None, at(2026, 6, 2, 12, 10), tz) is None
    with pytest.raises(ValueError, match="start and end are equal"):
        RouteConfig(name="x", channels=["c"], quiet_hours="07:00-07:00")
    with pytest.raises(ValueError, match="not a span"):
        RouteConfig(name="x", channels=["c"], quiet_hours="7-9")
    with pytest.raises(ValueError, match="escalate_to needs escalate_after_min"):
        RouteConfig(name="x", channels=["c"], escalate_to=["d"])


async def test_no_channels_means_no_push_service(tmp_path, monkeypatch):
    h: Harness = await start_harness(tmp_path, monkeypatch)
    try:
        assert "notify" not in h.ctx.services and "notify" not in h.ctx.supervisor.slots
        mgr = await h.client("manager")
        status, body = await mgr.get("/api/notify")
        assert status == 200 and body == {"enabled": False, "channels": []}
    finally:
        await h.stop()
