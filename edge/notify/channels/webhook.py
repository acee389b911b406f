"""Generic JSON webhook: the alert facts as JSON, body signed with HMAC-SHA256.

Headers: `X-Edge-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`, `X-Edge-Delivery: <id>` (the same
id on every retry, so the receiver can drop duplicates) and `X-Edge-Timestamp` (epoch seconds; also inside
the signed body as `sent_ms`, so a receiver can refuse old replays).
"""
from __future__ import annotations

import hashlib
import hmac

from ..message import plain_text
from .base import PushRequest, http_status_problem, json_body


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def build(channel, secret: str | None, facts: dict, lang: str, now_ms: int, delivery: str) -> PushRequest:
    doc = {
        "type": "alert", "delivery": delivery, "purpose": facts.get("purpose", "push"), "sent_ms": now_ms,
        "gateway_id": facts.get("gateway_id"), "compound_id": facts.get("compound_id"),
        "alert": {k: facts.get(k) for k in ("alert_id", "alert_kind", "state", "severity", "title", "zone", "place",
                                            "ts_ms", "actor", "note", "current_state")},
        "link": facts.get("link"), "text": plain_text(facts, lang),
    }
    body = json_body(doc)
    headers = {"Content-Type": "application/json; charset=utf-8", "X-Edge-Delivery": delivery,
               "X-Edge-Timestamp": str(now_ms // 1000), "User-Agent": "edge-gateway-notify"}
    if secret:
        headers["X-Edge-Signature"] = sign(secret, body)
    return PushRequest(str(channel.url), body, headers)


def check(status: int, body: bytes) -> None:
    problem = http_status_problem(status, body.decode("utf-8", "replace"))
    if problem:
        raise problem
