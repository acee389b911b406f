from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl

from .base import Id, Secret, Strict


class ChannelConfig(Strict):
    id: Id
    type: Literal["webhook", "wecom", "dingtalk", "feishu"]
    url: HttpUrl
    secret: Secret | None = Field(default=None, description="HMAC key (webhook), signing secret (DingTalk/Feishu)")
    timeout_s: float = Field(default=10, gt=0)


class RouteConfig(Strict):
    name: str
    kinds: list[str] = Field(default_factory=list, description="alert kinds; empty = all")
    min_severity: Literal["info", "warning", "critical"] = "warning"
    zones: list[Id] = Field(default_factory=list, description="zones/stations; empty = all")
    channels: list[Id] = Field(min_length=1)
    quiet_hours: str | None = Field(default=None, description='e.g. "22:00-07:00": non-critical pushes wait')
    escalate_after_min: float | None = Field(default=None, gt=0)
    escalate_to: list[Id] = Field(default_factory=list)


class AlertsConfig(Strict):
    cooldown_s: float = Field(default=300, ge=0, description="after resolve, same (zone, kind) re-raises only after")
    evidence_retention_days: float = Field(default=14, gt=0)
    blur_faces_upload: bool = True
    push_max_age_h: float = Field(default=24, gt=0, description="give up pushing after this age (counted, logged)")
    channels: list[ChannelConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)


class WebConfig(Strict):
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="console URL used in pushed messages")
    language: Literal["zh", "en"] = "zh"
    session_hours: float = Field(default=12, gt=0)
