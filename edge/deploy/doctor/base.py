"""One doctor line: ✓ / ✗ / – with a plain-words summary and, for ✗, the fix."""
from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable

OK, FAIL, SKIP = "ok", "fail", "skip"
MARK = {OK: "✓", FAIL: "✗", SKIP: "–"}


@dataclasses.dataclass
class Check:
    id: str
    title: str
    status: str
    summary: str
    fix: str = ""
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def ok(id: str, title: str, summary: str, **detail) -> Check:
    return Check(id, title, OK, summary, detail=detail)


def fail(id: str, title: str, summary: str, fix: str, **detail) -> Check:
    return Check(id, title, FAIL, summary, fix, detail=detail)


def skip(id: str, title: str, summary: str, **detail) -> Check:
    return Check(id, title, SKIP, summary, detail=detail)


def call_with_deadline(fn: Callable[[], Any], deadline_s: float) -> Any:
    """Run a driver probe in a daemon thread: a probe that hangs must not hang the doctor (a thread cannot be
    killed, but a daemon thread does not keep the process alive). Raises TimeoutError or the probe's error."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True, name="doctor-probe")
    t.start()
    t.join(deadline_s)
    if t.is_alive():
        raise TimeoutError(f"no answer within {deadline_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def run_parallel(thunks: list[Callable[[], "Check"]]) -> list["Check"]:
    """Run independent checks (each already bounded by its own deadline) at once, keep their order: ten broken
    cameras must not make the installer wait ten timeouts."""
    results: list[Any] = [None] * len(thunks)

    def run(i: int, fn: Callable[[], Check]) -> None:
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True, name=f"doctor-{i}")
               for i, fn in enumerate(thunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
