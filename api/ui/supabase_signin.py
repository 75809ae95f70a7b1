"""Email + password sign-in through Supabase Auth (the ``supabase`` client library), for the console,
and refreshing that session before its access token (a JWT) expires."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError, AuthError, AuthSessionMissingError
from supabase_auth.types import AuthResponse

from api.errors import ApiError, ServiceUnavailable


class SignInRefused(ApiError):
    """Supabase did not accept the email and password (it does not say which was wrong), or no
    longer accepts the session's refresh token (revoked, used up, the user deleted)."""

    status = 401
    title = "Sign-in refused"


@dataclass(frozen=True, kw_only=True)
class SupabaseTokens:
    """A Supabase session as the console keeps it: the access token and its refresh token."""

    access_token: str
    refresh_token: str

    def __repr__(self) -> str:
        return "SupabaseTokens(<redacted>)"


class PasswordSignIn:
    """Signs in with an email and password and refreshes sessions, through Supabase Auth."""

    def __init__(self, *, url: str, anon_key: str, timeout_s: float) -> None:
        self._url = url
        self._key = anon_key
        self._timeout_s = timeout_s

    async def sign_in(self, email: str, password: str) -> SupabaseTokens:
        """The session of a successful sign-in; ``SignInRefused`` or ``ServiceUnavailable``."""
        async with self._client() as client:
            response = await client.auth.sign_in_with_password(
                {"email": email, "password": password}
            )
        return _tokens(response, "Supabase did not open a session for this account.")

    async def refresh(self, refresh_token: str) -> SupabaseTokens:
        """A new session for ``refresh_token`` (Supabase rotates it: use the new one next time);
        ``SignInRefused`` when Supabase no longer accepts it, ``ServiceUnavailable`` when it does
        not answer."""
        async with self._client() as client:
            response = await client.auth.refresh_session(refresh_token)
        return _tokens(response, "Supabase did not renew the session.")

    async def sign_out(self, access_token: str) -> None:
        """End the session on Supabase's side too (its refresh token stops working); a token
        Supabase no longer knows counts as signed out. ``ServiceUnavailable`` when it does not
        answer."""
        try:
            async with self._client() as client:
                await client.auth.admin.sign_out(access_token, "local")
        except SignInRefused:
            pass  # 401/403/404: the session is already gone

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[AsyncClient]:
        """A Supabase client on our own HTTP client (closed after the call), errors translated."""
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                httpx.AsyncClient(timeout=self._timeout_s) as http,
            ):
                options = AsyncClientOptions(
                    auto_refresh_token=False, persist_session=False, httpx_client=http
                )
                yield await acreate_client(self._url, self._key, options=options)
        except AuthApiError as e:
            if e.status in (400, 401, 403, 404, 422):
                raise SignInRefused("Supabase did not accept that email and password.") from e
            raise ServiceUnavailable("Supabase Auth answered with an error.") from e
        except AuthSessionMissingError as e:
            raise SignInRefused("Supabase did not renew the session.") from e
        except (AuthError, httpx.HTTPError, TimeoutError) as e:
            raise ServiceUnavailable("Supabase Auth did not answer.") from e


def _tokens(response: AuthResponse, refused: str) -> SupabaseTokens:
    session = response.session
    if session is None:  # e.g. the email is not confirmed yet
        raise SignInRefused(refused)
    return SupabaseTokens(access_token=session.access_token, refresh_token=session.refresh_token)
