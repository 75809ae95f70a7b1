"""Encrypted Telethon ``StringSession`` storage: AES-256-GCM, key rotation, Postgres ``telegram_sessions``.

``MASTER_KEY`` format: ``<id>:<base64 of 32 bytes>[,<id>:<base64 of 32 bytes>…]``. The first key
encrypts; every listed key decrypts, so rotating means putting the new key first and running
``SessionStore.rotate()``, which re-encrypts every session and then *retires* the other key ids in
``telegram_session_keys_retired``: from then on a ciphertext under a retired key is refused even
while MASTER_KEY still lists the key. A bare ``<base64>`` is the key ``default``.

Ciphertext layout (bytes): ``b"AHS1" | len(id) (1 byte) | id (ascii) | nonce (12) | AES-GCM(ct + tag)``.
The associated data binds magic, key id and account, so a row copied to another account, a changed
key id or any flipped bit is rejected.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Final, TypeVar

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ingest.errors import MasterKeyError, SessionDecryptError, SessionNotFound, StoreError
from ingest.telegram.master_key import KEY_BYTES, parse_master_key
from ingest.telegram.threads import off_loop

MAGIC: Final = b"AHS1"
NONCE_BYTES: Final = 12  # NIST SP 800-38D: 96-bit nonces for GCM
T = TypeVar("T")


class Secret:
    """A secret string that never renders: ``repr``/``str`` show only a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; pass it straight to the consumer, never to a log."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class _Key:
    key_id: str
    aead: AESGCM

    def __repr__(self) -> str:
        return f"_Key({self.key_id!r})"


class SessionCipher:
    """Encrypts/decrypts session strings with the master keys (first one encrypts)."""

    def __init__(self, keys: list[_Key]) -> None:
        if not keys:
            raise MasterKeyError("MASTER_KEY holds no key")
        self._keys = {k.key_id: k for k in keys}
        self._current = keys[0]

    @classmethod
    def from_master_key(cls, master_key: str) -> SessionCipher:
        """Parse ``MASTER_KEY`` (see the module doc); errors never contain key material."""
        return cls([_Key(key_id, AESGCM(raw)) for key_id, raw in parse_master_key(master_key)])

    @staticmethod
    def generate_key(key_id: str = "k1") -> str:
        """A fresh ``<id>:<base64>`` entry for MASTER_KEY."""
        return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"

    @property
    def key_ids(self) -> list[str]:
        """Every key id MASTER_KEY holds, the current one first."""
        return list(self._keys)

    @property
    def current_key_id(self) -> str:
        """The id of the key new ciphertexts use."""
        return self._current.key_id

    def __repr__(self) -> str:
        return f"SessionCipher(keys={sorted(self._keys)!r}, current={self._current.key_id!r})"

    @staticmethod
    def _aad(key_id: str, account: str) -> bytes:
        return MAGIC + key_id.encode() + b"\x1f" + account.encode()

    def encrypt(self, session: Secret, *, account: str) -> bytes:
        """Encrypt a session string for ``account`` with the current key."""
        key = self._current
        nonce = os.urandom(NONCE_BYTES)
        kid = key.key_id.encode()
        ct = key.aead.encrypt(nonce, session.reveal().encode(), self._aad(key.key_id, account))
        return MAGIC + bytes([len(kid)]) + kid + nonce + ct

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        """The key id inside a ciphertext (raises ``SessionDecryptError`` if malformed)."""
        if len(blob) < len(MAGIC) + 1 or not blob.startswith(MAGIC):
            raise SessionDecryptError("stored session is not in the expected format")
        n = blob[len(MAGIC)]
        kid = blob[len(MAGIC) + 1 : len(MAGIC) + 1 + n]
        if len(kid) != n:
            raise SessionDecryptError("stored session is truncated")
        try:
            return kid.decode("ascii")
        except UnicodeDecodeError:
            raise SessionDecryptError("stored session has a malformed key id") from None

    def decrypt(self, blob: bytes, *, account: str) -> Secret:
        """Decrypt; raise ``SessionDecryptError`` on tampering, another account, or an unknown key."""
        key_id = self.key_id_of(blob)
        key = self._keys.get(key_id)
        if key is None:
            raise SessionDecryptError(
                f"stored session uses key {key_id!r}, which MASTER_KEY does not hold"
            )
        start = len(MAGIC) + 1 + len(key_id)
        nonce, ct = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
        if len(nonce) != NONCE_BYTES or not ct:
            raise SessionDecryptError("stored session is truncated")
        try:
            plain = key.aead.decrypt(nonce, ct, self._aad(key_id, account))
        except InvalidTag:
            raise SessionDecryptError(
                f"stored session of {account!r} failed authentication (wrong key, other account or tampered)"
            ) from None
        return Secret(plain.decode())

    def needs_rotation(self, blob: bytes) -> bool:
        """True when ``blob`` was encrypted with a key other than the current one."""
        return self.key_id_of(blob) != self._current.key_id


