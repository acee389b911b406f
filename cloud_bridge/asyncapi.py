"""Generate docs/asyncapi.yaml (AsyncAPI 3.0) from the topic table and the schema files.

    python -m cloud_bridge.asyncapi          # rewrite docs/asyncapi.yaml
    python -m cloud_bridge.asyncapi --check  # exit 1 if it is stale (the tests run this)

Payloads are $refs to the JSON Schema files in cloud_bridge/schemas/ (generated from pydantic models by
schemagen.py), so the document, the schemas and the code cannot drift apart.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from ruamel.yaml import YAML

from edge import __version__
from edge.events.kinds import KINDS

from .topics import ALERT_KIND, CHANNELS

DOC = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
SCHEMAS = "../cloud_bridge/schemas"
BASE = "cgw/v1/{county}/{compound}/{gateway}"

PARAMS = {
    "county": {"description": "6-digit administrative division code of the county (gateway.county_code)"},
    "compound": {"description": "compound id assigned by the county (gateway.compound_id)"},
    "gateway": {"description": "gateway id; also the MQTT client id and the client certificate CN"},
    "kind": {"description": "event kind, e.g. access.granted (see the kind registry)",
             "enum": sorted(k for k in KINDS if k != ALERT_KIND)},
    "media_id": {"description": "media id: the MediaRef.media_id of an event, or a snapshot id from a reply"},
    "name": {"description": "command name", "enum": ["resend", "ping", "get_status", "reload_config", "snapshot"]},
}

USER_PROPS = {"type": "object", "description": "MQTT 5 user properties",
              "properties": {"seq": {"type": "string", "description": "same as payload seq"},
                             "event_id": {"type": "string", "description": "same as payload event_id"},
                             "schema": {"type": "string", "description": "envelope schema version"},
                             "resend": {"type": "string", "enum": ["1"],
                                        "description": "present when republished on a resend command"}}}


def _event_message(kind: str) -> dict:
    spec = KINDS[kind]
    return {
        "name": kind, "title": kind, "summary": spec.description, "contentType": "application/json",
        "headers": USER_PROPS,
        "payload": {"allOf": [{"$ref": f"{SCHEMAS}/envelope.json"},
                              {"properties": {"event": {"properties": {
                                  "kind": {"const": kind},
                                  "payload": {"$ref": f"{SCHEMAS}/payloads/{kind}.json"}}}}}]},
        "bindings": {"mqtt": {"qos": 1, "retain": False, "bindingVersion": "0.2.0"}},
        "x-severity": spec.severity.value, "x-priority": spec.priority.name.lower(),
    }


def build() -> dict:
    kinds = sorted(k for k in KINDS if k != ALERT_KIND)
    msgs = {f"event_{k.replace('.', '_')}": _event_message(k) for k in kinds}
    msgs["alert"] = _event_message(ALERT_KIND)
    msgs["status"] = {"name": "status", "summary": "Retained gateway state: online (birth on every connect), offline "
                      "(broker will), stopped (clean shutdown)", "contentType": "application/json",
                      "payload": {"$ref": f"{SCHEMAS}/status.json"},
                      "bindings": {"mqtt": {"qos": 1, "retain": True, "bindingVersion": "0.2.0"}}}
    msgs["telemetry"] = {"name": "telemetry", "summary": "Health every uplink.telemetry_interval_s seconds",
                         "contentType": "application/json", "payload": {"$ref": f"{SCHEMAS}/telemetry.json"},
                         "bindings": {"mqtt": {"qos": 1, "retain": False, "bindingVersion": "0.2.0"}}}
    msgs["media"] = {"name": "media", "summary": "JPEG evidence of an event or a snapshot; faces blurred",
                     "contentType": "image/jpeg",
                     "headers": {"type": "object", "properties": {
                         "media_id": {"type": "string"}, "sha256": {"type": "string"},
                         "faces_blurred": {"type": "string"}, "role": {"type": "string",
                                                                        "enum": ["evidence", "snapshot"]},
                         "event_id": {"type": "string"}, "seq": {"type": "string"}, "camera": {"type": "string"}}},
                     "payload": {"type": "string", "format": "binary", "contentMediaType": "image/jpeg",
                                 "maxLength": 524288},
                     "bindings": {"mqtt": {"qos": 1, "retain": False, "bindingVersion": "0.2.0"}}}
    msgs["command"] = {"name": "command", "summary": "Downlink command; MQTT 5 Response Topic + Correlation Data, "
                       "Message Expiry Interval recommended", "contentType": "application/json",
                       "payload": {"$ref": f"{SCHEMAS}/command.json"},
                       "correlationId": {"location": "$message.header#/correlationData"},
                       "bindings": {"mqtt": {"qos": 1, "retain": False, "bindingVersion": "0.2.0"}}}
    msgs["reply"] = {"name": "reply", "summary": "Reply to a command, with the request's Correlation Data",
                     "contentType": "application/json", "payload": {"$ref": f"{SCHEMAS}/reply.json"},
                     "correlationId": {"location": "$message.header#/correlationData"},
                     "bindings": {"mqtt": {"qos": 1, "retain": False, "bindingVersion": "0.2.0"}}}

    def ch(key: str, messages: list[str], desc: str) -> dict:
        addr = f"{BASE}/{CHANNELS[key]}"
        params = [p for p in PARAMS if "{" + p + "}" in addr]
        return {"address": addr, "description": desc,
                "parameters": {p: {"$ref": f"#/components/parameters/{p}"} for p in params},
                "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages}}

    channels = {
        "status": ch("status", ["status"], "Retained; the broker will sets it to offline"),
        "event": ch("event", [m for m in msgs if m.startswith("event_")], "Every event except alerts, QoS 1"),
        "alert": ch("alert", ["alert"], "Alert lifecycle events (kind alert)"),
        "telemetry": ch("telemetry", ["telemetry"], "Periodic health"),
        "media": ch("media", ["media"], "JPEG bytes"),
        "cmd": ch("cmd", ["command"], "Commands to the gateway"),
        "reply": ch("reply", ["reply"], "Replies from the gateway"),
    }

    def op(action: str, chan: str, desc: str, **extra) -> dict:
        d = {"action": action, "channel": {"$ref": f"#/channels/{chan}"}, "summary": desc}
        d.update(extra)
        return d

    operations = {
        "publishStatus": op("send", "status", "Gateway publishes its state (retained)"),
        "publishEvent": op("send", "event", "Gateway publishes each event from its durable outbox"),
        "publishAlert": op("send", "alert", "Gateway publishes alert lifecycle events"),
        "publishTelemetry": op("send", "telemetry", "Gateway publishes its health"),
        "publishMedia": op("send", "media", "Gateway uploads evidence and snapshots"),
        "receiveCommand": op("receive", "cmd", "Gateway executes a command and replies",
                             reply={"channel": {"$ref": "#/channels/reply"},
                                    "address": {"location": "$message.header#/responseTopic",
                                                "description": "must lie under .../reply/; else .../reply/{name}"}}),
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Compound edge gateway uplink (cgw/v1)", "version": __version__,
                 "description": "What a compound gateway publishes to, and accepts from, the county platform. "
                                "See docs/mqtt.md for the rules (ordering, de-duplication, resend, eviction). "
                                "Payload schemas: JSON Schema 2020-12 files in cloud_bridge/schemas/."},
        "defaultContentType": "application/json",
        "servers": {"county": {"host": "iot.county.example:8883", "protocol": "mqtts", "protocolVersion": "5",
                               "description": "the county's clustered MQTT 5 broker; mutual TLS",
                               "security": [{"$ref": "#/components/securitySchemes/mtls"}]}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": msgs, "parameters": PARAMS,
                       "securitySchemes": {"mtls": {"type": "X509", "description": "client certificate whose CN is "
                                                    "the gateway id; the broker ACL allows cgw/v1/+/+/<CN>/# only"}}},
    }


def render() -> str:
    y = YAML()
    y.default_flow_style = False
    y.width = 120
    buf = io.StringIO()
    buf.write("# GENERATED by `python -m cloud_bridge.asyncapi` from cloud_bridge/topics.py and cloud_bridge/schemas/.\n"
              "# Do not edit by hand; tests/test_bridge_contract.py fails when this file is stale.\n")
    y.dump(build(), buf)
    return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    text = render()
    if a.check:
        if not DOC.exists() or DOC.read_text("utf-8") != text:
            print(f"{DOC} is stale: run python -m cloud_bridge.asyncapi", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, "utf-8")
    print(DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
