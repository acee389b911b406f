"""Schema migrations, registered per owner so each package evolves its own tables.

A migration is (version, description, sql). They run in order inside one transaction each and are
recorded in schema_migrations(owner, version); a crash mid-migration rolls back to the previous version.
"""
from __future__ import annotations

import sqlite3

_REGISTRY: dict[str, list[tuple[int, str, str]]] = {}


def register(owner: str, migrations: list[tuple[int, str, str]]) -> None:
    versions = [m[0] for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError(f"migrations of {owner!r} must have increasing unique versions")
    existing = {m[0]: m for m in _REGISTRY.get(owner, [])}
    for m in migrations:
        existing[m[0]] = m
    _REGISTRY[owner] = sorted(existing.values())


def registered() -> dict[str, list[tuple[int, str, str]]]:
    return dict(_REGISTRY)


def apply_all(conn: sqlite3.Connection, now_ms: int) -> list[tuple[str, int]]:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (owner TEXT NOT NULL, version INTEGER NOT NULL, "
                 "description TEXT NOT NULL, applied_ms INTEGER NOT NULL, PRIMARY KEY (owner, version))")
    applied = []
    done = {(o, v) for o, v in conn.execute("SELECT owner, version FROM schema_migrations")}
    owners = ["core"] + sorted(o for o in _REGISTRY if o != "core")
    for owner in owners:
        for version, description, sql in _REGISTRY.get(owner, []):
            if (owner, version) in done:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _split(sql):
                    conn.execute(stmt)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?, ?)", (owner, version, description, now_ms))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            applied.append((owner, version))
    return applied


def _split(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";\n") if s.strip()]


register("core", [
    (1, "events, outbox, alerts, devices, media, kv", """
CREATE TABLE events (
  id TEXT PRIMARY KEY,
  ts_ms INTEGER NOT NULL,
  kind TEXT NOT NULL,
  source TEXT NOT NULL,
  severity TEXT NOT NULL,
  body TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX events_ts ON events (ts_ms);
CREATE INDEX events_kind_ts ON events (kind, ts_ms);
CREATE INDEX events_source_ts ON events (source, ts_ms);
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  source TEXT NOT NULL,
  priority INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  sent_ms INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_reason INTEGER
);
CREATE INDEX outbox_pending ON outbox (sent_ms, seq);
CREATE INDEX outbox_priority ON outbox (priority, seq) WHERE sent_ms IS NULL;
CREATE INDEX outbox_event ON outbox (event_id);
CREATE TABLE alerts (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
  zone TEXT,
  source TEXT NOT NULL,
  severity TEXT NOT NULL,
  state TEXT NOT NULL,
  title TEXT NOT NULL,
  raised_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  acked_by TEXT,
  acked_ms INTEGER,
  resolved_ms INTEGER,
  note TEXT,
  updates INTEGER NOT NULL DEFAULT 0,
  detail TEXT NOT NULL DEFAULT '{}',
  evidence TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX alerts_state ON alerts (state, raised_ms);
CREATE INDEX alerts_dedup ON alerts (dedup_key, state);
CREATE TABLE alert_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
  ts_ms INTEGER NOT NULL,
  action TEXT NOT NULL,
  actor TEXT,
  note TEXT
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, ts_ms);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  state TEXT NOT NULL,
  last_seen_ms INTEGER,
  changed_ms INTEGER NOT NULL,
  info TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE media (
  id TEXT PRIMARY KEY,
  event_id TEXT,
  alert_id TEXT,
  path TEXT NOT NULL,
  content_type TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  sha256 TEXT,
  role TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX media_created ON media (created_ms);
CREATE INDEX media_event ON media (event_id);
CREATE TABLE kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
)
"""),
])
