"""The status of the running services as API bodies, derived from ``schemas.status``.

The services report msgspec Structs (``CrawlerStatus`` and what it holds); FastAPI documents
pydantic models. ``body_model`` builds the pydantic model of a Struct from the Struct itself (same
field names, types, defaults and ``msgspec.Meta`` descriptions; a nested Struct becomes its own
model), so the shape has one home and a field added to a status Struct shows in ``/admin/status``
and its OpenAPI document as it is. Only what the API adds is written here (``CrawlerRuntime``).
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec
from pydantic import BaseModel, Field, create_model

from schemas.status import CrawlerStatus


@functools.cache
def body_model(struct: type[msgspec.Struct]) -> type[BaseModel]:
    """The pydantic model of ``struct``: its fields, types, defaults and descriptions."""
    hints = typing.get_type_hints(struct, include_extras=True)
    fields: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        annotation, description = _body_type(hints[field.name])
        if field.default is not msgspec.NODEFAULT:
            spec = Field(field.default, description=description)
        elif field.default_factory is not msgspec.NODEFAULT:
            spec = Field(default_factory=field.default_factory, description=description)
        else:
            spec = Field(description=description)
        fields[field.name] = (annotation, spec)
    model: type[BaseModel] = create_model(
        struct.__name__, __doc__=struct.__doc__, __module__=__name__, **fields
    )
    return model


def _body_type(hint: Any) -> tuple[Any, str | None]:
    """The pydantic annotation of a Struct field's type hint, and its ``msgspec.Meta`` description."""
    if get_origin(hint) is Annotated:
        base, *extras = get_args(hint)
        descriptions = [m.description for m in extras if isinstance(m, msgspec.Meta)]
        return _translate(base), next((d for d in descriptions if d), None)
    return _translate(hint), None


def _translate(hint: Any) -> Any:
    """``hint`` with every Struct in it replaced by its body model."""
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return body_model(hint)
    origin = get_origin(hint)
    if origin is None or origin is typing.Literal:
        return hint
    args = tuple(_translate(a) for a in get_args(hint))
    if origin is types.UnionType or origin is Union:
        return Union[args]  # noqa: UP007 (a runtime-built union)
    return origin[args]


class CrawlerRuntime(body_model(CrawlerStatus)):  # type: ignore[misc]  # built from the Struct
    """What ingest reported about itself; ``running`` is false (and ``message`` says why) when it
    did not answer."""

    demo: bool | None = None  # unknown when ingest did not answer
    uptime_s: float | None = None
    message: str | None = None
    connected_accounts: int = 0
    messages_received: int = 0

    @classmethod
    def of(cls, status: CrawlerStatus, *, message: str | None = None) -> CrawlerRuntime:
        """The body of a ``CrawlerStatus``."""
        body: CrawlerRuntime = cls.model_validate(
            {
                **msgspec.to_builtins(status),
                "message": message,
                "connected_accounts": status.connected_accounts,
                "messages_received": sum(a.messages_received for a in status.accounts),
            }
        )
        return body

    @classmethod
    def absent(cls, message: str) -> CrawlerRuntime:
        """Ingest did not answer."""
        body: CrawlerRuntime = cls(running=False, message=message)
        return body
