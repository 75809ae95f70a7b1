"""Pure conversion of Telethon ``tl.types`` objects to ``schemas`` snapshots (no I/O, no client).

Offsets of formatting entities stay in UTF-16 code units, exactly as Telegram sends them.
Service action types are the Telethon class name without ``MessageAction`` in snake_case
(``chat_add_user``, ``chat_delete_user``, ``chat_joined_by_link``, ``chat_edit_title``,
``chat_edit_photo``, ``pin_message``, …); their scalar fields go to ``details``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from telethon import utils
from telethon.tl import types
from telethon.tl.tlobject import TLObject

from ingest.telegram.gateway import PeerRef
from schemas.events import (
    Button,
    Entity,
    ForwardOrigin,
    Media,
    MediaType,
    MessageSnapshot,
    ReactionCount,
    ReplyTo,
    Scalar,
    Sender,
    SenderKind,
    ServiceAction,
)

Names = Mapping[int, object]
"""Known Telethon entities (User/Chat/Channel) by marked id, for display names; may be empty."""

_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")
_ENTITY_NAMES: Final = {
    "TextUrl": "text_link",
    "MentionName": "mention_name",
    "Url": "url",
    "Pre": "pre",
    "Code": "code",
    "Blockquote": "blockquote",
}


def snake(name: str) -> str:
    """``ChatEditTitle`` → ``chat_edit_title``."""
    return _CAMEL.sub("_", name).lower()


def utc(value: datetime | None) -> datetime | None:
    """A Telegram datetime as an aware UTC datetime."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def peer_id(peer: object) -> int:
    """The marked id of a ``Peer*``/entity (channels ``-100…``, basic chats ``-id``, users ``id``)."""
    return int(utils.get_peer_id(peer))


def chat_id_of(message: object) -> int:
    """The marked chat id of a message."""
    return peer_id(message.peer_id)  # type: ignore[attr-defined]


def display_name(entity: object | None) -> str | None:
    """A human name for a User/Chat/Channel, or None."""
    if entity is None:
        return None
    name = utils.get_display_name(entity)
    return name or None


def _sender(
    message: types.Message | types.MessageService, names: Names, self_id: int | None
) -> Sender | None:
    peer = message.from_id
    if peer is None and message.post:
        peer = message.peer_id  # a channel post without signature is sent "by" the channel
    if peer is None and message.out:
        if self_id is None:
            return None  # ours, but the account's own id is not known yet
        peer = types.PeerUser(self_id)  # an outgoing message is sent by the account itself
    if peer is None:
        if isinstance(message.peer_id, types.PeerUser):
            peer = message.peer_id  # private chat: the other side (incoming) sent it
        else:
            return None
    pid = peer_id(peer)
    kind: SenderKind = (
        "user"
        if isinstance(peer, types.PeerUser)
        else "channel"
        if isinstance(peer, types.PeerChannel)
        else "chat"
    )
    entity = names.get(pid)
    return Sender(
        id=pid,
        kind=kind,
        display_name=display_name(entity),
        username=getattr(entity, "username", None),
    )


def entity_of(e: TLObject) -> Entity:
    """A ``MessageEntity*`` as our ``Entity`` (UTF-16 offsets as given)."""
    cls = type(e).__name__
    short = cls.removeprefix("InputMessageEntity").removeprefix("MessageEntity")
    kind = _ENTITY_NAMES.get(short, snake(short))
    user_id = getattr(e, "user_id", None)
    if isinstance(user_id, TLObject):  # InputMessageEntityMentionName carries an InputUser
        user_id = getattr(user_id, "user_id", None)
    return Entity(
        type=kind,
        offset=e.offset,
        length=e.length,
        url=getattr(e, "url", None),
        user_id=user_id,
        language=getattr(e, "language", None) or None,
        custom_emoji_id=getattr(e, "document_id", None),
    )


