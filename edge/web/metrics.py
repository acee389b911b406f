"""/metrics in the Prometheus text exposition format (version 0.0.4).

Sources: the bus (events per kind), the store (outbox depth), the push outbox, and every component's
health() via ctx.supervisor.health(). Component health dicts are free-form and owned by other engineers, so
they are read defensively: known names are mapped to named metrics (camera fps, detector ms, serial errors),
and every other numeric value is exported as edge_component_health{component, key}. The text format is a
handful of lines, so it is written here rather than pulling prometheus_client's global registry into
the gateway process.
"""
from __future__ import annotations

import collections
import math
import re
from typing import Any, Iterable

# health key (lower case) -> (metric, help, type); matched on the leaf key, nested dict keys become `item`,
# the leaf becomes `key` (cameras report fps_in and fps_out, serial drivers several error counters).
KNOWN = [
    (re.compile(r"^(fps|fps_in|fps_out|source_fps)$"), "edge_camera_fps", "frames per second of a camera",
     "gauge"),
    (re.compile(r"(detector|detect|inference|infer)_ms(_(avg|mean|p50|last))?$"), "edge_detector_ms",
     "detector time per frame in milliseconds", "gauge"),
    (re.compile(r"^(serial_errors?|crc_errors?|checksum_errors?|framing_errors?|frame_errors?|parser?_errors|"
                r"bad_frames|truncated|garbage(_bytes)?|noise_bytes|stray_bytes|wrong_address|no_response)$"),
     "edge_serial_errors_total", "serial/bus errors counted by a driver", "counter"),
]
MAX_GENERIC = 1000


def _esc(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(d: dict[str, Any]) -> str:
    if not d:
        return ""
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in d.items()) + "}"


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return None


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


class RateSampler:
    """events/s per kind over the last minute, from the bus's per-kind counters sampled every few seconds."""

    def __init__(self, window_s: float = 60):
        self.window_s = window_s
        self.samples: collections.deque = collections.deque()

    def sample(self, now_mono: float, counts: dict[str, int]) -> None:
        self.samples.append((now_mono, dict(counts)))
        while len(self.samples) > 2 and now_mono - self.samples[1][0] >= self.window_s:
            self.samples.popleft()

    def rates(self) -> dict[str, float]:
        if len(self.samples) < 2:
            return {}
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        dt = t1 - t0
        if dt <= 0:
            return {}
        return {k: (n - c0.get(k, 0)) / dt for k, n in c1.items()}


class Exposition:
    """Samples grouped per metric family (the format requires one group per family, HELP and TYPE first)."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, value: Any, labels: dict[str, Any] | None = None, help_: str = "",
            type_: str = "gauge") -> None:
        v = _num(value)
        if v is None:
            return
        fam = self.families.setdefault(name, (help_ or name, type_, []))
        fam[2].append(f"{name}{_labels(labels or {})} {_fmt(v)}")

    def text(self) -> str:
        out = []
        for name, (help_, type_, samples) in self.families.items():
            out += [f"# HELP {name} {help_}", f"# TYPE {name} {type_}", *samples]
        return "\n".join(out) + "\n"


def _walk(d: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], float]]:
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _walk(v, path + (str(k),))
    else:
        v = _num(d)
        if v is not None and path:
            yield path, v


def render(ctx, web_stats: dict[str, Any], rates: dict[str, float]) -> str:
    m = Exposition()
    m.add("edge_up", 1, help_="the gateway process is running")
    bus = getattr(ctx, "bus", None)
    by_kind = dict(getattr(bus, "by_kind", {}) or {})
    for kind in sorted(by_kind):
        m.add("edge_events_total", by_kind[kind], {"kind": kind}, "events committed since start, per kind", "counter")
    for kind in sorted(rates):
        m.add("edge_events_per_second", round(rates[kind], 4), {"kind": kind},
              "events per second per kind over the last minute")
    try:
        bh = bus.health() if bus is not None else {}
    except Exception:
        bh = {}
    m.add("edge_bus_pending", bh.get("pending"), help_="events waiting for the group commit")
    m.add("edge_bus_commit_failures_total", bh.get("commit_failures"), help_="failed store commits", type_="counter")
    for sub, s in sorted((bh.get("subscribers") or {}).items()):
        m.add("edge_bus_subscriber_dropped_total", s.get("dropped"), {"subscriber": sub},
              "events a slow subscriber did not get (they are in the store)", "counter")
    for key, (metric, help_) in {"outbox_depth": ("edge_outbox_depth", "uplink messages not yet acknowledged"),
                                 "outbox_oldest_age_s": ("edge_outbox_oldest_age_seconds",
                                                         "age of the oldest unsent uplink message"),
                                 "alerts_open": ("edge_alerts_open", "alerts raised and not resolved/cleared"),
                                 "notify_pending": ("edge_notify_pending", "pushes waiting to be delivered"),
                                 "notify_sent": ("edge_notify_sent_total", "pushes delivered (all time, in store)"),
                                 "notify_failed": ("edge_notify_failed_total",
                                                   "pushes given up or refused (all time, in store)"),
                                 "sse_clients": ("edge_web_sse_clients", "console live-update connections"),
                                 "login_failures": ("edge_web_login_failures_total", "failed console logins"),
                                 "login_blocked": ("edge_web_login_throttled_total", "logins refused by the "
                                                                                     "rate limit")}.items():
        m.add(metric, web_stats.get(key), help_=help_,
              type_="counter" if metric.endswith("_total") else "gauge")
    for status, n in sorted((web_stats.get("responses") or {}).items()):
        m.add("edge_web_responses_total", n, {"code": status}, "console HTTP responses by status class", "counter")

    sup = getattr(ctx, "supervisor", None)
    try:
        health = sup.health() if sup is not None else {}
    except Exception:
        health = {}
    generic = 0
    for comp in sorted(health):
        h = health[comp] if isinstance(health[comp], dict) else {}
        state = h.get("state")
        m.add("edge_component_up", 1 if state == "running" else 0, {"component": comp},
              "1 when the component runs, 0 when restarting/stopped/failed")
        m.add("edge_component_restarts_total", h.get("restarts"), {"component": comp},
              "restarts after a crash", "counter")
        for path, v in _walk({k: v for k, v in h.items() if k not in ("state", "restarts", "critical")}):
            leaf = path[-1].lower()
            for rx, metric, help_, type_ in KNOWN:
                if rx.search(leaf):
                    labels = {"component": comp}
                    if len(path) > 1:
                        labels["item"] = ".".join(path[:-1])
                    labels["key"] = leaf
                    m.add(metric, v, labels, help_, type_)
                    break
            else:
                if generic < MAX_GENERIC:
                    generic += 1
                    m.add("edge_component_health", v, {"component": comp, "key": ".".join(path)},
                          "numeric values from each component's health()")
    return m.text()
