"""Test helpers: waiting on conditions with a deadline (never sleeping for a result)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import psycopg
import pytest

from aaltohub.embedded.postgres import PostgresServer
from schemas import ids
from schemas.events import MessagePosted, MessageSnapshot, Sender


async def wait_until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> None:
    """Poll ``predicate`` until true; fail the test with a clear message after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)  # poll interval, not a wait for a result


async def publish_raw(nats_url: str, subject: str, data: bytes) -> None:
    """Store bytes that are not one of our events in the stream, as a foreign producer would
    (on a connection of the test's own: ``EventLog`` keeps its client to itself)."""
    client = await nats.connect(nats_url, connect_timeout=5)
    try:
        await client.jetstream().publish(subject, data, timeout=5)
    finally:
        await client.close()


def posted(
    chat_id: int,
    message_id: int,
    *,
    text: str = "hello",
    account: str = "main",
    source: str = "live",
    date: datetime | None = None,
) -> MessagePosted:
    """A realistic MessagePosted event."""
    when = date or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    return MessagePosted(
        event_id=ids.posted_id(chat_id, message_id, account=account),
        account=account,
        observed_at=datetime.now(UTC),
        source=source,  # type: ignore[arg-type]
        chat_id=chat_id,
        message=MessageSnapshot(
            message_id=message_id,
            date=when,
            sender=Sender(id=1000 + message_id % 17, kind="user", display_name="Alice"),
            text=text,
        ),
    )


@contextlib.contextmanager
def small_tmpfs(mount_point: Path, *, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``mount_point`` (a disk that fills up for real, ENOSPC from
    the kernel); skips the test when not root or when mounting is not allowed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


@contextlib.contextmanager
def fresh_database(
    server: PostgresServer, prefix: str = "t", *, template: str | None = None
) -> Iterator[str]:
    """A new database on ``server`` (its URL): empty, or a copy of ``template``; dropped on exit
    even if connections remain."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template is not None else ""
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield server.url_for(name)
    finally:
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
