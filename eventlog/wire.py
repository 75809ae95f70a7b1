"""The NATS wire protocol where nats-py's generic path is too slow for the log's bulk work.

Reads: nats-py's ``Parser`` tries two regular expressions per ``MSG``/``HMSG`` control line and then awaits
``Client._process_msg`` for every message: about half of a replay's CPU once the message itself is
delivered directly (``eventlog.connection.LogClient``). This parser reads ``MSG``/``HMSG`` lines by
splitting them, hands messages of direct-delivery subscriptions to their handler synchronously, and
leaves every other line (``INFO``, ``PING``, ``-ERR``, …) and every other subscription to nats-py.
A JetStream delivery to a subscription with a delivery handler is read by one regular expression
that also takes the stream seq and the pending count from its ack subject.

Appends: the ``HPUB`` commands of an atomic batch are built in one pass (``atomic_batch_commands``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from nats.errors import MaxPayloadError, ProtocolError
from nats.protocol.parser import (
    AWAITING_CONTROL_LINE,
    AWAITING_MSG_PAYLOAD,
    MAX_CONTROL_LINE_SIZE,
    Parser,
)

DirectHandler = Callable[[bytes, bytes, bytes, bytes | None], None]
# (subject, stream seq, pending, payload) of a JetStream delivery; its headers are not read.
DeliveryHandler = Callable[[bytes, int, int, bytes], None]
_CRLF: Final = b"\r\n"
# HMSG subject sid $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.
# <pending> hdr_len total_len: the ack subject's first form (ADR-15); any other line (the form with
# a domain, a message without headers, a status) goes the split way.
_DELIVERY: Final = re.compile(
    rb"HMSG ([^ \r\n]+) (\d+) \$JS\.ACK\.[^. \r\n]+\.[^. \r\n]+\.\d+\.(\d+)\.\d+\.\d+\.(\d+)"
    rb" (\d+) (\d+)\r\n"
)


class FastParser(Parser):
    """``Parser`` with a split-based fast path for messages; ``direct`` maps sid → handler,
    ``deliveries`` the sid's digits → the handler of its JetStream deliveries (tried first)."""

    def __init__(
        self,
        nc: Any,
        direct: dict[int, DirectHandler],
        deliveries: dict[bytes, DeliveryHandler] | None = None,
    ) -> None:
        super().__init__(nc)
        self._direct_handlers = direct
        self._delivery_handlers = {} if deliveries is None else deliveries

    async def parse(self, data: bytes = b"") -> None:
        """Consume ``data``; complete messages are dispatched, a partial one waits for more bytes."""
        buf = self.buf
        buf.extend(data)
        direct = self._direct_handlers
        deliveries = self._delivery_handlers
        delivery = _DELIVERY.match
        size = len(buf)
        pos = 0  # consumed bytes are cut once at the end (cutting per message copies the buffer)
        # Payloads are copied out of the buffer once, through a view (slicing the bytearray and
        # then converting copied twice); the view is released before anything may resize it.
        view = memoryview(buf)
        try:
            while pos < size:
                if self.state == AWAITING_CONTROL_LINE:
                    if deliveries and (match := delivery(buf, pos)) is not None:
                        subject, sid_digits, seq, pending, header_size, needed = match.groups()
                        on_delivery = deliveries.get(sid_digits)
                        start, total = match.end(), int(needed)
                        if on_delivery is not None and size - start >= total + 2:
                            # The whole delivery is here (nearly always): one match instead of
                            # splitting the line and then its ack subject, ~1 µs a message less
                            # (docs/decisions/044-duckdb-rebuild-load-pipeline.md).
                            pos = start + total + 2
                            on_delivery(
                                subject,
                                int(seq),
                                int(pending),
                                view[start + int(header_size) : pos - 2].tobytes(),
                            )
                            continue
                    if not (buf.startswith(b"HMSG ", pos) or buf.startswith(b"MSG ", pos)):
                        view.release()
                        del buf[:pos]
                        pos = 0
                        await (
                            super().parse()
                        )  # anything else: nats-py's own loop (it may meet messages too)
                        return
                    end = buf.find(_CRLF, pos)
                    if end < 0:
                        if size - pos > MAX_CONTROL_LINE_SIZE:
                            raise ProtocolError("nats: control line too long")
                        return
                    args = view[pos:end].tobytes().split()
                    try:
                        if args[0] == b"HMSG":  # HMSG subject sid [reply] hdr_len total_len
                            reply = args[3] if len(args) == 6 else b""
                            header_size = int(args[-2])
                        else:  # MSG subject sid [reply] len
                            reply = args[3] if len(args) == 5 else b""
                            header_size = 0
                        needed = int(args[-1])
                        subject = args[1]
                        sid = int(args[2])
                    except (IndexError, ValueError) as e:
                        raise ProtocolError("nats: malformed MSG") from e
                    pos = end + 2
                    handler = direct.get(sid)
                    if handler is not None and size - pos >= needed + 2:
                        # The whole message is here (nearly always): hand it over at once.
                        headers = view[pos : pos + header_size].tobytes() if header_size else None
                        payload = view[pos + header_size : pos + needed].tobytes()
                        pos += needed + 2
                        handler(subject, reply, payload, headers)
                        continue
                    self.needed, self.header_needed = needed, header_size
                    arg = self.msg_arg
                    arg["subject"], arg["sid"], arg["reply"] = subject, sid, reply
                    self.state = AWAITING_MSG_PAYLOAD
                elif self.state == AWAITING_MSG_PAYLOAD:
                    needed = self.needed
                    if size - pos < needed + 2:
                        return
                    header_size = self.header_needed
                    headers = view[pos : pos + header_size].tobytes() if header_size else None
                    payload = view[pos + header_size : pos + needed].tobytes()
                    self.header_needed = 0
                    pos += needed + 2
                    self.state = AWAITING_CONTROL_LINE
                    arg = self.msg_arg
                    sid = arg["sid"]
                    handler = direct.get(sid)
                    if handler is not None:
                        handler(arg["subject"], arg["reply"], payload, headers)
                    else:
                        view.release()
                        await self.nc._process_msg(
                            sid, arg["subject"], arg["reply"], payload, headers
                        )
                        view = memoryview(buf)
        finally:
            view.release()
            if (
                pos and self.buf is buf
            ):  # a reset (reconnect) may have replaced the buffer meanwhile
                del buf[:pos]


