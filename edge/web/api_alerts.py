"""Alerts (list, detail with evidence and history, acknowledge, resolve), evidence images, the events log."""
from __future__ import annotations

import re

from aiohttp import web

from .http import CONSOLE, ApiError, field, json_response, read_json, user
from .sse import event_summary

STATES = ("raised", "updated", "acknowledged", "resolved", "cleared")
MEDIA_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _alerts(request: web.Request):
    mgr = request.app[CONSOLE].ctx.services.get("alerts")
    if mgr is None:
        raise ApiError(503, "the alert manager is not running")
    return mgr


def _limit(request: web.Request, default: int = 100, maximum: int = 500) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise ApiError(400, f"limit must be a whole number, not {raw!r}") from None
    if not 1 <= n <= maximum:
        raise ApiError(400, f"limit must be between 1 and {maximum}")
    return n


def _q(request: web.Request, name: str, max_len: int = 128) -> str | None:
    v = request.query.get(name) or None
    if v is not None and len(v) > max_len:
        raise ApiError(400, f"{name} is too long (at most {max_len} characters)")
    return v


async def list_alerts(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    mgr = _alerts(request)
    state = _q(request, "state")
    if state and state not in STATES and state != "active":
        raise ApiError(400, f"unknown state {state!r}; one of active, {', '.join(STATES)}")
    active = state == "active" or request.query.get("active") in ("1", "true")
    items = await console.store.call(mgr.list, state=None if state == "active" else state,
                                     kind=_q(request, "kind"), zone=_q(request, "zone"), active_only=active,
                                     limit=_limit(request))
    return json_response({"alerts": [console.alert_view(a) for a in items]})


async def get_alert(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    mgr = _alerts(request)
    alert_id = request.match_info["id"]
    a = await console.store.call(mgr.get, alert_id)
    if a is None:
        raise ApiError(404, f"no alert with id {alert_id}")
    history = await console.store.call(mgr.history, alert_id)
    media = await console.store.call(_media_meta, console.store, a.get("evidence") or [])
    return json_response({"alert": console.alert_view(a), "history": history, "evidence": media})


def _media_meta(store, ids: list[str]) -> list[dict]:
    if not ids:
        return []
    with store.transaction() as conn:
        rows = conn.execute(f"SELECT id, content_type, bytes, role, created_ms FROM media WHERE id IN "
                            f"({','.join('?' * len(ids))})", list(ids)).fetchall()
    found = {r["id"]: dict(r) for r in rows}
    # keep the alert's order; evidence removed by retention is listed as missing, not silently dropped
    return [found.get(i, {"id": i, "missing": True}) for i in ids]


async def _person_action(request: web.Request, action: str) -> web.Response:
    from edge.alerts import AlertError

    console = request.app[CONSOLE]
    mgr = _alerts(request)
    data = await read_json(request)
    note = field(data, "note", required=False, max_len=1000)
    if action == "resolve" and not (note or "").strip():
        raise ApiError(400, "resolving an alert needs a note (what was done)")
    alert_id = request.match_info["id"]
    fn = mgr.acknowledge if action == "ack" else mgr.resolve
    try:
        a = await console.store.call(fn, alert_id, user(request)["name"], (note or "").strip() or None)
    except AlertError as exc:
        msg = str(exc)
        raise ApiError(404 if msg.startswith("no alert") else 409, msg) from None
    return json_response({"alert": console.alert_view(a)})


async def ack_alert(request: web.Request) -> web.Response:
    return await _person_action(request, "ack")


async def resolve_alert(request: web.Request) -> web.Response:
    return await _person_action(request, "resolve")


async def get_media(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    media_id = request.match_info["id"]
    if not MEDIA_ID.match(media_id):
        raise ApiError(400, "malformed media id")
    got = await console.store.call(console.store.get_media, media_id)
    if got is None:
        raise ApiError(404, f"no picture {media_id} (it may have been removed by retention)")
    row, data = got
    return web.Response(body=data, content_type=row["content_type"],
                        headers={"Cache-Control": "private, max-age=86400, immutable"})


async def list_events(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    since = request.query.get("since_ms")
    try:
        since_ms = int(since) if since else None
    except ValueError:
        raise ApiError(400, "since_ms must be epoch milliseconds") from None
    events = await console.store.call(console.store.query_events, kind=_q(request, "kind"),
                                      source=_q(request, "source"), text=_q(request, "text", 200),
                                      since_ms=since_ms, before_id=_q(request, "before"),
                                      limit=_limit(request, 100, 1000))
    return json_response({"events": [event_summary(e) for e in events]})


async def get_event(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    e = await console.store.call(console.store.get_event, request.match_info["id"])
    if e is None:
        raise ApiError(404, f"no event with id {request.match_info['id']}")
    return json_response(e.to_dict())


async def stream(request: web.Request) -> web.StreamResponse:
    return await request.app[CONSOLE].hub.handle(request)


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/alerts", list_alerts)
    r.add_get("/api/alerts/{id}", get_alert)
    r.add_post("/api/alerts/{id}/ack", ack_alert)
    r.add_post("/api/alerts/{id}/resolve", resolve_alert)
    r.add_get("/api/media/{id}", get_media)
    r.add_get("/api/events", list_events)
    r.add_get("/api/events/{id}", get_event)
    r.add_get("/api/stream", stream)
