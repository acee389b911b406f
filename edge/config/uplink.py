from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from .base import Secret, Strict


class TlsConfig(Strict):
    ca_file: Path | None = Field(default=None, description="CA bundle that signed the broker certificate")
    cert_file: Path | None = Field(default=None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(default=None, description="client private key; a relative path is looked up in "
                                                            "$CREDENTIALS_DIRECTORY (systemd LoadCredential=)")
    server_name: str | None = Field(default=None, description="expected broker host name if it differs from the URL")

    @model_validator(mode="after")
    def _pair(self) -> "TlsConfig":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both)")
        return self


class UplinkConfig(Strict):
    enabled: bool = True
    broker: str = Field(description="mqtt://host:1883 or mqtts://host:8883")
    protocol: int | str = Field(default=5, description="MQTT protocol version; only 5 is accepted")
    keepalive_s: int = Field(default=30, ge=2, le=600, description="MQTT keepalive; a silent link is dropped "
                                                                   "after this long (half-open detection)")
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig | None = None
    topic_prefix: str = Field(default="cgw/v1", pattern=r"^[A-Za-z0-9_/-]+[A-Za-z0-9_-]$")
    telemetry_interval_s: float = Field(default=60, ge=1)
    max_inflight: int = Field(default=100, ge=1, le=1000, description="publishes in flight (bounded window)")
    drain_rate_per_s: float = Field(default=500, ge=0, description="cap on events published per second (a backlog "
                                    "after an outage drains at this rate); 0 = no cap")
    honour_receive_maximum: bool = Field(default=True, description="never exceed the broker's MQTT 5 Receive "
                                         "Maximum (paho ignores it); false only to test how a broker reacts")
    connect_timeout_s: float = Field(default=10, gt=0, description="TCP + TLS + CONNACK timeout")
    reconnect_min_s: float = Field(default=1, gt=0)
    reconnect_max_s: float = Field(default=60, gt=0)
    message_expiry_s: int = Field(default=0, ge=0, description="MQTT 5 message expiry for events; 0 = none")
    media_max_bytes: int = Field(default=512 * 1024, ge=1024, description="largest JPEG published to .../media")
    blur_faces: bool = Field(default=True, description="blur faces before uploading snapshots (no upload if it fails)")
    command_max_bytes: int = Field(default=16384, ge=256)
    commands: list[Literal["resend", "ping", "get_status", "reload_config", "snapshot"]] = Field(
        default=["resend", "ping", "get_status", "reload_config", "snapshot"],
        description="downlink commands this gateway accepts; others are answered 'unauthorised'")
    command_key: Secret | None = Field(default=None, description="if set, every command must carry a user property "
                                       "'signature' = hex HMAC-SHA256(key, topic + '\\n' + payload)")
    command_max_age_s: float = Field(default=300, gt=0, description="commands issued longer ago are 'expired'")
    resend_max_span: int = Field(default=100_000, ge=1, description="largest seq range one resend may ask for")
    reply_expiry_s: int = Field(default=300, ge=0, description="MQTT 5 message expiry of command replies")

    @field_validator("protocol", mode="before")
    @classmethod
    def _mqtt5_only(cls, v):
        if str(v) in ("3.1.1", "3.1", "4", "3", "311"):
            raise ValueError("MQTT 3.1.1 is refused: a publish the broker's ACL denies is PUBACKed as success and "
                             "silently dropped; MQTT 5 reports it (reason 0x87)")
        if str(v) != "5":
            raise ValueError(f"unsupported MQTT protocol {v!r}")
        return 5

    @field_validator("broker")
    @classmethod
    def _url(cls, v: str) -> str:
        u = urlparse(v)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError(f"{v!r} is not a broker URL")
        if u.port is not None and not (1 <= u.port <= 65535):
            raise ValueError("port out of range")
        return v

    @model_validator(mode="after")
    def _tls_scheme(self) -> "UplinkConfig":
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self
