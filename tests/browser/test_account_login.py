"""Adding a Telegram account in the browser: phone → code → two-step password, through the real
ingest service (its login desk on the stack's NATS) and the fake login network behind it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from telethon import errors as tg_errors

from ingest.service import IngestService
from ingest.telegram.sessions import SessionCipher, SessionStore
from tests.browser.conftest import ConsoleStack, check_page
from tests.ingest.login_service import ingest_serving_logins
from tests.ingest.telegram.fakes import FakeLoginNetwork

PHONE, CODE, PASSWORD = "+358401234567", "24680", "hunter2-cloud-pw"
KEY = SessionCipher.generate_key("k1")


@pytest.fixture
def network() -> FakeLoginNetwork:
    """Telegram's login side: one phone with two-step verification."""
    fake = FakeLoginNetwork()
    fake.register(PHONE, code=CODE, password=PASSWORD)
    return fake


@pytest.fixture
def sessions(console_stack: ConsoleStack) -> SessionStore:
    """The stack's encrypted session store."""
    return SessionStore(
        database_url=console_stack.database_url, cipher=SessionCipher.from_master_key(KEY)
    )


@pytest.fixture
async def login_ingest(
    console_stack: ConsoleStack,
    network: FakeLoginNetwork,
    sessions: SessionStore,
    tmp_path: Path,
) -> AsyncIterator[IngestService]:
    """The ingest service with a login desk on the stack's NATS (the stack's own ingest has no
    Telegram credentials, so it serves no logins)."""

    async with ingest_serving_logins(
        nats_url=console_stack.nats_url, network=network, store=sessions, tmp_path=tmp_path
    ) as service:
        yield service


async def open_add_account(page: Page, url: str, account: str) -> None:
    """Fill the first step on the accounts page and send it."""
    await page.goto(f"{url}/ui/accounts")
    await page.get_by_label("Account name", exact=True).fill(account)
    await page.get_by_label("Phone number", exact=True).fill(PHONE)
    await page.get_by_role("button", name="Send login code").click()


@pytest.mark.usefixtures("login_ingest")
async def test_an_account_is_added_with_code_and_password_and_nothing_typed_is_logged(
    admin_page: Page,
    console_stack: ConsoleStack,
    network: FakeLoginNetwork,
    sessions: SessionStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    page = admin_page
    await open_add_account(page, console_stack.url, "second")
    await expect(
        page.get_by_role("heading", name="Enter the login code for second")
    ).to_be_visible()
    await check_page(page, "account-login-code")
    await page.get_by_label("Login code", exact=True).fill("11111")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#login-error")).to_contain_text("The login code is wrong")
    await expect(page.get_by_label("Login code", exact=True)).to_have_value(
        "11111"
    )  # typed input kept
    await page.get_by_label("Login code", exact=True).fill(CODE)
    await page.get_by_role("button", name="Sign in").click()
    password = page.get_by_label("Two-step verification password", exact=True)
    await password.fill("not-the-password")
    await page.get_by_role("button", name="Finish sign-in").click()
    await expect(page.locator("#login-error")).to_contain_text("password is wrong")
    await expect(password).to_have_value("not-the-password")
    await check_page(page, "account-login-password")
    await password.fill(PASSWORD)
    await page.get_by_role("button", name="Finish sign-in").click()
    await expect(page.get_by_role("heading", name="Account second added")).to_be_visible()
    await check_page(page, "account-login-done")
    assert (await sessions.load("second")).reveal() == network.session_of(PHONE)
    assert network.open_connections == 0
    printed = console_stack.output.read_text(errors="replace") + caplog.text
    for secret in (PHONE, "401234567", CODE, PASSWORD, "not-the-password", "11111"):
        assert secret not in printed, secret


@pytest.mark.usefixtures("login_ingest")
async def test_a_flood_wait_is_shown_in_words_and_the_typed_phone_stays(
    admin_page: Page, console_stack: ConsoleStack, network: FakeLoginNetwork
) -> None:
    network.fail["send_code"] = [tg_errors.FloodWaitError(request=None, capture=420)]
    await open_add_account(admin_page, console_stack.url, "third")
    await expect(admin_page.locator("#login-error")).to_contain_text("wait 420s")
    await expect(admin_page.locator("#login-error")).to_contain_text("7 min")
    await expect(admin_page.get_by_label("Phone number", exact=True)).to_have_value(PHONE)
    await expect(admin_page.get_by_label("Account name", exact=True)).to_have_value("third")


@pytest.mark.usefixtures("login_ingest")
async def test_an_expired_code_starts_again_with_the_account_and_phone_filled_in(
    admin_page: Page, console_stack: ConsoleStack, network: FakeLoginNetwork
) -> None:
    await open_add_account(admin_page, console_stack.url, "fourth")
    network.fail["sign_in_code"] = [tg_errors.PhoneCodeExpiredError(request=None)]
    await admin_page.get_by_label("Login code", exact=True).fill(CODE)
    await admin_page.get_by_role("button", name="Sign in").click()
    await expect(admin_page.locator("#login-error")).to_contain_text("expired")
    await expect(admin_page.get_by_label("Phone number", exact=True)).to_have_value(PHONE)
    await expect(admin_page.get_by_label("Account name", exact=True)).to_have_value("fourth")


async def test_without_a_login_service_the_page_says_why(
    admin_page: Page, console_stack: ConsoleStack
) -> None:
    await open_add_account(admin_page, console_stack.url, "fifth")
    await expect(admin_page.locator("#login-error")).to_contain_text("TELEGRAM_API_ID")
    await expect(admin_page.get_by_label("Phone number", exact=True)).to_have_value(PHONE)
