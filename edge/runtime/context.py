"""What every component gets: config, store, bus, clock, identity, and a way to make and emit events."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Iterable

from edge.clock import Clock
from edge.config import Config
from edge.events import Event, MediaRef, Severity, kind_spec, uuid7
from edge.events.kinds import validate_payload
from edge.store import Store

from .bus import EventBus, Subscriber


@dataclasses.dataclass
class RuntimeContext:
    config: Config
    store: Store
    bus: EventBus
    clock: Clock
    config_path: Path | None = None
    log: logging.Logger = dataclasses.field(default_factory=lambda: logging.getLogger("edge"))
    #: components publish handles for each other here (e.g. "cameras" -> camera manager for snapshots)
    services: dict[str, Any] = dataclasses.field(default_factory=dict)
    supervisor: Any = None

    @property
    def gateway_id(self) -> str:
        return self.config.gateway.id

    @property
    def compound_id(self) -> str:
        return self.config.gateway.compound_id

    @property
    def data_dir(self) -> Path:
        return self.store.path.parent

    def make_event(self, kind: str, source: str, payload: dict[str, Any] | None = None, *,
                   severity: Severity | str | None = None, ts_ms: int | None = None,
                   media: Iterable[MediaRef] = ()) -> Event:
        """Build a validated Event (payload checked against the kind's model; raises EventError)."""
        spec = kind_spec(kind)
        ts = self.clock.time_ms() if ts_ms is None else int(ts_ms)
        return Event(
            id=uuid7(), ts_ms=ts, kind=kind, gateway_id=self.gateway_id, compound_id=self.compound_id,
            source=source, severity=Severity(severity) if severity else spec.severity,
            payload=validate_payload(kind, payload or {}), media=tuple(media),
        )

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    def emit_new(self, kind: str, source: str, payload: dict[str, Any] | None = None, **kw) -> Event:
        e = self.make_event(kind, source, payload, **kw)
        self.bus.emit(e)
        return e

    def subscribe(self, name: str, callback: Subscriber, kinds: Iterable[str] | None = None, maxsize: int = 10_000):
        return self.bus.subscribe(name, callback, kinds, maxsize)
