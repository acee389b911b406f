"""Dashboard, cameras and snapshots, bin stations, device tests, settings, push status, /healthz, /metrics."""
from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from pydantic import BaseModel

from edge import __version__
from edge.config.base import Secret

from . import integrations as integ
from .http import CONSOLE, ApiError, json_response, public, requires, user
from .metrics import render
from .sse import event_summary

UPLINK_NAMES = re.compile(r"uplink|cloud|mqtt", re.I)


def _safe_health(ctx) -> dict[str, dict]:
    sup = ctx.supervisor
    try:
        return sup.health() if sup is not None else {}
    except Exception as exc:
        return {"supervisor": {"state": "unknown", "health_error": repr(exc)}}


def _uplink(health: dict[str, dict]) -> dict[str, Any] | None:
    for name, h in health.items():
        if UPLINK_NAMES.search(name):
            keep = {k: v for k, v in h.items() if isinstance(v, (str, int, float, bool)) or v is None}
            return {"component": name, **keep}
    return None


async def dashboard(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    ctx, store = console.ctx, console.store
    cfg = ctx.config
    health = _safe_health(ctx)
    gw = ctx.services.get("gateway")
    started = getattr(gw, "started_ms", None)
    depth = await store.call(store.outbox_depth)
    oldest = await store.call(store.outbox_oldest_pending_ms)
    now = ctx.clock.time_ms()
    devices = await store.call(store.devices)
    known = {d["id"]: d for d in devices}
    dev_view = []
    for d in cfg.devices:
        st = known.pop(d.id, None)
        dev_view.append({"id": d.id, "type": d.type, "state": st["state"] if st else "unknown",
                         "last_seen_ms": st["last_seen_ms"] if st else None,
                         "changed_ms": st["changed_ms"] if st else None, "info": st["info"] if st else {}})
    for d in known.values():  # sub-devices the drivers report (e.g. each sensor on a bus)
        dev_view.append({"id": d["id"], "type": d["type"], "state": d["state"], "last_seen_ms": d["last_seen_ms"],
                         "changed_ms": d["changed_ms"], "info": d["info"]})
    cams = integ.camera_states(ctx)
    cam_view = [{"id": c.id, "name": c.name, **{k: v for k, v in cams.get(c.id, {}).items()
                                                 if isinstance(v, (str, int, float, bool)) or v is None}}
                for c in cfg.cameras]
    mgr = ctx.services.get("alerts")
    open_alerts = await store.call(mgr.list, active_only=True, limit=500) if mgr else []
    notify = ctx.services.get("notify")
    return json_response({
        "gateway": {"id": cfg.gateway.id, "name": cfg.gateway.name, "compound_id": cfg.gateway.compound_id,
                    "county_code": cfg.gateway.county_code, "timezone": cfg.gateway.timezone,
                    "version": __version__, "started_ms": started,
                    "uptime_s": round((now - started) / 1000) if started else None,
                    "config_hash": cfg.config_hash(), "healthy": bool(ctx.supervisor and ctx.supervisor.healthy())},
        "uplink": _uplink(health), "uplink_configured": cfg.uplink is not None and cfg.uplink.enabled,
        "outbox": {"depth": depth, "oldest_age_s": round((now - oldest) / 1000) if oldest else None},
        "notify": (await notify.status(limit=0))["counts"] if notify else None,
        "components": {n: {"state": h.get("state"), "restarts": h.get("restarts"), "last_error": h.get("last_error"),
                           "critical": h.get("critical")} for n, h in sorted(health.items())},
        "devices": dev_view, "cameras": cam_view,
        "alerts": {"open": len(open_alerts),
                   "critical": sum(1 for a in open_alerts if a["severity"] == "critical")},
        "now_ms": now,
    })


async def cameras(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    states = integ.camera_states(console.ctx)
    return json_response({"cameras": [{"id": c.id, "name": c.name, "state": states.get(c.id, {})}
                                      for c in console.ctx.config.cameras]})


async def snapshot(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    cam = request.match_info["id"]
    try:
        data = await integ.snapshot_jpeg(console.ctx, cam)
    except KeyError:
        raise ApiError(404, f"no camera {cam!r} in the config") from None
    except integ.Unavailable as exc:
        raise ApiError(503, str(exc)) from None
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


# ---- stations ------------------------------------------------------------------------------------------------
def _latest_levels(store, bins: list[str]) -> dict[str, dict]:
    out = {}
    for b in bins:
        got = store.query_events(kind="bin.level", text=f'"bin":{json.dumps(b)}', limit=1)
        if got:
            e = got[0]
            out[b] = {"fill_pct": e.payload.get("fill_pct"), "temperature_c": e.payload.get("temperature_c"),
                      "ts_ms": e.ts_ms, "source": e.source}
    return out


def _stats_from_events(store, station: str, now_ms: int) -> dict[str, Any]:
    """What the console can count itself when edge.analytics offers no statistics (last 24 h)."""
    since = now_ms - 86400_000
    counts = {}
    for kind in ("waste.off_hours_drop", "waste.litter", "waste.overflow", "bin.full"):
        evs = store.query_events(kind=kind, since_ms=since, text=f'"station":{json.dumps(station)}', limit=1000)
        counts[kind] = sum(1 for e in evs if e.payload.get("state", "raised") == "raised")
    with store.transaction() as conn:
        rows = conn.execute("SELECT raised_ms, resolved_ms FROM alerts WHERE kind IN ('bin.full', 'waste.overflow') "
                            "AND zone = ? AND (resolved_ms IS NULL OR resolved_ms > ?)", (station, since)).fetchall()
    full_ms = sum(min(r["resolved_ms"] or now_ms, now_ms) - max(r["raised_ms"], since) for r in rows)
    return {"source": "events", "period_h": 24, "off_hours_drops": counts["waste.off_hours_drop"],
            "litter": counts["waste.litter"], "overflow_seen": counts["waste.overflow"],
            "full_alerts": counts["bin.full"], "minutes_overflowing": round(max(0, full_ms) / 60000, 1)}


async def stations(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    ctx, store = console.ctx, console.store
    cfg = ctx.config
    now = ctx.clock.time_ms()
    mgr = ctx.services.get("alerts")
    active = await store.call(mgr.list, active_only=True, limit=500) if mgr else []
    out = []
    for st in cfg.stations:
        sched = next((s for s in cfg.schedules if s.id == st.schedule), None)
        levels = await store.call(_latest_levels, store, st.bins)
        stats, stats_error = None, None
        try:
            stats = integ.jsonable(await integ.station_stats(ctx, st.id))
        except Exception as exc:
            stats_error = f"{type(exc).__name__}: {exc}"
        if stats is None:
            stats = await store.call(_stats_from_events, store, st.id, now)
        out.append({"id": st.id, "name": st.name, "camera": st.camera,
                    "windows": sched.windows if sched else [], "bins": [
                        {"id": b, **levels.get(b, {}),
                         "full": any(a["kind"] == "bin.full" and a["dedup_key"] == f"bin.full|{b}" for a in active)}
                        for b in st.bins],
                    "alerts": [console.alert_view(a) for a in active if a["zone"] == st.id],
                    "stats": stats, "stats_error": stats_error})
    return json_response({"stations": out, "analytics_stats": integ.station_stats_fn(ctx) is not None})


# ---- devices (installer) -----------------------------------------------------------------------------------------
def _device_view(d) -> dict[str, Any]:
    v: dict[str, Any] = {"id": d.id, "type": d.type, "probe": integ.probe_fn(d.type) is not None}
    serial = getattr(d, "serial", None)
    if isinstance(serial, BaseModel):
        v["port"] = serial.port
    elif getattr(d, "address", None):
        v["port"] = f"{d.address}:{getattr(d, 'port', '')}"
    sensors = getattr(d, "sensors", None)
    if sensors:
        v["bins"] = [s.bin for s in sensors]
    elif getattr(d, "bin", None):
        v["bins"] = [d.bin]
    return v


@requires("installer")
async def devices(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    states = {d["id"]: d for d in await console.store.call(console.store.devices)}
    cfg = console.ctx.config
    fire_lanes = [{"id": z.id, "camera": z.camera, "name": z.name} for z in cfg.zones if z.type == "fire_lane"]
    return json_response({"devices": [_device_view(d) | {"state": states.get(d.id, {}).get("state", "unknown"),
                                                         "last_seen_ms": states.get(d.id, {}).get("last_seen_ms")}
                                      for d in cfg.devices],
                          "fire_lanes": fire_lanes,
                          "reference_capture": integ.capture_reference_fn(console.ctx) is not None})


@requires("installer")
async def probe(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    dev_id = request.match_info["id"]
    d = console.ctx.config.device(dev_id)
    if d is None:
        raise ApiError(404, f"no device {dev_id!r} in the config")
    t0 = time.monotonic()
    try:
        result = await integ.probe_device(d, timezone=console.ctx.config.gateway.timezone)
    except integ.Unavailable as exc:
        raise ApiError(501, str(exc)) from None
    except TimeoutError:
        raise ApiError(504, "the device did not answer in time") from None
    except Exception as exc:  # the probe's own error is the answer the installer needs
        return json_response({"ok": False, "error": f"{type(exc).__name__}: {exc}",
                              "ms": round((time.monotonic() - t0) * 1000)})
    result = integ.jsonable(result)
    ok = result.get("ok", True) if isinstance(result, dict) else True  # the probe's own verdict
    return json_response({"ok": bool(ok), "result": result, "ms": round((time.monotonic() - t0) * 1000),
                          "by": user(request)["name"]})


async def device_events(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    dev_id = request.match_info["id"]
    events = await console.store.call(console.store.query_events, source=dev_id, limit=30)
    return json_response({"events": [event_summary(e) for e in events]})


@requires("installer")
async def capture_reference(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    zone_id = request.match_info["id"]
    z = next((z for z in console.ctx.config.zones if z.id == zone_id), None)
    if z is None:
        raise ApiError(404, f"no zone {zone_id!r}")
    if z.type != "fire_lane":
        raise ApiError(400, f"zone {zone_id} is a {z.type} zone; a clear-lane reference is for fire_lane zones")
    try:
        result = await integ.capture_reference(console.ctx, z.camera, user(request)["name"])
    except integ.Unavailable as exc:
        raise ApiError(501, str(exc)) from None
    except Exception as exc:
        raise ApiError(409, f"could not capture the reference: {type(exc).__name__}: {exc}") from None
    return json_response({"ok": True, "result": integ.jsonable(result)})


# ---- settings (installer, read-only) -------------------------------------------------------------------------
def _mask_url(url: str) -> str:
    try:
        u = urlsplit(url)
    except ValueError:
        return "***"
    netloc = u.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        netloc = f"{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else f"{creds}@{host}"
    query = "&".join(f"{kv.split('=', 1)[0]}=***" for kv in u.query.split("&") if kv) if u.query else ""
    return urlunsplit((u.scheme, netloc, u.path, query, ""))


def redact(obj: Any) -> Any:
    if isinstance(obj, Secret):
        return repr(obj)
    if isinstance(obj, BaseModel):
        out = {}
        for name in type(obj).model_fields:
            v = getattr(obj, name)
            out[name] = _mask_url(str(v)) if name in ("url", "snapshot_url", "broker") and v else redact(v)
        return out
    if isinstance(obj, dict):
        return {str(k): redact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


@requires("installer")
async def settings(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    path = console.ctx.config_path
    backups = sorted(p.name for p in path.parent.glob(f"{path.name}.bak-*")) if path else []
    return json_response({"config": redact(console.ctx.config), "path": str(path) if path else None,
                          "backups": backups, "config_hash": console.ctx.config.config_hash()})


# ---- push status -------------------------------------------------------------------------------------------------
async def notify_status(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    notify = console.ctx.services.get("notify")
    channels = [{"id": c.id, "type": c.type, "url": _mask_url(str(c.url))} for c in console.ctx.config.alerts.channels]
    if notify is None:
        return json_response({"enabled": False, "channels": channels})
    return json_response({"enabled": True, "channels": channels, **await notify.status(limit=50)})


@requires("installer")
async def notify_test(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    notify = console.ctx.services.get("notify")
    if notify is None:
        raise ApiError(503, "push delivery is not running (no channels configured)")
    ch = request.match_info["id"]
    try:
        result = await notify.send_test(ch, user(request)["name"])
    except KeyError:
        raise ApiError(404, f"no channel {ch!r}") from None
    return json_response(result, status=200 if result["ok"] else 502)


# ---- health and metrics ------------------------------------------------------------------------------------------
@public
async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CONSOLE].ctx
    sup = ctx.supervisor
    ok = bool(sup is not None and sup.healthy())
    down = [n for n, s in getattr(sup, "slots", {}).items() if s.component.critical and s.state != "running"]
    return json_response({"status": "ok" if ok else "degraded", "version": __version__, "critical_down": down},
                         status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    stats = await console.metric_stats()
    text = render(console.ctx, stats, console.rates.rates())
    return web.Response(body=text.encode("utf-8"),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    r.add_get("/api/dashboard", dashboard)
    r.add_get("/api/cameras", cameras)
    r.add_get("/api/cameras/{id}/snapshot.jpg", snapshot)
    r.add_get("/api/stations", stations)
    r.add_get("/api/devices", devices)
    r.add_post("/api/devices/{id}/probe", probe)
    r.add_get("/api/devices/{id}/events", device_events)
    r.add_post("/api/zones/{id}/reference", capture_reference)
    r.add_get("/api/settings", settings)
    r.add_get("/api/notify", notify_status)
    r.add_post("/api/notify/{id}/test", notify_test)
