import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge.clock import FakeClock
from edge.events import Event, uuid7
from edge.store import Store, migrations

ROOT = Path(__file__).resolve().parents[1]


def ev(kind="gateway.test", source="s", ts=1_780_000_000_000, **payload):
    return Event(id=uuid7(), ts_ms=ts, kind=kind, gateway_id="g", compound_id="c", source=source, payload=payload)


def test_wal_and_full_sync(tmp_path):
    s = Store(tmp_path / "e.db")
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert ("core", 1) in s.applied_migrations
    s.close()
    s2 = Store(tmp_path / "e.db")
    assert s2.applied_migrations == []  # nothing re-applied
    s2.close()


def test_insert_query_outbox_seq(tmp_path):
    s = Store(tmp_path / "e.db")
    evs = [ev(source=f"d{i % 2}", ts=1_780_000_000_000 + i, n=i) for i in range(10)]
    seqs = s.insert_events(evs)
    assert seqs == list(range(1, 11))
    assert s.insert_events(evs[:3]) == []  # duplicates ignored, not re-queued
    assert s.count_events() == 10 and s.outbox_depth() == 10
    assert s.get_event(evs[4].id) == evs[4]
    got = s.query_events(source="d1", limit=3)
    assert [e.payload["n"] for e in got] == [9, 7, 5]
    assert len(s.query_events(text='"n":3')) == 1
    assert s.last_seq() == 10
    # seq is never reused, even after rows are deleted and the store is reopened
    s.conn.execute("DELETE FROM outbox")
    s.close()
    s = Store(tmp_path / "e.db")
    assert s.insert_events([ev()]) == [11]
    s.close()


def test_migrations_per_owner(tmp_path):
    migrations.register("test_owner_x", [(1, "t", "CREATE TABLE tx (a INTEGER);\nCREATE INDEX tx_a ON tx (a)")])
    s = Store(tmp_path / "e.db")
    assert ("test_owner_x", 1) in s.applied_migrations
    s.conn.execute("INSERT INTO tx VALUES (1)")
    s.close()
    migrations.register("test_owner_x", [(2, "t2", "ALTER TABLE tx ADD COLUMN b TEXT")])
    s = Store(tmp_path / "e.db")
    assert s.applied_migrations == [("test_owner_x", 2)]
    s.close()
    migrations._REGISTRY.pop("test_owner_x")


def test_kv_devices_media(tmp_path):
    s = Store(tmp_path / "e.db")
    s.kv_set("uhppote:405419896:index", 78)
    assert s.kv_get("uhppote:405419896:index") == 78
    assert s.kv_get("missing", "d") == "d"
    s.set_device_state("bus-a", "modbus_level", "online", {"errors": 0}, seen=True)
    s.set_device_state("bus-a", "modbus_level", "offline", {"errors": 3})
    d = s.devices()[0]
    assert d["state"] == "offline" and d["info"] == {"errors": 3} and d["last_seen_ms"]
    p = s.add_media("m1", b"\xff\xd8jpeg", event_id="e1")
    assert p.exists()
    row, data = s.get_media("m1")
    assert data == b"\xff\xd8jpeg" and row["bytes"] == 6
    s.close()


def test_retention_by_age_and_size(tmp_path):
    clock = FakeClock(1_780_000_000)
    s = Store(tmp_path / "e.db", clock_ms=clock.time_ms)
    day = 86_400_000
    now = clock.time_ms()
    old = [ev(ts=now - 40 * day, n=i) for i in range(5)]
    new = [ev(ts=now - day, n=i) for i in range(5)]
    s.insert_events(old + new)
    # 3 of the old ones were sent long ago; 2 are still pending and must survive retention
    s.conn.execute("UPDATE outbox SET sent_ms = ? WHERE event_id IN (?, ?, ?)",
                   (now - 10 * day, old[0].id, old[1].id, old[2].id))
    removed = s.apply_retention(event_days=30, sent_days=7, media_days=14)
    assert removed == {"events": 3, "outbox_sent": 3, "media": 0}
    left = {e.id for e in s.query_events(limit=100)}
    # the pending (unsent) old ones outlive their age: only the uplink's counted eviction may drop them
    assert left == {old[3].id, old[4].id} | {e.id for e in new}
    s.add_media("m-old", b"x" * 1000)
    clock.set(clock.time() + 30 * 86400)
    s.add_media("m-new", b"y" * 1000)
    assert s.apply_retention(event_days=365, sent_days=7, media_days=14)["media"] == 1
    s.add_media("m-2", b"z" * 1000)
    removed = s.apply_retention(event_days=30, sent_days=7, media_days=14, max_media_bytes=1500)
    assert removed["media"] == 1 and s.get_media("m-new") is None and s.get_media("m-2")
    s.close()


def test_crash_consistency_sigkill_loop(tmp_path):
    """SIGKILL a writer at random instants, reopen: integrity ok, every batch all-or-nothing, outbox == events."""
    db = tmp_path / "crash.db"
    rng = random.Random(7)
    batch = 50
    reported_total = 0
    for round_no in range(10):
        proc = subprocess.Popen([sys.executable, str(ROOT / "tests/helpers/crash_writer.py"), str(db), str(batch)],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                env=os.environ | {"PYTHONPATH": str(ROOT)})
        first = proc.stdout.readline()  # wait until it is really writing
        assert first.strip(), "writer did not start"
        time.sleep(rng.uniform(0.02, 0.3))
        proc.send_signal(signal.SIGKILL)
        out = first + proc.stdout.read()
        proc.wait()
        reported = [int(x) for x in out.split()]
        s = Store(db)
        assert s.integrity_check() == "ok"
        rows = s.conn.execute("SELECT body FROM events").fetchall()
        per_batch: dict[tuple, int] = {}
        for (body,) in rows:
            d = json.loads(body)
            key = (d["payload"]["batch"], d["source"] if False else 0)
            per_batch[key] = per_batch.get(key, 0) + 1
        # every batch is complete (50) — a batch is one transaction
        assert set(per_batch.values()) <= {batch}, per_batch
        n_events = s.conn.execute("SELECT count(*) FROM events").fetchone()[0]
        n_outbox = s.conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        assert n_events == n_outbox
        orphans = s.conn.execute("SELECT count(*) FROM outbox WHERE event_id NOT IN (SELECT id FROM events)"
                                 ).fetchone()[0]
        assert orphans == 0
        # every batch the writer saw committed is on disk
        reported_total += len(reported)
        assert n_events >= reported_total * batch
        s.close()
        # batch numbers restart each round; keep them distinct by renaming old payload batches
        reported_total = n_events // batch
        s = Store(db)
        s.conn.execute("UPDATE events SET body = json_set(body, '$.payload.batch', "
                       "json_extract(body, '$.payload.batch') + ?)", ((round_no + 1) * 1_000_000,))
        s.close()
    assert reported_total > 10


def test_store_call_runs_off_loop(tmp_path):
    s = Store(tmp_path / "e.db")

    async def main():
        return await s.call(s.insert_events, [ev() for _ in range(3)])

    assert asyncio.run(main()) == [1, 2, 3]
    s.close()
