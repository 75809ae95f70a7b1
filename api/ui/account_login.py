"""Adding a Telegram account from the console: phone → code → two-step password, through ingest.

The API holds no Telegram client: each step is a login command to ingest (``schemas.commands``),
which keeps the unfinished login under a random id and stores the encrypted session at the end.
The phone, code and password pass through this process only inside the request; they are never
logged or stored here. A failed step is shown in words and keeps what was typed: with htmx the
error replaces only the step's message (the form and its fields stay as typed); without scripts
the step is rendered again with the typed phone and code (a password is never sent back).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.commands import ask_login
from api.deps import State
from api.errors import ServiceUnavailable
from api.ui.overview import is_htmx, pages
from api.ui.session import CheckedAdmin, ConsoleSession
from schemas.commands import (
    CancelLogin,
    CommandReply,
    LoginCommand,
    LoginProgress,
    StartLogin,
    SubmitLoginCode,
    SubmitLoginPassword,
)

router = APIRouter(prefix="/ui/accounts/login", include_in_schema=False)

# A step may connect to Telegram and wait for its answer (ingest bounds each call at 60 s).
LOGIN_TIMEOUT_S: Final = 70.0
_ERROR_TARGET: Final = "#login-error"

AccountField = Annotated[str, Form(min_length=1, max_length=64)]
PhoneField = Annotated[str, Form(min_length=3, max_length=32)]
LoginIdField = Annotated[str, Form(min_length=1, max_length=64)]


@router.post("")
async def start_login(
    request: Request,
    state: State,
    session: CheckedAdmin,
    account: AccountField,
    phone: PhoneField,
) -> Response:
    """Ask ingest to send a login code to ``phone`` for ``account``."""
    command = StartLogin(account=account.strip(), phone=phone, requested_by=session.principal.name)
    typed = {"account": account.strip(), "phone": phone}
    return await _step(request, state, session, command, typed, at="start")


@router.post("/code")
async def submit_code(
    request: Request,
    state: State,
    session: CheckedAdmin,
    login_id: LoginIdField,
    account: AccountField,
    phone: PhoneField,
    code: Annotated[str, Form(min_length=1, max_length=16)],
) -> Response:
    """Sign in with the code Telegram sent."""
    typed = {"account": account, "phone": phone, "code": code, "login_id": login_id}
    command = SubmitLoginCode(login_id=login_id, code=code)
    return await _step(request, state, session, command, typed, at="code")


@router.post("/password")
async def submit_password(
    request: Request,
    state: State,
    session: CheckedAdmin,
    login_id: LoginIdField,
    account: AccountField,
    phone: PhoneField,
    password: Annotated[str, Form(min_length=1, max_length=256)],
) -> Response:
    """Finish a two-step login with the account's cloud password."""
    typed = {"account": account, "phone": phone, "login_id": login_id}
    command = SubmitLoginPassword(login_id=login_id, password=password)
    return await _step(request, state, session, command, typed, at="password")


@router.post("/cancel")
async def cancel_login(
    request: Request, state: State, session: CheckedAdmin, login_id: LoginIdField
) -> Response:
    """Forget an unfinished login (ingest closes its Telegram connection)."""
    try:
        await ask_login(state.log, CancelLogin(login_id=login_id), timeout_s=LOGIN_TIMEOUT_S)
    except ServiceUnavailable:
        pass  # the login expires by itself in ingest
    return _render(request, session, {"step": "start", "notice": "Login cancelled."})


async def _step(
    request: Request,
    state: State,
    session: ConsoleSession,
    command: LoginCommand,
    typed: dict[str, str],
    *,
    at: str,
) -> Response:
    try:
        reply = await ask_login(state.log, command, timeout_s=LOGIN_TIMEOUT_S)
    except ServiceUnavailable as e:
        return _failed(request, session, typed, step=at, error=e.detail or e.title)
    progress = reply.login
    if progress is None:
        return _failed(request, session, typed, step=at, error=reply.message or "Refused.")
    if not reply.ok:
        return _failed(request, session, typed, step=progress.step, error=_words(reply, progress))
    context: dict[str, Any] = {
        "step": progress.step,
        "account": progress.account,
        "phone": typed["phone"],
        "login_id": progress.login_id,
        "notice": reply.message,
    }
    return _render(request, session, context)


def _failed(
    request: Request, session: ConsoleSession, typed: dict[str, str], *, step: str, error: str
) -> Response:
    """A failed step: only the message for htmx when the step stays (the typed fields stay as
    they are in the browser), else the step again with what was typed (never a password)."""
    stays = step == _at(request)
    if is_htmx(request) and stays:
        fragment = pages(request).render(
            request, "fragments/login_error.html", session, {"error": error}, status_code=200
        )
        fragment.headers["HX-Retarget"] = _ERROR_TARGET
        fragment.headers["HX-Reswap"] = "innerHTML"
        return fragment
    context: dict[str, Any] = {**typed, "step": step, "error": error}
    if step == "start":
        context.pop("code", None)
    return _render(request, session, context, status_code=200 if is_htmx(request) else 409)


def _at(request: Request) -> str:
    """The step a form belongs to, from its path."""
    last = request.url.path.rsplit("/", 1)[-1]
    return last if last in ("code", "password") else "start"


def _words(reply: CommandReply, progress: LoginProgress) -> str:
    text = reply.message or "Telegram refused this step."
    if progress.problem == "flood_wait" and progress.retry_after_s:
        minutes = -(-progress.retry_after_s // 60)
        text += f" That is about {minutes} min."
    return text


def _render(
    request: Request,
    session: ConsoleSession,
    values: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "account": "",
        "phone": "",
        "code": "",
        "login_id": "",
        "error": None,
        "notice": None,
        **values,
    }
    template = "fragments/login_step.html" if is_htmx(request) else "account_login.html"
    return pages(request).render(request, template, session, context, status_code=status_code)
