"""Pure conversion of Telethon objects: a media descriptor for every media type, entities, senders."""

from __future__ import annotations

import pytest
from telethon.tl import types

from ingest.telegram.convert import media_of, peer_ref_of, snapshot_of

from .tl import BASE, CHANNEL_MARKED, channel_message, photo


def _doc(
    *attrs: object, mime: str = "application/octet-stream", size: int = 100
) -> types.MessageMediaDocument:
    return types.MessageMediaDocument(
        document=types.Document(
            id=1,
            access_hash=1,
            file_reference=b"",
            date=BASE,
            mime_type=mime,
            size=size,
            dc_id=2,
            attributes=list(attrs),
        )
    )


STICKERSET = types.InputStickerSetEmpty()


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        (types.MessageMediaPhoto(photo=photo()), ("photo", 1280, 960, 120_000)),
        (_doc(types.DocumentAttributeVideo(duration=3.5, w=640, h=360)), ("video", 640, 360, 100)),
        (
            _doc(types.DocumentAttributeVideo(duration=3, w=240, h=240, round_message=True)),
            ("video_note", 240, 240, 100),
        ),
        (_doc(types.DocumentAttributeAudio(duration=5, voice=True)), ("voice", None, None, 100)),
        (
            _doc(types.DocumentAttributeAudio(duration=200, title="Song")),
            ("audio", None, None, 100),
        ),
        (
            _doc(
                types.DocumentAttributeSticker(alt="😀", stickerset=STICKERSET),
                types.DocumentAttributeImageSize(w=512, h=512),
            ),
            ("sticker", 512, 512, 100),
        ),
        (
            _doc(
                types.DocumentAttributeAnimated(),
                types.DocumentAttributeVideo(duration=2, w=320, h=200),
            ),
            ("animation", 320, 200, 100),
        ),
        (
            _doc(types.DocumentAttributeFilename(file_name="notes.pdf"), mime="application/pdf"),
            ("document", None, None, 100),
        ),
    ],
)
def test_file_media_descriptors(media: object, expected: tuple[object, ...]) -> None:
    m = media_of(media)
    assert m is not None
    assert (m.type, m.width, m.height, m.size) == expected
    assert m.file_unique_id is not None


def test_non_file_media_descriptors() -> None:
    poll = types.MessageMediaPoll(
        poll=types.Poll(
            id=5,
            question=types.TextWithEntities(text="Lunch?", entities=[]),
            hash=0,
            answers=[
                types.PollAnswer(text=types.TextWithEntities(text="Yes", entities=[]), option=b"1"),
                types.PollAnswer(text=types.TextWithEntities(text="No", entities=[]), option=b"2"),
            ],
        ),
        results=types.PollResults(),
    )
    geo = types.MessageMediaGeo(geo=types.GeoPoint(long=24.83, lat=60.18, access_hash=0))
    venue = types.MessageMediaVenue(
        geo=types.GeoPoint(long=24.8, lat=60.1, access_hash=0),
        title="Otaniemi",
        address="",
        provider="",
        venue_id="",
        venue_type="",
    )
    contact = types.MessageMediaContact(
        phone_number="", first_name="Ada", last_name="L", vcard="", user_id=0
    )
    page = types.MessageMediaWebPage(
        webpage=types.WebPage(
            id=9,
            url="https://aalto.fi",
            display_url="aalto.fi",
            hash=0,
            title="Aalto",
            site_name="Aalto University",
            description="Where science and art meet",
        )
    )
    dice = types.MessageMediaDice(value=3, emoticon="🎲")
    got = [media_of(x) for x in (poll, geo, venue, contact, page, dice)]
    assert [(m.type if m else None) for m in got] == [
        "poll",
        "location",
        "location",
        "contact",
        "webpage",
        "other",
    ]
    assert got[0] is not None and (got[0].poll_question, got[0].poll_answers) == (
        "Lunch?",
        ("Yes", "No"),
    )
    assert got[1] is not None and (got[1].latitude, got[1].longitude) == (60.18, 24.83)
    assert got[2] is not None and got[2].title == "Otaniemi"
    assert got[3] is not None and got[3].title == "Ada L"
    assert got[4] is not None and (got[4].url, got[4].site_name, got[4].description) == (
        "https://aalto.fi",
        "Aalto University",
        "Where science and art meet",
    )
    assert media_of(types.MessageMediaEmpty()) is None


