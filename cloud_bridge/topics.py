"""The topic namespace, in one place: `{prefix}/{county}/{compound}/{gateway}/...`.

docs/mqtt.md and docs/asyncapi.yaml describe exactly these topics; tests/test_bridge_contract.py checks that
the three agree, so a topic cannot be added here without documenting it.
"""
from __future__ import annotations

import dataclasses

#: every topic the gateway publishes or subscribes, relative to the gateway base (AsyncAPI channel names)
CHANNELS = {
    "status": "status",
    "event": "event/{kind}",
    "alert": "alert",
    "telemetry": "telemetry",
    "media": "media/{media_id}",
    "cmd": "cmd/{name}",
    "reply": "reply/{name}",
}

ALERT_KIND = "alert"  # events of this kind go to .../alert instead of .../event/alert


@dataclasses.dataclass(frozen=True)
class Topics:
    prefix: str
    county: str
    compound: str
    gateway: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.county}/{self.compound}/{self.gateway}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/telemetry"

    @property
    def alert(self) -> str:
        return f"{self.base}/alert"

    def event(self, kind: str) -> str:
        return self.alert if kind == ALERT_KIND else f"{self.base}/event/{kind}"

    def media(self, media_id: str) -> str:
        return f"{self.base}/media/{media_id}"

    @property
    def cmd_filter(self) -> str:
        return f"{self.base}/cmd/+"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def reply(self, name: str) -> str:
        return f"{self.base}/reply/{name}"

    @property
    def reply_prefix(self) -> str:
        return f"{self.base}/reply/"


def county_filters(prefix: str = "cgw/v1", group: str = "county") -> dict[str, str]:
    """Subscriptions of a county consumer: shared for the streams, plain for the retained status."""
    share = f"$share/{group}/{prefix}/+/+/+"
    return {
        "event": f"{share}/event/#",
        "alert": f"{share}/alert",
        "telemetry": f"{share}/telemetry",
        "media": f"{share}/media/+",
        "reply": f"{share}/reply/#",
        # retained messages are not delivered on shared subscriptions (MQTT 5 4.8.2), so status is plain
        "status": f"{prefix}/+/+/+/status",
    }


def parse(topic: str, prefix: str = "cgw/v1") -> tuple[str, str, str, str, list[str]] | None:
    """topic -> (county, compound, gateway, channel, rest) or None if it is not in the namespace."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1:].split("/")
    if len(parts) < 4:
        return None
    county, compound, gateway, channel, *rest = parts
    if channel not in CHANNELS:
        return None
    return county, compound, gateway, channel, rest
