from __future__ import annotations

from pydantic import Field, field_validator

from .base import Id, Strict


class GatewayConfig(Strict):
    id: Id = Field(description="gateway id; also the MQTT client id and the last topic level")
    compound_id: Id = Field(description="compound (residential estate) id assigned by the county")
    county_code: str = Field(pattern=r"^\d{6}$", description="6-digit administrative division code, e.g. 330106")
    name: str = Field(default="", description="human-readable compound name shown in the console and alerts")
    timezone: str = Field(default="Asia/Shanghai", description="IANA timezone for drop windows and quiet hours")

    @field_validator("county_code", mode="before")
    @classmethod
    def _code_as_text(cls, v):
        # YAML reads an unquoted 330106 as a number; the code is text, so accept both.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}") from None
        return v
