"""Authentication: Supabase JWTs (HS256 secret or JWKS) or a static admin token; roles from ``users``."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import jwt
from jwt.types import Options

from api.db import Database
from api.errors import Forbidden, Unauthorized

Role = Literal["admin", "user"]
_ASYMMETRIC = ["RS256", "ES256", "EdDSA"]


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is calling: a user id (None for the static admin token) and a role."""

    user_id: uuid.UUID | None
    role: Role

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
    ) -> None:
        self._db = db
        self._secret = jwt_secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        self._audience = audience
        self._admin_token = admin_token.encode() if admin_token else None
        self._role_cache_s = role_cache_s
        self._roles: dict[uuid.UUID, tuple[float, Role]] = {}
        # token -> (valid until, wall clock; principal): a client sends the same token on every
        # request, and verifying it costs more than the rest of a cached page read.
        self._verified: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, token: str | None) -> Principal:
        """The caller behind ``token``; ``Unauthorized`` without saying why."""
        if not token:
            raise Unauthorized()
        if self._admin_token is not None and hmac.compare_digest(token.encode(), self._admin_token):
            return Principal(user_id=None, role="admin")
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        claims = await self._verify(token)
        try:
            user_id = uuid.UUID(str(claims["sub"]))
            expires = float(claims["exp"])  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as e:
            raise Unauthorized() from e
        principal = Principal(user_id=user_id, role=await self._role(user_id))
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (min(expires, now + self._role_cache_s), principal)
        return principal

    async def _verify(self, token: str) -> dict[str, object]:
        options: Options = {"require": ["exp", "sub"], "verify_aud": self._audience is not None}
        try:
            if self._secret is not None and jwt.get_unverified_header(token).get("alg") == "HS256":
                return jwt.decode(
                    token,
                    self._secret,
                    algorithms=["HS256"],
                    audience=self._audience,
                    options=options,
                    leeway=5,
                )
            if self._jwks is not None:
                key = await asyncio.wait_for(
                    asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token), 6
                )
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=_ASYMMETRIC,
                    audience=self._audience,
                    options=options,
                    leeway=5,
                )
        except (jwt.PyJWTError, TimeoutError, ValueError) as e:
            raise Unauthorized() from e
        raise Unauthorized()

    async def _role(self, user_id: uuid.UUID) -> Role:
        now = time.monotonic()
        cached = self._roles.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._db.fetch_one("SELECT role FROM users WHERE id = %s", (user_id,))
        role: Role = "admin" if row is not None and row["role"] == "admin" else "user"
        if len(self._roles) > 10_000:
            self._roles.clear()
        self._roles[user_id] = (now + self._role_cache_s, role)
        return role

    def forget(self, user_id: uuid.UUID) -> None:
        """Drop a cached role (after a role change)."""
        self._roles.pop(user_id, None)
        self._verified = {t: v for t, v in self._verified.items() if v[1].user_id != user_id}


def require_admin(principal: Principal) -> Principal:
    """``principal`` if it is an admin, else ``Forbidden``."""
    if principal.role != "admin":
        raise Forbidden()
    return principal
