"""A faster NATS protocol parser for the message-heavy case (replay), built on nats-py's own.

nats-py's ``Parser`` tries two regular expressions per ``MSG``/``HMSG`` control line and then awaits
``Client._process_msg`` for every message: about half of a replay's CPU once the message itself is
delivered directly (``eventlog.connection.LogClient``). This parser reads ``MSG``/``HMSG`` lines by
splitting them, hands messages of direct-delivery subscriptions to their handler synchronously, and
leaves every other line (``INFO``, ``PING``, ``-ERR``, …) and every other subscription to nats-py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from nats.errors import ProtocolError
from nats.protocol.parser import (
    AWAITING_CONTROL_LINE,
    AWAITING_MSG_PAYLOAD,
    MAX_CONTROL_LINE_SIZE,
    Parser,
)

DirectHandler = Callable[[bytes, bytes, bytes, bytes | None], None]
_CRLF: Final = b"\r\n"


class FastParser(Parser):
    """``Parser`` with a split-based fast path for messages; ``direct`` maps sid → handler."""

    def __init__(self, nc: Any, direct: dict[int, DirectHandler]) -> None:
        super().__init__(nc)
        self._direct_handlers = direct

    async def parse(self, data: bytes = b"") -> None:
        """Consume ``data``; complete messages are dispatched, a partial one waits for more bytes."""
        buf = self.buf
        buf.extend(data)
        direct = self._direct_handlers
        pos = 0  # consumed bytes are cut once at the end (cutting per message copies the buffer)
        try:
            while pos < len(buf):
                if self.state == AWAITING_CONTROL_LINE:
                    if not (buf.startswith(b"HMSG ", pos) or buf.startswith(b"MSG ", pos)):
                        del buf[:pos]
                        pos = 0
                        await (
                            super().parse()
                        )  # anything else: nats-py's own loop (it may meet messages too)
                        return
                    end = buf.find(_CRLF, pos)
                    if end < 0:
                        if len(buf) - pos > MAX_CONTROL_LINE_SIZE:
                            raise ProtocolError("nats: control line too long")
                        return
                    args = bytes(buf[pos:end]).split()
                    try:
                        if args[0] == b"HMSG":  # HMSG subject sid [reply] hdr_len total_len
                            reply = args[3] if len(args) == 6 else b""
                            self.header_needed = int(args[-2])
                        else:  # MSG subject sid [reply] len
                            reply = args[3] if len(args) == 5 else b""
                            self.header_needed = 0
                        self.needed = int(args[-1])
                        self.msg_arg["subject"] = args[1]
                        self.msg_arg["sid"] = int(args[2])
                        self.msg_arg["reply"] = reply
                    except (IndexError, ValueError) as e:
                        raise ProtocolError("nats: malformed MSG") from e
                    pos = end + 2
                    self.state = AWAITING_MSG_PAYLOAD
                elif self.state == AWAITING_MSG_PAYLOAD:
                    needed = self.needed
                    if len(buf) - pos < needed + 2:
                        return
                    header_size = self.header_needed
                    if header_size:
                        headers: bytes | None = bytes(buf[pos : pos + header_size])
                        payload = bytes(buf[pos + header_size : pos + needed])
                        self.header_needed = 0
                    else:
                        headers = None
                        payload = bytes(buf[pos : pos + needed])
                    pos += needed + 2
                    self.state = AWAITING_CONTROL_LINE
                    arg = self.msg_arg
                    sid = arg["sid"]
                    handler = direct.get(sid)
                    if handler is not None:
                        handler(arg["subject"], arg["reply"], payload, headers)
                    else:
                        await self.nc._process_msg(
                            sid, arg["subject"], arg["reply"], payload, headers
                        )
        finally:
            if (
                pos and self.buf is buf
            ):  # a reset (reconnect) may have replaced the buffer meanwhile
                del buf[:pos]
