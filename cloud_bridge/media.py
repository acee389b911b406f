"""Uploads of event evidence and command snapshots on .../media/{media_id} (JPEG bytes, MQTT 5 content type).

Queue: uplink_media rows are created in the same transaction that marks their event sent, so an image is never
uploaded before its event and never forgotten across restarts. Faces are blurred first (edge.privacy); if
blurring fails the image is NOT uploaded (state 'blocked', counted, logged). Images over media_max_bytes are
re-encoded smaller; if that still does not fit they are not uploaded (state 'too_large').
One upload in flight at a time: media must never crowd out events.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
from typing import TYPE_CHECKING

from edge.events import uuid7

from . import outbox
from .aio import ConnectFailed, publish_properties

if TYPE_CHECKING:
    from .uplink import Uplink

log = logging.getLogger("cloud_bridge.media")


class MediaUploader:
    def __init__(self, uplink: "Uplink"):
        self.up = uplink
        self._kick = asyncio.Event()
        self.c = collections.Counter()

    def kick(self) -> None:
        self._kick.set()

    def health(self) -> dict:
        return dict(self.c)

    def _prepare(self, jpeg: bytes) -> tuple[bytes, int]:
        """Blur faces and fit the size cap (runs in a worker thread: it is CPU work)."""
        from edge.privacy import PrivacyError, blur_faces, fit_jpeg

        cfg = self.up.cfg
        faces = 0
        if cfg.blur_faces and self.up.config.alerts.blur_faces_upload:
            jpeg, faces = blur_faces(jpeg)
        data = fit_jpeg(jpeg, cfg.media_max_bytes)
        if data is None:
            raise PrivacyError(f"image does not fit media_max_bytes={cfg.media_max_bytes} even re-encoded")
        return data, faces

    async def _publish(self, media_id: str, data: bytes, faces: int, user: list[tuple[str, str]]) -> None:
        up = self.up
        props = publish_properties(content_type="image/jpeg", utf8=False, user=user + [
            ("media_id", media_id), ("sha256", hashlib.sha256(data).hexdigest()), ("faces_blurred", str(faces))])
        fut = up.publish_aux(up.topics.media(media_id), data, props=props, label="media", want_ack=True)
        if fut is None:
            raise ConnectFailed("not connected")
        async with asyncio.timeout(30):
            await fut

    async def upload_snapshot(self, camera: str, jpeg: bytes) -> dict:
        from edge.privacy import PrivacyError
        from .commands import Rejected

        try:
            data, faces = await asyncio.get_running_loop().run_in_executor(None, self._prepare, jpeg)
        except PrivacyError as exc:
            self.c["blocked"] += 1
            log.error("snapshot not uploaded: face blurring failed", extra={"camera": camera, "error": str(exc)})
            raise Rejected("failed", f"snapshot not uploaded: {exc}") from None
        media_id = uuid7()
        await self._publish(media_id, data, faces, [("role", "snapshot"), ("camera", camera)])
        self.c["snapshots"] += 1
        return {"media_id": media_id, "topic": self.up.topics.media(media_id), "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "faces_blurred": faces}

    async def run(self) -> None:
        from edge.privacy import PrivacyError

        up = self.up
        store = up.ctx.store
        while True:
            if not up.connected:
                await asyncio.sleep(0.5)
                continue
            job = await store.call(outbox.next_media, store)
            if job is None:
                self._kick.clear()
                try:  # asyncio.timeout: wait_for can swallow a racing cancel on Python 3.11
                    async with asyncio.timeout(5.0):
                        await self._kick.wait()
                except TimeoutError:
                    pass
                continue
            row_id, event_id, seq, media_id = job
            found = await store.call(store.get_media, media_id)
            now = up.ctx.clock.time_ms()
            if found is None:
                self.c["missing"] += 1
                await store.call(outbox.finish_media, store, row_id, "missing", now, "media file not in the store")
                continue
            _, jpeg = found
            try:
                data, faces = await asyncio.get_running_loop().run_in_executor(None, self._prepare, jpeg)
            except PrivacyError as exc:
                self.c["blocked"] += 1
                log.error("media not uploaded: face blurring failed", extra={"media_id": media_id, "error": str(exc)})
                await store.call(outbox.finish_media, store, row_id, "blocked", now, str(exc)[:200])
                continue
            try:
                await self._publish(media_id, data, faces, [("role", "evidence"), ("event_id", event_id),
                                                            ("seq", str(seq or 0))])
            except (ConnectFailed, asyncio.TimeoutError) as exc:
                self.c["retry"] += 1
                log.info("media upload will be retried", extra={"media_id": media_id, "error": str(exc)})
                await asyncio.sleep(1.0)
                continue
            self.c["uploaded"] += 1
            await store.call(outbox.finish_media, store, row_id, "sent", up.ctx.clock.time_ms())
