"""Hypothesis strategies for every event Struct, derived from the type hints of ``schemas.events``."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime
from functools import cache

import msgspec
from hypothesis import strategies as st

from schemas.events import Event

_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_TEXT = st.text(max_size=30)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
_DATETIME = st.datetimes(
    min_value=datetime(2013, 8, 14), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_SCALAR = st.one_of(st.none(), st.booleans(), _INT64, _FLOAT, _TEXT)


def strategy_for(tp: object) -> st.SearchStrategy[object]:
    """A strategy producing values of the annotation ``tp`` that survive a JSON round trip."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is int:
        return _INT64
    if tp is str:
        return _TEXT
    if tp is float:
        return _FLOAT
    if tp is bool:
        return st.booleans()
    if tp is datetime:
        return _DATETIME
    if tp is type(None):
        return st.none()
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        if set(args) == {str, int, float, bool, type(None)}:
            return _SCALAR
        return st.one_of(*(strategy_for(a) for a in args))
    if origin is tuple:
        return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(_TEXT, strategy_for(args[1]), max_size=3)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return struct_strategy(tp)
    raise TypeError(f"no strategy for {tp!r}")


@cache
def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy[object]:
    """A strategy for instances of ``cls`` (events keep their current ``schema_version``)."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[object]] = {}
    for field in msgspec.structs.fields(cls):
        if issubclass(cls, Event) and field.name == "schema_version":
            continue
        fields[field.name] = strategy_for(hints[field.name])
    return st.builds(cls, **fields)
