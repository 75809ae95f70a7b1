"""Media objects in the Supabase Storage bucket ingest uploads to, read with the ``supabase`` client.

The bucket is private: the API reads it with the service role key and serves the bytes to its own
authenticated callers, so a reader never needs a Storage credential or a signed URL.
"""

from __future__ import annotations

import asyncio

import httpx
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException
from supabase import AsyncClientOptions, acreate_client

from api.errors import ServiceUnavailable


class BucketMedia:
    """Reads objects of one Storage bucket."""

    def __init__(self, *, url: str, service_key: str, bucket: str, timeout_s: float) -> None:
        self._url = url
        self._key = service_key
        self.bucket = bucket
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"BucketMedia(bucket={self.bucket!r})"

    def key_of(self, media_path: str) -> str | None:
        """The object key of a stored ``media_path`` (``<bucket>/<key>``), None if in another bucket."""
        bucket, sep, key = media_path.partition("/")
        return key if sep and bucket == self.bucket and key and ".." not in key.split("/") else None

    async def read(self, key: str) -> bytes | None:
        """The object's bytes, None when the bucket has no such object; ``ServiceUnavailable`` when
        Storage does not answer or refuses the API's key."""
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                httpx.AsyncClient(timeout=self._timeout_s) as http,
            ):
                options = AsyncClientOptions(
                    auto_refresh_token=False, persist_session=False, httpx_client=http
                )
                client = await acreate_client(self._url, self._key, options=options)
                return await client.storage.from_(self.bucket).download(key)
        except StorageApiError as e:
            if str(e.status) == "404":  # Storage's body says 404 (its HTTP status may be 400)
                return None
            raise ServiceUnavailable("The media bucket refused the request.") from e
        except (StorageException, httpx.HTTPError, TimeoutError) as e:
            raise ServiceUnavailable("The media bucket did not answer.") from e
