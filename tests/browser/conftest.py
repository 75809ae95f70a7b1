"""Browser tests: Debian's Chromium driven by Playwright against a real ``aaltohub up`` with demo traffic.

One stack and one browser serve the whole session (CPU is scarce): ``aaltohub up`` as a child
process with its own nats-server, the session's Postgres (a fresh database), DuckDB, the API, the
projector and the demo source. Each test gets a fresh browser context (no shared cookies). Every
page a test checks is screenshotted to ``artifacts/screenshots/`` (the CI artifact) and checked
with axe-core for serious or critical violations.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from aaltohub.embedded.postgres import PostgresServer
from aaltohub.embedded.process import free_port
from aaltohub.nats_auth import load_users, role_url
from eventlog import EventLog
from tests.aaltohub.upproc import UpProcess
from tests.helpers import fresh_database, wait_until

CHROMIUM = os.environ.get("AALTOHUB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_TOKEN = "browser-test-admin-token-0123456789abc"
JWT_SECRET = "browser-test-jwt-secret-0123456789abcdef"
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
AXE = REPO_ROOT / "tests" / "browser" / "vendor" / "axe-core-4.14.1" / "axe.min.js"


@dataclass(frozen=True)
class ConsoleStack:
    """The running stack: console URL, its database and its log."""

    url: str
    database_url: str
    nats_url: str
    data_dir: Path
    output: Path  # what ``aaltohub up`` and its services printed

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the stack's database; rows if it returns any."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cur = conn.execute(statement.encode(), params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def stack_database(postgres_server: PostgresServer) -> Iterator[str]:
    """An empty database for the stack (``up`` migrates it)."""
    with fresh_database(postgres_server, "ui") as url:
        yield url


@pytest.fixture(scope="session")
async def console_stack(
    tmp_path_factory: pytest.TempPathFactory, stack_database: str
) -> AsyncIterator[ConsoleStack]:
    """``aaltohub up`` with demo traffic, serving the console."""
    port = free_port()
    process = UpProcess(
        tmp_path_factory.mktemp("console") / "var",
        DATABASE_URL=stack_database,
        AALTOHUB_API_PORT=str(port),
        AALTOHUB_ADMIN_TOKEN=ADMIN_TOKEN,
        SUPABASE_JWT_SECRET=JWT_SECRET,
        AALTOHUB_DEMO_RATE="2",
        AALTOHUB_DEMO_GROUPS="3",
        AALTOHUB_DUCKDB_SNAPSHOT_INTERVAL_S="1",
        AALTOHUB_NATS_SYNC_INTERVAL="2m",
        AALTOHUB_LOG_LEVEL="WARNING",
    )
    process.start()
    try:
        info = await process.wait_ready(timeout_s=90)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(healthy, timeout=60)
        users = load_users(process.data_dir)  # every NATS connection authenticates
        assert users is not None
        nats_url = role_url(info.nats_url, users, "ingest")
        yield ConsoleStack(
            url=url,
            database_url=stack_database,
            nats_url=nats_url,
            data_dir=process.data_dir,
            output=process.output,
        )
    finally:
        process.stop()


@pytest.fixture(scope="session")
async def stack_log(console_stack: ConsoleStack) -> AsyncIterator[EventLog]:
    """The stack's log, for appending test events as ingest would."""
    log = await EventLog.connect(console_stack.nats_url, name="browser-tests", ensure=False)
    try:
        yield log
    finally:
        await log.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium (Debian's) for the session."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies); CSP bypassed only so axe-core can be injected."""
    ctx = await browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    """A page in a fresh profile."""
    return await context.new_page()


async def sign_in(page: Page, url: str, token: str = ADMIN_TOKEN) -> None:
    """Sign in through the form."""
    await page.goto(f"{url}/ui/login")
    await page.get_by_label("Admin token or access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda u: "/ui/login" not in u)


@pytest.fixture
async def admin_page(page: Page, console_stack: ConsoleStack) -> Page:
    """A page signed in with the static admin token."""
    await sign_in(page, console_stack.url)
    return page


async def check_page(page: Page, name: str) -> None:
    """Screenshot ``page`` as ``name`` and fail on serious or critical axe-core violations."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target)})); }"
    )
    assert result == [], f"{name}: axe violations {json.dumps(result)}"
