"""Optional media download to a content-addressed store, then ``MediaStored``.

Files are named by their sha256, so identical files are stored once. Downloads run in the
worker's media task from a bounded queue: handlers only offer jobs and never wait on the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
import os
from collections.abc import Collection
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol

import httpx

from ingest.errors import AccountUnusable, IngestError, StoreError
from ingest.seams import EventSink
from ingest.telegram.failures import FailureRecorder
from ingest.telegram.gateway import Gateway, TLMessage
from ingest.telegram.ratelimit import RateLimiter
from ingest.telegram.sessions import Secret
from ingest.telegram.threads import off_loop
from schemas import ids
from schemas.events import MediaStored, MessagePosted

log = logging.getLogger(__name__)


def object_key(sha256: str, mime_type: str | None) -> str:
    """The content-addressed key of a file: ``ab/cd/<sha256><ext>``."""
    ext = (mimetypes.guess_extension(mime_type) if mime_type else None) or ""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{ext}"


class MediaStore(Protocol):
    """Where media bytes go; ``put`` is idempotent per key."""

    async def put(self, key: str, data: bytes, *, mime_type: str | None) -> str:
        """Store ``data`` under ``key`` unless present; return the stored path/URL-less key."""
        ...


class LocalMediaStore:
    """Files under a directory (default ``<data dir>/media``), written atomically."""

    def __init__(self, *, root: Path, executor: Executor | None = None) -> None:
        self._root = root
        self._executor = executor  # ingest_threads(); None: the default pool

    async def put(self, key: str, data: bytes, *, mime_type: str | None) -> str:
        """Write ``data`` to ``root/key`` if absent (temp file + rename)."""
        path = self._root / key

        def run() -> None:
            if path.exists():
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

        try:
            await off_loop(self._executor, run)
        except OSError as e:
            raise StoreError(f"media write {key}: {type(e).__name__}") from e
        return str(path)


class SupabaseMediaStore:
    """Objects in a Supabase Storage bucket (REST ``/storage/v1/object``); existing keys are kept."""

    def __init__(
        self, *, url: str, service_key: Secret, bucket: str, timeout_s: float = 60.0
    ) -> None:
        self._base = url.rstrip("/") + "/storage/v1/object"
        self._key = service_key
        self._bucket = bucket
        self._timeout = timeout_s

    def __repr__(self) -> str:
        return f"SupabaseMediaStore(bucket={self._bucket!r})"

    async def put(self, key: str, data: bytes, *, mime_type: str | None) -> str:
        """Upload unless the object exists (Storage answers 409/400 'Duplicate' then)."""
        headers = {
            "Authorization": f"Bearer {self._key.reveal()}",
            "x-upsert": "false",
            "Content-Type": mime_type or "application/octet-stream",
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                resp = await client.post(
                    f"{self._base}/{self._bucket}/{key}", content=data, headers=headers
                )
        except httpx.HTTPError as e:
            raise StoreError(f"media upload {key}: {type(e).__name__}") from e
        if resp.status_code >= 400 and not (
            resp.status_code in (400, 409) and "Duplicate" in resp.text
        ):
            raise StoreError(f"media upload {key}: HTTP {resp.status_code}")
        return f"{self._bucket}/{key}"


@dataclass(frozen=True, slots=True)
class _Job:
    event: MessagePosted
    message: TLMessage


class MediaDownloader:
    """Filters, downloads, stores and records media of newly seen messages for one account."""

    def __init__(
        self,
        *,
        account: str,
        gateway: Gateway,
        limiter: RateLimiter,
        store: MediaStore,
        sink: EventSink,
        types: Collection[str],
        max_bytes: int,
        queue_size: int = 1000,
    ) -> None:
        self._account = account
        self._gateway = gateway
        self._limiter = limiter
        self._store = store
        self._sink = sink
        self._types = set(types)
        self._max_bytes = max_bytes
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self.stored = 0
        self.skipped = 0
        self.failed = 0
        self._failures = FailureRecorder(
            account=account, sink=sink, clock=lambda: datetime.now(UTC)
        )

    def offer(self, event: MessagePosted, message: object) -> None:
        """Queue the message's media if it passes the type and size filters (never blocks)."""
        media = event.message.media
        if media is None or media.type not in self._types or event.chat_id is None:
            return
        if media.size is not None and media.size > self._max_bytes:
            self.skipped += 1
            return
        try:
            self._queue.put_nowait(_Job(event, message))
        except asyncio.QueueFull:
            self.skipped += 1  # media is optional; the message itself is already recorded
            log.warning(
                "media queue full: skipping media of %s/%s", event.chat_id, event.message.message_id
            )

    @property
    def pending(self) -> int:
        """Jobs waiting for download."""
        return self._queue.qsize()

    async def run(self) -> None:
        """Process jobs until cancelled; a failed download is recorded as the group's error and
        skipped (the message itself is already in the log)."""
        while True:
            job = await self._queue.get()
            try:
                await self.process(job.event, job.message)
            except AccountUnusable:
                raise  # the account stops; not this download's failure
            except IngestError as e:
                self.failed += 1
                self._failures.record(
                    e,
                    "media",
                    chat_id=job.event.chat_id,
                    what=f"media download of message {job.event.message.message_id}",
                    source=job.event.source,
                )
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued job was processed."""
        await self._queue.join()

    async def process(self, event: MessagePosted, message: TLMessage) -> MediaStored | None:
        """Download one message's media, store it, submit ``MediaStored``."""
        assert event.chat_id is not None
        data = await self._limiter.call(
            "upload.getFile",
            partial(self._gateway.download_media, message, max_bytes=self._max_bytes),
            chat_id=event.chat_id,
            source=event.source,
        )
        if data is None:
            self.skipped += 1
            return None
        media = event.message.media
        mime = media.mime_type if media is not None else None
        sha = hashlib.sha256(data).hexdigest()
        path = await self._store.put(object_key(sha, mime), data, mime_type=mime)
        stored = MediaStored(
            event_id=ids.media_stored_id(
                event.chat_id, event.message.message_id, sha, account=self._account
            ),
            account=self._account,
            observed_at=datetime.now(UTC),
            source=event.source,
            chat_id=event.chat_id,
            message_id=event.message.message_id,
            sha256=sha,
            size=len(data),
            mime_type=mime,
            path=path,
        )
        self._sink.submit(stored)
        self.stored += 1
        return stored
