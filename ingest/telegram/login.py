"""Interactive Telegram login as callable steps: phone → code → (2FA password) → encrypted session.

``LoginFlow`` is driven by ``aaltohub login`` and, through ingest's login commands, by the console
(``ingest.telegram.login_desk``). No phone number, code, password, API hash or session ever appears
in a log line, an exception message or a repr. A failed step leaves the flow where it was, so a
wrong code or password can be typed again; an expired code needs a new ``start``.
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum
from typing import Protocol

from telethon import TelegramClient
from telethon import errors as tg_errors
from telethon.sessions import StringSession

from ingest.errors import LoginError
from ingest.telegram.sessions import Secret, SessionStore

log = logging.getLogger(__name__)


class AuthClient(Protocol):
    """The Telegram calls a login needs (Telethon behind it, a fake in tests)."""

    async def connect(self) -> None:
        """Connect without a session."""
        ...

    async def disconnect(self) -> None:
        """Disconnect."""
        ...

    async def send_code(self, phone: Secret) -> str:
        """Ask Telegram to send a login code; returns the phone code hash."""
        ...

    async def sign_in_code(self, phone: Secret, code: Secret, phone_code_hash: str) -> None:
        """Sign in with the code (raises ``SessionPasswordNeededError`` when 2FA is on)."""
        ...

    async def sign_in_password(self, password: Secret) -> None:
        """Finish a 2FA login with the cloud password."""
        ...

    def export_session(self) -> Secret:
        """The authorized ``StringSession`` string."""
        ...


class TelethonAuthClient:
    """``AuthClient`` over a fresh Telethon client with an empty ``StringSession``."""

    def __init__(self, *, api_id: int, api_hash: Secret, use_ipv6: bool = False) -> None:
        self._client = TelegramClient(
            StringSession(),
            api_id,
            api_hash.reveal(),
            use_ipv6=use_ipv6,
            flood_sleep_threshold=0,
            receive_updates=False,
        )

    def __repr__(self) -> str:
        return "TelethonAuthClient()"

    async def connect(self) -> None:
        """Connect."""
        async with asyncio.timeout(60):
            await self._client.connect()

    async def disconnect(self) -> None:
        """Disconnect."""
        async with asyncio.timeout(30):
            await self._client.disconnect()

    async def send_code(self, phone: Secret) -> str:
        """Send the code."""
        async with asyncio.timeout(60):
            sent = await self._client.send_code_request(phone.reveal())
        return str(sent.phone_code_hash)

    async def sign_in_code(self, phone: Secret, code: Secret, phone_code_hash: str) -> None:
        """Sign in with the code."""
        async with asyncio.timeout(60):
            await self._client.sign_in(
                phone.reveal(), code.reveal(), phone_code_hash=phone_code_hash
            )

    async def sign_in_password(self, password: Secret) -> None:
        """Sign in with the 2FA password."""
        async with asyncio.timeout(60):
            await self._client.sign_in(password=password.reveal())

    def export_session(self) -> Secret:
        """The session string."""
        return Secret(StringSession.save(self._client.session))


class LoginState(Enum):
    """Where a login is."""

    NEW = "new"
    CODE_SENT = "code_sent"
    PASSWORD_NEEDED = "password_needed"
    DONE = "done"


def _phone_hint(phone: Secret) -> str:
    digits = "".join(c for c in phone.reveal() if c.isdigit())
    return f"…{digits[-2:]}" if len(digits) >= 2 else "…"


class LoginFlow:
    """One account's login, step by step; saves the encrypted session when done."""

    def __init__(self, *, account: str, client: AuthClient, store: SessionStore) -> None:
        self.account = account
        self._client = client
        self._store = store
        self._phone: Secret | None = None
        self._hash: str | None = None
        self.state = LoginState.NEW

    def __repr__(self) -> str:
        return f"LoginFlow(account={self.account!r}, state={self.state.value!r})"

    async def start(self, phone: Secret) -> LoginState:
        """Connect and ask Telegram to send the login code to ``phone``."""
        self._expect(LoginState.NEW)
        await self._client.connect()
        try:
            self._hash = await self._client.send_code(phone)
        except (tg_errors.PhoneNumberInvalidError, tg_errors.PhoneNumberBannedError):
            raise LoginError("Telegram rejected the phone number", kind="phone_invalid") from None
        except tg_errors.FloodWaitError as e:
            raise _flood(e, "before sending another code") from None
        self._phone = phone
        self.state = LoginState.CODE_SENT
        log.info("login %s: code sent (phone %s)", self.account, _phone_hint(phone))
        return self.state

    async def submit_code(self, code: Secret) -> LoginState:
        """Sign in with the code; the state becomes DONE or PASSWORD_NEEDED."""
        self._expect(LoginState.CODE_SENT)
        assert self._phone is not None and self._hash is not None
        try:
            await self._client.sign_in_code(self._phone, code, self._hash)
        except tg_errors.SessionPasswordNeededError:
            self.state = LoginState.PASSWORD_NEEDED
            log.info("login %s: two-step verification password needed", self.account)
            return self.state
        except (tg_errors.PhoneCodeInvalidError, tg_errors.PhoneCodeEmptyError):
            raise LoginError("the login code is wrong", kind="wrong_code") from None
        except tg_errors.PhoneCodeExpiredError:
            raise LoginError("the login code expired; start again", kind="code_expired") from None
        except tg_errors.FloodWaitError as e:
            raise _flood(e, "before trying another code") from None
        await self._finish()
        return self.state

    async def submit_password(self, password: Secret) -> LoginState:
        """Finish a two-step login with the cloud password."""
        self._expect(LoginState.PASSWORD_NEEDED)
        try:
            await self._client.sign_in_password(password)
        except tg_errors.PasswordHashInvalidError:
            raise LoginError(
                "the two-step verification password is wrong", kind="wrong_password"
            ) from None
        except tg_errors.FloodWaitError as e:
            raise _flood(e, "before trying another password") from None
        await self._finish()
        return self.state

    async def _finish(self) -> None:
        assert self._phone is not None
        session = self._client.export_session()
        await self._store.save(self.account, session, phone_hint=_phone_hint(self._phone))
        self.state = LoginState.DONE
        log.info("login %s: session stored (encrypted)", self.account)
        await self._client.disconnect()

    async def abandon(self) -> None:
        """Close the Telegram connection of an unfinished login (idempotent)."""
        if self.state is not LoginState.DONE:
            await self._client.disconnect()

    def _expect(self, state: LoginState) -> None:
        if self.state is not state:
            raise LoginError(
                f"login step out of order: state is {self.state.value}, expected {state.value}",
                kind="out_of_order",
            )


def _flood(error: tg_errors.FloodWaitError, what: str) -> LoginError:
    seconds = int(error.seconds)
    return LoginError(
        f"Telegram asks to wait {seconds}s {what}", kind="flood_wait", retry_after_s=seconds
    )
