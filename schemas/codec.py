"""Encoding of events: JSON via msgspec, one Encoder and one Decoder built once.

JSON (not MessagePack) because the log stays readable with any NATS tool; decode cost is the
same order (~2 µs/event; docs/decisions/002-json-events-with-msgspec.md). Decoding never crashes on bad input:
it raises a typed ``SchemaError`` subclass, and records of older schema versions are upcast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Final

import msgspec

from schemas.errors import MalformedEventError, NewerSchemaError, SchemaError, UnknownKindError
from schemas.events import CURRENT_VERSIONS, KINDS, AnyEvent, Event, event_kind
from schemas.upcast import IDENTITY_STEPS, UPCASTERS, JsonObject, Upcaster, upcast

_SCHEMA_VERSION: Final = attrgetter("schema_version")


class Codec:
    """Turns events into bytes and back; safe to share, build once."""

    def __init__(
        self,
        *,
        upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
        versions: Mapping[str, int] = CURRENT_VERSIONS,
    ) -> None:
        self._encoder = msgspec.json.Encoder()
        self._decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
        self._upcasters = upcasters
        self._versions = versions
        # Only the registry's own steps are known to be identities (a test may bring others).
        self._identity_steps = IDENTITY_STEPS if upcasters == UPCASTERS else {}
        self._current_of_type = {t: versions.get(kind, 1) for kind, t in KINDS.items()}

    def __reduce__(self) -> tuple[object, tuple[dict[tuple[str, int], Upcaster], dict[str, int]]]:
        """Pickle as its configuration (msgspec's encoder and decoder are rebuilt), for helper processes."""
        return (_codec_from, (dict(self._upcasters), dict(self._versions)))

    def encode(self, event: Event) -> bytes:
        """The bytes stored in the log for ``event``."""
        return self._encoder.encode(event)

    def decode(self, data: bytes | memoryview) -> AnyEvent:
        """Decode a stored payload into a current-version event, or raise a ``SchemaError``."""
        try:
            event = self._decoder.decode(data)
        except msgspec.ValidationError:
            return self._decode_slowly(data)
        except msgspec.DecodeError as e:
            raise MalformedEventError(f"payload is not valid JSON: {e}") from e
        current = self._current_of_type[type(event)]
        if event.schema_version != current:
            step = self._identity_steps.get((event_kind(event), event.schema_version))
            if event.schema_version == current - 1 and step is not None and step(event):
                return msgspec.structs.replace(event, schema_version=current)
            return self._decode_slowly(data)
        return event

    def decode_many(self, datas: Sequence[bytes]) -> tuple[list[AnyEvent], dict[int, SchemaError]]:
        """``decode`` of every payload: the events that decoded, in order, and the error of each
        payload that did not, by its index.

        A batch of valid current-version payloads (nearly every batch of a replay) is decoded in one
        pass without a Python call per payload, ~1 µs less per event
        (docs/decisions/044-duckdb-rebuild-load-pipeline.md); any other batch payload by payload
        through ``decode``."""
        try:
            events: list[AnyEvent] = list(map(self._decoder.decode, datas))
        except msgspec.DecodeError:  # also every ValidationError
            pass
        else:
            current = self._current_of_type
            if list(map(_SCHEMA_VERSION, events)) == list(
                map(current.__getitem__, map(type, events))
            ):
                return events, {}
        good: list[AnyEvent] = []
        errors: dict[int, SchemaError] = {}
        for index, data in enumerate(datas):
            try:
                good.append(self.decode(data))
            except SchemaError as e:
                errors[index] = e
        return good, errors

    def _decode_slowly(self, data: bytes | memoryview) -> AnyEvent:
        try:
            raw = msgspec.json.decode(data)
        except msgspec.DecodeError as e:
            raise MalformedEventError(f"payload is not valid JSON: {e}") from e
        if not isinstance(raw, dict):
            raise MalformedEventError(f"payload is a JSON {type(raw).__name__}, not an object")
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            raise UnknownKindError(kind)
        version = raw.get("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise MalformedEventError(
                f"{kind}: schema_version must be a positive integer, got {version!r}"
            )
        current = self._versions.get(kind, 1)
        if version > current:
            raise NewerSchemaError(kind, version, current)
        try:
            lifted: JsonObject = upcast(
                raw, kind=kind, version=version, target=current, upcasters=self._upcasters
            )
        except KeyError as e:
            raise MalformedEventError(str(e)) from e
        try:
            return self._decoder.decode(self._encoder.encode(lifted))
        except msgspec.ValidationError as e:
            raise MalformedEventError(f"{kind} v{version}: {e}") from e


def _codec_from(upcasters: dict[tuple[str, int], Upcaster], versions: dict[str, int]) -> Codec:
    return Codec(upcasters=upcasters, versions=versions)