def _reply_to(header: object | None) -> ReplyTo | None:
    if not isinstance(header, types.MessageReplyHeader):
        return None
    return ReplyTo(
        message_id=header.reply_to_msg_id,
        top_id=header.reply_to_top_id,
        forum_topic=bool(header.forum_topic),
        peer_id=peer_id(header.reply_to_peer_id) if header.reply_to_peer_id else None,
    )


def _forward(header: types.MessageFwdHeader | None, names: Names) -> ForwardOrigin | None:
    if header is None:
        return None
    origin = peer_id(header.from_id) if header.from_id else None
    name = header.from_name or (display_name(names.get(origin)) if origin is not None else None)
    return ForwardOrigin(
        peer_id=origin,
        name=name,
        date=utc(header.date),
        message_id=header.channel_post,
        post_author=header.post_author,
    )


def _document_media(doc: types.Document, spoiler: bool) -> Media:
    kind: MediaType = "document"
    duration: float | None = None
    width = height = None
    emoji = title = file_name = performer = None
    for attr in doc.attributes:
        if isinstance(attr, types.DocumentAttributeSticker):
            kind, emoji = "sticker", attr.alt
        elif isinstance(attr, types.DocumentAttributeAnimated):
            kind = "animation"
        elif isinstance(attr, types.DocumentAttributeVideo):
            if kind not in ("sticker", "animation"):
                kind = "video_note" if attr.round_message else "video"
            duration, width, height = float(attr.duration), attr.w, attr.h
        elif isinstance(attr, types.DocumentAttributeAudio):
            kind = "voice" if attr.voice else "audio"
            duration, title, performer = float(attr.duration), attr.title, attr.performer
        elif isinstance(attr, types.DocumentAttributeImageSize):
            width, height = attr.w, attr.h
        elif isinstance(attr, types.DocumentAttributeFilename):
            file_name = attr.file_name
    return Media(
        type=kind,
        file_unique_id=f"doc:{doc.id}",
        size=doc.size,
        mime_type=doc.mime_type,
        file_name=file_name,
        duration_s=duration,
        width=width,
        height=height,
        emoji=emoji,
        title=title,
        performer=performer,
        spoiler=spoiler,
    )


def _photo_media(photo: object, spoiler: bool) -> Media:
    if not isinstance(photo, types.Photo):
        return Media(type="photo", spoiler=spoiler)
    width = height = size = None
    for s in photo.sizes:  # the last size is the largest (Telegram orders them ascending)
        if isinstance(s, types.PhotoSize):
            width, height, size = s.w, s.h, s.size
        elif isinstance(s, types.PhotoSizeProgressive):
            width, height, size = s.w, s.h, max(s.sizes)
    return Media(
        type="photo",
        file_unique_id=f"photo:{photo.id}",
        size=size,
        mime_type="image/jpeg",
        width=width,
        height=height,
        spoiler=spoiler,
    )


def _text_of(value: object) -> str | None:
    """TextWithEntities (newer layers) or a plain str."""
    if value is None:
        return None
    return value if isinstance(value, str) else getattr(value, "text", None)


