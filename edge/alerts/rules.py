"""Which events raise, update or clear which alerts.

Alerts derive from events (one way): analytics and drivers only emit events; this table decides what a
property manager is alerted about. The dedup key groups an episode: one alert per (kind, zone/device).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from edge.events import Event


@dataclasses.dataclass(frozen=True)
class Action:
    op: str  # raise | update | clear
    alert_kind: str
    key: str  # dedup key
    zone: str | None
    title: str


def _p(e: Event, k: str, default=None):
    return e.payload.get(k, default)


def _door(e: Event) -> str:
    return f"{e.source}:door{_p(e, 'door', '?')}"


def _title_door(e: Event, what: str) -> str:
    name = _p(e, "door_name") or f"door {_p(e, 'door', '?')}"
    return f"{what}: {name} ({_p(e, 'controller', e.source)})"


def _fire_lane(e: Event) -> Action:
    state = _p(e, "state", "blocked")
    op = {"blocked": "raise", "update": "update", "cleared": "clear"}[state] if e.kind == "fire_lane.blocked" \
        else "clear"
    obj = _p(e, "object", "object")
    mins = round(float(_p(e, "duration_s", 0)) / 60, 1)
    return Action(op, "fire_lane.blocked", f"fire_lane.blocked|{_p(e, 'zone')}", _p(e, "zone"),
                  f"Fire lane {_p(e, 'zone')} blocked by {obj} ({mins} min)")


def _raised_or_cleared(alert_kind: str, key_field: str, title: Callable[[Event], str], zone_field: str | None = None):
    def rule(e: Event) -> Action:
        op = "clear" if _p(e, "state") == "cleared" or _p(e, "trigger") == "cleared" else "raise"
        key_val = _p(e, key_field) or e.source
        zone = _p(e, zone_field) if zone_field else key_val
        return Action(op, alert_kind, f"{alert_kind}|{key_val}", zone, title(e))
    return rule


RULES: dict[str, Callable[[Event], Action | None]] = {
    "door.forced": lambda e: Action("raise", "door.forced", f"door.forced|{_door(e)}", _door(e),
                                    _title_door(e, "Door forced open")),
    "door.held_open": lambda e: Action("raise", "door.held_open", f"door.held_open|{_door(e)}", _door(e),
                                       _title_door(e, "Door held open")),
    "door.fire_alarm": lambda e: Action("raise", "door.fire_alarm", f"door.fire_alarm|{e.source}", e.source,
                                        f"Fire alarm input on controller {e.source}"),
    "reader.tamper": lambda e: Action("raise" if _p(e, "active", True) else "clear", "reader.tamper",
                                      f"reader.tamper|{e.source}", e.source, f"Reader {e.source} tampered"),
    "bin.full": _raised_or_cleared("bin.full", "bin",
                                   lambda e: (f"Bin {_p(e, 'bin')} full ({_p(e, 'fill_pct')} %, "
                                              if _p(e, "fill_pct") is not None else
                                              f"Bin {_p(e, 'bin')} overflowing (") +
                                             f"evidence: {'+'.join(_p(e, 'evidence', ['sensor']))})", "station"),
    "bin.temperature": _raised_or_cleared("bin.temperature", "bin",
                                          lambda e: f"Bin {_p(e, 'bin')} temperature {_p(e, 'temperature_c')} °C "
                                                    f"(fire risk)", "station"),
    "fire_lane.blocked": _fire_lane,
    "fire_lane.cleared": _fire_lane,
    "waste.litter": _raised_or_cleared("waste.litter", "zone",
                                       lambda e: f"Litter left at {_p(e, 'station') or _p(e, 'zone')}", "zone"),
    "waste.overflow": _raised_or_cleared("waste.overflow", "station",
                                         lambda e: f"Bin overflow seen at {_p(e, 'station')}", "station"),
    "waste.off_hours_drop": lambda e: Action(
        "raise", "waste.off_hours_drop", f"waste.off_hours_drop|{_p(e, 'station')}|{_p(e, 'episode') or e.id}",
        _p(e, "station") or _p(e, "zone"), f"Waste dropped outside drop hours at {_p(e, 'station')}"),
    "camera.offline": lambda e: Action("raise", "camera.offline", f"camera.offline|{e.source}", e.source,
                                       f"Camera {e.source} offline"),
    "camera.online": lambda e: Action("clear", "camera.offline", f"camera.offline|{e.source}", e.source,
                                      f"Camera {e.source} back online"),
    "device.offline": lambda e: Action("raise", "device.offline", f"device.offline|{e.source}", e.source,
                                       f"Device {e.source} offline"),
    "device.online": lambda e: Action("clear", "device.offline", f"device.offline|{e.source}", e.source,
                                      f"Device {e.source} back online"),
    "gateway.storage_eviction": lambda e: Action("raise", "gateway.storage_eviction", "gateway.storage_eviction",
                                                 None, "Gateway disk budget exceeded: events evicted"),
}
