"""Creating, updating and inspecting the log's stream."""

from __future__ import annotations

import asyncio
from typing import Final

import nats
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from eventlog.errors import EventLogUnavailable, ReadFailed, StreamConfigError
from eventlog.records import StreamInfo
from schemas.stream import StreamSpec

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
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)
        return
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
    return StreamInfo(
        name=name,
        first_seq=state.first_seq,
        last_seq=state.last_seq,
        messages=state.messages,
        bytes=state.bytes,
        consumers=state.consumer_count,
        subjects=tuple(config.subjects or ()),
        duplicate_window_s=float(config.duplicate_window or 0),
    )
