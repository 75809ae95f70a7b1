"""Creating, updating and inspecting the log's stream."""

from __future__ import annotations

import asyncio
import uuid
from typing import Final

import nats
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from eventlog.errors import EventLogUnavailable, ReadFailed, StreamConfigError
from eventlog.records import StreamInfo
from schemas.stream import STACK_ID_KEY, StreamSpec

_STREAM_NOT_FOUND = 10059  # JSStreamNotFoundErr (nats-server errors.json)


ATOMIC_PUBLISH_SINCE: Final = (2, 12)  # nats-server version that added allow_atomic (ADR-50)


def server_takes_atomic(version: tuple[int, int]) -> bool:
    """Whether a nats-server of ``version`` (major, minor) supports atomic batch publish."""
    return version >= ATOMIC_PUBLISH_SINCE


def stream_config(spec: StreamSpec, *, atomic_supported: bool = True) -> StreamConfig:
    """The nats-py config for ``spec`` (``allow_atomic`` only where the server supports it)."""
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy(spec.retention),
        storage=StorageType(spec.storage),
        discard=DiscardPolicy(spec.discard),
        max_age=spec.max_age_s,
        max_bytes=spec.max_bytes,
        max_msgs=-1,
        max_msgs_per_subject=-1,
        max_msg_size=spec.max_msg_size,
        duplicate_window=spec.duplicate_window_s,
        num_replicas=spec.replicas,
        deny_delete=spec.deny_delete,
        deny_purge=spec.deny_purge,
        allow_rollup_hdrs=False,
        allow_direct=True,
        # A server older than 2.12 does not know the field: leave it out there.
        allow_atomic=True if spec.allow_atomic and atomic_supported else None,
    )


async def ensure_stream(
    js: JetStreamContext,
    spec: StreamSpec,
    *,
    server_version: tuple[int, int],
    timeout_s: float = 10.0,
) -> None:
    """Create the stream, or update it to ``spec``; idempotent."""
    config = stream_config(spec, atomic_supported=server_takes_atomic(server_version))
    try:
        await asyncio.wait_for(_create_or_update(js, config), timeout=timeout_s)
    except TimeoutError as e:
        raise EventLogUnavailable(f"stream {spec.name}: no answer within {timeout_s}s") from e
    except nats.js.errors.APIError as e:
        raise StreamConfigError(f"stream {spec.name}: {e.description} (code {e.err_code})") from e
    except nats.errors.Error as e:
        raise EventLogUnavailable(f"stream {spec.name}: {type(e).__name__}") from e


async def _create_or_update(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream with a new stack id, or update it keeping its metadata (the stack id)."""
    assert config.name is not None
    try:
        info = await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        config.metadata = {STACK_ID_KEY: uuid.uuid4().hex}
        await js.add_stream(config)
        return
    # An update replaces the metadata: keep ours (the server manages the `_nats.` keys itself).
    metadata = {k: v for k, v in (info.config.metadata or {}).items() if not k.startswith("_nats.")}
    metadata.setdefault(STACK_ID_KEY, uuid.uuid4().hex)  # a stream made before stack ids
    config.metadata = metadata
    await js.update_stream(config)


async def stream_info(js: JetStreamContext, name: str, *, timeout_s: float = 5.0) -> StreamInfo:
    """The stream's current state."""
    try:
        info = await asyncio.wait_for(js.stream_info(name), timeout=timeout_s)
    except TimeoutError as e:
        raise EventLogUnavailable(f"stream {name}: no answer within {timeout_s}s") from e
    except nats.js.errors.NotFoundError as e:
        raise ReadFailed(f"stream {name} does not exist") from e
    except nats.errors.Error as e:
        raise EventLogUnavailable(f"stream {name}: {type(e).__name__}") from e
    state, config = info.state, info.config
    cluster = info.cluster
    return StreamInfo(
        name=name,
        first_seq=state.first_seq,
        last_seq=state.last_seq,
        messages=state.messages,
        bytes=state.bytes,
        consumers=state.consumer_count,
        subjects=tuple(config.subjects or ()),
        duplicate_window_s=float(config.duplicate_window or 0),
        # nats-py leaves the enums as the server's strings when it parses an answer
        storage=str(getattr(config.storage, "value", config.storage) or "file"),
        retention=str(getattr(config.retention, "value", config.retention) or "limits"),
        replicas=int(config.num_replicas or 1),
        metadata=dict(config.metadata or {}),
        leader=cluster.leader if cluster is not None else None,
    )


def foreign_reason(info: StreamInfo, spec: StreamSpec, stack_id: str | None) -> str | None:
    """Why the stream ``info`` is not the one ``spec`` describes (of stack ``stack_id`` when given),
    or None when it is."""
    found = info.metadata.get(STACK_ID_KEY)
    if found is None:
        return f"stream {info.name} carries no stack id (not created by aaltohub up / log init)"
    if stack_id is not None and found != stack_id:
        return f"stream {info.name} belongs to stack {found}, not to this stack ({stack_id})"
    wanted = (tuple(spec.subjects), spec.storage, spec.retention)
    actual = (info.subjects, info.storage, info.retention)
    if actual != wanted:
        return f"stream {info.name} has subjects/storage/retention {actual}, expected {wanted}"
    return None
