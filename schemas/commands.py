"""Commands: imperative requests sent over NATS request/reply (never stored in the log).

The subject of a command is derived from its type, here and nowhere else, so the API (sender) and
ingest or the projector (servers) cannot disagree on a name. Each service has one subject prefix
(``aaltohub.cmd.ingest.>``, ``aaltohub.cmd.projector.>``) so NATS permissions can be granted per
service. Ingest commands name the Telegram account they are for (the ``account`` of its events and
of ``telegram_groups``), or ``all``. Login commands (adding a Telegram account from the console) go
to ``aaltohub.cmd.ingest.login.<verb>``: the account does not run yet, and one ingest process holds
the half-done logins. Their phone number, code and password travel only in the request (request/reply
is never stored in the log) and never render in a ``repr``.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from schemas.status import CrawlerStatus, ProjectorStatus, RetryOutcome
from schemas.subjects import validate_account

COMMAND_PREFIX: Final = "aaltohub.cmd"
INGEST_COMMANDS: Final = f"{COMMAND_PREFIX}.ingest"
PROJECTOR_COMMANDS: Final = f"{COMMAND_PREFIX}.projector"
ALL_ACCOUNTS: Final = "all"
LOGIN_TARGET: Final = "login"  # the subject token of login commands; no account may be named so


class TriggerCrawl(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="trigger_crawl"
):
    """Ask ingest to run a backfill or a gap-fill of one chat now."""

    chat_id: int
    mode: Literal["backfill", "gapfill"]
    requested_by: str | None = None


class RestartCrawler(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="restart_crawler"
):
    """Ask ingest to reconnect its Telegram clients and restart its background tasks."""

    requested_by: str | None = None


class ReportStatus(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="report_status"
):
    """Ask a service for its live status (ingest: ``CrawlerStatus``; projector: ``ProjectorStatus``)."""


class RetryDeadLetters(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="retry_dead_letters"
):
    """Ask the projector to re-apply dead letters (the given ids, or every unresolved one)."""

    dead_letter_ids: tuple[int, ...] = ()
    all_unresolved: bool = False
    requested_by: str | None = None


class StartLogin(msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="start_login"):
    """Ask ingest to send a Telegram login code to ``phone`` for a new (or logged-out) ``account``."""

    account: str
    phone: str
    requested_by: str | None = None

    def __repr__(self) -> str:
        return f"StartLogin(account={self.account!r}, phone='***')"


class SubmitLoginCode(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="submit_login_code"
):
    """The login code Telegram sent, for the login ``login_id``."""

    login_id: str
    code: str

    def __repr__(self) -> str:
        return f"SubmitLoginCode(login_id={self.login_id!r}, code='***')"


class SubmitLoginPassword(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="submit_login_password"
):
    """The two-step verification password, for the login ``login_id``."""

    login_id: str
    password: str

    def __repr__(self) -> str:
        return f"SubmitLoginPassword(login_id={self.login_id!r}, password='***')"


class CancelLogin(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="command", tag="cancel_login"
):
    """Forget the login ``login_id`` (its Telegram connection is closed)."""

    login_id: str


LoginStep = Literal["code", "password", "done", "start"]
LoginProblem = Literal[
    "wrong_code",
    "code_expired",
    "wrong_password",
    "flood_wait",
    "phone_invalid",
    "unknown_login",
    "busy",
    "failed",
]


class LoginProgress(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where a login is after a login command: the next ``step`` (``start`` when it must begin
    again), and on failure what went wrong (``problem``) and how long Telegram asks to wait."""

    login_id: str
    account: str
    step: LoginStep
    problem: LoginProblem | None = None
    retry_after_s: int | None = None


Command = (
    TriggerCrawl
    | RestartCrawler
    | ReportStatus
    | RetryDeadLetters
    | StartLogin
    | SubmitLoginCode
    | SubmitLoginPassword
    | CancelLogin
)
IngestCommand = TriggerCrawl | RestartCrawler | ReportStatus
ProjectorCommand = RetryDeadLetters | ReportStatus
LoginCommand = StartLogin | SubmitLoginCode | SubmitLoginPassword | CancelLogin


class CommandReply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The answer to a command: ``ok`` and a message, plus the typed result where there is one."""

    ok: bool
    message: str = ""
    crawler: CrawlerStatus | None = None  # ingest's answer to ReportStatus
    projector: ProjectorStatus | None = None  # the projector's answer to ReportStatus
    retry: RetryOutcome | None = None  # the projector's answer to RetryDeadLetters
    login: LoginProgress | None = None  # ingest's answer to a login command


def verb_of(command: Command) -> str:
    """The subject token of a command: its tag (``trigger_crawl``, ``report_status``, …)."""
    tag = type(command).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def _target(account: str | None) -> str:
    if account is None:
        return ALL_ACCOUNTS
    if account in (ALL_ACCOUNTS, LOGIN_TARGET):
        raise ValueError(f"{account!r} is a reserved command target, not an account name")
    return validate_account(account)


def ingest_subject(command: IngestCommand, account: str | None = None) -> str:
    """Where to send an ingest command: to the worker of ``account``, or to every account."""
    return f"{INGEST_COMMANDS}.{_target(account)}.{verb_of(command)}"


def ingest_serve_subject(account: str | None) -> str:
    """What ingest subscribes to for one account (or ``None``: the commands for all accounts)."""
    return f"{INGEST_COMMANDS}.{_target(account)}.>"


def projector_subject(command: ProjectorCommand) -> str:
    """Where to send a projector command (one queue group serves it)."""
    return f"{PROJECTOR_COMMANDS}.{verb_of(command)}"


PROJECTOR_SERVE_SUBJECT: Final = f"{PROJECTOR_COMMANDS}.>"


def login_subject(command: LoginCommand) -> str:
    """Where to send a login command (the ingest that holds Telegram credentials serves it)."""
    return f"{INGEST_COMMANDS}.{LOGIN_TARGET}.{verb_of(command)}"


LOGIN_SERVE_SUBJECT: Final = f"{INGEST_COMMANDS}.{LOGIN_TARGET}.>"


def validate_new_account(account: str) -> str:
    """``account`` if it can name a Telegram account (a subject token, not a reserved target)."""
    return _target(account)
