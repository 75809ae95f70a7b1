"""What each service may do on NATS: publish and subscribe allow-lists per role, as data.

Every connection authenticates as one role (docs/decisions/022-nats-least-privilege.md). The
``operator`` role has no restriction and is the only one that can create, change, purge or delete
the stream; the others get allow-lists, so anything not listed (a forged event from the projector,
a command from ingest, ``$JS.API.STREAM.DELETE`` from anyone) is a permissions violation the server
refuses. ``allow_responses`` lets a command server answer the one reply subject of each request it
received, without a publish right on ``_INBOX.>``.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from schemas.commands import COMMAND_PREFIX
from schemas.subjects import ALL_SUBJECTS

Role = Literal["operator", "ingest", "projector", "api"]
ROLES: Final[tuple[Role, ...]] = ("operator", "ingest", "projector", "api")
SERVICE_ROLES: Final[tuple[Role, ...]] = ("ingest", "projector", "api")

# nats-py's request/reply and our pull readers and appenders receive on _INBOX.<nuid>.* subjects.
INBOX: Final = "_INBOX.>"


class Permissions(msgspec.Struct, frozen=True, kw_only=True):
    """Subjects one role may publish to and subscribe on (NATS wildcards allowed)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False


def read_subjects(stream: str) -> tuple[str, ...]:
    """JetStream API subjects of reading ``stream``: info, get by seq, ephemeral pull consumers.

    Consumer creation covers both API forms (``CONSUMER.CREATE.<stream>`` and the named
    ``CONSUMER.CREATE.<stream>.<name>[.<filter>]``); durable creation is not granted.
    """
    api = "$JS.API"
    return (
        f"{api}.INFO",
        f"{api}.STREAM.INFO.{stream}",
        f"{api}.STREAM.MSG.GET.{stream}",
        f"{api}.DIRECT.GET.{stream}",
        f"{api}.DIRECT.GET.{stream}.>",
        f"{api}.CONSUMER.CREATE.{stream}",
        f"{api}.CONSUMER.CREATE.{stream}.>",
        f"{api}.CONSUMER.INFO.{stream}.*",
        f"{api}.CONSUMER.DELETE.{stream}.*",
        f"{api}.CONSUMER.MSG.NEXT.{stream}.*",
    )


def permissions_for(role: Role, *, stream: str) -> Permissions | None:
    """The permissions of ``role`` on the log ``stream``; None means unrestricted (the operator)."""
    reading = read_subjects(stream)
    commands = f"{COMMAND_PREFIX}.>"
    if role == "operator":
        return None
    if role == "ingest":
        return Permissions(
            publish=(ALL_SUBJECTS, *reading),
            subscribe=(INBOX, f"{COMMAND_PREFIX}.ingest.>"),
            allow_responses=True,
        )
    if role == "projector":
        return Permissions(
            publish=reading,
            subscribe=(INBOX, f"{COMMAND_PREFIX}.projector.>"),
            allow_responses=True,
        )
    return Permissions(publish=(*reading, commands), subscribe=(INBOX,))
