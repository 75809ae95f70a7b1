"""Forum topics: listed with their current names from the projected messages; a topic's messages
are the ones Telegram threads under it."""

from __future__ import annotations

from datetime import timedelta

from schemas import ids
from schemas.events import MessagePosted, MessageSnapshot, ReplyTo, ServiceAction
from tests.api.conftest import RunningApi
from tests.api.rows import BASE_DATE
from tests.projector.conftest import project_to_end

CHAT = -1001234567890


def _post(
    message_id: int,
    *,
    text: str = "",
    action: ServiceAction | None = None,
    reply_to: ReplyTo | None = None,
) -> MessagePosted:
    return MessagePosted(
        event_id=ids.posted_id(CHAT, message_id, account="main"),
        account="main",
        observed_at=BASE_DATE,
        source="live",
        chat_id=CHAT,
        message=MessageSnapshot(
            message_id=message_id,
            date=BASE_DATE + timedelta(minutes=message_id),
            text=text,
            action=action,
            reply_to=reply_to,
        ),
    )


def _in_topic(topic: int, reply_to: int | None = None) -> ReplyTo:
    if reply_to is None:
        return ReplyTo(message_id=topic, forum_topic=True)
    return ReplyTo(message_id=reply_to, top_id=topic, forum_topic=True)


async def _forum(api: RunningApi) -> None:
    await api.event_log.append_many(
        [
            _post(10, action=ServiceAction(type="topic_create", title="Homework")),
            _post(11, text="first", reply_to=_in_topic(10)),
            _post(12, text="a reply", reply_to=_in_topic(10, reply_to=11)),
            _post(13, action=ServiceAction(type="topic_create", title="Exams")),
            _post(14, text="elsewhere", reply_to=_in_topic(13)),
            _post(15, action=ServiceAction(type="topic_edit", title="HW"), reply_to=_in_topic(10)),
            _post(16, text="not in a topic"),
        ]
    )
    await project_to_end(api.event_log, api.database_url)


async def test_topics_are_listed_with_their_newest_name(api: RunningApi) -> None:
    await _forum(api)
    async with api.client() as client:
        response = await client.get(f"/groups/{CHAT}/topics")
    assert response.status_code == 200
    assert [(t["topic_id"], t["title"], t["message_count"]) for t in response.json()["items"]] == [
        (10, "HW", 4),
        (13, "Exams", 2),
    ]


async def test_a_topics_messages_are_those_threaded_under_it(api: RunningApi) -> None:
    await _forum(api)
    async with api.client() as client:
        response = await client.get(f"/groups/{CHAT}/topics/10/messages")
    assert response.status_code == 200
    assert [m["message_id"] for m in response.json()["items"]] == [15, 12, 11, 10]
