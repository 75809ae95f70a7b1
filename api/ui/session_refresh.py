"""Keeping a Supabase sign-in alive: renew the console's session before its access token expires.

Supabase access tokens are short-lived JWTs (an hour by default); the sign-in also returns a
refresh token, which the console keeps in its own HttpOnly cookie. ``SessionRefresh`` looks at
each console request: when the access token in the session cookie expires within ``ahead_s`` and
a refresh token is there, it asks Supabase Auth for a new session, lets the request go on with the
new access token and sets both new cookies on the response. When Supabase refuses the refresh
token (revoked, used up, the user deleted) the user is signed out: both cookies are cleared and
the browser goes to the sign-in page, which says the session ended. When Supabase does not answer,
the request goes on unchanged (the next one tries again).

Several requests often arrive with the same old cookie (a page and its fragments), while Supabase
rotates the refresh token on every use: the renewal of one refresh token is shared by every request
that carries it, for ``reuse_s``. Only a token our project signed (checked, expired or not) is
renewed, so a made-up cookie never makes the API call Supabase; every request is still
authenticated with the token it ends up with.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import quote

from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import ApiState
from api.errors import ApiError
from api.ui.session import (
    REFRESH_COOKIE,
    SESSION_COOKIE,
    clear_credential_cookies,
    next_path,
    set_credential_cookie,
)
from api.ui.supabase_signin import PasswordSignIn, SignInRefused, SupabaseTokens

log = logging.getLogger(__name__)

REFRESH_AHEAD_S: Final = 300.0  # renew when the access token has less than this left
_SKIP: Final = ("/ui/static/", "/ui/login", "/ui/logout")
_MAX_SHARED: Final = 1000


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, unverified (None when ``token`` is not a JWT with one)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


class SessionRefresh:
    """ASGI middleware renewing the console's Supabase session (see the module doc)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        signin: PasswordSignIn,
        ahead_s: float = REFRESH_AHEAD_S,
        reuse_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app = app
        self._signin = signin
        self._ahead_s = ahead_s
        self._reuse_s = reuse_s
        self._clock = clock
        self._shared: dict[str, tuple[float, asyncio.Task[SupabaseTokens]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/ui/") or path.startswith(_SKIP):
            await self._app(scope, receive, send)
            return
        request = Request(scope)
        access = request.cookies.get(SESSION_COOKIE)
        refresh = request.cookies.get(REFRESH_COOKIE)
        expires = token_expiry(access) if access else None
        if not refresh or expires is None or expires - self._clock() > self._ahead_s:
            await self._app(scope, receive, send)
            return
        state: ApiState | None = getattr(request.app.state, "api", None)
        if access is None or state is None or not await state.auth.signed_by_us(access):
            await self._app(scope, receive, send)  # not our project's token: nothing to renew
            return
        try:
            tokens = await self._renewed(refresh)
        except SignInRefused:
            await _signed_out(request)(scope, receive, send)
            return
        except ApiError as e:  # Supabase unreachable: go on; the next request tries again
            log.warning("console: session not renewed: %s", e.detail or e.title)
            await self._app(scope, receive, send)
            return
        cookies = {**request.cookies, SESSION_COOKIE: tokens.access_token}
        headers = MutableHeaders(scope=scope)
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        carrier = Response()
        set_credential_cookie(carrier, request, SESSION_COOKIE, tokens.access_token)
        set_credential_cookie(carrier, request, REFRESH_COOKIE, tokens.refresh_token)
        set_cookies = [v for k, v in carrier.raw_headers if k == b"set-cookie"]

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((b"set-cookie", v) for v in set_cookies),
                ]
            await send(message)

        await self._app(scope, receive, send_with_cookies)

    async def _renewed(self, refresh_token: str) -> SupabaseTokens:
        """Supabase's new session for ``refresh_token``, shared by requests carrying the same one."""
        now = self._clock()
        for key, (at, _task) in list(self._shared.items()):
            if now - at > self._reuse_s or len(self._shared) > _MAX_SHARED:
                del self._shared[key]
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        shared = self._shared.get(key)
        if shared is None:
            task = asyncio.ensure_future(self._signin.refresh(refresh_token))
            self._shared[key] = shared = (now, task)
        return await asyncio.shield(shared[1])


def _signed_out(request: Request) -> Response:
    """Both cookies cleared, and the browser sent to sign in again (htmx: by ``HX-Redirect``)."""
    target = "/ui/login?ended=1&next=" + quote(next_path(request), safe="/")
    response: Response
    if request.headers.get("hx-request"):
        response = Response(status_code=204, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    clear_credential_cookies(response, request)
    return response
