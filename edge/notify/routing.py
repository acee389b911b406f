"""Which alert changes go to which channels, and when (quiet hours, escalation delay)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from edge.config.alerts import RouteConfig, parse_quiet_hours

_RANK = {"info": 0, "warning": 1, "critical": 2}


def kind_matches(patterns: list[str], kind: str) -> bool:
    if not patterns:
        return True
    for p in patterns:
        if p == kind or (p.endswith(".*") and kind.startswith(p[:-1])) or p == "*":
            return True
    return False


def route_matches(route: RouteConfig, *, state: str, alert_kind: str, severity: str, places: set[str]) -> bool:
    """`places` holds every id the alert belongs to: its zone, the zone's station, its camera or device."""
    if state not in route.states:
        return False
    if not kind_matches(route.kinds, alert_kind):
        return False
    if _RANK.get(severity, 1) < _RANK[route.min_severity]:
        return False
    if route.zones and not (places & set(route.zones)):
        return False
    return True


def quiet_until_ms(quiet_hours: str | None, now_ms: int, tz: str) -> int | None:
    """If `now_ms` falls in the quiet hours (gateway local time), when they end (epoch ms); else None."""
    if not quiet_hours:
        return None
    start, end = parse_quiet_hours(quiet_hours)
    zone = ZoneInfo(tz)
    local = dt.datetime.fromtimestamp(now_ms / 1000, zone)
    minute = local.hour * 60 + local.minute
    if start < end:
        inside = start <= minute < end
        end_day = local.date()
    else:  # crosses midnight, e.g. 22:00-07:00
        inside = minute >= start or minute < end
        end_day = local.date() + dt.timedelta(days=1) if minute >= start else local.date()
    if not inside:
        return None
    end_local = dt.datetime.combine(end_day, dt.time(end // 60, end % 60), zone)
    return int(end_local.timestamp() * 1000)
