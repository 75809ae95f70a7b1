"""Console sessions: the credential in an HttpOnly cookie, CSRF tokens bound to it, sign-in errors.

The cookie holds the bearer credential itself (the static admin token or a Supabase access token);
every request re-checks it through ``api.auth.Authenticator``, so a role change or an expired JWT
takes effect at once. A form's CSRF token is an HMAC of the credential under the console key, which
every API worker shares (``ApiConfig.console_key``), so a form rendered by one worker posts to any
other (double-submit is not needed: the cookie is HttpOnly and SameSite=Strict, the token proves
the form was rendered by us for this session).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import Response

from api.auth import Principal
from api.config import ApiConfig
from api.deps import State
from api.errors import ApiError, Forbidden, Unauthorized

SESSION_COOKIE: Final = "aaltohub_session"
LOGIN_COOKIE: Final = "aaltohub_login"  # nonce that the sign-in form's CSRF token is bound to
REFRESH_COOKIE: Final = (
    "aaltohub_refresh"  # a Supabase session's refresh token (api.ui.session_refresh)
)
SESSION_MAX_AGE_S: Final = 12 * 3600
_CSRF_LABEL: Final = (
    b"aaltohub console csrf v1"  # the key's use, so it is never the material itself
)


class ConsoleError(ApiError):
    """Base of the console's own errors (rendered as pages, never as problem+json)."""


class SignInRequired(ConsoleError):
    """No valid session; the browser is sent to the sign-in page and back to ``next_path``."""

    status = 401
    title = "Sign-in required"

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in to continue")
        self.next_path = next_path


class FormExpired(ConsoleError):
    """A state-changing form arrived without a valid CSRF token."""

    status = 403
    title = "Form expired"

    def __init__(self) -> None:
        super().__init__(
            "This form has expired or did not come from this console. Reload the page and try again."
        )


@dataclass(frozen=True, kw_only=True)
class ConsoleSecrets:
    """The secret CSRF tokens are derived from."""

    csrf_key: bytes

    def __repr__(self) -> str:
        return "ConsoleSecrets(<redacted>)"

    @classmethod
    def generate(cls) -> ConsoleSecrets:
        """Fresh random secrets, for one process only (a restart invalidates open forms)."""
        return cls(csrf_key=secrets.token_bytes(32))

    @classmethod
    def from_config(cls, config: ApiConfig) -> ConsoleSecrets:
        """Derived from the console key, else the admin token or JWT secret, so every worker
        with the same configuration accepts the same forms; random when none is configured."""
        material = config.console_key or config.admin_token or config.jwt_secret
        if material is None:
            return cls.generate()
        key = hmac.new(material.get_secret_value().encode(), _CSRF_LABEL, hashlib.sha256)
        return cls(csrf_key=key.digest())

    def csrf_for(self, bound_to: str) -> str:
        """The CSRF token of forms rendered for the credential or nonce ``bound_to``."""
        mac = hmac.new(self.csrf_key, bound_to.encode(), hashlib.sha256)
        return mac.hexdigest()[:40]

    def check(self, bound_to: str | None, token: str | None) -> None:
        """``FormExpired`` unless ``token`` is the CSRF token for ``bound_to``."""
        if not bound_to or not token:
            raise FormExpired()
        if not hmac.compare_digest(self.csrf_for(bound_to), token):
            raise FormExpired()


@dataclass(frozen=True, kw_only=True)
class ConsoleSession:
    """A signed-in console user: who, and the CSRF token for their forms."""

    principal: Principal
    csrf: str

    @property
    def is_admin(self) -> bool:
        """True for the admin role."""
        return self.principal.role == "admin"


def console_secrets(request: Request) -> ConsoleSecrets:
    """The app's console secrets."""
    found: ConsoleSecrets = request.app.state.console_secrets
    return found


def next_path(request: Request) -> str:
    """Where to come back to after signing in (same-origin path only)."""
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return path


def sign_in_url(next_to: str) -> str:
    """The sign-in page, returning to ``next_to``."""
    return "/ui/login?next=" + quote(safe_next(next_to), safe="/")


def safe_next(value: str | None) -> str:
    """``value`` if it is a console path, else the console home (no open redirect)."""
    if value and value.startswith("/ui/") and not value.startswith("/ui//") and "\\" not in value:
        return value
    return "/ui/"


async def current_session(request: Request, state: State) -> ConsoleSession:
    """The signed-in user of this request, or ``SignInRequired``."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired(next_path(request))
    try:
        principal = await state.auth.authenticate(token)
    except Unauthorized as e:
        raise SignInRequired(next_path(request)) from e
    return ConsoleSession(principal=principal, csrf=console_secrets(request).csrf_for(token))


async def admin_session(
    session: Annotated[ConsoleSession, Depends(current_session)],
) -> ConsoleSession:
    """The signed-in user if an admin, else ``Forbidden`` (shown as a page)."""
    if not session.is_admin:
        raise Forbidden("This page is for admins. Ask an admin to change your role.")
    return session


async def checked_session(
    request: Request,
    session: Annotated[ConsoleSession, Depends(admin_session)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> ConsoleSession:
    """An admin's session for a state-changing form whose CSRF token matches."""
    console_secrets(request).check(request.cookies.get(SESSION_COOKIE), csrf)
    return session


Session = Annotated[ConsoleSession, Depends(current_session)]
AdminSession = Annotated[ConsoleSession, Depends(admin_session)]
CheckedAdmin = Annotated[ConsoleSession, Depends(checked_session)]


# Where each credential cookie is sent: the access token everywhere (the API reads it too), the
# refresh token only to the console, which renews sessions.
_CREDENTIAL_PATHS: Final = {SESSION_COOKIE: "/", REFRESH_COOKIE: "/ui/"}


def set_credential_cookie(response: Response, request: Request, name: str, value: str) -> None:
    """Store the session (``SESSION_COOKIE``) or refresh (``REFRESH_COOKIE``) token: HttpOnly,
    SameSite=Strict, Secure when served over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=SESSION_MAX_AGE_S,
        path=_CREDENTIAL_PATHS[name],
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_credential_cookies(
    response: Response, request: Request, names: tuple[str, ...] = (SESSION_COOKIE, REFRESH_COOKIE)
) -> None:
    """Forget these credentials (by default both)."""
    for name in names:
        response.delete_cookie(
            name,
            path=_CREDENTIAL_PATHS[name],
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
