"""The root of edge.yaml."""
from __future__ import annotations

import hashlib
import json

from pydantic import Field

from .alerts import AlertsConfig, WebConfig
from .base import Strict
from .cameras import CameraConfig, ModelsConfig
from .devices import DeviceConfig
from .identity import GatewayConfig
from .storage import LoggingConfig, StorageConfig
from .uplink import UplinkConfig
from .zones import ScheduleConfig, StationConfig, ZoneConfig


class Config(Strict):
    gateway: GatewayConfig
    uplink: UplinkConfig | None = Field(default=None, description="MQTT 5 uplink to the county data centre")
    storage: StorageConfig = Field(default_factory=StorageConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    devices: list[DeviceConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    zones: list[ZoneConfig] = Field(default_factory=list)
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    stations: list[StationConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    web: WebConfig = Field(default_factory=WebConfig)

    def config_hash(self) -> str:
        """Stable hash of the effective config (reported in the uplink birth message)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def device(self, device_id: str):
        return next((d for d in self.devices if d.id == device_id), None)

    def camera(self, camera_id: str):
        return next((c for c in self.cameras if c.id == camera_id), None)


def cross_check(cfg: Config) -> list[tuple[tuple, str, str]]:
    """References between sections, which pydantic cannot see. Returns (loc, problem, expected)."""
    problems: list[tuple[tuple, str, str]] = []

    def unique(section: str, items) -> set[str]:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.id in seen:
                problems.append(((section, i, "id"), f"duplicate id {item.id!r}", "ids unique within " + section))
            seen.add(item.id)
        return seen

    unique("devices", cfg.devices)
    cams = unique("cameras", cfg.cameras)
    unique("zones", cfg.zones)
    scheds = unique("schedules", cfg.schedules)
    stations = unique("stations", cfg.stations)
    channels = set()
    for i, ch in enumerate(cfg.alerts.channels):
        if ch.id in channels:
            problems.append((("alerts", "channels", i, "id"), f"duplicate id {ch.id!r}", "unique channel ids"))
        channels.add(ch.id)
    bins: set[str] = set()
    for i, d in enumerate(cfg.devices):
        for j, s in enumerate(getattr(d, "sensors", None) or ([d] if hasattr(d, "empty_mm") else [])):
            loc = ("devices", i, "sensors", j, "bin") if hasattr(d, "sensors") else ("devices", i, "bin")
            if s.bin in bins:
                problems.append((loc, f"bin {s.bin!r} has two sensors", "one sensor per bin"))
            bins.add(s.bin)
    for i, z in enumerate(cfg.zones):
        if z.camera not in cams:
            problems.append((("zones", i, "camera"), f"unknown camera {z.camera!r}",
                             "one of: " + (", ".join(sorted(cams)) or "(no cameras configured)")))
        if z.station and z.station not in stations:
            problems.append((("zones", i, "station"), f"unknown station {z.station!r}",
                             "one of: " + (", ".join(sorted(stations)) or "(no stations configured)")))
    for i, st in enumerate(cfg.stations):
        if st.schedule and st.schedule not in scheds:
            problems.append((("stations", i, "schedule"), f"unknown schedule {st.schedule!r}",
                             "one of: " + (", ".join(sorted(scheds)) or "(no schedules configured)")))
        if st.camera and st.camera not in cams:
            problems.append((("stations", i, "camera"), f"unknown camera {st.camera!r}",
                             "one of: " + (", ".join(sorted(cams)) or "(no cameras configured)")))
        for j, b in enumerate(st.bins):
            if b not in bins:
                problems.append((("stations", i, "bins", j), f"unknown bin {b!r}",
                                 "a bin configured under a level sensor"))
    for i, r in enumerate(cfg.alerts.routes):
        for field in ("channels", "escalate_to"):
            for j, c in enumerate(getattr(r, field)):
                if c not in channels:
                    problems.append((("alerts", "routes", i, field, j), f"unknown channel {c!r}",
                                     "one of: " + (", ".join(sorted(channels)) or "(no channels configured)")))
    return problems