def test_entities_keep_utf16_offsets_and_their_fields() -> None:
    msg = channel_message(
        1,
        "😀 @bob code",
        entities=[
            types.MessageEntityMentionName(offset=3, length=4, user_id=11),
            types.MessageEntityPre(offset=8, length=4, language="python"),
            types.MessageEntityCustomEmoji(offset=0, length=2, document_id=777),
        ],
    )
    snap = snapshot_of(msg)
    assert [(e.type, e.offset, e.length) for e in snap.entities] == [
        ("mention_name", 3, 4),
        ("pre", 8, 4),
        ("custom_emoji", 0, 2),
    ]
    assert (
        snap.entities[0].user_id,
        snap.entities[1].language,
        snap.entities[2].custom_emoji_id,
    ) == (11, "python", 777)


def test_channel_post_is_sent_by_the_channel_with_names_from_entities() -> None:
    chan = types.Channel(
        id=777,
        title="News",
        photo=types.ChatPhotoEmpty(),
        date=BASE,
        access_hash=3,
        username="news",
        broadcast=True,
    )
    post = types.Message(
        id=5,
        peer_id=types.PeerChannel(777),
        date=BASE,
        message="post",
        post=True,
        post_author="Editor",
    )
    snap = snapshot_of(post, {CHANNEL_MARKED: chan})
    assert snap.sender is not None
    assert (snap.sender.id, snap.sender.kind, snap.sender.display_name, snap.sender.username) == (
        CHANNEL_MARKED,
        "channel",
        "News",
        "news",
    )
    ref = peer_ref_of(chan)
    assert ref is not None and (ref.peer_id, ref.chat_kind, ref.access_hash) == (
        CHANNEL_MARKED,
        "channel",
        3,
    )


def test_peer_refs_of_groups_users_and_left_chats() -> None:
    mega = types.Channel(
        id=1,
        title="G",
        photo=types.ChatPhotoEmpty(),
        date=BASE,
        megagroup=True,
        forum=True,
        access_hash=1,
    )
    basic = types.Chat(
        id=55, title="B", photo=types.ChatPhotoEmpty(), participants_count=4, date=BASE, version=1
    )
    left = types.Chat(
        id=56,
        title="L",
        photo=types.ChatPhotoEmpty(),
        participants_count=4,
        date=BASE,
        version=1,
        left=True,
    )
    bot = types.User(id=9, bot=True, access_hash=2, first_name="B")
    refs = [peer_ref_of(x) for x in (mega, basic, left, bot)]
    assert [(r.peer_id, r.kind, r.chat_kind, r.forum, r.active) for r in refs if r] == [
        (-1_000_000_000_001, "channel", "supergroup", True, True),
        (-55, "chat", "group", False, True),
        (-56, "chat", "group", False, False),
        (9, "user", "bot", False, True),
    ]


def test_audio_keeps_its_performer_and_title() -> None:
    doc = types.Document(
        id=77,
        access_hash=1,
        file_reference=b"",
        date=BASE,
        mime_type="audio/mpeg",
        size=3_000_000,
        dc_id=2,
        attributes=[
            types.DocumentAttributeAudio(duration=200, title="Finlandia", performer="Sibelius"),
            types.DocumentAttributeFilename(file_name="finlandia.mp3"),
        ],
    )
    media = media_of(types.MessageMediaDocument(document=doc))
    assert media is not None
    assert (media.type, media.title, media.performer, media.file_name) == (
        "audio",
        "Finlandia",
        "Sibelius",
        "finlandia.mp3",
    )


def test_inline_buttons_keep_their_text_and_url() -> None:
    markup = types.ReplyInlineMarkup(
        rows=[
            types.KeyboardInlineButtonRow(
                buttons=[
                    types.KeyboardInlineButton(
                        text="Open", type=types.InlineButtonTypeUrl(url="https://example.org/a")
                    ),
                    types.KeyboardInlineButton(
                        text="Vote", type=types.InlineButtonTypeCallback(data=b"v1")
                    ),
                ]
            )
        ]
    )
    s = snapshot_of(channel_message(1, reply_markup=markup))
    assert [[(b.text, b.url) for b in row] for row in s.buttons] == [
        [("Open", "https://example.org/a"), ("Vote", None)]
    ]


def test_a_message_without_markup_has_no_buttons() -> None:
    assert snapshot_of(channel_message(1)).buttons == ()


def test_a_chat_photo_is_the_peer_refs_photo_id() -> None:
    with_photo = types.Chat(
        id=57,
        title="P",
        photo=types.ChatPhoto(photo_id=4321, dc_id=2),
        participants_count=2,
        date=BASE,
        version=1,
    )
    without = types.Channel(
        id=2, title="N", photo=types.ChatPhotoEmpty(), date=BASE, megagroup=True, access_hash=1
    )
    assert [(r.photo_id if r else 0) for r in map(peer_ref_of, (with_photo, without))] == [
        4321,
        None,
    ]
