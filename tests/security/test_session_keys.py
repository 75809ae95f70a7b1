"""Session ciphertexts and MASTER_KEY (issue 15, item 7).

Replayed against a real Postgres: an old ciphertext put back after a rotation (a restored backup
row) decrypted while MASTER_KEY still listed the old key; now the rotation retires that key. A
wrong or malformed MASTER_KEY ended in a traceback; now it is one clear line.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from aaltohub.settings import load_settings
from aaltohub.telegram import build_telegram_workers
from eventlog import EventLog
from ingest.errors import MasterKeyError, SessionDecryptError
from ingest.telegram.sessions import Secret, SessionCipher, SessionStore

K1 = SessionCipher.generate_key("k1")
K2 = SessionCipher.generate_key("k2")


def session_string() -> str:
    s = StringSession()
    s.set_dc(2, "149.154.167.51", 443)
    s.auth_key = AuthKey(os.urandom(256))
    return str(StringSession.save(s))


def stored_blob(database_url: str, account: str) -> bytes:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT ciphertext FROM telegram_sessions WHERE account = %s", (account,)
        ).fetchone()
    assert row is not None
    return bytes(row[0])


def put_back(database_url: str, account: str, blob: bytes) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE telegram_sessions SET ciphertext = %s WHERE account = %s", (blob, account)
        )


async def test_an_old_ciphertext_is_refused_after_the_rotation(migrated_db: str) -> None:
    old_store = SessionStore(database_url=migrated_db, cipher=SessionCipher.from_master_key(K1))
    await old_store.save("main", Secret(session_string()))
    old_blob = stored_blob(migrated_db, "main")
    rotated = SessionStore(
        database_url=migrated_db, cipher=SessionCipher.from_master_key(f"{K2},{K1}")
    )
    assert await rotated.rotate() == 1
    put_back(migrated_db, "main", old_blob)  # the old key is still in MASTER_KEY
    with pytest.raises(SessionDecryptError, match="retired by the rotation"):
        await rotated.load("main")


async def test_a_rotated_session_still_loads(migrated_db: str) -> None:
    secret = Secret(session_string())
    await SessionStore(database_url=migrated_db, cipher=SessionCipher.from_master_key(K1)).save(
        "main", secret
    )
    rotated = SessionStore(
        database_url=migrated_db, cipher=SessionCipher.from_master_key(f"{K2},{K1}")
    )
    await rotated.rotate()
    assert await rotated.load("main") == secret


async def test_a_retired_key_cannot_encrypt_again(migrated_db: str) -> None:
    await SessionStore(database_url=migrated_db, cipher=SessionCipher.from_master_key(K1)).save(
        "main", Secret(session_string())
    )
    await SessionStore(
        database_url=migrated_db, cipher=SessionCipher.from_master_key(f"{K2},{K1}")
    ).rotate()
    back_to_k1 = SessionStore(
        database_url=migrated_db, cipher=SessionCipher.from_master_key(f"{K1},{K2}")
    )
    with pytest.raises(MasterKeyError, match="retired"):
        await back_to_k1.save("main", Secret(session_string()))


async def test_a_wrong_master_key_skips_the_account_with_one_line(
    migrated_db: str, event_log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    await SessionStore(database_url=migrated_db, cipher=SessionCipher.from_master_key(K1)).save(
        "main", Secret(session_string())
    )
    wrong = SessionCipher.generate_key("k1")  # same id, other bytes
    settings = load_settings(
        telegram_api_id=12345,
        telegram_api_hash="0123456789abcdef0123456789abcdef",
        master_key=wrong,
        telegram_accounts="main",
    )
    workers = await build_telegram_workers(settings, log=event_log, database_url=migrated_db)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert workers == []
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "account main is skipped" in errors[0].getMessage()
    assert "MASTER_KEY" in errors[0].getMessage()


@pytest.mark.parametrize("command", ["ingest", "api", "up"])
def test_a_malformed_master_key_is_one_line_for_every_entry_point(
    command: str, tmp_path: os.PathLike[str]
) -> None:
    secret_part = "bm90LWEta2V5LWF0LWFsbA=="
    env = {**os.environ, "MASTER_KEY": f"k1:{secret_part}", "AALTOHUB_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "aaltohub", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"aaltohub {command}: MASTER_KEY entry 1 (k1): must decode to 32 bytes"
    ]
    assert secret_part not in done.stderr
