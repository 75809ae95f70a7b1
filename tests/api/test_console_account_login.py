"""Adding a Telegram account from the console without scripts: each step is a plain form post
answered with a whole page, through the real ingest service's login desk on the test's NATS."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aaltohub.embedded.nats_server import NatsServer
from ingest.telegram.sessions import SessionCipher, SessionStore
from tests.api.conftest import ADMIN_TOKEN, RunningApi
from tests.ingest.login_service import ingest_serving_logins
from tests.ingest.telegram.fakes import FakeLoginNetwork

PHONE, CODE, PASSWORD = "+358401234567", "24680", "hunter2-cloud-pw"


@pytest.fixture
async def login_ingest(
    api: RunningApi, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[FakeLoginNetwork]:
    """The ingest service serving logins over the fake network (one phone with 2FA)."""
    network = FakeLoginNetwork()
    network.register(PHONE, code=CODE, password=PASSWORD)
    store = SessionStore(
        database_url=api.database_url,
        cipher=SessionCipher.from_master_key(SessionCipher.generate_key("k1")),
    )

    async with ingest_serving_logins(
        nats_url=nats_server.url, network=network, store=store, tmp_path=tmp_path
    ):
        yield network


def fields(page: str) -> dict[str, str]:
    """The hidden fields and typed values of the page's login step form."""
    step = page[page.index('id="login-step"') :]
    return dict(re.findall(r'name="([a-z_]+)"[^>]*?value="([^"]*)"', step))


@pytest.mark.usefixtures("login_ingest")
async def test_without_scripts_a_wrong_code_page_keeps_phone_and_code_but_never_a_password(
    api: RunningApi,
) -> None:
    async with httpx.AsyncClient(
        base_url=api.url, cookies={"aaltohub_session": ADMIN_TOKEN}, timeout=30
    ) as browser:
        accounts = (await browser.get("/ui/accounts")).text
        start = await browser.post(
            "/ui/accounts/login",
            data={"csrf": fields(accounts)["csrf"], "account": "second", "phone": PHONE},
        )
        code_form = fields(start.text)
        wrong = await browser.post("/ui/accounts/login/code", data={**code_form, "code": "11111"})
        again = fields(wrong.text)
        right = await browser.post("/ui/accounts/login/code", data={**again, "code": CODE})
        bad_pw = await browser.post(
            "/ui/accounts/login/password", data={**fields(right.text), "password": "not-it-pw"}
        )
    assert "Enter the login code for second" in start.text
    assert wrong.status_code == 409 and "The login code is wrong" in wrong.text
    assert (again["phone"], again["code"], again["account"]) == (PHONE, "11111", "second")
    assert "Enter the two-step verification password" in right.text
    assert bad_pw.status_code == 409 and "password is wrong" in bad_pw.text
    assert "not-it-pw" not in bad_pw.text