def media_of(media: object | None) -> Media | None:
    """A descriptor for every ``MessageMedia*`` type (unknown kinds become ``other``)."""
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return None
    if isinstance(media, types.MessageMediaPhoto):
        return _photo_media(media.photo, bool(media.spoiler))
    if isinstance(media, types.MessageMediaDocument):
        if isinstance(media.document, types.Document):
            return _document_media(media.document, bool(media.spoiler))
        return Media(type="document", spoiler=bool(media.spoiler))
    if isinstance(media, types.MessageMediaPoll):
        poll = media.poll
        return Media(
            type="poll",
            file_unique_id=f"poll:{poll.id}",
            poll_question=_text_of(poll.question),
            poll_answers=tuple(_text_of(a.text) or "" for a in poll.answers),
        )
    if isinstance(
        media, (types.MessageMediaGeo, types.MessageMediaGeoLive, types.MessageMediaVenue)
    ):
        geo = media.geo
        lat = getattr(geo, "lat", None)
        lon = getattr(geo, "long", None)
        return Media(
            type="location", latitude=lat, longitude=lon, title=getattr(media, "title", None)
        )
    if isinstance(media, types.MessageMediaContact):
        name = " ".join(p for p in (media.first_name, media.last_name) if p) or None
        return Media(type="contact", title=name)
    if isinstance(media, types.MessageMediaWebPage):
        page = media.webpage
        return Media(
            type="webpage",
            url=getattr(page, "url", None),
            title=getattr(page, "title", None),
            site_name=getattr(page, "site_name", None),
            description=getattr(page, "description", None),
            file_unique_id=f"webpage:{page.id}" if getattr(page, "id", None) else None,
        )
    return Media(type="other", title=snake(type(media).__name__.removeprefix("MessageMedia")))


def reactions_of(reactions: types.MessageReactions | None) -> tuple[ReactionCount, ...]:
    """The reaction summary (emoji, custom emoji or paid stars, with counts)."""
    if reactions is None:
        return ()
    out: list[ReactionCount] = []
    for rc in reactions.results or ():
        r = rc.reaction
        if isinstance(r, types.ReactionEmoji):
            out.append(ReactionCount(count=rc.count, emoji=r.emoticon))
        elif isinstance(r, types.ReactionCustomEmoji):
            out.append(ReactionCount(count=rc.count, custom_emoji_id=r.document_id))
        elif isinstance(r, types.ReactionPaid):
            out.append(ReactionCount(count=rc.count, paid=True))
    return tuple(out)


def _scalar_details(action: TLObject) -> dict[str, Scalar]:
    details: dict[str, Scalar] = {}
    for key, value in action.to_dict().items():
        if key == "_" or key in ("users", "title"):
            continue
        if isinstance(value, (str, int, float, bool)) and not isinstance(value, bytes):
            details[key] = value
        elif isinstance(value, datetime):
            details[key] = utc(value).isoformat()  # type: ignore[union-attr]
        elif isinstance(value, dict) and isinstance(value.get("id"), int):
            details[f"{key}_id"] = value["id"]  # e.g. the new chat photo's id
    return details


def action_of(message: types.MessageService) -> ServiceAction:
    """The service action with its fields (joined/removed users, title, pinned message id, …)."""
    action = message.action
    kind = snake(type(action).__name__.removeprefix("MessageAction"))
    users: list[int] = []
    if getattr(action, "users", None):
        users = list(action.users)
    elif isinstance(getattr(action, "user_id", None), int):
        users = [action.user_id]
    elif isinstance(
        action, (types.MessageActionChatJoinedByLink, types.MessageActionChatJoinedByRequest)
    ):
        users = [peer_id(message.from_id)] if message.from_id else []
    title = getattr(action, "title", None)
    pinned = None
    if isinstance(action, types.MessageActionPinMessage) and isinstance(
        message.reply_to, types.MessageReplyHeader
    ):
        pinned = message.reply_to.reply_to_msg_id
    return ServiceAction(
        type=kind,
        user_ids=tuple(users),
        title=title if isinstance(title, str) else None,
        message_id=pinned,
        details=_scalar_details(action),
    )


def buttons_of(markup: object | None) -> tuple[tuple[Button, ...], ...]:
    """The rows of a reply markup (inline or keyboard): each button's text, and its url where it
    has one (the url sits on the button in older layers, on its type in newer ones)."""
    rows: list[tuple[Button, ...]] = []
    for row in getattr(markup, "rows", None) or ():
        buttons: list[Button] = []
        for button in getattr(row, "buttons", None) or ():
            text = getattr(button, "text", None)
            if not isinstance(text, str):
                continue
            url = getattr(button, "url", None) or getattr(
                getattr(button, "type", None), "url", None
            )
            buttons.append(Button(text=text, url=url if isinstance(url, str) and url else None))
        if buttons:
            rows.append(tuple(buttons))
    return tuple(rows)


