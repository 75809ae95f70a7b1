"""Ingest's side of the console's Telegram logins: the login commands, one ``LoginFlow`` each.

A login spans several requests (phone, then code, then maybe the two-step password), so the desk
keeps each unfinished flow and its Telegram connection under a random ``login_id`` for ``ttl_s``;
the console only ever holds that id. Nothing typed is logged, kept after a step, or put in a
reply: failures are answered with their kind (``LoginProblem``) and words without the values.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, get_args

from ingest.errors import IngestError, LoginError
from ingest.telegram.login import AuthClient, LoginFlow, LoginState
from ingest.telegram.sessions import Secret, SessionStore
from schemas.commands import (
    CancelLogin,
    Command,
    CommandReply,
    LoginProblem,
    LoginProgress,
    LoginStep,
    StartLogin,
    SubmitLoginCode,
    SubmitLoginPassword,
    validate_new_account,
)

log = logging.getLogger(__name__)

AuthClientFactory = Callable[[], AuthClient]
LoggedIn = Callable[[str], Awaitable[None]]  # starts crawling with a newly stored session
_PROBLEMS: Final[dict[str, LoginProblem]] = {p: p for p in get_args(LoginProblem)}
# After these the login stays open at the step it is at; after any other failure it starts again.
_RETRYABLE: Final = frozenset({"wrong_code", "wrong_password", "flood_wait", "out_of_order"})
_STEP_OF: Final[dict[LoginState, LoginStep]] = {
    LoginState.NEW: "start",
    LoginState.CODE_SENT: "code",
    LoginState.PASSWORD_NEEDED: "password",
    LoginState.DONE: "done",
}
_GONE: Final = "This login is no longer open (it expired or ingest restarted). Start again."


@dataclass
class _Open:
    flow: LoginFlow
    expires_at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LoginDesk:
    """Serves ``StartLogin``, ``SubmitLoginCode``, ``SubmitLoginPassword`` and ``CancelLogin``."""

    def __init__(
        self,
        *,
        client_factory: AuthClientFactory,
        store: SessionStore,
        ttl_s: float = 600.0,
        max_open: int = 4,
        clock: Callable[[], float] = time.monotonic,
        on_logged_in: LoggedIn | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._on_logged_in = on_logged_in
        self._store = store
        self._ttl_s = ttl_s
        self._max_open = max_open
        self._clock = clock
        self._open: dict[str, _Open] = {}

    def __repr__(self) -> str:
        return f"LoginDesk(open={len(self._open)})"

    async def handle(self, command: Command) -> CommandReply:
        """Answer one login command; every failure is a negative reply in words."""
        await self._expire()
        if isinstance(command, StartLogin):
            return await self._start(command)
        if isinstance(command, SubmitLoginCode | SubmitLoginPassword):
            return await self._submit(command)
        if isinstance(command, CancelLogin):
            await self._drop(command.login_id)
            return CommandReply(ok=True, message="Login cancelled.")
        return CommandReply(ok=False, message=f"logins do not handle {type(command).__name__}")

    async def close(self) -> None:
        """Close the Telegram connection of every unfinished login."""
        for login_id in list(self._open):
            await self._drop(login_id)

    async def _start(self, command: StartLogin) -> CommandReply:
        try:
            account = validate_new_account(command.account)
        except ValueError:
            words = "The account name may use letters, digits, '-' and '_' (not 'all' or 'login')."
            return _refused("", command.account, "start", "failed", words)
        for login_id, open_ in list(self._open.items()):
            if open_.flow.account == account:  # a new start replaces the account's old login
                await self._drop(login_id)
        if len(self._open) >= self._max_open:
            words = f"{len(self._open)} logins are already open; finish or cancel one first."
            return _refused("", account, "start", "busy", words)
        flow = LoginFlow(account=account, client=self._client_factory(), store=self._store)
        try:
            await flow.start(Secret(command.phone.strip()))
        except Exception as e:  # every failure becomes a reply; the flow is closed
            await _abandon(flow)
            return _failure("", account, "start", e)
        login_id = secrets.token_urlsafe(18)
        self._open[login_id] = _Open(flow=flow, expires_at=self._clock() + self._ttl_s)
        log.info("login %s: opened by %s", account, command.requested_by or "unknown")
        return CommandReply(
            ok=True,
            message="Telegram sent a login code (in the Telegram app, or by SMS).",
            login=LoginProgress(login_id=login_id, account=account, step="code"),
        )

    async def _submit(self, command: SubmitLoginCode | SubmitLoginPassword) -> CommandReply:
        open_ = self._open.get(command.login_id)
        if open_ is None:
            return _refused(command.login_id, "", "start", "unknown_login", _GONE)
        flow = open_.flow
        async with open_.lock:
            try:
                if isinstance(command, SubmitLoginCode):
                    state = await flow.submit_code(Secret(command.code.strip()))
                else:
                    state = await flow.submit_password(Secret(command.password))
            except Exception as e:  # every failure becomes a reply
                if isinstance(e, LoginError) and e.kind in _RETRYABLE:
                    return _failure(command.login_id, flow.account, _STEP_OF[flow.state], e)
                await self._drop(command.login_id)  # anything else: the login must start again
                return _failure(command.login_id, flow.account, "start", e)
        if state is LoginState.PASSWORD_NEEDED:
            return CommandReply(
                ok=True,
                message="This account has two-step verification: enter its password.",
                login=LoginProgress(
                    login_id=command.login_id, account=flow.account, step="password"
                ),
            )
        self._open.pop(command.login_id, None)
        return CommandReply(
            ok=True,
            message=await self._start_crawling(flow.account),
            login=LoginProgress(login_id=command.login_id, account=flow.account, step="done"),
        )

    async def _start_crawling(self, account: str) -> str:
        stored = f"Account {account} is logged in; its session is stored encrypted"
        if self._on_logged_in is None:
            return f"{stored}. It is crawled from the next start of ingest."
        try:
            await self._on_logged_in(account)
        except Exception as e:  # the login itself worked: say so, and what did not
            log.exception("login %s: could not start crawling", account)
            return f"{stored}, but crawling did not start ({type(e).__name__}): restart ingest."
        return f"{stored} and crawling has started."

    async def _expire(self) -> None:
        now = self._clock()
        for login_id, open_ in list(self._open.items()):
            if open_.expires_at <= now:
                log.info("login %s: expired unfinished", open_.flow.account)
                await self._drop(login_id)

    async def _drop(self, login_id: str) -> None:
        open_ = self._open.pop(login_id, None)
        if open_ is not None:
            await _abandon(open_.flow)


async def _abandon(flow: LoginFlow) -> None:
    try:
        async with asyncio.timeout(10):
            await flow.abandon()
    except Exception as e:  # closing a dead connection must not fail the reply
        log.warning("login %s: disconnect failed (%s)", flow.account, type(e).__name__)


def _refused(
    login_id: str, account: str, step: LoginStep, problem: LoginProblem, message: str
) -> CommandReply:
    return CommandReply(
        ok=False,
        message=message,
        login=LoginProgress(login_id=login_id, account=account, step=step, problem=problem),
    )


def _failure(login_id: str, account: str, step: LoginStep, error: Exception) -> CommandReply:
    """A failed step as a reply: a ``LoginError`` in its own (value-free) words, anything else by
    its type only (a Telethon error's text could echo what was sent)."""
    problem: LoginProblem = "failed"
    retry: int | None = None
    if isinstance(error, LoginError):
        problem = _PROBLEMS.get(error.kind, "failed")
        message, retry = str(error), error.retry_after_s
    elif isinstance(error, IngestError):
        message = str(error)
    else:
        message = f"Telegram could not complete this step ({type(error).__name__}); try again."
        log.warning("login %s: step failed: %s", account, type(error).__name__)
    return CommandReply(
        ok=False,
        message=message[0].upper() + message[1:] + ("" if message.endswith(".") else "."),
        login=LoginProgress(
            login_id=login_id, account=account, step=step, problem=problem, retry_after_s=retry
        ),
    )
