"""Stored media: shown on the message page and served by the API to authenticated callers only."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import httpx
import pytest
from msgspec.structs import replace
from playwright.async_api import Page, expect

from eventlog import EventLog
from schemas import ids
from schemas.events import Media, MediaStored
from tests.browser.conftest import ADMIN_TOKEN, ConsoleStack, check_page
from tests.helpers import posted, wait_until

CHAT = -1007770000010
# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
async def stored_photo(console_stack: ConsoleStack, stack_log: EventLog) -> int:
    """A photo message whose file ingest stored in the media dir (as ``LocalMediaStore`` keys it)."""
    sha = hashlib.sha256(PNG).hexdigest()
    key = f"{sha[:2]}/{sha[2:4]}/{sha}.png"
    target = console_stack.data_dir / "media" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(PNG)
    post = posted(CHAT, 1, text="a photo")
    photo = replace(post, message=replace(post.message, media=Media(type="photo", size=len(PNG))))
    stored = MediaStored(
        event_id=ids.media_stored_id(CHAT, 1, sha, account="main"),
        account="main",
        observed_at=datetime.now(UTC),
        source="live",
        chat_id=CHAT,
        message_id=1,
        sha256=sha,
        size=len(PNG),
        mime_type="image/png",
        path=key,
    )
    await stack_log.append_many([photo, stored])

    def applied() -> bool:
        rows = console_stack.sql(
            "SELECT media_path FROM messages WHERE chat_id = %s AND message_id = 1", (CHAT,)
        )
        return rows == [(key,)]

    await wait_until(applied, timeout=30)
    return 1


async def test_a_stored_photo_is_shown_on_the_message_page(
    admin_page: Page, console_stack: ConsoleStack, stored_photo: int
) -> None:
    await admin_page.goto(f"{console_stack.url}/ui/groups/{CHAT}/messages/{stored_photo}")
    image = admin_page.get_by_role("img", name=f"photo of message {stored_photo}")
    await expect(image).to_be_visible()
    assert await image.evaluate("img => img.naturalWidth") == 1
    await check_page(admin_page, "message-media")


async def test_the_api_serves_stored_media_with_a_token_only(
    console_stack: ConsoleStack, stored_photo: int
) -> None:
    path = f"/groups/{CHAT}/messages/{stored_photo}/media"
    async with httpx.AsyncClient(base_url=console_stack.url) as client:
        anonymous = await client.get(path)
        with_token = await client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert anonymous.status_code == 401
    assert with_token.content == PNG
    assert with_token.headers["content-type"] == "image/png"
