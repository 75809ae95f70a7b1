"""Rate control around every Telegram request: honour flood waits visibly, back off on transients.

Telethon runs with ``flood_sleep_threshold`` = 0 (a setting), so every ``FloodWaitError`` reaches
us: we record a ``FloodWaited`` event (it lands in crawler status through the projector), log it,
wait exactly what Telegram asked for that request, and retry. While one request waits out a flood,
every other request of the same account waits too, so backfill, catch-up, gap-fill, discovery and
media downloads together keep the pace Telegram asked for instead of earning further waits. Other
transient failures (RPC 500s, timeouts, dropped connections) get capped exponential backoff
1 → 2 → 4 → 8 s with bounded attempts, each attempt logged. The sleep function is injected so tests
never sleep for real.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from telethon import errors as tg_errors

from ingest.errors import (
    AccountUnusable,
    FloodWaitTooLong,
    GatewayError,
    IngestError,
    RetriesExhausted,
)
from schemas import ids
from schemas.events import Event, FloodWaited, Source

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
EmitEvent = Callable[[Event], None]

# Telegram docs (api/errors): 500 INTERNAL and -503 Timeout are "try again later" errors.
_TRANSIENT: Final = (
    tg_errors.ServerError,
    tg_errors.TimedOutError,
    ConnectionError,
    OSError,
    TimeoutError,
)
_FLOOD: Final = (tg_errors.FloodWaitError, tg_errors.FloodPremiumWaitError)
# Telegram docs (api/errors): 401 UNAUTHORIZED (AUTH_KEY_UNREGISTERED, SESSION_REVOKED,
# USER_DEACTIVATED_BAN, ...) and AUTH_KEY_DUPLICATED mean this session is unusable; Telethon raises
# AuthKeyNotFound when the server forgot the key on reconnect. No retry can fix these.
_UNUSABLE: Final = (tg_errors.UnauthorizedError, tg_errors.AuthKeyError, tg_errors.AuthKeyNotFound)
FLOOD_MARGIN_S: Final = 1.0  # Telegram rounds the wait down; one extra second avoids a second flood


class RateLimiter:
    """One account's Telegram requests through flood-wait and backoff handling.

    A flood wait on any request pauses every request of the account until it has been waited out.
    """

    def __init__(
        self,
        *,
        account: str,
        emit: EmitEvent,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 8.0,
        max_flood_wait_s: int = 3600,
        max_flood_retries: int = 5,
        request_timeout_s: float = 180.0,
    ) -> None:
        self._account = account
        self._emit = emit
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._max_flood_wait_s = max_flood_wait_s
        self._max_flood_retries = max_flood_retries
        self._request_timeout_s = request_timeout_s
        self.last_flood_wait_s: int | None = None
        self.last_flood_at: datetime | None = None
        self.last_flood_method: str | None = None
        self.flood_waits = 0
        self._floods_waiting = 0
        self._open = asyncio.Event()  # cleared while any request of this account waits out a flood
        self._open.set()

    @property
    def paused(self) -> bool:
        """True while a flood wait pauses this account's requests."""
        return not self._open.is_set()

    def backoff_delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): 1, 2, 4, 8, 8, … seconds."""
        return float(min(self._max_delay_s, self._base_delay_s * 2 ** (attempt - 1)))

    async def call(
        self,
        method: str,
        request: Callable[[], Awaitable[T]],
        *,
        chat_id: int | None = None,
        source: Source = "live",
    ) -> T:
        """Run ``request()`` (a fresh coroutine per attempt) until it succeeds or retries run out."""
        attempt = 0
        floods = 0
        while True:
            await self._open.wait()
            try:
                async with asyncio.timeout(self._request_timeout_s):
                    return await request()
            except _FLOOD as e:
                floods += 1
                await self._flood_wait(
                    method, int(e.seconds), floods, chat_id=chat_id, source=source, cause=e
                )
            except _TRANSIENT as e:
                attempt += 1
                if attempt >= self._max_attempts:
                    log.error(
                        "telegram %s failed after %d attempts: %s",
                        method,
                        attempt,
                        type(e).__name__,
                    )
                    raise RetriesExhausted(
                        f"{type(e).__name__} after {attempt} attempts",
                        method=method,
                        chat_id=chat_id,
                    ) from e
                delay = self.backoff_delay(attempt)
                log.warning(
                    "telegram %s attempt %d/%d failed (%s); retrying in %.0fs",
                    method,
                    attempt,
                    self._max_attempts,
                    type(e).__name__,
                    delay,
                )
                await self._sleep(delay)
            except _UNUSABLE as e:
                log.error("telegram %s: the session is unusable (%s)", method, type(e).__name__)
                raise AccountUnusable(
                    f"{type(e).__name__}: Telegram refuses this session; run `aaltohub login`"
                ) from e
            except tg_errors.RPCError as e:
                # Permanent for this request (e.g. CHANNEL_PRIVATE); the message is Telegram's error name.
                raise GatewayError(f"{type(e).__name__}", method=method, chat_id=chat_id) from e
            except IngestError:
                raise

    async def _flood_wait(
        self,
        method: str,
        seconds: int,
        floods: int,
        *,
        chat_id: int | None,
        source: Source,
        cause: Exception,
    ) -> None:
        now = datetime.now(UTC)
        self.last_flood_wait_s = seconds
        self.last_flood_at = now
        self.last_flood_method = method
        self.flood_waits += 1
        self._emit(
            FloodWaited(
                event_id=ids.occurrence_id("flood_wait"),
                account=self._account,
                observed_at=now,
                source=source,
                chat_id=chat_id,
                seconds=seconds,
                method=method,
                resume_at=now + timedelta(seconds=seconds + FLOOD_MARGIN_S),
            )
        )
        if seconds > self._max_flood_wait_s or floods > self._max_flood_retries:
            log.error(
                "telegram %s flood wait %ds (flood #%d): giving up on this request",
                method,
                seconds,
                floods,
            )
            raise FloodWaitTooLong(method=method, seconds=seconds, chat_id=chat_id) from cause
        log.warning(
            "telegram %s flood wait: waiting %ds before retrying (flood #%d)",
            method,
            seconds,
            floods,
        )
        self._floods_waiting += 1
        self._open.clear()
        try:
            await self._sleep(seconds + FLOOD_MARGIN_S)
        finally:
            self._floods_waiting -= 1
            if self._floods_waiting == 0:
                self._open.set()
