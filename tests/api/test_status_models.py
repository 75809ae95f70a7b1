"""The API's status bodies are derived from the services' status Structs: one home for the shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
import pytest
from pydantic import ValidationError

from api.status_models import CrawlerRuntime, body_model
from schemas.status import AccountStatus, CatchUpStatus, CrawlerStatus, FloodWaitStatus, SinkStatus


class Inner(msgspec.Struct, frozen=True, kw_only=True):
    """A nested report."""

    at: datetime


class Outer(msgspec.Struct, frozen=True, kw_only=True):
    """A report with every kind of field the status Structs use."""

    name: str
    state: Literal["up", "down"] = "up"
    count: Annotated[int, msgspec.Meta(description="how many so far")] = 0
    last: Inner | None = None
    items: tuple[Inner, ...] = ()


def test_a_body_model_has_the_struct_fields_defaults_and_descriptions() -> None:
    model = body_model(Outer)
    fields = model.model_fields
    assert list(fields) == ["name", "state", "count", "last", "items"]
    assert fields["name"].is_required()
    assert (fields["state"].default, fields["count"].default) == ("up", 0)
    assert fields["count"].description == "how many so far"
    assert model.__doc__ == Outer.__doc__


def test_a_body_model_validates_nested_structs_as_their_own_models() -> None:
    at = datetime(2026, 11, 30, tzinfo=UTC)
    body = body_model(Outer).model_validate(
        msgspec.to_builtins(Outer(name="x", last=Inner(at=at), items=(Inner(at=at),)))
    )
    assert body.model_dump() == {
        "name": "x",
        "state": "up",
        "count": 0,
        "last": {"at": at},
        "items": ({"at": at},),
    }
    assert isinstance(dict(body)["last"], body_model(Inner))


def test_a_body_model_refuses_what_the_struct_refuses() -> None:
    with pytest.raises(ValidationError):
        body_model(Outer).model_validate({"name": "x", "state": "sideways"})


def test_the_api_schema_documents_every_status_field() -> None:
    schema = CrawlerRuntime.model_json_schema()
    nested = (AccountStatus, CatchUpStatus, FloodWaitStatus, SinkStatus)
    for struct in nested:
        documented = set(schema["$defs"][struct.__name__]["properties"])
        assert documented == {f.name for f in msgspec.structs.fields(struct)}
    assert {f.name for f in msgspec.structs.fields(CrawlerStatus)} <= set(schema["properties"])
    reconnects = schema["$defs"]["AccountStatus"]["properties"]["reconnect_attempts"]
    assert reconnects["description"] == "attempts since the last stable connection"


def test_the_body_of_a_status_keeps_every_value() -> None:
    status = CrawlerStatus(
        running=True,
        demo=False,
        accounts=(
            AccountStatus(account="a", state="connected", connected=True, messages_received=3),
            AccountStatus(account="b", state="reconnecting", reconnect_attempts=4),
        ),
    )
    body = CrawlerRuntime.of(status)
    assert (body.connected_accounts, body.messages_received) == (1, 3)
    assert [(a.account, a.state, a.reconnect_attempts) for a in body.accounts] == [
        ("a", "connected", 0),
        ("b", "reconnecting", 4),
    ]


def test_the_body_of_an_absent_crawler_says_why() -> None:
    body = CrawlerRuntime.absent("ingest did not answer")
    assert (body.running, body.message, body.demo, body.accounts) == (
        False,
        "ingest did not answer",
        None,
        (),
    )
