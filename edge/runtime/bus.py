"""The event bus: one way from drivers to store/outbox to subscribers.

emit() is non-blocking (a driver is never held up by disk or uplink). A writer task group-commits pending
events every commit_interval_ms (synchronous=FULL, one fsync per batch), and only then hands them to the
subscribers (analytics, alerts, web console, uplink wake-up) — nothing is seen downstream before it is durable.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Iterable

from edge.clock import Clock
from edge.events import Event
from edge.store import Store

log = logging.getLogger("edge.bus")

Subscriber = Callable[[Event], Awaitable[None] | None]


class _Subscription:
    def __init__(self, name: str, callback: Subscriber, kinds: set[str] | None, prefixes: tuple[str, ...],
                 maxsize: int):
        self.name = name
        self.callback = callback
        self.kinds = kinds
        self.prefixes = prefixes
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.errors = 0
        self.task: asyncio.Task | None = None

    def wants(self, e: Event) -> bool:
        if self.kinds is None and not self.prefixes:
            return True
        return (self.kinds is not None and e.kind in self.kinds) or e.kind.startswith(self.prefixes)


class EventBus:
    def __init__(self, store: Store, clock: Clock, commit_interval_ms: int = 100, max_pending: int = 200_000):
        self.store = store
        self.clock = clock
        self.interval = commit_interval_ms / 1000
        self.max_pending = max_pending
        self._pending: list[tuple[Event, asyncio.Future | None]] = []
        self._subs: list[_Subscription] = []
        self._commit_listeners: list[Callable[[list[int]], None]] = []
        self._wake = asyncio.Event()
        self.committed = 0
        self.commit_failures = 0
        self.dropped_pending = 0
        self.last_error: str | None = None
        self._writer: asyncio.Task | None = None
        self._stopping = False
        self.by_kind: dict[str, int] = {}

    # ---- producer side ------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        if len(self._pending) >= self.max_pending:
            # Only reachable when the disk has refused writes for a long time; keep the newest, count the loss.
            self._pending.pop(0)
            self.dropped_pending += 1
            log.error("event buffer full while the store is failing; dropped oldest pending event",
                      extra={"dropped_total": self.dropped_pending})
        self._pending.append((event, None))
        if len(self._pending) >= 1000:
            self._wake.set()

    async def emit_durable(self, event: Event) -> None:
        """Emit and wait until the event is committed to disk."""
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((event, fut))
        await fut

    # ---- consumer side ------------------------------------------------------------------------------
    def subscribe(self, name: str, callback: Subscriber, kinds: Iterable[str] | None = None,
                  maxsize: int = 10_000) -> _Subscription:
        """Receive committed events. `kinds` may contain exact kinds or prefixes ending in '.*'."""
        exact, prefixes = None, ()
        if kinds is not None:
            kinds = list(kinds)
            exact = {k for k in kinds if not k.endswith(".*")}
            prefixes = tuple(k[:-1] for k in kinds if k.endswith(".*"))
        sub = _Subscription(name, callback, exact, prefixes, maxsize)
        self._subs.append(sub)
        if self._writer is not None:
            sub.task = asyncio.create_task(self._deliver(sub), name=f"bus-sub-{name}")
        return sub

    def unsubscribe(self, sub: _Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        if sub.task:
            sub.task.cancel()

    def on_commit(self, listener: Callable[[list[int]], None]) -> None:
        """Called (in the loop) with the outbox seqs of each committed batch; used to wake the uplink."""
        self._commit_listeners.append(listener)

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="bus-writer")
            for sub in self._subs:
                if sub.task is None:
                    sub.task = asyncio.create_task(self._deliver(sub), name=f"bus-sub-{sub.name}")

    async def stop(self) -> None:
        """Flush everything pending to disk, let subscribers drain briefly, stop tasks."""
        if self._writer:
            self._stopping = True
            self._wake.set()
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            self._writer = None
            self._stopping = False
        await self.flush()
        for sub in self._subs:
            if sub.task:
                sub.task.cancel()
                try:
                    await sub.task
                except (asyncio.CancelledError, Exception):
                    pass
                sub.task = None

    async def flush(self) -> int:
        batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            seqs = await self.store.call(self.store.insert_events, [e for e, _ in batch])
        except Exception as exc:  # disk full, I/O error: keep the events, report, retry on the next tick
            self._pending[:0] = batch
            self.commit_failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("store commit failed; will retry", extra={"error": self.last_error, "pending": len(batch)})
            raise
        self.committed += len(batch)
        for e, fut in batch:
            self.by_kind[e.kind] = self.by_kind.get(e.kind, 0) + 1
            if fut is not None and not fut.done():
                fut.set_result(None)
            for sub in self._subs:
                if sub.wants(e):
                    try:
                        sub.queue.put_nowait(e)
                    except asyncio.QueueFull:
                        sub.dropped += 1
                        if sub.dropped in (1, 10, 100) or sub.dropped % 1000 == 0:
                            log.warning("subscriber too slow; event not delivered to it (it is in the store)",
                                        extra={"subscriber": sub.name, "dropped": sub.dropped})
        for listener in self._commit_listeners:
            try:
                listener(seqs)
            except Exception:
                log.exception("commit listener failed")
        return len(batch)

    async def _write_loop(self) -> None:
        backoff = self.interval
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that races its timeout,
            # and then stop() would wait for this loop forever.
            try:
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if self._stopping:
                return
            self._wake.clear()
            try:
                await self.flush()
                backoff = self.interval
            except Exception:
                backoff = min(backoff * 2, 5.0)
                await asyncio.sleep(backoff)

    async def _deliver(self, sub: _Subscription) -> None:
        while True:
            e = await sub.queue.get()
            try:
                r = sub.callback(e)
                if asyncio.iscoroutine(r):
                    await r
            except asyncio.CancelledError:
                raise
            except Exception:
                sub.errors += 1
                log.exception("subscriber failed on an event", extra={"subscriber": sub.name, "kind": e.kind})

    def health(self) -> dict[str, Any]:
        return {
            "pending": len(self._pending), "committed": self.committed, "commit_failures": self.commit_failures,
            "dropped_pending": self.dropped_pending, "last_error": self.last_error,
            "subscribers": {s.name: {"queued": s.queue.qsize(), "dropped": s.dropped, "errors": s.errors}
                            for s in self._subs},
        }
