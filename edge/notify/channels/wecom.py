"""WeCom (企业微信) group robot: POST {"msgtype": "markdown", "markdown": {"content": ...}} to the webhook URL
(…/cgi-bin/webhook/send?key=KEY). The answer is {"errcode": 0, "errmsg": "ok"} on success. Markdown
content is limited to 4096 bytes."""
from __future__ import annotations

from ..message import markdown
from .base import PushRequest, json_body, platform_errcode

MAX_BYTES = 4096


def build(channel, secret: str | None, facts: dict, lang: str, now_ms: int, delivery: str) -> PushRequest:
    content = markdown(facts, lang, "wecom")
    while len(content.encode("utf-8")) > MAX_BYTES:
        content = content[: len(content) - 64]
    body = json_body({"msgtype": "markdown", "markdown": {"content": content}})
    return PushRequest(str(channel.url), body, {"Content-Type": "application/json; charset=utf-8"})


def check(status: int, body: bytes) -> None:
    platform_errcode(status, body, ("errcode",), ("errmsg",))
