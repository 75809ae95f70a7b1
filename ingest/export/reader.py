"""Streaming reader of a Telegram Desktop ``result.json``: chats and their messages, bounded memory.

Two shapes (tdesktop ``export_output_json.cpp``): a single-chat export is the chat object itself,
``{name, type, id, messages: [...]}``; a full-account export is ``{about, personal_information, …,
chats: {about, list: [chat…]}, left_chats: {about, list: [chat…]}}`` and we read only the two lists.

Speed: ijson's C backend (``yajl2_c``) builds one message dict at a time. For a single-chat export
the messages are built entirely in C (``ijson.items`` on the file, ~70k messages/s here); a full
export must track which chat each message belongs to, so its events pass through Python first
(~2x slower). A first, cheap pass reads the chat header (tdesktop writes it before ``messages``).
Syntax errors are located exactly by a second parse that reads the failing chunk byte by byte.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Final, TypeVar

import ijson  # ijson ships no type information
import msgspec

from ingest.export.errors import ExportError, MalformedExport

log = logging.getLogger(__name__)

BUF_SIZE: Final = 256 * 1024
_SECTIONS: Final = ("chats", "left_chats")
_BOM: Final = b"\xef\xbb\xbf"
_HEADER_KEYS: Final = frozenset({"name", "type", "id"})
_SCALARS: Final = frozenset({"string", "number", "boolean", "null"})
_NEVER: Final = "\x00never"  # an ijson prefix that matches nothing: parse in C without yielding
_Event = tuple[str, str, object]
_T = TypeVar("_T")


class ChatHeader(msgspec.Struct, kw_only=True):
    """A chat of the export as written (raw ``id``/``type``), where it is, and its section."""

    section: str  # "single", "chats" or "left_chats"
    index: int
    name: str | None = None
    type: str | None = None
    id: object = None

    @property
    def json_path(self) -> str:
        """Where the chat's messages are in the document."""
        return (
            "messages"
            if self.section == "single"
            else f"{self.section}.list[{self.index}].messages"
        )


class _CountingFile:
    """A binary file that counts the bytes handed to the parser (progress and error positions)."""

    def __init__(self, raw: BinaryIO, *, slow_from: int | None = None) -> None:
        self._raw = raw
        self.bytes_read = 0
        self.lines = 0
        self._slow_from = slow_from

    def read(self, size: int = -1) -> bytes:
        if self._slow_from is not None and size != 0:  # ijson probes the data type with read(0)
            # Byte by byte from ``slow_from`` on, so a parse error is raised at its exact byte.
            size = (
                1
                if self.bytes_read >= self._slow_from
                else min(size, self._slow_from - self.bytes_read)
            )
            data = self._raw.read(size)
            self.lines += data.count(b"\n")
        else:
            data = self._raw.read(size)
        self.bytes_read += len(data)
        return data


