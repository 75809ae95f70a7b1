"""Email + password sign-in through Supabase Auth (the ``supabase`` client library), for the console."""

from __future__ import annotations

import asyncio

import httpx
from supabase import AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthApiError, AuthError

from api.errors import ApiError, ServiceUnavailable


class SignInRefused(ApiError):
    """Supabase did not accept the email and password (it does not say which was wrong)."""

    status = 401
    title = "Sign-in refused"


class PasswordSignIn:
    """Exchanges an email and password for the user's Supabase access token (a JWT)."""

    def __init__(self, *, url: str, anon_key: str, timeout_s: float) -> None:
        self._url = url
        self._key = anon_key
        self._timeout_s = timeout_s

    async def access_token(self, email: str, password: str) -> str:
        """The access token of a successful sign-in; ``SignInRefused`` or ``ServiceUnavailable``."""
        try:
            # Our own HTTP client, so the connection is closed when the sign-in is done.
            async with (
                asyncio.timeout(self._timeout_s),
                httpx.AsyncClient(timeout=self._timeout_s) as http,
            ):
                options = AsyncClientOptions(
                    auto_refresh_token=False, persist_session=False, httpx_client=http
                )
                client = await acreate_client(self._url, self._key, options=options)
                response = await client.auth.sign_in_with_password(
                    {"email": email, "password": password}
                )
        except AuthApiError as e:
            if e.status in (400, 401, 403, 422):
                raise SignInRefused("Supabase did not accept that email and password.") from e
            raise ServiceUnavailable("Supabase Auth answered with an error.") from e
        except (AuthError, httpx.HTTPError, TimeoutError) as e:
            raise ServiceUnavailable("Supabase Auth did not answer.") from e
        if response.session is None:  # e.g. the email is not confirmed yet
            raise SignInRefused("Supabase did not open a session for this account.")
        return response.session.access_token
