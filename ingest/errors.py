"""Errors of ingest: the one base class, and those of the Telegram side; subclasses carry data, never secrets.

The durable append path's errors (``ingest.durable.errors``) derive from the same base."""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error raised by ``ingest``."""


class GatewayError(IngestError):
    """A Telegram call failed for good (not transient, or retries exhausted)."""

    def __init__(self, message: str, *, method: str, chat_id: int | None = None) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.chat_id = chat_id


class RetriesExhausted(GatewayError):
    """A transient error persisted through every bounded retry."""


class FloodWaitTooLong(GatewayError):
    """Telegram asked for a wait longer than the configured maximum; the caller must reschedule."""

    def __init__(self, *, method: str, seconds: int, chat_id: int | None = None) -> None:
        super().__init__(
            f"flood wait of {seconds}s exceeds the maximum", method=method, chat_id=chat_id
        )
        self.seconds = seconds


class EntityNotFound(IngestError):
    """A peer could not be resolved from memory, the database or the dialogs."""

    def __init__(self, peer_id: int) -> None:
        super().__init__(f"peer {peer_id} could not be resolved")
        self.peer_id = peer_id


class SessionError(IngestError):
    """A stored Telegram session could not be used."""


class AccountUnusable(SessionError):
    """Telegram refuses the account's session for good (revoked, expired, banned, unknown auth
    key): retrying cannot fix it, the account needs `aaltohub login` (or is lost)."""


class ConnectionLost(IngestError):
    """The client is disconnected and Telethon has stopped reconnecting by itself."""


class MasterKeyError(SessionError):
    """MASTER_KEY is missing or malformed (the message never contains key material)."""


class SessionDecryptError(SessionError):
    """The ciphertext was tampered with, belongs to another account, or no key matches."""


class SessionNotFound(SessionError):
    """No session is stored for the account."""

    def __init__(self, account: str) -> None:
        super().__init__(
            f"no Telegram session stored for account {account!r}; run `aaltohub login`"
        )
        self.account = account


class LoginError(IngestError):
    """A login step failed (wrong code, wrong password, expired code, flood wait, …).

    ``kind`` names the failure for callers that answer in their own words (the console);
    ``retry_after_s`` is Telegram's flood wait. The message never holds the phone, code or password.
    """

    def __init__(
        self, message: str, *, kind: str = "failed", retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after_s = retry_after_s


class StoreError(IngestError):
    """A Postgres store (sessions, entity cache) or media store operation failed."""