class ExportReader:
    """Iterate ``chats()`` once; each chat's messages must be consumed (or abandoned) in order."""

    def __init__(self, path: Path, *, buf_size: int = BUF_SIZE) -> None:
        self.path = path
        self._buf_size = buf_size
        self._file: _CountingFile | None = None
        if ijson.backend != "yajl2_c":
            log.warning(
                "ijson's C backend is not available (using %s): parsing is ~10x slower",
                ijson.backend,
            )
        try:
            self.total_bytes = path.stat().st_size
        except OSError as e:
            raise ExportError(f"cannot read {path}: {e.strerror or e}") from e

    @property
    def bytes_read(self) -> int:
        """Bytes of the file parsed so far in the current pass."""
        return 0 if self._file is None else self._file.bytes_read

    def chats(self) -> Iterator[tuple[ChatHeader, Iterator[object]]]:
        """Each chat's header and an iterator over its raw messages (decoded JSON values)."""
        kind, header = self._guarded(self._scan_header)
        if kind == "single":
            assert header is not None
            yield from self._guarded_iter(self._single(header))
        else:
            yield from self._guarded_iter(self._account())

    # --- passes ------------------------------------------------------------------------------------

    def _open(self) -> _CountingFile:
        self._close()
        self._file = _CountingFile(self._open_raw())
        return self._file

    def _open_raw(self) -> BinaryIO:
        try:
            f = self.path.open("rb")
            if f.read(len(_BOM)) != _BOM:  # some editors save JSON with a UTF-8 byte order mark
                f.seek(0)
            return f
        except OSError as e:
            raise ExportError(f"cannot read {self.path}: {e.strerror or e}") from e

    def _close(self) -> None:
        if self._file is not None:
            self._file._raw.close()

    def _scan_header(self) -> tuple[str, ChatHeader | None]:
        """Find the export's shape (and a single chat's header) from its first bytes."""
        f = self._open()
        header = ChatHeader(section="single", index=0)
        seen: set[str] = set()
        messages_at: int | None = None
        try:
            events = ijson.parse(f, buf_size=self._buf_size, use_float=True)
            first = next(events, None)
            if first is None:
                raise self._malformed("the file is empty", json_path="$")
            if first[1] != "start_map":
                raise self._malformed(
                    f"the document must be a JSON object, found {first[1]}", json_path="$"
                )
            for prefix, event, value in events:
                if prefix == "" and event == "map_key":
                    if value in _SECTIONS and messages_at is None:
                        return "account", None
                    continue
                if prefix == "" and event == "end_map":
                    break
                if prefix in _HEADER_KEYS and event in _SCALARS:
                    setattr(header, prefix, value)
                    seen.add(prefix)
                elif prefix == "messages" and messages_at is None:
                    if event != "start_array":
                        raise self._malformed(
                            f"`messages` must be an array, found {event}", json_path="messages"
                        )
                    messages_at = f.bytes_read
                if messages_at is not None and {"type", "id"} <= seen:
                    return "single", header
            if messages_at is None:
                raise self._malformed(
                    "no `messages` (single-chat export) and no `chats`/`left_chats` (full export)",
                    json_path="$",
                )
            return "single", header  # header keys after the messages: found by reading on
        finally:
            self._close()

    def _single(self, header: ChatHeader) -> Iterator[tuple[ChatHeader, Iterator[object]]]:
        f = self._open()
        try:
            yield header, ijson.items(f, "messages.item", buf_size=self._buf_size, use_float=True)
        finally:
            self._close()

    def _account(self) -> Iterator[tuple[ChatHeader, Iterator[object]]]:
        f = self._open()
        try:
            events: Iterator[_Event] = ijson.parse(f, buf_size=self._buf_size, use_float=True)
            chat: ChatHeader | None = None
            counts = dict.fromkeys(_SECTIONS, 0)
            for prefix, event, value in events:
                head, _, rest = prefix.partition(".")
                if head not in _SECTIONS:
                    continue
                if rest == "":
                    if event in _SCALARS or event == "start_array":
                        raise self._malformed(
                            f"`{head}` must be an object, found {event}", json_path=head
                        )
                elif rest == "list":
                    if event in _SCALARS or event == "start_map":
                        raise self._malformed(
                            f"`{head}.list` must be an array, found {event}",
                            json_path=f"{head}.list",
                        )
                elif rest == "list.item":
                    if event == "start_map":
                        chat = ChatHeader(section=head, index=counts[head])
                        counts[head] += 1
                    elif event in _SCALARS or event == "start_array":
                        raise self._malformed(
                            f"a chat must be an object, found {event}",
                            json_path=f"{head}.list[{counts[head]}]",
                        )
                elif chat is not None and rest.startswith("list.item."):
                    key = rest[len("list.item.") :]
                    if key in _HEADER_KEYS and event in _SCALARS:
                        setattr(chat, key, value)
                    elif key == "messages":
                        if event != "start_array":
                            raise self._malformed(
                                f"`messages` must be an array, found {event}",
                                json_path=chat.json_path,
                            )
                        messages = _until_end(events, prefix)
                        yield chat, ijson.items(messages, prefix + ".item", use_float=True)
                        for _ in messages:  # whatever the consumer left
                            pass
        finally:
            self._close()

    # --- errors --------------------------------------------------------------------------------------

    def _malformed(self, reason: str, *, json_path: str) -> MalformedExport:
        return MalformedExport(
            reason, path=str(self.path), byte_offset=self.bytes_read, json_path=json_path
        )

    def _guarded(self, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except (ijson.JSONError, UnicodeDecodeError) as e:
            raise self._syntax_error(e) from e

    def _guarded_iter(
        self, chats: Iterator[tuple[ChatHeader, Iterator[object]]]
    ) -> Iterator[tuple[ChatHeader, Iterator[object]]]:
        current = "$"
        try:
            for header, messages in chats:
                current = header.json_path
                yield header, self._guarded_messages(messages, header)
        except (ijson.JSONError, UnicodeDecodeError) as e:
            raise self._syntax_error(e, json_path=current) from e

    def _guarded_messages(self, messages: Iterator[object], header: ChatHeader) -> Iterator[object]:
        index = 0
        try:
            for message in messages:
                yield message
                index += 1
        except (ijson.JSONError, UnicodeDecodeError) as e:
            raise self._syntax_error(e, json_path=f"{header.json_path}[{index}]") from e

    def _syntax_error(self, error: Exception, *, json_path: str | None = None) -> MalformedExport:
        offset, line = self._locate(self.bytes_read)
        text = error.args[0] if error.args else ""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        lines = str(text).strip().splitlines()
        reason = lines[0] if lines else type(error).__name__
        return MalformedExport(
            f"not valid JSON: {reason}",
            path=str(self.path),
            byte_offset=offset,
            line=line,
            json_path=json_path,
        )

    def _locate(self, coarse_end: int) -> tuple[int, int]:
        """The exact byte offset (0-based) and line (1-based) where the parser gives up."""
        with self._open_raw() as raw:
            f = _CountingFile(raw, slow_from=max(0, coarse_end - self._buf_size))
            try:
                for _ in ijson.items(f, _NEVER, buf_size=self._buf_size):
                    pass
            except (ijson.JSONError, UnicodeDecodeError):
                return max(0, f.bytes_read - 1), f.lines + 1
        return coarse_end, 0


def _until_end(events: Iterator[_Event], prefix: str) -> Iterator[_Event]:
    """The events of the array at ``prefix`` (after its start), stopping at its end."""
    for event in events:
        if event[1] == "end_array" and event[0] == prefix:
            return
        yield event
