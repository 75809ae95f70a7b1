"""The fast protocol parser: messages split at any byte boundary arrive whole, in order, exactly once."""

from __future__ import annotations

import pytest
from nats.errors import ProtocolError

from eventlog.connection import LogClient

DIRECT_SID = 7
OTHER_SID = 9


def _frame(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> bytes:
    """One message as the server sends it to subscription ``DIRECT_SID`` (MSG, or HMSG with headers)."""
    reply_part = b" " + reply if reply else b""
    if headers is None:
        return b"MSG %s %d%s %d\r\n%s\r\n" % (subject, DIRECT_SID, reply_part, len(data), data)
    return b"HMSG %s %d%s %d %d\r\n%s%s\r\n" % (
        subject,
        DIRECT_SID,
        reply_part,
        len(headers),
        len(headers) + len(data),
        headers,
        data,
    )


def _wire() -> tuple[bytes, list[tuple[bytes, bytes, bytes, bytes | None]]]:
    """A server byte stream of messages, with what the direct handler must see."""
    header = b"NATS/1.0\r\nNats-Msg-Id: p-1\r\n\r\n"
    status = b"NATS/1.0 404 No Messages\r\n\r\n"
    payload = "привет, 👍 \r\n MSG inside a payload".encode()
    stream = [
        (b"tg.msg.-100", b"$JS.ACK.s.c.1.1.1.1.5", payload, header),
        (b"tg.msg.-100", b"", b"no reply, no headers", None),
        (b"_INBOX.x.1", b"", b"", status),
        (b"tg.msg.-100", b"$JS.ACK.s.c.1.2.2.1.4", b"", header),
    ]
    out = bytearray(b"+OK\r\n")
    for message in stream:
        out += _frame(*message) + b"+OK\r\n"
    return bytes(out), stream


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000])
async def test_every_message_arrives_once_whatever_the_chunking(chunk: int) -> None:
    client = LogClient()
    seen: list[tuple[bytes, bytes, bytes, bytes | None]] = []
    client.deliver_directly(DIRECT_SID, lambda *m: seen.append(m))
    data, expected = _wire()
    for start in range(0, len(data), chunk):
        await client._ps.parse(data[start : start + chunk])
    assert seen == expected
    assert not client._ps.buf  # nothing left over


async def test_other_subscriptions_take_the_normal_path() -> None:
    client = LogClient()
    seen: list[object] = []
    client.deliver_directly(DIRECT_SID, lambda *m: seen.append(m))
    await client._ps.parse(
        b"MSG a %d 2\r\nhi\r\n" % OTHER_SID
    )  # no such subscription: dropped, not direct
    assert seen == []
    assert not client._ps.buf


async def test_a_malformed_message_line_is_a_protocol_error() -> None:
    client = LogClient()
    with pytest.raises(ProtocolError):
        await client._ps.parse(b"MSG a notanumber 2\r\nhi\r\n")


def _deliveries_wire() -> tuple[bytes, list[tuple[bytes, int, bytes]]]:
    """JetStream deliveries in both ack subject forms, a status and a plain message between them,
    with the (subject, stream seq, payload) each must arrive as."""
    header = b"NATS/1.0\r\nNats-Msg-Id: p-1\r\n\r\n"
    messages = [
        (b"tg.msg.-100", b"$JS.ACK.s.c.1.41.1.99.5", "привет 👍 \r\nHMSG x".encode(), header),
        (b"_INBOX.x.1", b"", b"", b"NATS/1.0 404 No Messages\r\n\r\n"),
        (b"tg.msg.-101", b"$JS.ACK.d.hash.s.c.1.42.2.99.4.tok", b"{}", header),  # with a domain
        (b"tg.msg.-102", b"$JS.ACK.s.c.1.43.3.99.3", b"", header),
    ]
    out = b"".join(_frame(*message) for message in messages)
    expected = [(b"tg.msg.-100", 41, messages[0][2]), (b"tg.msg.-101", 42, b"{}")]
    return out, [*expected, (b"tg.msg.-102", 43, b"")]


@pytest.mark.parametrize("chunk", [1, 5, 64, 10_000])
async def test_every_delivery_arrives_once_with_its_seq_whatever_the_chunking(chunk: int) -> None:
    client = LogClient()
    seen: list[tuple[bytes, int, bytes]] = []
    statuses: list[bytes] = []

    def on_message(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        tokens = reply.split(b".")
        if not reply:
            statuses.append(subject)
        else:
            seen.append((subject, int(tokens[7] if len(tokens) >= 12 else tokens[5]), data))

    client.deliver_directly(
        DIRECT_SID, on_message, lambda subject, seq, _, data: seen.append((subject, seq, data))
    )
    data, expected = _deliveries_wire()
    for start in range(0, len(data), chunk):
        await client._ps.parse(data[start : start + chunk])
    assert seen == expected
    assert statuses == [b"_INBOX.x.1"]
    assert not client._ps.buf


async def test_a_whole_delivery_goes_to_the_delivery_handler_with_its_pending_count() -> None:
    client = LogClient()
    split: list[bytes] = []
    deliveries: list[tuple[bytes, int, int, bytes]] = []
    client.deliver_directly(
        DIRECT_SID,
        lambda subject, *_: split.append(subject),
        lambda *delivery: deliveries.append(delivery),
    )
    await client._ps.parse(_deliveries_wire()[0])
    assert [(subject, seq, pending) for subject, seq, pending, _ in deliveries] == [
        (b"tg.msg.-100", 41, 5),
        (b"tg.msg.-102", 43, 3),
    ]
    assert split == [b"_INBOX.x.1", b"tg.msg.-101"]  # a status and the other ack form
