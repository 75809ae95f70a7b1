"""Supervision of one account's connection: when to retry, and what the account's state is.

Telethon reconnects by itself a few times (``connection_retries`` x ``retry_delay``); once it gives
up, ``is_connected()`` turns false and stays false. The account worker then reconnects forever
under a ``ReconnectPolicy``: capped exponential backoff with jitter, the attempt counter reset
after a connection that held for ``stable_after_s``. A worker that crashes is restarted the same
way. Only an unusable session (revoked, banned) stops the account. ``Link`` keeps the state that
the account's status reports.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ingest.errors import IngestError
from schemas.status import AccountState


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """Backoff between reconnect attempts: 1 s doubling to ``max_delay_s``, with jitter."""

    base_delay_s: float = 1.0
    max_delay_s: float = 300.0
    stable_after_s: float = 60.0
    rand: Callable[[], float] = field(default=random.random, compare=False)

    def delay_s(self, attempt: int) -> float:
        """Wait before attempt ``attempt`` (1-based): half of the capped exponential step fixed,
        half random, so many accounts cut off together do not reconnect in lockstep."""
        step = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(attempt - 1, 30))
        return float(step / 2 + self.rand() * step / 2)


@dataclass(slots=True)
class Link:
    """The account's connection as the supervisor sees it (read by ``status()``)."""

    state: AccountState = "starting"
    connected_since: datetime | None = None
    attempts: int = 0  # reconnect attempts since the last stable connection
    reconnects: int = 0  # successful reconnects since the worker started
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def connected(self) -> bool:
        """True while connected."""
        return self.state == "connected"

    def up(self, now: datetime) -> None:
        """Connected (the first time, or again after attempts)."""
        if self.attempts:
            self.reconnects += 1
        self.state = "connected"
        self.connected_since = now
        self.next_attempt_at = None

    def down(self, error: str, now: datetime, policy: ReconnectPolicy) -> tuple[int, float]:
        """The connection is lost or the worker failed: the next attempt and its delay."""
        held = self.connected_since is not None and (
            now - self.connected_since >= timedelta(seconds=policy.stable_after_s)
        )
        if held:
            self.attempts = 0
        self.attempts += 1
        delay = policy.delay_s(self.attempts)
        self.state = "reconnecting"
        self.connected_since = None
        self.next_attempt_at = now + timedelta(seconds=delay)
        self.last_error = error
        self.last_error_at = now
        return self.attempts, delay

    def unusable(self, error: str, now: datetime) -> None:
        """The session cannot be used: the account stops until someone logs in again."""
        self.state = "auth_failed"
        self.connected_since = None
        self.next_attempt_at = None
        self.last_error = error
        self.last_error_at = now

    def restarted(self) -> None:
        """A requested restart: a fresh start, not a failure."""
        self.state = "starting"
        self.connected_since = None
        self.attempts = 0


def describe(error: BaseException) -> str:
    """A short, secret-free description: the type, plus the message of our own errors (which
    never hold secrets; a third-party message might quote a request, so it is left out)."""
    text = str(error).splitlines()[0][:200] if isinstance(error, IngestError) and str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
