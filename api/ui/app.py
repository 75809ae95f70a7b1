"""``install_console(app)``: the browser console under ``/ui/`` (pages, static files, error pages)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.config import ApiConfig
from api.errors import ApiError
from api.ui import account_login, admin_pages, live_pages, message_pages, overview, signin
from api.ui.render import Pages
from api.ui.session import ConsoleSecrets, SignInRequired, sign_in_url
from api.ui.session_refresh import SessionRefresh
from api.ui.supabase_signin import PasswordSignIn

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

# Status codes in words: a console user never sees a bare number.
_WORDS: Final = {
    400: "The request could not be used.",
    403: "You are not allowed to do this.",
    404: "This page or item does not exist.",
    409: "This conflicts with the current state.",
    422: "Some of the values entered are not valid.",
    503: "A part of the crawler is not available right now. Try again in a moment.",
}


def install_console(
    app: FastAPI, config: ApiConfig, *, secrets: ConsoleSecrets | None = None
) -> None:
    """Serve the console on ``app``; call after ``install_error_handlers``."""
    app.state.console_secrets = secrets or ConsoleSecrets.from_config(config)
    app.state.console_pages = Pages()
    app.state.console_password_signin = None
    if config.supabase_url and config.supabase_anon_key:
        supabase_auth = PasswordSignIn(
            url=config.supabase_url,
            anon_key=config.supabase_anon_key.get_secret_value(),
            timeout_s=config.command_timeout_s,
        )
        app.state.console_password_signin = supabase_auth
        app.add_middleware(SessionRefresh, signin=supabase_auth)  # renews Supabase sessions
    app.mount("/ui/static", StaticFiles(packages=[("api.ui", "static")]), name="ui-static")
    app.include_router(signin.build_router())
    for module in (overview, message_pages, admin_pages, account_login, live_pages):
        app.include_router(module.router)
    for exc_type in (ApiError, RequestValidationError):
        fallback = app.exception_handlers[exc_type]
        app.add_exception_handler(exc_type, _console_errors(fallback))


def _console_errors(fallback: Handler) -> Handler:
    async def handle(request: Request, exc: Any) -> Response:
        if not request.url.path.startswith("/ui/"):
            result = fallback(request, exc)
            return await result if inspect.isawaitable(result) else result
        return error_page(request, exc)

    return handle


def error_page(request: Request, exc: Exception) -> Response:
    """An error as words: a page, or a fragment for an htmx request."""
    if isinstance(exc, SignInRequired):
        target = sign_in_url(exc.next_path)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    if isinstance(exc, ApiError):
        status, detail = exc.status, exc.detail
    else:
        status, detail = 422, _validation_words(exc)
    words = _WORDS.get(status, "Something went wrong.")
    message = f"{words} {detail}" if detail else words
    if request.headers.get("hx-request"):
        return HTMLResponse(f'<p class="error" role="alert">{_escape(message)}</p>', status)
    pages: Pages = request.app.state.console_pages
    return pages.render(request, "error.html", None, {"message": message}, status_code=status)


def _validation_words(exc: Exception) -> str:
    if not isinstance(exc, RequestValidationError):
        return ""
    parts = []
    for error in exc.errors()[:3]:
        field = str(error.get("loc", ("", "value"))[-1])
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
