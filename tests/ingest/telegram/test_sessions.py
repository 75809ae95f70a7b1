"""Encrypted sessions (AES-256-GCM, key rotation) in a real Postgres, and the login flow without leaks."""

from __future__ import annotations

import logging

import pytest
from telethon import errors as tg_errors

from ingest.errors import LoginError, MasterKeyError, SessionDecryptError, SessionNotFound
from ingest.telegram.login import LoginFlow, LoginState
from ingest.telegram.sessions import Secret, SessionCipher, SessionStore

SESSION = "1BVtsOKABu0session-string-SECRET-value=="
K1 = SessionCipher.generate_key("k1")
K2 = SessionCipher.generate_key("k2")


def test_round_trip_restores_the_session() -> None:
    cipher = SessionCipher.from_master_key(K1)
    blob = cipher.encrypt(Secret(SESSION), account="main")
    assert SESSION.encode() not in blob
    assert cipher.decrypt(blob, account="main").reveal() == SESSION


def test_wrong_key_is_rejected() -> None:
    blob = SessionCipher.from_master_key(K1).encrypt(Secret(SESSION), account="main")
    other = SessionCipher.from_master_key("k1:" + K2.split(":", 1)[1])  # same id, different key
    with pytest.raises(SessionDecryptError):
        other.decrypt(blob, account="main")
    with pytest.raises(SessionDecryptError, match="k1"):
        SessionCipher.from_master_key(K2).decrypt(blob, account="main")


def test_tampered_ciphertext_is_rejected() -> None:
    cipher = SessionCipher.from_master_key(K1)
    blob = bytearray(cipher.encrypt(Secret(SESSION), account="main"))
    blob[-5] ^= 0x01
    with pytest.raises(SessionDecryptError):
        cipher.decrypt(bytes(blob), account="main")


def test_ciphertext_of_another_account_is_rejected() -> None:
    cipher = SessionCipher.from_master_key(K1)
    blob = cipher.encrypt(Secret(SESSION), account="main")
    with pytest.raises(SessionDecryptError):
        cipher.decrypt(blob, account="second")


def test_malformed_master_key_error_shows_no_key_material() -> None:
    with pytest.raises(MasterKeyError) as info:
        SessionCipher.from_master_key("k1:c2hvcnQ=")  # valid base64, but not 32 bytes
    assert "c2hvcnQ" not in str(info.value)
    assert K1.split(":", 1)[1] not in repr(SessionCipher.from_master_key(K1))


@pytest.fixture
def database_url(migrated_db: str) -> str:
    """The tests here use the migrated tables (a copy of the session's template database)."""
    return migrated_db


async def test_store_saves_encrypted_and_rotation_moves_to_the_new_key(database_url: str) -> None:
    old = SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K1))
    await old.save("main", Secret(SESSION), phone_hint="…42")
    both = SessionStore(
        database_url=database_url, cipher=SessionCipher.from_master_key(f"{K2},{K1}")
    )
    assert (await both.load("main")).reveal() == SESSION
    assert await both.rotate() == 1
    assert await both.rotate() == 0
    only_new = SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K2))
    assert (await only_new.load("main")).reveal() == SESSION
    with pytest.raises(SessionDecryptError):
        await old.load("main")
    with pytest.raises(SessionNotFound):
        await only_new.load("nobody")


class FakeAuthClient:
    """A Telegram login that requires a code and a 2FA password."""

    def __init__(self, *, code: str, password: str) -> None:
        self._code, self._password = code, password
        self.connected = False

    async def connect(self) -> None:
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    async def send_code(self, phone: Secret) -> str:
        return "hash-abc"

    async def sign_in_code(self, phone: Secret, code: Secret, phone_code_hash: str) -> None:
        assert phone_code_hash == "hash-abc"
        if code.reveal() != self._code:
            raise tg_errors.PhoneCodeInvalidError(request=None)
        raise tg_errors.SessionPasswordNeededError(request=None)

    async def sign_in_password(self, password: Secret) -> None:
        if password.reveal() != self._password:
            raise tg_errors.PasswordHashInvalidError(request=None)

    def export_session(self) -> Secret:
        return Secret(SESSION)


async def test_login_flow_with_2fa_stores_the_session_and_leaks_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K1))
    phone, code, password = "+358401234567", "24680", "hunter2-cloud-pw"
    flow = LoginFlow(
        account="main", client=FakeAuthClient(code=code, password=password), store=store
    )
    assert await flow.start(Secret(phone)) is LoginState.CODE_SENT
    assert await flow.submit_code(Secret(code)) is LoginState.PASSWORD_NEEDED
    with pytest.raises(LoginError) as bad_pw:
        await flow.submit_password(Secret("not-the-password"))
    assert await flow.submit_password(Secret(password)) is LoginState.DONE
    assert (await store.load("main")).reveal() == SESSION
    texts = [caplog.text, repr(flow), repr(store), str(bad_pw.value), repr(Secret(SESSION))]
    for secret in (
        phone,
        "401234567",
        code,
        password,
        "not-the-password",
        SESSION,
        K1.split(":", 1)[1],
    ):
        assert all(secret not in t for t in texts), secret


async def test_wrong_code_is_a_login_error_without_the_code(database_url: str) -> None:
    store = SessionStore(database_url=database_url, cipher=SessionCipher.from_master_key(K1))
    flow = LoginFlow(account="main", client=FakeAuthClient(code="11111", password="p"), store=store)
    await flow.start(Secret("+358400000001"))
    with pytest.raises(LoginError) as info:
        await flow.submit_code(Secret("99999"))
    assert "99999" not in str(info.value) and "99999" not in repr(info.value)
