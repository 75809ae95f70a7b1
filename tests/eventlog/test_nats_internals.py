"""nats-py internals that ``eventlog`` relies on still have the shape it was written against.

``eventlog.connection.LogClient`` and ``eventlog.wire.FastParser`` subclass nats-py's ``Client`` and
``Parser`` and use private methods and attributes (direct delivery for reads, pre-built commands for
atomic batches, closing a connection for sure). pyproject.toml pins nats-py to the tested range;
these checks fail with a clear message when a new nats-py moves one of them, before anything subtle
breaks at run time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.aio.transport import TcpTransport
from nats.protocol import parser

NATS_PY = version("nats-py")


def _fail(what: str) -> str:
    return (
        f"nats-py {NATS_PY}: {what}. eventlog/connection.py and eventlog/wire.py override nats-py "
        "internals; adapt them to this version, then widen the nats-py pin in pyproject.toml."
    )


def _params(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("_process_msg", ["self", "sid", "subject", "reply", "data", "headers"]),
        ("_send_command", ["self", "cmd", "priority"]),
        ("_flush_pending", ["self", "force_flush"]),
    ],
)
def test_client_private_coroutines_keep_their_signature(method: str, params: list[str]) -> None:
    function = getattr(Client, method, None)
    assert function is not None, _fail(f"Client.{method} is gone")
    assert inspect.iscoroutinefunction(function), _fail(f"Client.{method} is no longer async")
    assert _params(function) == params, _fail(f"Client.{method} now takes {_params(function)}")


def test_client_keeps_the_state_publish_commands_reads() -> None:
    client = Client()
    for name, kind in [
        ("_ps", parser.Parser),
        ("_pending_data_size", int),
        ("_max_pending_size", int),
        ("stats", dict),
    ]:
        assert isinstance(getattr(client, name, None), kind), _fail(f"Client.{name} changed")
    assert hasattr(client, "_flush_queue"), _fail("Client._flush_queue is gone")
    assert {"in_msgs", "in_bytes", "out_msgs", "out_bytes"} <= set(client.stats), _fail(
        "Client.stats lost a counter"
    )
    assert isinstance(Client.is_draining_pubs, property), _fail("is_draining_pubs changed")


def test_client_reads_through_its_parser_attribute() -> None:
    # The module's text, not inspect.getsource(Client): on Python 3.11 that parses the module into
    # an AST, and a finalizer the garbage collector runs meanwhile (a future an earlier test left
    # behind) can make it fail with "AST constructor recursion depth mismatch".
    source = Path(inspect.getfile(Client)).read_text(encoding="utf-8")
    assert "self._ps.parse(" in source, _fail("the read loop no longer feeds Client._ps")
    assert "self._ps.reset()" in source, _fail("reconnects no longer reset Client._ps")


def test_parser_keeps_its_state_fields_and_states() -> None:
    p = parser.Parser(None)
    for name, kind in [("buf", bytearray), ("state", int), ("needed", int), ("msg_arg", dict)]:
        assert isinstance(getattr(p, name, None), kind), _fail(f"Parser.{name} changed")
    assert hasattr(p, "header_needed"), _fail("Parser.header_needed is gone")
    assert inspect.iscoroutinefunction(parser.Parser.parse), _fail("Parser.parse is not async")
    assert _params(parser.Parser.parse) == ["self", "data"], _fail("Parser.parse signature")
    assert (parser.AWAITING_CONTROL_LINE, parser.AWAITING_MSG_PAYLOAD) == (1, 2), _fail(
        "Parser states were renumbered"
    )
    assert isinstance(parser.MAX_CONTROL_LINE_SIZE, int), _fail("MAX_CONTROL_LINE_SIZE is gone")


def test_subscription_keeps_its_sid_attribute() -> None:
    assert "self._id" in inspect.getsource(Subscription.__init__), _fail(
        "Subscription._id (the sid direct delivery routes by) is gone"
    )


def test_client_keeps_the_tasks_and_streams_release_closes() -> None:
    client = Client()
    for name in (
        "_reading_task",
        "_ping_interval_task",
        "_flusher_task",
        "_reconnection_task",
        "_transport",
        "_status",
    ):
        assert hasattr(client, name), _fail(f"Client.{name} (LogClient.release) is gone")
    transport = TcpTransport()  # type: ignore[no-untyped-call]
    for name in ("_io_writer", "_bare_io_writer"):
        assert hasattr(transport, name), _fail(f"TcpTransport.{name} (LogClient.release) is gone")


def test_subscription_keeps_what_release_ends() -> None:
    source = inspect.getsource(Subscription.__init__)
    for name in ("_wait_for_msgs_task", "_message_iterator", "_pending_next_msgs_calls"):
        assert f"self.{name}" in source, _fail(f"Subscription.{name} (LogClient.release) is gone")
