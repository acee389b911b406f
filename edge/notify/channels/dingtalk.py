"""DingTalk (钉钉) group robot: markdown message; with a signing secret ("加签") the URL gets
`&timestamp=<ms>&sign=<urlencoded base64(HMAC-SHA256(key=secret, msg="<ms>\\n<secret>"))>`.
The answer is {"errcode": 0, "errmsg": "ok"}; DingTalk refuses timestamps more than an hour off."""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

from ..message import headline, markdown
from .base import PushRequest, json_body, platform_errcode


def sign(secret: str, timestamp_ms: int) -> str:
    to_sign = f"{timestamp_ms}\n{secret}".encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def build(channel, secret: str | None, facts: dict, lang: str, now_ms: int, delivery: str) -> PushRequest:
    url = str(channel.url)
    if secret:
        url += ("&" if "?" in url else "?") + f"timestamp={now_ms}&sign={quote_plus(sign(secret, now_ms))}"
    body = json_body({"msgtype": "markdown",
                      "markdown": {"title": headline(facts, lang), "text": markdown(facts, lang, "dingtalk")}})
    return PushRequest(url, body, {"Content-Type": "application/json; charset=utf-8"})


def check(status: int, body: bytes) -> None:
    platform_errcode(status, body, ("errcode",), ("errmsg",))
