"""Reads from the other parts of the gateway, each defensively: the console must keep working when a part is
missing (not installed, not configured, still being written) and say so instead of failing.

- cameras: ctx.services["cameras"].snapshot_jpeg(camera_id) / .states(); fallback: the newest frame in the
  vision FrameHub (ctx.services["vision"]).
- station statistics and the "clear lane" reference: ctx.services hooks or functions in edge.analytics.
- device probes: drivers.bins.probe.probe_device(cfg) / drivers.access.probe.probe_device(cfg).
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from typing import Any, Callable

log = logging.getLogger("edge.web")


class Unavailable(Exception):
    """The feature is not provided by this build or configuration (HTTP 501/503 with this message)."""


async def call_maybe_async(fn: Callable, *args, timeout: float | None = None, **kwargs) -> Any:
    """Call a function that may be sync (run in a thread: it may block on I/O) or async."""
    if inspect.iscoroutinefunction(fn):
        coro = fn(*args, **kwargs)
    else:
        coro = asyncio.to_thread(fn, *args, **kwargs)
    r = await (asyncio.wait_for(coro, timeout) if timeout else coro)
    if inspect.isawaitable(r):
        r = await (asyncio.wait_for(r, timeout) if timeout else r)
    return r


# ---- cameras ---------------------------------------------------------------------------------------------
def camera_states(ctx) -> dict[str, dict]:
    cams = ctx.services.get("cameras")
    states = {}
    if cams is not None and hasattr(cams, "states"):
        try:
            raw = cams.states()
            if isinstance(raw, dict):
                states = {str(k): (v if isinstance(v, dict) else {"state": v}) for k, v in raw.items()}
            elif isinstance(raw, list):
                states = {str(s.get("id") or s.get("camera")): s for s in raw if isinstance(s, dict)}
        except Exception as exc:
            log.warning("cameras.states() failed", extra={"error": repr(exc)})
    hub = ctx.services.get("vision")
    for cam in ctx.config.cameras:
        st = dict(states.get(cam.id, {}))
        if hub is not None:
            latest = hub.latest(cam.id)
            if latest is not None:
                st.setdefault("last_frame_ts", latest.ts)
                st.setdefault("tracks", len(latest.tracks))
        st.setdefault("state", "unknown" if cams is None else st.get("state", "unknown"))
        states[cam.id] = st
    return states


async def snapshot_jpeg(ctx, camera_id: str) -> bytes:
    if ctx.config.camera(camera_id) is None:
        raise KeyError(camera_id)
    cams = ctx.services.get("cameras")
    err = None
    if cams is not None and hasattr(cams, "snapshot_jpeg"):
        try:
            data = await call_maybe_async(cams.snapshot_jpeg, camera_id, timeout=15)
            if data:
                return bytes(data)
        except Exception as exc:  # fall back to the newest analysed frame
            err = f"{type(exc).__name__}: {exc}"
    hub = ctx.services.get("vision")
    latest = hub.latest(camera_id) if hub is not None else None
    if latest is not None and latest.frame is not None:
        import cv2

        ok, buf = await asyncio.to_thread(cv2.imencode, ".jpg", latest.frame, [int(cv2.IMWRITE_JPEG_QUALITY), 85])
        if ok:
            return buf.tobytes()
    raise Unavailable(f"no picture from camera {camera_id}" + (f" ({err})" if err else
                                                               " (camera not running or no frame yet)"))


# ---- analytics -------------------------------------------------------------------------------------------
# Contracts, in order of preference:
#   ctx.services["station_stats"](station_id) -> dict         (a running analytics component may offer it)
#   edge.analytics.station_stats.station_stats(store, station, tz=..., now_ms=...) -> {"stations": {id: {...}}}
#   ctx.services["capture_reference"](camera_id, by) -> dict   (analytics reloads its reference itself)
#   edge.analytics.clutter.save_reference(store, camera, frame, by=..., now_ms=...) with the newest FrameHub frame
def _module_fn(module: str, name: str) -> Callable | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    fn = getattr(mod, name, None)
    return fn if callable(fn) else None


def station_stats_fn(ctx) -> Callable | None:
    fn = ctx.services.get("station_stats")
    return fn if callable(fn) else _module_fn("edge.analytics.station_stats", "station_stats")


def capture_reference_fn(ctx) -> Callable | None:
    fn = ctx.services.get("capture_reference")
    return fn if callable(fn) else _module_fn("edge.analytics.clutter", "save_reference")


async def station_stats(ctx, station_id: str) -> Any:
    svc = ctx.services.get("station_stats")
    if callable(svc):
        return await call_maybe_async(svc, station_id, timeout=10)
    fn = _module_fn("edge.analytics.station_stats", "station_stats")
    if fn is None:
        return None
    from edge.notify.outbox import ensure_schema

    ensure_schema(ctx.store)  # the analytics tables, if edge.analytics was imported after the store opened
    res = await ctx.store.call(fn, ctx.store, station_id, tz=ctx.config.gateway.timezone, now_ms=ctx.clock.time_ms())
    if isinstance(res, dict) and isinstance(res.get("stations"), dict):
        one = res["stations"].get(station_id, {})
        return {"source": "analytics", "since_ms": res.get("since_ms"), "until_ms": res.get("until_ms"), **one}
    return res


async def capture_reference(ctx, camera_id: str, actor: str) -> Any:
    svc = ctx.services.get("capture_reference")
    if callable(svc):
        return await call_maybe_async(svc, camera_id, actor, timeout=30)
    save = _module_fn("edge.analytics.clutter", "save_reference")
    if save is None:
        raise Unavailable("capturing a clear-lane reference is not available in this build (edge.analytics)")
    hub = ctx.services.get("vision")
    latest = hub.latest(camera_id) if hub is not None else None
    if latest is None or latest.frame is None:
        raise Unavailable(f"camera {camera_id} has not delivered an analysed frame yet")
    return await ctx.store.call(save, ctx.store, camera_id, latest.frame, by=actor, now_ms=ctx.clock.time_ms())


# ---- devices ---------------------------------------------------------------------------------------------
PROBE_MODULES = {"modbus_level": "drivers.bins.probe", "uart_level": "drivers.bins.probe",
                 "uhppote": "drivers.access.probe", "osdp": "drivers.access.probe",
                 "wiegand_serial": "drivers.access.probe"}


def probe_fn(device_type: str) -> Callable | None:
    name = PROBE_MODULES.get(device_type)
    if name is None:
        return None
    try:
        mod = importlib.import_module(name)
    except ImportError:
        return None
    fn = getattr(mod, "probe_device", None)
    return fn if callable(fn) else None


async def probe_device(device_cfg, timeout: float = 20, timezone: str | None = None) -> Any:
    fn = probe_fn(device_cfg.type)
    if fn is None:
        raise Unavailable(f"probing {device_cfg.type} devices is not available in this build "
                          f"({PROBE_MODULES.get(device_cfg.type, 'no probe module')})")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {"timezone": timezone} if timezone and "timezone" in params else {}
    return await call_maybe_async(fn, device_cfg, timeout=timeout, **kwargs)


def jsonable(obj: Any, depth: int = 0) -> Any:
    """Make a probe/statistics result safe for json.dumps (dataclasses, pydantic models, numpy numbers)."""
    if depth > 6:
        return repr(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v, depth + 1) for v in obj]
    if hasattr(obj, "model_dump"):
        return jsonable(obj.model_dump(mode="json"), depth + 1)
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj), depth + 1)
    if hasattr(obj, "item"):
        try:
            return obj.item()
        except Exception:
            pass
    if isinstance(obj, bytes):
        return obj.hex()
    return repr(obj)
