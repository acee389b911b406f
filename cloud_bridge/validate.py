"""Validate uplink messages against the JSON Schemas in cloud_bridge/schemas/ (consumer side).

Used by the county simulator and the contract tests; a county can use the same files with any JSON Schema
2020-12 validator. Returns a list of problems (empty = valid) instead of raising.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from .topics import parse

try:  # Rust validator, ~100x faster; the county simulator validates every message it receives
    import jsonschema_rs as _rs
except ImportError:  # pragma: no cover - plain jsonschema gives the same verdicts, slower
    _rs = None

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
JPEG_MAGIC = b"\xff\xd8\xff"


@functools.lru_cache(maxsize=None)
def validator(rel: str):
    p = SCHEMA_DIR / rel
    if not p.exists():
        return None
    schema = json.loads(p.read_text("utf-8"))
    if _rs is not None:
        return _rs.validator_for(schema)
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)


def _errors(rel: str, doc) -> list[str]:
    v = validator(rel)
    if v is None:
        return [f"no schema {rel}"]
    if v.is_valid(doc):
        return []
    out = []
    for e in v.iter_errors(doc):
        path = getattr(e, "instance_path", None) or getattr(e, "absolute_path", None) or []
        out.append(f"{rel}: {'/'.join(map(str, path)) or '(root)'}: {e.message}")
    return out[:5]


def validate_message(topic: str, payload: bytes, props: dict | None = None, prefix: str = "cgw/v1") -> list[str]:
    """props: {"content_type": ..., "user": {...}} as received (MQTT 5 properties)."""
    props = props or {}
    where = parse(topic, prefix)
    if where is None:
        return [f"topic {topic!r} is not in the {prefix} namespace"]
    county, compound, gateway, channel, rest = where
    if channel == "media":
        probs = []
        if props.get("content_type") != "image/jpeg":
            probs.append(f"media content type {props.get('content_type')!r} is not image/jpeg")
        if not payload.startswith(JPEG_MAGIC):
            probs.append("media payload is not a JPEG")
        want = (props.get("user") or {}).get("sha256")
        if want and hashlib.sha256(payload).hexdigest() != want:
            probs.append("media sha256 user property does not match the bytes")
        return probs
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"{channel}: payload is not JSON ({exc})"]
    if props.get("content_type") not in (None, "application/json"):
        return [f"{channel}: content type {props.get('content_type')!r}"]
    if channel in ("event", "alert"):
        probs = _errors("envelope.json", doc)
        if probs:
            return probs
        ev = doc["event"]
        kind = ev["kind"]
        if channel == "event" and rest != [kind]:
            probs.append(f"topic kind {'/'.join(rest)!r} differs from event.kind {kind!r}")
        if channel == "alert" and kind != "alert":
            probs.append(f".../alert carries kind {kind!r}")
        if doc["gateway_id"] != gateway or ev["gateway_id"] != gateway:
            probs.append("gateway_id differs from the topic")
        if doc["event_id"] != ev["id"]:
            probs.append("event_id differs from event.id")
        user = props.get("user")
        if user is not None and (user.get("seq") != str(doc["seq"]) or user.get("event_id") != doc["event_id"]):
            probs.append("seq/event_id user properties differ from the payload")
        probs += _errors(f"payloads/{kind}.json", ev["payload"])
        return probs
    if channel == "status":
        probs = _errors("status.json", doc)
        return probs or ([] if doc["gateway_id"] == gateway else ["status gateway_id differs from the topic"])
    if channel == "telemetry":
        return _errors("telemetry.json", doc)
    if channel == "reply":
        probs = _errors("reply.json", doc)
        if not probs and doc.get("command") == "resend" and doc.get("ok"):
            probs += _errors("results/resend.json", doc["result"])
        return probs
    if channel == "cmd":
        probs = _errors("command.json", doc)
        if not probs and rest and validator(f"args/{rest[0]}.json") is not None:
            probs += _errors(f"args/{rest[0]}.json", doc.get("args", {}))
        return probs
    return [f"unknown channel {channel}"]
