"""One push channel = how to build the HTTP request for a message and how to read the answer.

Channels are pure functions of (channel config, message facts, time): the service does the HTTP, the
outbox and the retries, so each channel file only says what its platform's API looks like.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any


class PushError(Exception):
    """A send that did not succeed. `permanent` = retrying the same request cannot help (HTTP 4xx)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclasses.dataclass(frozen=True)
class PushRequest:
    url: str
    body: bytes
    headers: dict[str, str]


def json_body(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def http_status_problem(status: int, text: str) -> PushError | None:
    if 200 <= status < 300:
        return None
    permanent = 400 <= status < 500 and status not in (408, 425, 429)
    return PushError(f"HTTP {status}: {text[:200]}", permanent=permanent)


def platform_errcode(status: int, body: bytes, code_keys: tuple[str, ...], msg_keys: tuple[str, ...]) -> None:
    """Chat robots answer HTTP 200 with an error code in the JSON body; 0 means delivered."""
    problem = http_status_problem(status, body.decode("utf-8", "replace"))
    if problem:
        raise problem
    try:
        answer = json.loads(body)
    except ValueError:
        raise PushError(f"unexpected answer (not JSON): {body[:200]!r}") from None
    if not isinstance(answer, dict):
        raise PushError(f"unexpected answer: {answer!r:.200}")
    for key in code_keys:
        if key in answer:
            code = answer[key]
            if code in (0, "0"):
                return
            msg = next((answer[m] for m in msg_keys if m in answer), "")
            raise PushError(f"{key} {code}: {msg}")
    raise PushError(f"answer without a result code: {body[:200]!r}")
