"""Every console page renders real data from the demo stack, passes axe-core and is screenshotted."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import ConsoleStack, check_page, sign_in
from tests.helpers import wait_until


@pytest.fixture(scope="session")
async def demo_message(console_stack: ConsoleStack) -> tuple[int, int]:
    """A (chat_id, message_id) the demo produced and the projector applied."""
    found: list[tuple[int, int]] = []

    def ready() -> bool:
        rows = console_stack.sql(
            "SELECT chat_id, message_id FROM messages"
            " WHERE account = 'demo' AND NOT is_deleted AND text <> ''"
            " ORDER BY message_id LIMIT 1"
        )
        found.extend(rows)
        return bool(rows)

    await wait_until(ready, timeout=60)
    return found[0]


async def test_dashboard_shows_crawler_and_projections(
    admin_page: Page, console_stack: ConsoleStack
) -> None:
    await admin_page.goto(console_stack.url + "/ui/")
    await expect(admin_page.get_by_role("heading", name="Projections")).to_be_visible()
    await expect(admin_page.locator("#status")).to_contain_text("Running")
    await expect(admin_page.locator("#live-state")).to_have_text("Live.")
    await check_page(admin_page, "dashboard")


async def test_groups_page_lists_demo_groups_with_status(
    admin_page: Page, console_stack: ConsoleStack, demo_message: tuple[int, int]
) -> None:
    await admin_page.goto(console_stack.url + "/ui/groups")
    await expect(admin_page.locator(f"#g-{demo_message[0]}")).to_be_visible()
    await check_page(admin_page, "groups")


async def test_group_page_lists_its_messages(
    admin_page: Page, console_stack: ConsoleStack, demo_message: tuple[int, int]
) -> None:
    chat_id, message_id = demo_message
    # The page starting at the message: the demo keeps posting, so it soon leaves the first page.
    await admin_page.goto(f"{console_stack.url}/ui/groups/{chat_id}?before={message_id + 1}")
    await expect(admin_page.locator(f"#m-{message_id}")).to_be_visible()
    await check_page(admin_page, "group-messages")


async def test_message_page_shows_the_message_and_its_history(
    admin_page: Page, console_stack: ConsoleStack, demo_message: tuple[int, int]
) -> None:
    chat_id, message_id = demo_message
    await admin_page.goto(f"{console_stack.url}/ui/groups/{chat_id}/messages/{message_id}")
    await expect(admin_page.get_by_role("heading", name="Edit history")).to_be_visible()
    await expect(admin_page.locator("ol.versions li")).not_to_have_count(0)
    await check_page(admin_page, "message")


async def test_event_history_of_a_message_comes_from_the_log(
    admin_page: Page, console_stack: ConsoleStack, demo_message: tuple[int, int]
) -> None:
    chat_id, message_id = demo_message
    await admin_page.goto(f"{console_stack.url}/ui/groups/{chat_id}/messages/{message_id}/events")
    first = admin_page.locator("tbody tr").first
    await expect(first).to_contain_text("message.posted")
    await check_page(admin_page, "message-events")


async def test_event_history_of_a_group_comes_from_the_log(
    admin_page: Page, console_stack: ConsoleStack, demo_message: tuple[int, int]
) -> None:
    await admin_page.goto(f"{console_stack.url}/ui/groups/{demo_message[0]}/events")
    await expect(admin_page.locator("tbody tr").first).to_contain_text("chat.discovered")
    await check_page(admin_page, "group-events")


async def test_search_finds_a_demo_message(
    admin_page: Page, console_stack: ConsoleStack, demo_message: tuple[int, int]
) -> None:
    chat_id, message_id = demo_message
    rows = console_stack.sql(
        "SELECT text FROM messages WHERE chat_id = %s AND message_id = %s", (chat_id, message_id)
    )
    word = max(rows[0][0].split(), key=len)
    await admin_page.goto(console_stack.url + "/ui/search")
    await admin_page.get_by_label('Search words, "phrases" or -excluded').fill(word)
    await admin_page.get_by_role("button", name="Search").click()
    await expect(admin_page.locator("ol.messages li").first).to_contain_text(word)
    await check_page(admin_page, "search")


async def test_accounts_page_shows_the_demo_account(
    admin_page: Page, console_stack: ConsoleStack
) -> None:
    await admin_page.goto(console_stack.url + "/ui/accounts")
    await expect(admin_page.get_by_role("heading", name="Telegram accounts")).to_be_visible()
    await expect(admin_page.locator("tbody")).not_to_contain_text("No accounts.")
    await check_page(admin_page, "accounts")


async def test_analytics_page_draws_charts(
    admin_page: Page, console_stack: ConsoleStack, demo_message: tuple[int, int]
) -> None:
    await admin_page.goto(console_stack.url + "/ui/analytics")
    box = admin_page.locator('[data-query="messages_per_day"]')

    async def drawn() -> bool:
        if await box.locator("canvas").count():
            return True
        await admin_page.reload()  # the first analytics snapshot may not be published yet
        return False

    await wait_until(drawn, timeout=30, interval=1.0)
    await expect(admin_page.locator("table.heatmap")).to_be_visible()
    await check_page(admin_page, "analytics")


async def test_accounts_page_shows_the_demo_account_connected(
    admin_page: Page, console_stack: ConsoleStack
) -> None:
    await admin_page.goto(console_stack.url + "/ui/accounts")
    await expect(admin_page.locator("#acct-demo .badge").first).to_have_text("connected")


async def test_groups_page_fits_a_phone_screen(
    browser: Browser, console_stack: ConsoleStack, demo_message: tuple[int, int]
) -> None:
    phone = await browser.new_context(
        bypass_csp=True, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = await phone.new_page()
        await sign_in(page, console_stack.url)
        await page.goto(console_stack.url + "/ui/groups")
        await expect(page.locator(f"#g-{demo_message[0]}")).to_be_attached()
        # Wide tables scroll inside their own region; the page itself never scrolls sideways.
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390
        await check_page(page, "groups-phone")
    finally:
        await phone.close()
