"""The API's status bodies mirror the services' status Structs field for field."""

from __future__ import annotations

import msgspec
import pytest
from pydantic import BaseModel

from api.status_models import (
    AccountRuntime,
    CatchUpInfo,
    CrawlerRuntime,
    FloodWaitInfo,
    SinkRuntime,
)
from schemas.status import (
    AccountStatus,
    CatchUpStatus,
    CrawlerStatus,
    FloodWaitStatus,
    SinkStatus,
)


@pytest.mark.parametrize(
    ("struct", "model"),
    [
        (AccountStatus, AccountRuntime),
        (CatchUpStatus, CatchUpInfo),
        (FloodWaitStatus, FloodWaitInfo),
        (SinkStatus, SinkRuntime),
        (CrawlerStatus, CrawlerRuntime),
    ],
)
def test_every_struct_field_is_in_the_api_body(
    struct: type[msgspec.Struct], model: type[BaseModel]
) -> None:
    assert {f.name for f in msgspec.structs.fields(struct)} <= set(model.model_fields)


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
