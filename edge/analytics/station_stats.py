"""Station statistics for the property manager: visits per hour, drops inside/outside the windows, minutes
overflowing. Visits and overflow intervals are not events (a visit per resident would flood the uplink), so
they live in two small tables of their own; `station_stats()` is what the web console calls.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from edge.store import migrations

migrations.register("analytics", [
    (1, "station visits and overflow intervals", """
CREATE TABLE analytics_station_visits (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  station TEXT NOT NULL,
  camera TEXT,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  in_window INTEGER NOT NULL,
  dropped INTEGER NOT NULL,
  event_id TEXT
);
CREATE INDEX analytics_station_visits_st ON analytics_station_visits (station, start_ms);
CREATE TABLE analytics_station_overflow (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  station TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER,
  evidence TEXT NOT NULL
);
CREATE INDEX analytics_station_overflow_st ON analytics_station_overflow (station, start_ms)
"""),
])


def ensure_tables(store) -> None:
    """Apply migrations registered after the store was opened (plug-ins are imported after the store)."""
    with store._lock:  # noqa: SLF001 - the store has no public hook for this; apply_all is idempotent
        migrations.apply_all(store.conn, store.now_ms())


def record_visit(store, station: str, camera: str | None, start_ms: int, end_ms: int, in_window: bool,
                 dropped: bool, event_id: str | None = None) -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO analytics_station_visits (station, camera, start_ms, end_ms, in_window, dropped, "
                     "event_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (station, camera, int(start_ms), int(end_ms), int(in_window), int(dropped), event_id))


def overflow_started(store, station: str, start_ms: int, evidence: str) -> None:
    with store.transaction() as conn:
        open_row = conn.execute("SELECT id FROM analytics_station_overflow WHERE station = ? AND end_ms IS NULL",
                                (station,)).fetchone()
        if open_row is None:
            conn.execute("INSERT INTO analytics_station_overflow (station, start_ms, evidence) VALUES (?, ?, ?)",
                         (station, int(start_ms), evidence))
        else:
            conn.execute("UPDATE analytics_station_overflow SET evidence = ? WHERE id = ?", (evidence, open_row[0]))


def overflow_ended(store, station: str, end_ms: int) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE analytics_station_overflow SET end_ms = ? WHERE station = ? AND end_ms IS NULL",
                     (int(end_ms), station))


def apply_record(store, kind: str, p: dict[str, Any]) -> None:
    """Write one `stats.*` emission of the analytics (runs on the store thread)."""
    if kind == "stats.visit":
        record_visit(store, p["station"], p.get("camera"), p["start_ms"], p["end_ms"], p["in_window"], p["dropped"],
                     p.get("event_id"))
    elif kind == "stats.overflow_start":
        overflow_started(store, p["station"], p["ts_ms"], p["evidence"])
    elif kind == "stats.overflow_end":
        overflow_ended(store, p["station"], p["ts_ms"])
    else:
        raise ValueError(f"unknown statistics record {kind!r}")


def station_stats(store, station: str | None = None, since_ms: int | None = None, until_ms: int | None = None,
                  tz: str = "Asia/Shanghai", now_ms: int | None = None) -> dict[str, Any]:
    """Per station over [since, until): visits per local hour of day (24 counts), visits, drops inside and
    outside the drop windows, and minutes spent overflowing (open intervals count up to `until`/now)."""
    now = int(now_ms if now_ms is not None else store.now_ms())
    until = int(until_ms if until_ms is not None else now)
    since = int(since_ms if since_ms is not None else until - 86400_000)
    zone = ZoneInfo(tz)
    out: dict[str, dict[str, Any]] = {}

    def entry(st: str) -> dict[str, Any]:
        return out.setdefault(st, {"visits": 0, "visits_per_hour": [0] * 24, "drops_in_window": 0,
                                   "drops_outside_window": 0, "visits_outside_window": 0,
                                   "overflow_minutes": 0.0, "overflow_episodes": 0})

    where = "start_ms >= ? AND start_ms < ?" + (" AND station = ?" if station else "")
    args: list[Any] = [since, until] + ([station] if station else [])
    with store.transaction() as conn:
        visits = conn.execute(f"SELECT station, start_ms, in_window, dropped FROM analytics_station_visits "
                              f"WHERE {where}", args).fetchall()
        ow = "start_ms < ? AND (end_ms IS NULL OR end_ms > ?)" + (" AND station = ?" if station else "")
        overflow = conn.execute(f"SELECT station, start_ms, end_ms FROM analytics_station_overflow WHERE {ow}",
                                [until, since] + ([station] if station else [])).fetchall()
    for st, start_ms, in_window, dropped in visits:
        e = entry(st)
        e["visits"] += 1
        hour = datetime.fromtimestamp(start_ms / 1000, timezone.utc).astimezone(zone).hour
        e["visits_per_hour"][hour] += 1
        if not in_window:
            e["visits_outside_window"] += 1
        if dropped:
            e["drops_in_window" if in_window else "drops_outside_window"] += 1
    for st, start_ms, end_ms in overflow:
        e = entry(st)
        a, b = max(start_ms, since), min(end_ms if end_ms is not None else now, until)
        if b > a:
            e["overflow_minutes"] += (b - a) / 60000
            e["overflow_episodes"] += 1
    for e in out.values():
        e["overflow_minutes"] = round(e["overflow_minutes"], 1)
    if station and station not in out:
        entry(station)
    return {"since_ms": since, "until_ms": until, "timezone": tz, "stations": out}
