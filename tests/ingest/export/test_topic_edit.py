"""An imported ``topic_edit`` carries the topic's new title and icon as the live path does."""

from __future__ import annotations

import json

import msgspec
import pytest
from telethon.tl import types

from ingest.telegram.convert import action_of
from schemas.events import ServiceAction
from tests.ingest.export.test_mapping import snap
from tests.ingest.telegram.tl import service

# As tdesktop's export_output_json.cpp writes a topic_edit (``new_title`` only when renamed,
# ``new_icon_emoji_id`` only when the icon changed).
RENAMED_WITH_ICON = """{
   "id": 52,
   "type": "service",
   "date": "2024-03-01T12:00:52",
   "date_unixtime": "1709294452",
   "actor": "Alice",
   "actor_id": "user111",
   "action": "topic_edit",
   "new_title": "Exams 2",
   "new_icon_emoji_id": 5312241539987020022,
   "text": "",
   "text_entities": []
  }"""
ICON_ONLY = """{
   "id": 53,
   "type": "service",
   "date": "2024-03-01T12:00:53",
   "date_unixtime": "1709294453",
   "actor": "Alice",
   "actor_id": "user111",
   "action": "topic_edit",
   "new_icon_emoji_id": 5377498341074542641,
   "text": "",
   "text_entities": []
  }"""


def without_export_name(action: ServiceAction) -> ServiceAction:
    """``action`` less ``details["export_action"]``, which only an import records."""
    details = {k: v for k, v in action.details.items() if k != "export_action"}
    return msgspec.structs.replace(action, details=details)


@pytest.mark.parametrize(
    ("exported", "live"),
    [
        (
            RENAMED_WITH_ICON,
            types.MessageActionTopicEdit(title="Exams 2", icon_emoji_id=5312241539987020022),
        ),
        (ICON_ONLY, types.MessageActionTopicEdit(icon_emoji_id=5377498341074542641)),
    ],
)
def test_an_imported_topic_edit_is_the_live_action(
    exported: str, live: types.MessageActionTopicEdit
) -> None:
    imported = snap(json.loads(exported)).action
    assert imported is not None
    assert without_export_name(imported) == action_of(service(52, live))
