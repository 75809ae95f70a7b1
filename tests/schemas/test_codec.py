"""The codec: every kind round-trips; bad input becomes a typed error; older versions are upcast."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import Codec
from schemas.errors import MalformedEventError, NewerSchemaError, SchemaError, UnknownKindError
from schemas.events import CURRENT_VERSIONS, EVENT_TYPES, Event, MessageDeleted, kind_of
from schemas.upcast import JsonObject
from tests.helpers import posted
from tests.schemas.strategies import struct_strategy

CODEC = Codec()


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=kind_of)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_kind_round_trips(event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(struct_strategy(event_type))
    assert isinstance(event, event_type)
    decoded = CODEC.decode(CODEC.encode(event))
    assert decoded == event
    assert type(decoded) is event_type


def test_every_kind_has_a_current_version() -> None:
    assert set(CURRENT_VERSIONS) == {kind_of(t) for t in EVENT_TYPES}


def _payload(**changes: object) -> bytes:
    body = json.loads(CODEC.encode(posted(-1001, 1)))
    body.update(changes)
    return json.dumps(body).encode()


def test_unknown_kind_is_a_typed_error() -> None:
    with pytest.raises(UnknownKindError) as info:
        CODEC.decode(_payload(kind="message.teleported"))
    assert info.value.kind == "message.teleported"


def test_newer_schema_version_is_a_typed_error() -> None:
    with pytest.raises(NewerSchemaError) as info:
        CODEC.decode(_payload(schema_version=4))
    assert (info.value.kind, info.value.version, info.value.supported) == ("message.posted", 4, 3)


@pytest.mark.parametrize("data", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_payload_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(MalformedEventError):
        CODEC.decode(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"chat_id": "not a number"},
        {"observed_at": 12},
        {"message": {"message_id": "x"}},
        {"schema_version": 0},
        {"schema_version": "1"},
        {"source": "telepathy"},
    ],
)
def test_wrong_field_types_are_a_typed_error(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedEventError):
        CODEC.decode(_payload(**changes))


def test_missing_kind_is_a_typed_error() -> None:
    body = json.loads(_payload())
    del body["kind"]
    with pytest.raises(SchemaError):
        CODEC.decode(json.dumps(body).encode())


def _rename_msg_id(raw: JsonObject) -> JsonObject:
    raw["message_id"] = raw.pop("msg_id")
    return raw


def _v1_delete() -> bytes:
    """A ``message.deleted`` as an imagined version 1 wrote it (``msg_id`` instead of ``message_id``)."""
    return json.dumps(
        {
            "kind": "message.deleted",
            "event_id": "d-1",
            "account": "main",
            "observed_at": "2026-11-01T12:00:00Z",
            "source": "live",
            "chat_id": -1001,
            "schema_version": 1,
            "msg_id": 42,
        }
    ).encode()


def test_older_version_is_upcast_through_the_registry() -> None:
    codec = Codec(
        upcasters={("message.deleted", 1): _rename_msg_id},
        versions={**CURRENT_VERSIONS, "message.deleted": 2},
    )
    event = codec.decode(_v1_delete())
    assert isinstance(event, MessageDeleted)
    assert (event.message_id, event.schema_version) == (42, 2)


def test_missing_upcaster_step_is_a_typed_error() -> None:
    codec = Codec(upcasters={}, versions={**CURRENT_VERSIONS, "message.deleted": 2})
    with pytest.raises(MalformedEventError, match="no upcaster"):
        codec.decode(_v1_delete())


def test_many_payloads_decode_as_each_alone_with_errors_by_index() -> None:
    payloads = [CODEC.encode(posted(-1001, i)) for i in range(1, 4)]
    payloads[1:1] = [b"{not json", _payload(kind="message.teleported")]
    events, errors = CODEC.decode_many(payloads)
    assert events == [CODEC.decode(payloads[i]) for i in (0, 3, 4)]
    assert {i: type(e) for i, e in errors.items()} == {
        1: MalformedEventError,
        2: UnknownKindError,
    }


def test_many_payloads_of_an_older_version_are_upcast() -> None:
    codec = Codec(
        upcasters={("message.deleted", 1): _rename_msg_id},
        versions={**CURRENT_VERSIONS, "message.deleted": 2},
    )
    payloads = [codec.encode(posted(-1001, 1)), _v1_delete()]
    events, errors = codec.decode_many(payloads)
    assert errors == {}
    assert events == [codec.decode(p) for p in payloads]
    assert events[1].schema_version == 2
