"""The periodic health message on .../telemetry (outbox, evictions, uplink counters, devices, host)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from edge.events import format_ts

from . import outbox
from .models import (DeviceTelemetry, EvictionTelemetry, OutboxTelemetry, SystemTelemetry, Telemetry,
                     UplinkTelemetry)

if TYPE_CHECKING:
    from .uplink import Uplink


def system_stats(data_dir) -> SystemTelemetry:
    try:
        import psutil
    except ImportError:  # psutil is a dependency; keep telemetry alive without it anyway
        return SystemTelemetry()
    out: dict = {}
    try:
        out["cpu_pct"] = psutil.cpu_percent(interval=None)  # since the previous call: never blocks
        out["load_1m"] = round(os.getloadavg()[0], 2)
        vm = psutil.virtual_memory()
        out["mem_pct"] = vm.percent
        out["mem_used_bytes"] = int(vm.total - vm.available)
        out["rss_bytes"] = int(psutil.Process().memory_info().rss)
        du = psutil.disk_usage(str(data_dir))
        out["disk_pct"] = du.percent
        out["disk_free_bytes"] = int(du.free)
    except (OSError, AttributeError):
        pass
    try:
        temps = psutil.sensors_temperatures() if hasattr(psutil, "sensors_temperatures") else {}
        readings = [t.current for entries in temps.values() for t in entries if t.current is not None]
        if readings:
            out["temperature_c"] = round(max(readings), 1)
    except (OSError, AttributeError):
        pass
    return SystemTelemetry(**out)


def _ts(ms):
    return format_ts(int(ms)) if ms else None


async def build_telemetry(up: "Uplink") -> bytes:
    ctx = up.ctx
    st: outbox.Stats = await up._stats()
    devices = await ctx.store.call(ctx.store.devices)
    sysinfo = await ctx.store.call(system_stats, ctx.data_dir)
    now = ctx.clock.time_ms()
    t = Telemetry(
        gateway_id=up.config.gateway.id, ts=format_ts(now),
        uptime_s=round((now - (up.started_ms or now)) / 1000, 1),
        outbox=OutboxTelemetry(depth=st.depth, bytes=st.bytes, budget_bytes=up.budget_bytes,
                               oldest_pending_age_s=round((now - st.oldest_pending_ms) / 1000, 3)
                               if st.oldest_pending_ms is not None else None,
                               last_seq=st.last_seq, pending_from_seq=st.pending_from_seq,
                               inflight=up._rows_inflight),
        evicted=EvictionTelemetry(total=sum(up.evicted_by_kind.values()), by_priority=dict(up.evicted_by_priority),
                                  by_kind=dict(up.evicted_by_kind)),
        uplink=UplinkTelemetry(connects=up.c["connects"], disconnects=up.c["disconnects"], published=up.c["published"],
                               acked=up.c["acked"], retried=up.c["retried"], resent=up.c["resent"],
                               rejected=dict(up.rejected), queue_size_errors=up.c["queue_size_errors"],
                               window=up.window, last_disconnect=up.last_disconnect),
        devices={d["id"]: DeviceTelemetry(type=d["type"], state=d["state"], last_seen=_ts(d.get("last_seen_ms")),
                                          changed=_ts(d.get("changed_ms"))) for d in devices},
        system=sysinfo,
    )
    return t.model_dump_json(exclude_none=True).encode()
