"""alerts: (lifecycle, push channels and routes) and web: (the console)."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, HttpUrl, field_validator, model_validator

from .base import Id, Secret, Strict

_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_quiet_hours(text: str) -> tuple[int, int]:
    """'22:00-07:00' -> (start_min, end_min); the span may cross midnight, start == end is refused."""
    m = _QUIET.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a span like 22:00-07:00")
    start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    if start == end:
        raise ValueError(f"{text!r}: start and end are equal (empty or all-day quiet hours)")
    return start, end


class ChannelConfig(Strict):
    id: Id
    type: Literal["webhook", "wecom", "dingtalk", "feishu"]
    url: HttpUrl
    secret: Secret | None = Field(default=None, description="HMAC key (webhook), signing secret (DingTalk/Feishu)")
    timeout_s: float = Field(default=10, gt=0)
    language: Literal["zh", "en"] | None = Field(default=None, description="message language; default web.language")
    min_interval_s: float = Field(default=3.0, ge=0, description="pace sends to this channel (WeCom and DingTalk "
                                                                 "robots accept about 20 messages a minute)")

    @model_validator(mode="after")
    def _secret_fits(self) -> "ChannelConfig":
        if self.type == "wecom" and self.secret is not None:
            raise ValueError("WeCom group robots have no signing secret (the key is part of the url)")
        return self


class RouteConfig(Strict):
    name: str
    kinds: list[str] = Field(default_factory=list, description="alert kinds (or prefixes like waste.*); empty = all")
    min_severity: Literal["info", "warning", "critical"] = "warning"
    zones: list[Id] = Field(default_factory=list, description="zones/stations/devices; empty = all")
    states: list[Literal["raised", "updated", "acknowledged", "resolved", "cleared"]] = Field(
        default_factory=lambda: ["raised"], description="alert changes that are pushed (default: new alerts only)")
    channels: list[Id] = Field(min_length=1)
    quiet_hours: str | None = Field(default=None, description='e.g. "22:00-07:00": non-critical pushes wait')
    escalate_after_min: float | None = Field(default=None, gt=0)
    escalate_to: list[Id] = Field(default_factory=list, description="channels for the escalation; default: channels")

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, v: str | None) -> str | None:
        if v is not None:
            parse_quiet_hours(v)
        return v

    @model_validator(mode="after")
    def _escalation(self) -> "RouteConfig":
        if self.escalate_to and self.escalate_after_min is None:
            raise ValueError("escalate_to needs escalate_after_min (after how many minutes without acknowledgement)")
        return self


class AlertsConfig(Strict):
    cooldown_s: float = Field(default=300, ge=0, description="after resolve, same (zone, kind) re-raises only after")
    evidence_retention_days: float = Field(default=14, gt=0)
    blur_faces_upload: bool = True
    push_max_age_h: float = Field(default=24, gt=0, description="give up pushing after this age (counted, logged)")
    push_retry_min_s: float = Field(default=5, gt=0, description="first retry delay; doubles up to push_retry_max_s")
    push_retry_max_s: float = Field(default=600, gt=0)
    channels: list[ChannelConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _retry(self) -> "AlertsConfig":
        if self.push_retry_max_s < self.push_retry_min_s:
            raise ValueError("push_retry_max_s must be >= push_retry_min_s")
        return self


class WebConfig(Strict):
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535, description="0 = any free port (tests)")
    public_url: str | None = Field(default=None, description="console URL used in pushed messages")
    language: Literal["zh", "en"] = "zh"
    session_hours: float = Field(default=12, gt=0, description="a session ends after this long without use")
    secure_cookies: bool | None = Field(default=None, description="Secure cookie flag; default: when public_url is "
                                                                  "https (behind a TLS proxy)")
    max_body_kb: int = Field(default=64, ge=1, le=4096, description="largest accepted request body")
    login_max_failures: int = Field(default=5, ge=1, description="failed logins per IP / per name in the window")
    login_window_s: float = Field(default=900, gt=0)
    setup_token_hours: float = Field(default=24, gt=0, description="life of the first-start setup link")
    config_backups: int = Field(default=10, ge=1, description="backups of edge.yaml kept by the zone editor")

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/") if v else v
