"""Media from the Supabase Storage bucket, through the API with auth (the ``supabase`` client).

Supabase cannot be reached here, so a small Storage stand-in on loopback answers
``GET /storage/v1/object/<bucket>/<key>`` the way Storage documents it: the object's bytes for the
service role key, a JSON error with ``statusCode`` 404 for a missing object, 403 for another key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import psycopg
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aaltohub.embedded.process import free_port
from aaltohub.service_api import SignalFreeServer
from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import ADMIN_TOKEN, start_api, stop_api
from tests.helpers import wait_until

SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2VydmljZQ"
CHAT = -1001234500001
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
KEY = "ab/cd/abcd0123.png"


class Storage:
    """Objects of the ``media`` bucket, and who asked for them."""

    def __init__(self) -> None:
        self.objects = {f"media/{KEY}": PNG}
        self.authorizations: list[str] = []

    def app(self) -> Starlette:
        """The stand-in's HTTP app."""
        return Starlette(
            routes=[Route("/storage/v1/object/{path:path}", self.get_object, methods=["GET"])]
        )

    async def get_object(self, request: Request) -> Response:
        self.authorizations.append(request.headers.get("authorization", ""))
        if request.headers.get("authorization") != f"Bearer {SERVICE_KEY}":
            return JSONResponse(
                {"statusCode": "403", "error": "Unauthorized", "message": "invalid signature"},
                status_code=400,
            )
        data = self.objects.get(request.path_params["path"])
        if data is None:
            return JSONResponse(
                {"statusCode": "404", "error": "not_found", "message": "Object not found"},
                status_code=400,
            )
        return Response(data, media_type="image/png")


@pytest.fixture
def storage() -> Storage:
    """The stand-in's state."""
    return Storage()


@pytest.fixture
async def storage_url(storage: Storage) -> AsyncIterator[str]:
    """The Storage stand-in on a free loopback port."""
    port = free_port()
    server = SignalFreeServer(  # pytest keeps SIGINT/SIGTERM
        uvicorn.Config(storage.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=15)


@pytest.fixture
async def bucket_api(
    api_config: ApiConfig, event_log: EventLog, storage_url: str
) -> AsyncIterator[str]:
    """An API reading media from the bucket, with two messages pointing into it."""
    del event_log  # the stream exists before the API starts
    config = replace(
        api_config,
        supabase_url=storage_url,
        media_bucket="media",
        supabase_service_key=SecretStr(SERVICE_KEY),
    )
    url = config.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for message_id, path in ((1, f"media/{KEY}"), (2, "media/ab/cd/gone.png")):
            await conn.execute(
                "INSERT INTO messages (chat_id, message_id, account, date, text, source, first_seq, "
                "last_seq, observed_at, media_path, media_type) VALUES "
                "(%s, %s, 'main', now(), '', 'live', 1, 1, now(), %s, 'photo')",
                (CHAT, message_id, path),
            )
    server, task, api_url = await start_api(config)
    try:
        yield api_url
    finally:
        await stop_api(server, task)


async def test_media_in_the_bucket_is_served_to_a_signed_in_caller_only(
    bucket_api: str, storage: Storage
) -> None:
    path = f"/groups/{CHAT}/messages/1/media"
    async with httpx.AsyncClient(base_url=bucket_api, timeout=10) as client:
        anonymous = await client.get(path)
        served = await client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert anonymous.status_code == 401
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert storage.authorizations == [f"Bearer {SERVICE_KEY}"]  # the API's key, not the caller's


async def test_an_object_missing_from_the_bucket_is_404(bucket_api: str) -> None:
    async with httpx.AsyncClient(base_url=bucket_api, timeout=10) as client:
        missing = await client.get(
            f"/groups/{CHAT}/messages/2/media",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert missing.status_code == 404
