"""Signing in and out of the console, and the API root sending browsers to it."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.deps import State
from api.errors import Unauthorized
from api.ui.render import Pages
from api.ui.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    clear_session_cookie,
    console_secrets,
    current_session,
    safe_next,
    set_session_cookie,
)


def pages(request: Request) -> Pages:
    """The app's page renderer."""
    found: Pages = request.app.state.console_pages
    return found


def build_router() -> APIRouter:
    """Routes of ``/``, ``/ui/login`` and ``/ui/logout``."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def root(request: Request) -> Response:
        """Browsers go to the console; other clients get where things are."""
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/ui/", status_code=303)
        return JSONResponse({"console": "/ui/", "docs": "/docs", "openapi": "/openapi.json"})

    @router.get("/ui/login")
    async def login_form(
        request: Request, next: Annotated[str | None, Query(max_length=2000)] = None
    ) -> Response:
        """The sign-in form (its CSRF token is bound to a fresh nonce cookie)."""
        return _login_page(request, next_to=safe_next(next), error=None, status_code=200)

    @router.post("/ui/login")
    async def login(
        request: Request,
        state: State,
        token: Annotated[str, Form(max_length=8192)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/ui/",
    ) -> Response:
        """Check the credential and keep it in the session cookie."""
        next_to = safe_next(next)
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not nonce or not secrets.compare_digest(console_secrets(request).csrf_for(nonce), csrf):
            return _login_page(
                request,
                next_to=next_to,
                error="The sign-in form expired. Please try again.",
                status_code=403,
            )
        token = token.strip()
        if not token:
            return _login_page(
                request, next_to=next_to, error="Enter the admin token.", status_code=400
            )
        try:
            principal = await state.auth.authenticate(token)
        except Unauthorized:
            return _login_page(
                request,
                next_to=next_to,
                error="That token was not accepted. Check it and try again.",
                status_code=401,
            )
        target = next_to if principal.role == "admin" or next_to != "/ui/" else "/ui/groups"
        response = RedirectResponse(target, status_code=303)
        set_session_cookie(response, request, token)
        response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
        return response

    @router.post("/ui/logout")
    async def logout(
        request: Request, state: State, csrf: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        """Forget the session (the CSRF token stops a third-party page from signing you out)."""
        session = await current_session(request, state)
        console_secrets(request).check(request.cookies.get(SESSION_COOKIE), csrf)
        del session
        response = RedirectResponse("/ui/login", status_code=303)
        clear_session_cookie(response, request)
        return response

    return router


def _login_page(request: Request, *, next_to: str, error: str | None, status_code: int) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = pages(request).render(
        request,
        "login.html",
        None,
        {
            "next_to": next_to,
            "error": error,
            "login_csrf": console_secrets(request).csrf_for(nonce),
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/ui/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
