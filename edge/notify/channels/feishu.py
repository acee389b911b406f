"""Feishu / Lark (飞书) custom bot: a rich-text ("post") message; with a signing secret the body carries
`timestamp` (epoch seconds, as a string) and `sign` = base64(HMAC-SHA256(key="<ts>\\n<secret>", msg=b"")).
The answer is {"code": 0, "msg": "success"} (older deployments: {"StatusCode": 0})."""
from __future__ import annotations

import base64
import hashlib
import hmac

from ..message import headline, lines
from .base import PushRequest, json_body, platform_errcode


def sign(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode("utf-8")
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def build(channel, secret: str | None, facts: dict, lang: str, now_ms: int, delivery: str) -> PushRequest:
    from edge.web.i18n import t

    sep = "：" if lang == "zh" else ": "
    content = [[{"tag": "text", "text": f"{k}{sep}{v}"}] for k, v in lines(facts, lang)]
    if facts.get("link"):
        content.append([{"tag": "a", "text": t(lang, "push.open"), "href": facts["link"]}])
    doc: dict = {}
    if secret:
        ts = now_ms // 1000
        doc |= {"timestamp": str(ts), "sign": sign(secret, ts)}
    doc |= {"msg_type": "post", "content": {"post": {"zh_cn" if lang == "zh" else "en_us": {
        "title": headline(facts, lang), "content": content}}}}
    return PushRequest(str(channel.url), json_body(doc), {"Content-Type": "application/json; charset=utf-8"})


def check(status: int, body: bytes) -> None:
    platform_errcode(status, body, ("code", "StatusCode"), ("msg", "StatusMessage"))
