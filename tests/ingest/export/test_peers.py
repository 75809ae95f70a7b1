"""Export ids become Telethon marked ids, so imported and live events share event ids."""

from __future__ import annotations

import pytest
from telethon import utils
from telethon.tl import types

from ingest.export.peers import chat_identity, parse_peer
from schemas.ids import posted_id


@pytest.mark.parametrize(
    ("chat_type", "peer", "kind"),
    [
        ("public_supergroup", types.PeerChannel(1730156619), "supergroup"),
        ("private_supergroup", types.PeerChannel(1730156619), "supergroup"),
        ("public_channel", types.PeerChannel(1730156619), "channel"),
        ("private_channel", types.PeerChannel(1730156619), "channel"),
        ("private_group", types.PeerChat(1730156619), "group"),
        ("personal_chat", types.PeerUser(1730156619), "private"),
        ("bot_chat", types.PeerUser(1730156619), "bot"),
        ("saved_messages", types.PeerUser(1730156619), "saved"),
        ("replies", types.PeerUser(1730156619), "bot"),
    ],
)
def test_chat_id_is_marked_like_telethon(chat_type: str, peer: object, kind: str) -> None:
    assert chat_identity(chat_type, 1730156619) == (utils.get_peer_id(peer), kind)


def test_string_chat_id_of_older_exports_is_accepted() -> None:
    assert chat_identity("private_supergroup", "1234") == (-1000000001234, "supergroup")


def test_unknown_chat_type_gives_no_identity() -> None:
    assert chat_identity("", 1234) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user123", (123, "user")),
        ("channel123", (-1000000000123, "channel")),
        ("chat123", (-123, "chat")),
        (123, (123, "user")),  # very old exports: a bare number names a user
        ("123", (123, "user")),
        ("user", None),
        (None, None),
        ("group5", None),
    ],
)
def test_peer_refs_become_marked_ids(raw: object, expected: object) -> None:
    assert parse_peer(raw) == expected


def test_posted_id_of_an_imported_message_equals_the_live_one() -> None:
    live_chat_id = utils.get_peer_id(types.PeerChannel(1730156619))
    imported = chat_identity("public_supergroup", 1730156619)
    assert imported is not None
    assert posted_id(imported[0], 5135, account="main") == posted_id(
        live_chat_id, 5135, account="main"
    )
