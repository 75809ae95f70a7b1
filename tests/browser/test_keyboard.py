"""The console works from the keyboard alone, with a visible focus."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.conftest import ConsoleStack
from tests.browser.test_actions import accept
from tests.helpers import wait_until


async def focused_name(page: Page) -> str:
    """The accessible label or text of the focused element."""
    name: str = await page.evaluate(
        "() => { const e = document.activeElement;"
        " return e.getAttribute('aria-label') || e.textContent.trim(); }"
    )
    return name


async def test_skip_link_then_tab_reaches_crawl_now_and_enter_runs_it(
    admin_page: Page, console_stack: ConsoleStack
) -> None:
    await wait_until(lambda: bool(console_stack.sql("SELECT 1 FROM telegram_groups")), timeout=60)
    await admin_page.goto(f"{console_stack.url}/ui/groups")
    await admin_page.keyboard.press("Tab")
    assert await focused_name(admin_page) == "Skip to content"
    outline = await admin_page.evaluate(
        "() => getComputedStyle(document.activeElement).outlineStyle"
    )
    assert outline != "none"
    await admin_page.keyboard.press("Enter")
    await expect(admin_page.locator("#main")).to_be_focused()
    for _ in range(40):
        await admin_page.keyboard.press("Tab")
        if (await focused_name(admin_page)).startswith("Crawl now:"):
            break
    assert (await focused_name(admin_page)).startswith("Crawl now:")
    row_id = await admin_page.evaluate("() => document.activeElement.closest('tr').id")
    admin_page.once("dialog", accept)
    await admin_page.keyboard.press("Enter")
    # The crawler's answer (whatever it is) appears in the row, read out as a status.
    await expect(admin_page.locator(f"#{row_id} [role=status]")).to_contain_text(
        re.compile("done", re.IGNORECASE)
    )
