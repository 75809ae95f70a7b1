"""Deterministic event ids: one id per Telegram fact, different facts never collide."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ids
from schemas.events import Entity, Media, MessageSnapshot

WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CHANNEL = -1001234567890
BASIC_GROUP = -4567


def _snapshot(text: str, edit_s: int = 0) -> MessageSnapshot:
    return MessageSnapshot(
        message_id=5,
        date=WHEN,
        edit_date=datetime.fromtimestamp(1_800_000_000 + edit_s, UTC),
        text=text,
    )


def test_same_post_seen_live_and_in_an_import_has_one_id() -> None:
    assert ids.posted_id(CHANNEL, 10, account="main") == ids.posted_id(CHANNEL, 10, account="main")


def test_same_edit_observed_twice_has_one_id() -> None:
    assert ids.edited_id(CHANNEL, _snapshot("new"), account="main") == ids.edited_id(
        CHANNEL, _snapshot("new"), account="main"
    )


def test_edits_with_different_content_or_time_differ() -> None:
    assert (
        len(
            {
                ids.edited_id(CHANNEL, _snapshot("a"), account="main"),
                ids.edited_id(CHANNEL, _snapshot("b"), account="main"),
                ids.edited_id(CHANNEL, _snapshot("a", edit_s=1), account="main"),
            }
        )
        == 3
    )


def test_basic_group_delete_has_one_id_with_or_without_chat_id() -> None:
    live = ids.deleted_id(account="main", chat_id=None, message_id=77)
    gapfill = ids.deleted_id(account="main", chat_id=BASIC_GROUP, message_id=77)
    assert live == gapfill


def test_channel_deletes_are_scoped_by_channel() -> None:
    assert ids.deleted_id(account="main", chat_id=CHANNEL, message_id=7) != ids.deleted_id(
        account="main", chat_id=CHANNEL - 1, message_id=7
    )
    assert ids.deleted_id(account="a", chat_id=CHANNEL, message_id=7) == ids.deleted_id(
        account="b", chat_id=CHANNEL, message_id=7
    )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(2**62), 2**62), st.integers(1, 2**31)),
        min_size=2,
        max_size=50,
        unique=True,
    )
)
def test_distinct_posts_never_share_an_id(pairs: list[tuple[int, int]]) -> None:
    assert len({ids.posted_id(chat, message, account="main") for chat, message in pairs}) == len(
        pairs
    )


def test_different_facts_with_the_same_parts_never_collide() -> None:
    facts = {
        ids.posted_id(CHANNEL, 5, account="main"),
        ids.deleted_id(account="main", chat_id=CHANNEL, message_id=5),
        ids.reactions_id(CHANNEL, 5, (), account="main"),
        ids.media_stored_id(CHANNEL, 5, "", account="main"),
        ids.discovered_id("main", CHANNEL),
        ids.left_id("main", CHANNEL),
        ids.backfill_completed_id("main", CHANNEL, WHEN),
    }
    assert len(facts) == 7


def test_occurrences_are_unique_per_call() -> None:
    assert ids.occurrence_id("ingest.started") != ids.occurrence_id("ingest.started")


def test_basic_group_message_ids_of_two_accounts_are_different_facts() -> None:
    assert ids.posted_id(BASIC_GROUP, 7, account="a") != ids.posted_id(BASIC_GROUP, 7, account="b")
    assert ids.posted_id(42, 7, account="a") != ids.posted_id(42, 7, account="b")


def test_channel_message_id_is_one_fact_whoever_sees_it() -> None:
    assert ids.posted_id(CHANNEL, 7, account="a") == ids.posted_id(CHANNEL, 7, account="b")
    assert ids.message_scope("a", CHANNEL) == ""
    assert ids.message_scope("a", BASIC_GROUP) == "a"
    assert ids.message_scope("a", None) == "a"


def test_formatting_only_edit_in_the_same_second_is_a_new_fact() -> None:
    plain = _snapshot("same text")
    bold = msgspec.structs.replace(plain, entities=(Entity(type="bold", offset=0, length=4),))
    assert ids.edited_id(CHANNEL, plain, account="main") != ids.edited_id(
        CHANNEL, bold, account="main"
    )


def test_content_digests_keep_their_stored_values() -> None:
    # Stored in messages.content_hash and message_versions: a faster digest must give the same values.
    def snap(text: str, media: Media | None = None) -> MessageSnapshot:
        return MessageSnapshot(message_id=1, date=WHEN, text=text, media=media)

    assert ids.content_digest(snap("hei ✓")) == "bb28562b1e65156abfa915503d32eae3"
    assert ids.content_digest(snap("")) == "01d40548a78e70851885ebb185b56016"
    photo = Media(type="photo", file_unique_id="f1")
    assert ids.content_digest(snap("x", photo)) == "8556d15cb60cc9efa89bb9b2cc6dcaaf"
