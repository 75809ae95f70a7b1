"""Service messages: the export's ``action`` and its fields → ``ServiceAction``.

Action names follow the live converter (the Telethon ``MessageAction*`` class name in snake case),
so a join or a pin looks the same whichever way it reached the log; the export's own name is kept
in ``details["export_action"]``. The export names members, never their ids, so ``user_ids`` is
filled only where the actor is the subject (joins, a member leaving or adding themselves).
"""

from __future__ import annotations

import re
from typing import Final

from ingest.export.peers import as_int, parse_peer
from schemas.events import Scalar, ServiceAction

# Export action (tdesktop export_output_json.cpp) → Telethon class name without ``MessageAction``.
ACTION_CLASSES: Final[dict[str, str]] = {
    "create_group": "ChatCreate",
    "edit_group_title": "ChatEditTitle",
    "edit_group_photo": "ChatEditPhoto",
    "delete_group_photo": "ChatDeletePhoto",
    "invite_members": "ChatAddUser",
    "remove_members": "ChatDeleteUser",
    "join_group_by_link": "ChatJoinedByLink",
    "join_group_by_request": "ChatJoinedByRequest",
    "create_channel": "ChannelCreate",
    "migrate_to_supergroup": "ChatMigrateTo",
    "migrate_from_group": "ChannelMigrateFrom",
    "pin_message": "PinMessage",
    "clear_history": "HistoryClear",
    "score_in_game": "GameScore",
    "send_payment": "PaymentSent",
    "phone_call": "PhoneCall",
    "take_screenshot": "ScreenshotTaken",
    "custom_action": "CustomAction",
    "allow_sending_messages": "BotAllowed",
    "attach_menu_bot_allowed": "BotAllowed",
    "send_passport_values": "SecureValuesSent",
    "joined_telegram": "ContactSignUp",
    "proximity_reached": "GeoProximityReached",
    "group_call": "GroupCall",
    "invite_to_group_call": "InviteToGroupCall",
    "set_messages_ttl": "SetMessagesTTL",
    "group_call_scheduled": "GroupCallScheduled",
    "edit_chat_theme": "SetChatTheme",
    "send_webview_data": "WebViewDataSent",
    "send_premium_gift": "GiftPremium",
    "topic_created": "TopicCreate",
    "topic_edit": "TopicEdit",
    "suggest_profile_photo": "SuggestProfilePhoto",
    "requested_peer": "RequestedPeer",
    "set_chat_wallpaper": "SetChatWallPaper",
    "set_same_chat_wallpaper": "SetChatWallPaper",
    "boost_apply": "BoostApply",
    "send_star_gift": "StarGift",
    "gift_code_prize": "GiftCode",
    "giveaway_launch": "GiveawayLaunch",
    "giveaway_results": "GiveawayResults",
}
# Export fields named otherwise than the Telethon action's field of the same value, per export
# action: renamed so an imported action has the live one's details.
_DETAIL_NAMES: Final[dict[str, dict[str, str]]] = {
    "topic_edit": {"new_icon_emoji_id": "icon_emoji_id"},  # MessageActionTopicEdit.icon_emoji_id
}
_JOINS: Final = frozenset({"join_group_by_link", "join_group_by_request", "joined_telegram"})
_SELF_MEMBER: Final = frozenset({"invite_members", "remove_members"})
# Keys of a service message that are not action fields.
_MESSAGE_KEYS: Final = frozenset(
    {
        "id",
        "type",
        "date",
        "date_unixtime",
        "edited",
        "edited_unixtime",
        "actor",
        "actor_id",
        "action",
        "text",
        "text_entities",
        "reactions",
        "title",
        "new_title",
        "message_id",
        "from",
        "from_id",
    }
)
_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    """``ChatEditTitle`` → ``chat_edit_title`` (the same rule as the live converter)."""
    return _CAMEL.sub("_", name).lower()


def action_type(export_action: str) -> str:
    """Our action type for an export action name (unknown names pass through unchanged)."""
    cls = ACTION_CLASSES.get(export_action)
    return snake(cls) if cls is not None else export_action


def _scalar(value: object) -> Scalar | None:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list) and all(
        isinstance(v, (str, int, float)) or v is None for v in value
    ):
        return "\n".join("" if v is None else str(v) for v in value)
    return None


def _details(message: dict[str, object], export_action: str) -> dict[str, Scalar]:
    details: dict[str, Scalar] = {"export_action": export_action}
    names = _DETAIL_NAMES.get(export_action, {})
    for raw_key, value in message.items():
        if raw_key in _MESSAGE_KEYS:
            continue
        key = names.get(raw_key, raw_key)
        if isinstance(value, dict):
            for sub, inner in value.items():
                scalar = _scalar(inner)
                if scalar is not None:
                    details[f"{key}.{sub}"] = scalar
            continue
        scalar = _scalar(value)
        if scalar is not None or value is None:
            details[key] = scalar
    return details


def action_of(message: dict[str, object]) -> ServiceAction:
    """The ``ServiceAction`` of a service message (``custom_action`` when the export has no action)."""
    raw = message.get("action")
    export_action = raw if isinstance(raw, str) and raw else "custom_action"
    actor = parse_peer(message.get("actor_id"))
    user_ids: tuple[int, ...] = ()
    if actor is not None and actor[1] == "user":
        members = message.get("members")
        if export_action in _JOINS or (
            export_action in _SELF_MEMBER
            and isinstance(members, list)
            and members == [message.get("actor")]
        ):
            user_ids = (actor[0],)
    title = (
        message.get("title") if isinstance(message.get("title"), str) else message.get("new_title")
    )
    return ServiceAction(
        type=action_type(export_action),
        user_ids=user_ids,
        title=title if isinstance(title, str) else None,
        message_id=as_int(message.get("message_id")) if export_action == "pin_message" else None,
        details=_details(message, export_action),
    )
