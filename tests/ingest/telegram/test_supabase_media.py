"""``SupabaseMediaStore`` against a small local stand-in for the Storage REST API (POST object)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from ingest.errors import StoreError
from ingest.telegram.media import SupabaseMediaStore, object_key
from ingest.telegram.sessions import Secret

SERVICE_KEY = "service-role-key-SECRET"


class _Storage(BaseHTTPRequestHandler):
    objects: ClassVar[dict[str, bytes]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Authorization") != f"Bearer {SERVICE_KEY}":
            self.send_response(403)
            self.end_headers()
            return
        if self.path in self.objects:  # Storage answers a duplicate key like this (x-upsert: false)
            payload = (
                b'{"statusCode":"409","error":"Duplicate","message":"The resource already exists"}'
            )
            self.send_response(400)
        else:
            self.objects[self.path] = body
            payload = b'{"Key":"ok"}'
            self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def storage_url() -> Iterator[str]:
    _Storage.objects = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Storage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_upload_once_and_duplicates_are_accepted(storage_url: str) -> None:
    store = SupabaseMediaStore(url=storage_url, service_key=Secret(SERVICE_KEY), bucket="media")
    key = object_key("ab" * 32, "image/jpeg")
    assert await store.put(key, b"bytes", mime_type="image/jpeg") == f"media/{key}"
    assert await store.put(key, b"bytes", mime_type="image/jpeg") == f"media/{key}"
    assert list(_Storage.objects) == [f"/storage/v1/object/media/{key}"]
    assert SERVICE_KEY not in repr(store)


async def test_refused_upload_is_a_store_error_without_the_key(storage_url: str) -> None:
    store = SupabaseMediaStore(url=storage_url, service_key=Secret("wrong"), bucket="media")
    with pytest.raises(StoreError) as info:
        await store.put("aa/bb/x", b"1", mime_type=None)
    assert "403" in str(info.value) and "wrong" not in str(info.value)