def snapshot_of(
    message: types.Message | types.MessageService,
    names: Names | None = None,
    *,
    self_id: int | None = None,
) -> MessageSnapshot:
    """The full snapshot of a message or service message (``self_id``: the account's own user id,
    the sender of an outgoing message that carries no ``from_id``)."""
    names = names or {}
    date = utc(message.date)
    assert date is not None
    if isinstance(message, types.MessageService):
        return MessageSnapshot(
            message_id=message.id,
            date=date,
            sender=_sender(message, names, self_id),
            reply_to=_reply_to(message.reply_to),
            action=action_of(message),
            silent=bool(message.silent),
            reactions=reactions_of(getattr(message, "reactions", None)),
        )
    via_name = None
    if message.via_bot_id is not None:
        via_name = getattr(names.get(message.via_bot_id), "username", None)
    replies = message.replies.replies if message.replies is not None else None
    discussion = message.replies.channel_id if message.replies is not None else None
    return MessageSnapshot(
        message_id=message.id,
        date=date,
        edit_date=utc(message.edit_date),
        sender=_sender(message, names, self_id),
        text=message.message or "",
        entities=tuple(entity_of(e) for e in message.entities or ()),
        reply_to=_reply_to(message.reply_to),
        forward=_forward(message.fwd_from, names),
        via_bot_id=message.via_bot_id,
        via_bot_name=via_name,
        post_author=message.post_author,
        views=message.views,
        forwards=message.forwards,
        replies=replies,
        discussion_chat_id=None
        if discussion is None
        else utils.get_peer_id(types.PeerChannel(discussion)),
        grouped_id=message.grouped_id,
        media=media_of(message.media),
        reactions=reactions_of(message.reactions),
        buttons=buttons_of(message.reply_markup),
        pinned=bool(message.pinned),
        silent=bool(message.silent),
        edit_hidden=bool(message.edit_hide),
    )


def peer_ref_of(entity: object) -> PeerRef | None:
    """A ``PeerRef`` from a Telethon User/Chat/Channel (None for anything else)."""
    if isinstance(entity, types.User):
        return PeerRef(
            peer_id=entity.id,
            kind="user",
            access_hash=entity.access_hash,
            username=entity.username,
            title=display_name(entity),
            chat_kind="bot" if entity.bot else "private",
            active=not entity.deleted,
        )
    if isinstance(entity, (types.Chat, types.ChatForbidden)):
        active = isinstance(entity, types.Chat) and not (
            entity.left or entity.deactivated or entity.migrated_to
        )
        return PeerRef(
            peer_id=-entity.id,
            kind="chat",
            title=entity.title,
            chat_kind="group",
            member_count=getattr(entity, "participants_count", None),
            active=active,
            photo_id=_photo_id(entity),
        )
    if isinstance(entity, (types.Channel, types.ChannelForbidden)):
        group = bool(getattr(entity, "megagroup", False) or getattr(entity, "gigagroup", False))
        return PeerRef(
            peer_id=peer_id(types.PeerChannel(entity.id)),
            kind="channel",
            access_hash=entity.access_hash,
            username=getattr(entity, "username", None),
            title=entity.title,
            chat_kind="supergroup" if group else "channel",
            forum=bool(getattr(entity, "forum", False)),
            member_count=getattr(entity, "participants_count", None),
            active=isinstance(entity, types.Channel) and not entity.left,
            photo_id=_photo_id(entity),
        )
    return None


def _photo_id(entity: object) -> int | None:
    """The id of a chat's current photo (``ChatPhoto.photo_id``), None without one."""
    photo = getattr(entity, "photo", None)
    return photo.photo_id if isinstance(photo, types.ChatPhoto) else None