class SessionStore:
    """One encrypted session per account in Postgres; blocking calls run in a worker thread."""

    def __init__(
        self,
        *,
        database_url: str,
        cipher: SessionCipher,
        connect_timeout_s: int = 10,
        executor: Executor | None = None,
    ) -> None:
        self._url = database_url
        self._cipher = cipher
        self._timeout = connect_timeout_s
        self._executor = executor  # ingest_threads(); None: the default pool

    def __repr__(self) -> str:
        return f"SessionStore(cipher={self._cipher!r})"

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self._url, connect_timeout=self._timeout, autocommit=True)

    async def save(self, account: str, session: Secret, *, phone_hint: str | None = None) -> None:
        """Encrypt and upsert the account's session (``MasterKeyError`` if the current key is retired)."""
        blob = self._cipher.encrypt(session, account=account)
        current = self._cipher.current_key_id

        def run() -> None:
            with self._connect() as conn:
                if _retired_at(conn, current) is not None:
                    raise MasterKeyError(
                        f"MASTER_KEY's first key {current!r} was retired by a rotation; "
                        "put a new key first (`aaltohub login --generate-key`)"
                    )
                conn.execute(
                    "INSERT INTO public.telegram_sessions (account, ciphertext, phone_hint) VALUES (%s, %s, %s) "
                    "ON CONFLICT (account) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, "
                    "phone_hint = COALESCE(EXCLUDED.phone_hint, telegram_sessions.phone_hint), updated_at = now()",
                    (account, blob, phone_hint),
                )

        await self._run(run, "save session")

    async def load(self, account: str) -> Secret:
        """The decrypted session of ``account``; ``SessionNotFound`` if none is stored."""

        def run() -> tuple[bytes, str | None] | None:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT ciphertext FROM public.telegram_sessions WHERE account = %s", (account,)
                ).fetchone()
                if row is None:
                    return None
                blob = bytes(row[0])
                return blob, _retired_at(conn, self._cipher.key_id_of(blob))

        found = await self._run(run, "load session")
        if found is None:
            raise SessionNotFound(account)
        blob, retired_at = found
        if retired_at is not None:
            raise SessionDecryptError(
                f"stored session of {account!r} is under key {self._cipher.key_id_of(blob)!r}, "
                f"retired by the rotation of {retired_at}; log the account in again"
            )
        return self._cipher.decrypt(blob, account=account)

    async def accounts(self) -> list[str]:
        """Accounts that have a stored session."""

        def run() -> list[str]:
            with self._connect() as conn:
                return [
                    r[0]
                    for r in conn.execute("SELECT account FROM public.telegram_sessions ORDER BY 1")
                ]

        return await self._run(run, "list sessions")

    async def rotate(self) -> int:
        """Re-encrypt every session not under the current key, then retire every other key id that
        MASTER_KEY lists or a session used; returns how many sessions were rewritten."""

        def select() -> list[tuple[str, bytes]]:
            with self._connect() as conn:
                return [
                    (a, bytes(c))
                    for a, c in conn.execute(
                        "SELECT account, ciphertext FROM public.telegram_sessions"
                    )
                ]

        rewritten = 0
        old_ids = set(self._cipher.key_ids) - {self._cipher.current_key_id}
        for account, blob in await self._run(select, "list sessions"):
            if self._cipher.needs_rotation(blob):
                old_ids.add(self._cipher.key_id_of(blob))
                await self.save(account, await self.load(account))
                rewritten += 1

        def retire() -> None:
            with self._connect() as conn:
                for key_id in sorted(old_ids):
                    conn.execute(
                        "INSERT INTO public.telegram_session_keys_retired (key_id) VALUES (%s) "
                        "ON CONFLICT (key_id) DO NOTHING",
                        (key_id,),
                    )

        await self._run(retire, "retire old keys")
        return rewritten

    async def _run(self, fn: Callable[[], T], what: str) -> T:
        try:
            return await off_loop(self._executor, fn)
        except psycopg.Error as e:
            raise StoreError(f"{what}: {type(e).__name__}") from e


def _retired_at(conn: psycopg.Connection, key_id: str) -> str | None:
    """When a rotation retired ``key_id`` (ISO date), or None."""
    row = conn.execute(
        "SELECT retired_at FROM public.telegram_session_keys_retired WHERE key_id = %s", (key_id,)
    ).fetchone()
    return None if row is None else f"{row[0]:%Y-%m-%d %H:%M %Z}"
