"""Reading a chat back out of the log's subjects."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.subjects import chat_of_message_subject


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_a_message_subject_names_its_chat(chat_id: int) -> None:
    assert chat_of_message_subject(f"tg.msg.{chat_id}") == chat_id


def test_other_subjects_name_no_chat() -> None:
    for subject in (
        "tg.msg.nochat.main",
        "tg.chat.-1001",
        "tg.chat.unknown.main",
        "tg.ops.main",
        "xx.msg.-1001",
        "tg.msg.",
        "tg.msg.-",
    ):
        assert chat_of_message_subject(subject) is None
