"""Signing in and out of the console, CSRF, roles in the navigation."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import ConsoleStack, check_page, sign_in


async def test_root_sends_a_browser_to_the_sign_in_page(
    page: Page, console_stack: ConsoleStack
) -> None:
    await page.goto(console_stack.url + "/")
    await expect(page).to_have_url(console_stack.url + "/ui/login?next=/ui/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await check_page(page, "login")


async def test_sign_in_with_the_admin_token_and_sign_out(
    page: Page, console_stack: ConsoleStack
) -> None:
    await sign_in(page, console_stack.url)
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    cookie = next(c for c in await page.context.cookies() if c["name"] == "aaltohub_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto(console_stack.url + "/ui/groups")
    await expect(page).to_have_url(console_stack.url + "/ui/login?next=/ui/groups")


async def test_a_wrong_token_is_refused_in_words(page: Page, console_stack: ConsoleStack) -> None:
    await sign_in_attempt(page, console_stack.url, "not-the-token")
    await expect(page.get_by_role("alert")).to_have_text(
        "That token was not accepted. Check it and try again."
    )
    await check_page(page, "login-refused")


async def sign_in_attempt(page: Page, url: str, token: str) -> None:
    """Submit the sign-in form without waiting to leave it."""
    await page.goto(f"{url}/ui/login")
    await page.get_by_label("Admin token or access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_form_without_its_csrf_token_is_refused(
    admin_page: Page, console_stack: ConsoleStack
) -> None:
    cookies = {c["name"]: c["value"] for c in await admin_page.context.cookies()}
    async with httpx.AsyncClient(base_url=console_stack.url, cookies=cookies) as client:
        response = await client.post("/ui/crawler/restart", data={"csrf": "forged"})
    assert response.status_code == 403
    assert "This form has expired" in response.text
