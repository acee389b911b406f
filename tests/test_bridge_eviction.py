"""Fault test 6: the outbox disk budget is exceeded -> unsent events are evicted lowest priority first, oldest
first within a priority, exactly down to the budget; every eviction is counted, reported in telemetry, raised as
a gateway.storage_eviction event, and answered as 'evicted' to a resend request."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_bridge import outbox
from cloud_bridge.telemetry import build_telemetry
from cloud_bridge.validate import validator
from edge.events import Event, Priority, uuid7
from edge.store import Store
from tests.helpers.bridge_harness import Runtime, make_config, wait_until
from tests.helpers.broker import free_port

# one kind per priority, as registered in edge/events/kinds.py
KINDS = {Priority.TELEMETRY: ("bin.level", {"bin": "b1", "fill_pct": 40.0}),
         Priority.STATUS: ("camera.offline", {"camera": "cam-1"}),
         Priority.OBSERVATION: ("waste.litter", {"zone": "z1"}),
         Priority.ACCESS: ("access.granted", {"controller": "c1", "door": 1}),
         Priority.ALARM: ("door.forced", {"controller": "c1", "door": 2})}


def _expected_victims(rows: list[tuple[int, int, int]], budget: int) -> list[int]:
    """Reference model, written independently: rows (seq, priority, bytes) -> seqs to evict.
    Over budget -> evict (priority, seq) ascending until at most 95% of the budget."""
    used = sum(b for _, _, b in rows)
    if used <= budget:
        return []
    victims = []
    for seq, prio, size in sorted(rows, key=lambda r: (r[1], r[0])):
        if used <= int(budget * 0.95):
            break
        victims.append(seq)
        used -= size
    return sorted(victims)


async def test_disk_budget_evicts_by_priority_counts_reports_and_alerts(tmp_path):
    budget_mb = 0.024  # 25,165 bytes of unsent events (the 200 queued are ~48 kB)
    cfg = make_config(tmp_path / "gw", f"mqtt://127.0.0.1:{free_port()}",  # nothing listens: uplink stays down
                      storage={"outbox_budget_mb": budget_mb})
    rt = await Runtime(cfg).start()
    up = rt.uplink
    try:
        # interleave priorities so "oldest first within a priority" is visible; alarms are oldest of all
        for i in range(40):
            for prio in (Priority.ALARM, Priority.ACCESS, Priority.OBSERVATION, Priority.STATUS, Priority.TELEMETRY):
                kind, payload = KINDS[prio]
                rt.ctx.emit(rt.ctx.make_event(kind, f"dev-{i % 3}", payload))
        await wait_until(lambda: rt.ctx.bus.committed == 200, 10, "events committed")
        await wait_until(lambda: up.c["evicted"] > 0, 10, "eviction ran")
        await wait_until(lambda: rt.ctx.store.count_events("gateway.storage_eviction") > 0, 10, "eviction alert")
        assert await up.enforce_budget() is None  # the alert fits under the low-water headroom: no second round
        assert rt.ctx.store.count_events("gateway.storage_eviction") == 1
        con = sqlite3.connect(rt.ctx.store.path)
        budget = int(budget_mb * 1024 * 1024)
        remaining = con.execute("SELECT seq, priority, length(body) FROM outbox WHERE sent_ms IS NULL").fetchall()
        evicted = con.execute("SELECT seq, priority, bytes, kind FROM uplink_evicted ORDER BY seq").fetchall()
        alerts = con.execute("SELECT body FROM events WHERE kind = 'gateway.storage_eviction'").fetchall()
        con.close()
        # exactly the reference choice over the 200 queued events (the alert event came after the eviction)
        before = [r for r in remaining if r[0] <= 200] + [(s, p, b) for s, p, b, _ in evicted]
        assert sorted(e[0] for e in evicted) == _expected_victims(before, budget)
        assert sum(b for s, _, b in remaining if s <= 200) <= int(budget * 0.95)
        assert sum(b for _, _, b in remaining) <= budget
        by_prio = {}
        for _, p, _, _ in evicted:
            by_prio[p] = by_prio.get(p, 0) + 1
        assert by_prio[Priority.TELEMETRY] == 40 and by_prio[Priority.STATUS] == 40  # the lowest go entirely
        assert Priority.ALARM not in by_prio and Priority.ACCESS not in by_prio  # the highest stay
        assert max(by_prio) == Priority.OBSERVATION and by_prio[Priority.OBSERVATION] < 40  # partially, oldest first
        obs_evicted = sorted(s for s, p, _, _ in evicted if p == Priority.OBSERVATION)
        obs_all = sorted(s for s, p, _ in before if p == Priority.OBSERVATION)
        assert obs_evicted == obs_all[:len(obs_evicted)]
        # counted and reported
        assert up.c["evicted"] == len(evicted)
        assert up.evicted_by_kind == {"bin.level": 40, "camera.offline": 40, "waste.litter": len(obs_evicted)}
        assert up.evicted_by_priority["telemetry"] == 40
        tele = json.loads(await build_telemetry(up))
        assert validator("telemetry.json").is_valid(tele)
        assert tele["evicted"]["total"] == len(evicted)
        assert tele["evicted"]["by_kind"]["waste.litter"] == len(obs_evicted)
        assert tele["outbox"]["bytes"] <= budget + 2000 and tele["outbox"]["budget_bytes"] == budget
        # the alert event (itself queued with ALARM priority)
        assert alerts, "no gateway.storage_eviction event"
        payload = json.loads(alerts[0][0])["payload"]
        assert payload["evicted"]["bin.level"] >= 1 and payload["budget_bytes"] == budget
        # a resend of an evicted range is answered 'evicted', not silence
        info = outbox.classify_range(rt.ctx.store, 1, 10)
        assert info["evicted"] and info["queued"] == 0
    finally:
        await rt.stop()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(list(Priority)), st.integers(0, 400)), min_size=1, max_size=60),
       budget=st.integers(0, 12_000), sent=st.sets(st.integers(1, 60), max_size=10))
def test_eviction_matches_reference_model(tmp_path_factory, rows, budget, sent):
    store = Store(Path(tmp_path_factory.mktemp("ev")) / "edge.db")
    outbox.ensure_schema(store)
    events = [Event(id=uuid7(), ts_ms=1, kind=KINDS[p][0], gateway_id="g", compound_id="c", source="s",
                    payload={"pad": "x" * n}) for p, n in rows]
    store.insert_events(events)
    outbox.mark_sent(store, sorted(s for s in sent if s <= len(rows)), 5)  # sent rows never count nor go
    with store._lock:
        pending = store.conn.execute("SELECT seq, priority, length(body) FROM outbox WHERE sent_ms IS NULL").fetchall()
    ev = outbox.evict_over_budget(store, budget, 10)
    got = sorted(ev.seqs) if ev else []
    assert got == _expected_victims([tuple(r) for r in pending], budget)
    st_ = outbox.stats(store)
    assert st_.bytes == sum(b for s, _, b in pending if s not in got)  # trigger accounting stays exact
    assert st_.depth == len(pending) - len(got)
    store.close()
