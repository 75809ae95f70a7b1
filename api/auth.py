"""Authentication: Supabase JWTs (HS256 secret or JWKS) or a static admin token; roles from ``users``.

Only known users read: a verified token whose ``sub`` has no ``users`` row is recorded there with
the configured role for newcomers (default ``none``: no access until an admin grants it), so users
who signed up through Supabase Auth appear in the admin list. Anonymous Supabase sign-ins and the
project's anon key are refused; ``iss`` is checked when an issuer is configured.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import jwt
from jwt.types import Options

from api.db import Database
from api.errors import Forbidden, Unauthorized

Role = Literal["admin", "user"]
StoredRole = Literal["admin", "user", "none"]  # a `users` row; `none` means no access
_ASYMMETRIC = ["RS256", "ES256", "EdDSA"]
# PyJWKClient blocks (an HTTP fetch on a cache miss); two threads of its own keep a slow JWKS
# endpoint from holding the loop's default pool, which ingest and the projector share under `up`.
_JWKS_THREADS = 2
_JWKS_TIMEOUT_S = 6.0  # above PyJWKClient's own 5 s, so its error wins when it answers


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: a user id (None for the static admin token) and a role."""

    user_id: uuid.UUID | None
    role: Role
    expires_at: float | None = (
        None  # the credential's expiry (Unix time); None: never (admin token)
    )

    @property
    def name(self) -> str:
        """A loggable name (never a credential)."""
        return str(self.user_id) if self.user_id else "static-admin"


class Authenticator:
    """Turns a bearer credential into a ``Principal`` or raises ``Unauthorized``."""

    def __init__(
        self,
        *,
        db: Database,
        jwt_secret: str | None,
        jwks_url: str | None,
        audience: str | None,
        admin_token: str | None,
        role_cache_s: float,
        issuer: str | None = None,
        new_user_role: StoredRole = "none",
    ) -> None:
        self._db = db
        self._secret = jwt_secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        self._jwks_threads = (
            ThreadPoolExecutor(max_workers=_JWKS_THREADS, thread_name_prefix="jwks")
            if jwks_url
            else None
        )
        self._audience = audience
        self._issuer = issuer
        self._new_user_role = new_user_role
        self._admin_token = admin_token.encode() if admin_token else None
        self._role_cache_s = role_cache_s
        self._roles: dict[uuid.UUID, tuple[float, StoredRole]] = {}
        # token -> (valid until, wall clock; principal): a client sends the same token on every
        # request, and verifying it costs more than the rest of a cached page read.
        self._verified: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, token: str | None) -> Principal:
        """The caller behind ``token``; ``Unauthorized`` without saying why, ``Forbidden`` for a
        known user without access."""
        if not token:
            raise Unauthorized()
        if self._admin_token is not None and hmac.compare_digest(token.encode(), self._admin_token):
            return Principal(user_id=None, role="admin")
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        claims = await self._verify(token)
        if claims.get("is_anonymous") is True or claims.get("role") == "anon":
            raise Unauthorized()  # Supabase anonymous sign-in, or the project's anon key
        try:
            user_id = uuid.UUID(str(claims["sub"]))
            expires = float(claims["exp"])  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as e:
            raise Unauthorized() from e
        email = claims.get("email")
        role = await self._role(user_id, email=email if isinstance(email, str) else None)
        if role == "none":
            raise Forbidden("no access yet: an admin must grant you a role")
        principal = Principal(user_id=user_id, role=role, expires_at=expires)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (min(expires, now + self._role_cache_s), principal)
        return principal

    async def signed_by_us(self, token: str) -> bool:
        """True when ``token`` is a JWT our project signed (its audience and issuer as configured),
        expired or not: worth renewing with its session's refresh token."""
        try:
            await self._verify(token, allow_expired=True)
        except Unauthorized:
            return False
        return True

    async def _verify(self, token: str, *, allow_expired: bool = False) -> dict[str, object]:
        required = ["exp", "sub", "iss"] if self._issuer is not None else ["exp", "sub"]
        options: Options = {
            "require": required,
            "verify_aud": self._audience is not None,
            "verify_iss": self._issuer is not None,
            "verify_exp": not allow_expired,
        }
        try:
            if self._secret is not None and jwt.get_unverified_header(token).get("alg") == "HS256":
                return jwt.decode(
                    token,
                    self._secret,
                    algorithms=["HS256"],
                    audience=self._audience,
                    issuer=self._issuer,
                    options=options,
                    leeway=5,
                )
            if self._jwks is not None:
                key = await asyncio.wait_for(
                    asyncio.get_running_loop().run_in_executor(
                        self._jwks_threads, self._jwks.get_signing_key_from_jwt, token
                    ),
                    _JWKS_TIMEOUT_S,
                )
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=_ASYMMETRIC,
                    audience=self._audience,
                    issuer=self._issuer,
                    options=options,
                    leeway=5,
                )
        except (jwt.PyJWTError, TimeoutError, ValueError) as e:
            raise Unauthorized() from e
        raise Unauthorized()

    async def _role(self, user_id: uuid.UUID, *, email: str | None) -> StoredRole:
        now = time.monotonic()
        cached = self._roles.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._db.fetch_one("SELECT role FROM users WHERE id = %s", (user_id,))
        if row is None:  # first sight of a Supabase Auth user: record them with the newcomer role
            row = await self._db.fetch_one(
                "INSERT INTO users (id, email, role) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id RETURNING role",
                (user_id, email, self._new_user_role),
            )
        stored = row["role"] if row is not None else "none"
        role: StoredRole = "admin" if stored == "admin" else "user" if stored == "user" else "none"
        if len(self._roles) > 10_000:
            self._roles.clear()
        self._roles[user_id] = (now + self._role_cache_s, role)
        return role

    def close(self) -> None:
        """Stop the JWKS threads (a fetch in flight ends on its own timeout)."""
        if self._jwks_threads is not None:
            self._jwks_threads.shutdown(wait=False, cancel_futures=True)

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop a cached role (after a role change)."""
        self._roles.pop(user_id, None)
        self._verified = {t: v for t, v in self._verified.items() if v[1].user_id != user_id}


def require_admin(principal: Principal) -> Principal:
    """``principal`` if it is an admin, else ``Forbidden``."""
    if principal.role != "admin":
        raise Forbidden()
    return principal
