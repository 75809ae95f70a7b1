"""Upcasters: functions that lift an old event payload one schema version up.

Old records are never rewritten in the log; the codec runs the chain of upcasters on read.
A registry maps ``(kind, from_version)`` to a function taking and returning the plain JSON object.
Every kind is at version 1 today, so the default registry is empty; when a kind's shape changes,
bump ``CURRENT_VERSIONS`` in ``schemas.events`` and register the ``(kind, old_version)`` step here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

JsonObject = dict[str, object]
Upcaster = Callable[[JsonObject], JsonObject]

UPCASTERS: Final[Mapping[tuple[str, int], Upcaster]] = {}


def upcast(
    raw: JsonObject,
    *,
    kind: str,
    version: int,
    target: int,
    upcasters: Mapping[tuple[str, int], Upcaster],
) -> JsonObject:
    """Apply the upcaster chain from ``version`` to ``target``; KeyError names a missing step."""
    while version < target:
        step = upcasters.get((kind, version))
        if step is None:
            raise KeyError(f"no upcaster for {kind!r} from schema_version {version}")
        raw = step(dict(raw))
        version += 1
        raw["schema_version"] = version
    return raw
