"""``aaltohub login``: interactive Telegram login (phone → code → 2FA) into an encrypted session.

Also ``--generate-key`` (print a fresh MASTER_KEY entry) and ``--rotate`` (re-encrypt every stored
session with the first MASTER_KEY key). Nothing secret is echoed or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass

from aaltohub.runtime import resolve_database_url
from aaltohub.settings import Settings, load_settings
from aaltohub.stack_file import StackNotRunning
from ingest.errors import IngestError
from ingest.telegram.login import LoginFlow, LoginState, TelethonAuthClient
from ingest.telegram.sessions import Secret, SessionCipher, SessionStore


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; returns the exit code."""
    if args.generate_key:
        print(SessionCipher.generate_key("k1"))
        return 0
    settings = load_settings()
    try:
        store = _store(settings)
        if args.rotate:
            count = asyncio.run(store.rotate())
            current = SessionCipher.from_master_key(_master(settings)).current_key_id
            print(f"re-encrypted {count} session(s) with key {current}")
            return 0
        account = args.account or (settings.account_names or ["main"])[0]
        return asyncio.run(_interactive(settings, store, account))
    except (IngestError, StackNotRunning) as e:
        print(f"aaltohub login: {e}")
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\naaltohub login: cancelled")
        return 130


def _master(settings: Settings) -> str:
    if settings.master_key is None:
        raise IngestError("MASTER_KEY is not set (create one with `aaltohub login --generate-key`)")
    return settings.master_key.get_secret_value()


def _store(settings: Settings) -> SessionStore:
    cipher = SessionCipher.from_master_key(_master(settings))
    return SessionStore(database_url=resolve_database_url(settings), cipher=cipher)


async def _interactive(settings: Settings, store: SessionStore, account: str) -> int:
    if settings.telegram_api_id is None or settings.telegram_api_hash is None:
        raise IngestError(
            "TELEGRAM_API_ID and TELEGRAM_API_HASH must be set (https://my.telegram.org)"
        )
    client = TelethonAuthClient(
        api_id=settings.telegram_api_id,
        api_hash=Secret(settings.telegram_api_hash.get_secret_value()),
        use_ipv6=settings.telegram_use_ipv6,
    )
    flow = LoginFlow(account=account, client=client, store=store)
    # Prompts block on the terminal: run them in a thread so the client's connection keeps being served.
    prompt = f"Phone number for account {account!r} (international format): "
    phone = Secret((await asyncio.to_thread(input, prompt)).strip())
    await flow.start(phone)
    code = Secret((await asyncio.to_thread(getpass.getpass, "Login code from Telegram: ")).strip())
    state = await flow.submit_code(code)
    if state is LoginState.PASSWORD_NEEDED:
        password = Secret(
            await asyncio.to_thread(getpass.getpass, "Two-step verification password: ")
        )
        state = await flow.submit_password(password)
    print(f"account {account!r}: logged in; session stored encrypted in telegram_sessions")
    return 0 if state is LoginState.DONE else 1
