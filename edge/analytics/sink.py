"""Emissions -> events with evidence (and statistics rows). Used by the component and by `edge eval`."""
from __future__ import annotations

import logging
from typing import Any

from edge.events import Event, EventError

from . import evidence, station_stats
from .base import Emission

log = logging.getLogger("edge.analytics")


class EmissionSink:
    def __init__(self, ctx):
        self.ctx = ctx
        self.stats = {"events": 0, "evidence": 0, "records": 0, "rejected": 0}

    def prepare(self, emissions: list[Emission]) -> list[tuple[str, Any]]:
        """CPU part (render + JPEG encode), safe off the event loop. Returns ordered work items."""
        items: list[tuple[str, Any]] = []
        for em in emissions:
            if em.kind.startswith("stats."):
                items.append(("record", em))
                continue
            ts_ms = int(em.ts * 1000)
            media = []
            for snap in em.snapshots:
                try:
                    jpeg = evidence.annotated_jpeg(snap)
                except Exception:
                    log.exception("evidence rendering failed", extra={"kind": em.kind})
                    continue
                media.append((evidence.new_media_id(ts_ms), jpeg))
            try:
                event = self.ctx.make_event(em.kind, em.source, em.payload, severity=em.severity, ts_ms=ts_ms,
                                            media=[evidence.media_ref(m, j) for m, j in media])
            except EventError as exc:
                self.stats["rejected"] += 1
                log.error("analytic produced an invalid event; dropped", extra={"kind": em.kind, "error": str(exc)})
                continue
            items.append(("event", (event, media)))
        return items

    def store_items(self, items: list[tuple[str, Any]]) -> list[Event]:
        """Store thread: evidence files and statistics rows. Returns the events to emit, in order."""
        store = self.ctx.store
        events: list[Event] = []
        for what, item in items:
            if what == "record":
                p = dict(item.payload)
                if p.pop("link_previous_event", False) and events:
                    p["event_id"] = events[-1].id
                try:
                    station_stats.apply_record(store, item.kind, p)
                    self.stats["records"] += 1
                except Exception:
                    log.exception("statistics record failed", extra={"kind": item.kind})
                continue
            event, media = item
            for mid, jpeg in media:
                try:
                    evidence.store_evidence(store, mid, jpeg, event.id)
                    self.stats["evidence"] += 1
                except Exception:
                    log.exception("storing evidence failed", extra={"kind": event.kind})
            events.append(event)
        return events

    def write_sync(self, emissions: list[Emission]) -> list[Event]:
        events = self.store_items(self.prepare(emissions))
        for e in events:
            self.ctx.emit(e)
        self.stats["events"] += len(events)
        return events

    async def write(self, emissions: list[Emission]) -> list[Event]:
        import asyncio

        if not emissions:
            return []
        items = await asyncio.to_thread(self.prepare, emissions)
        events = await self.ctx.store.call(self.store_items, items)
        for e in events:
            self.ctx.emit(e)
        self.stats["events"] += len(events)
        return events
