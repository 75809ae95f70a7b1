"""Signing in and out of the console, and the API root sending browsers to it."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.deps import State
from api.errors import ApiError, Forbidden, Unauthorized
from api.ui.render import Pages
from api.ui.session import (
    LOGIN_COOKIE,
    REFRESH_COOKIE,
    SESSION_COOKIE,
    SignInRequired,
    clear_credential_cookies,
    console_secrets,
    current_session,
    safe_next,
    set_credential_cookie,
)
from api.ui.supabase_signin import PasswordSignIn, SupabaseTokens

log = logging.getLogger(__name__)


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
        request: Request,
        next: Annotated[str | None, Query(max_length=2000)] = None,
        ended: Annotated[bool, Query()] = False,
    ) -> Response:
        """The sign-in form (its CSRF token is bound to a fresh nonce cookie); ``ended``: the
        session could not be renewed, so the page says so."""
        error = "Your session ended. Please sign in again." if ended else None
        return _login_page(request, next_to=safe_next(next), error=error, status_code=200)

    @router.post("/ui/login")
    async def login(
        request: Request,
        state: State,
        token: Annotated[str, Form(max_length=8192)] = "",
        email: Annotated[str, Form(max_length=320)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/ui/",
    ) -> Response:
        """Check the credential (a token, or an email and password for Supabase) and keep it in the
        session cookie. On an error the page says why and keeps the email typed."""
        next_to = safe_next(next)
        email = email.strip()

        def refused(error: str, status_code: int) -> Response:
            return _login_page(
                request, next_to=next_to, error=error, status_code=status_code, email=email
            )

        supabase: SupabaseTokens | None = None
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not nonce or not secrets.compare_digest(console_secrets(request).csrf_for(nonce), csrf):
            return refused("The sign-in form expired. Please try again.", 403)
        if email or password:
            signer = password_signin(request)
            if signer is None:
                return refused("Email sign-in is not set up here; use a token.", 400)
            if not email or not password:
                return refused("Enter both your email and your password.", 400)
            try:
                supabase = await signer.sign_in(email, password)
            except ApiError as e:
                return refused(e.detail or e.title, e.status)
            token = supabase.access_token
        token = token.strip()
        if not token:
            return refused("Enter the admin token.", 400)
        try:
            principal = await state.auth.authenticate(token)
        except Unauthorized:
            return refused("That token was not accepted. Check it and try again.", 401)
        except Forbidden as e:  # a known user without a role yet
            return refused(f"Signed in, but {e.detail or 'no access'}.", 403)
        target = next_to if principal.role == "admin" or next_to != "/ui/" else "/ui/groups"
        response = RedirectResponse(target, status_code=303)
        set_credential_cookie(response, request, SESSION_COOKIE, token)
        if supabase is not None:  # renewed before it expires (api.ui.session_refresh)
            set_credential_cookie(response, request, REFRESH_COOKIE, supabase.refresh_token)
        else:
            clear_credential_cookies(response, request, (REFRESH_COOKIE,))
        response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
        return response

    @router.get("/ui/session")
    async def session_alive(request: Request, state: State) -> Response:
        """204 while signed in (a Supabase session is renewed on the way), 401 otherwise; the live
        page asks this when its connection ends at the access token's expiry."""
        try:
            await current_session(request, state)
        except SignInRequired:
            return Response(status_code=401, headers={"Cache-Control": "no-store"})
        return Response(status_code=204, headers={"Cache-Control": "no-store"})

    @router.post("/ui/logout")
    async def logout(
        request: Request, state: State, csrf: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        """Forget the session (the CSRF token stops a third-party page from signing you out)."""
        session = await current_session(request, state)
        console_secrets(request).check(request.cookies.get(SESSION_COOKIE), csrf)
        del session
        signer = password_signin(request)
        token = request.cookies.get(SESSION_COOKIE)
        if signer is not None and token and request.cookies.get(REFRESH_COOKIE):
            try:  # a Supabase session: revoke its refresh token too
                await signer.sign_out(token)
            except ApiError as e:  # the cookies go anyway; the token expires by itself
                log.warning("console: Supabase sign-out failed: %s", e.detail or e.title)
        response = RedirectResponse("/ui/login", status_code=303)
        clear_credential_cookies(response, request)
        return response

    return router


def password_signin(request: Request) -> PasswordSignIn | None:
    """The Supabase email + password sign-in, when configured."""
    found: PasswordSignIn | None = request.app.state.console_password_signin
    return found


def _login_page(
    request: Request, *, next_to: str, error: str | None, status_code: int, email: str = ""
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = pages(request).render(
        request,
        "login.html",
        None,
        {
            "next_to": next_to,
            "error": error,
            "email": email,
            "email_signin": password_signin(request) is not None,
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