_UNSAFE_TOKEN: Final = re.compile(
    r"[\s]"
)  # whitespace or CR/LF would break (or inject into) the protocol
_HEADER_START: Final = b"HPUB %s %d %d\r\nNATS/1.0\r\nNats-Msg-Id: %s\r\nNats-Batch-Id: %s\r\n"
_HEADER_START_REPLY: Final = (
    b"HPUB %s %s %d %d\r\nNATS/1.0\r\nNats-Msg-Id: %s\r\nNats-Batch-Id: %s\r\n"
)


class UnsafeBatch(ValueError):
    """A subject or event id of the batch cannot go on the wire as it is."""


def atomic_batch_commands(
    batch: Sequence[tuple[str, bytes, str]], *, batch_id: str, reply: str, max_payload: int
) -> tuple[bytes, int]:
    """The ``HPUB`` commands of one atomic batch (ADR-50) as one buffer, and its payload bytes.

    Each message carries ``Nats-Msg-Id``, ``Nats-Batch-Id`` and ``Nats-Batch-Sequence``; the last
    one ``Nats-Batch-Commit: 1`` and the only reply subject. Built here in one pass because
    nats-py's ``publish`` spends most of a batch's client time encoding headers one by one.
    Raises ``nats.errors.MaxPayloadError`` for a payload over ``max_payload``, ``UnsafeBatch``
    for a subject or id with whitespace.
    """
    parts: list[bytes] = []
    append = parts.append
    total = 0
    last = len(batch)
    bid = batch_id.encode()
    if _UNSAFE_TOKEN.search(batch_id) or _UNSAFE_TOKEN.search(reply):
        raise UnsafeBatch("batch id or reply subject with whitespace")
    for number, (subject, data, event_id) in enumerate(batch, start=1):
        if len(data) > max_payload:
            raise MaxPayloadError
        if _UNSAFE_TOKEN.search(subject) or _UNSAFE_TOKEN.search(event_id):
            raise UnsafeBatch(f"subject {subject!r} or event id {event_id!r} has whitespace")
        tail = b"Nats-Batch-Sequence: %d\r\n" % number
        if number == last:
            tail += b"Nats-Batch-Commit: 1\r\n"
        tail += b"\r\n"
        sid, eid = subject.encode(), event_id.encode()
        # Header block = "NATS/1.0\r\n" + the two fixed lines + tail.
        header_len = 10 + 15 + len(eid) + 17 + len(bid) + len(tail)
        if number == last:
            append(
                _HEADER_START_REPLY
                % (sid, reply.encode(), header_len, header_len + len(data), eid, bid)
            )
        else:
            append(_HEADER_START % (sid, header_len, header_len + len(data), eid, bid))
        append(tail)
        append(data)
        append(b"\r\n")
        total += len(data)
    return b"".join(parts), total
