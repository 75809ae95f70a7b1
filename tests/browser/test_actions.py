"""What an operator does in the console, end to end through the real services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Dialog, Page, expect

from eventlog import EventLog
from schemas import ids
from schemas.events import MessageDeleted, MessageEdited, MessageSnapshot
from tests.browser.conftest import JWT_SECRET, ConsoleStack, check_page, sign_in
from tests.helpers import posted, wait_until

LIVE_CHAT = -1007770000001
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def edited(chat_id: int, message_id: int, text: str) -> MessageEdited:
    """An edit of a ``posted`` message."""
    snap = MessageSnapshot(
        message_id=message_id, date=T0, edit_date=T0 + timedelta(minutes=5), text=text
    )
    return MessageEdited(
        event_id=ids.edited_id(chat_id, snap, account="main"),
        account="main",
        observed_at=datetime.now(UTC),
        source="live",
        chat_id=chat_id,
        message=snap,
    )


def deleted(chat_id: int, message_id: int) -> MessageDeleted:
    """A delete of a message."""
    return MessageDeleted(
        event_id=ids.deleted_id(account="main", chat_id=chat_id, message_id=message_id),
        account="main",
        observed_at=datetime.now(UTC),
        source="live",
        chat_id=chat_id,
        message_id=message_id,
    )


async def accept(dialog: Dialog) -> None:
    """Confirm a confirmation dialog."""
    await dialog.accept()


async def test_live_feed_shows_a_post_its_edit_in_place_and_its_delete(
    admin_page: Page, console_stack: ConsoleStack, stack_log: EventLog
) -> None:
    await admin_page.goto(f"{console_stack.url}/ui/live?chat_id={LIVE_CHAT}")
    await expect(admin_page.locator("#live-state")).to_have_text("Live.")
    row = admin_page.locator(f"#m-{LIVE_CHAT}-1")
    await stack_log.append(posted(LIVE_CHAT, 1, text="first words"))
    await expect(row).to_contain_text("first words", timeout=2000)
    await stack_log.append(edited(LIVE_CHAT, 1, "second words"))
    await expect(row.locator(".text")).to_have_text("second words", timeout=2000)
    await expect(row.locator(".edited-mark")).to_be_visible()
    await stack_log.append(deleted(LIVE_CHAT, 1))
    await expect(row.locator(".text del")).to_have_text("second words", timeout=2000)
    await expect(admin_page.locator("#feed > li")).to_have_count(1)
    await check_page(admin_page, "live-feed")


async def test_live_feed_resumes_after_a_pause_without_gaps_or_duplicates(
    admin_page: Page, console_stack: ConsoleStack, stack_log: EventLog
) -> None:
    chat = LIVE_CHAT - 1
    await admin_page.goto(f"{console_stack.url}/ui/live?chat_id={chat}")
    await expect(admin_page.locator("#live-state")).to_have_text("Live.")
    await stack_log.append(posted(chat, 1, text="before the pause"))
    await expect(admin_page.locator(f"#m-{chat}-1")).to_be_visible()
    await admin_page.get_by_role("button", name="Pause").click()
    await expect(admin_page.locator("#live-state")).to_contain_text("Paused")
    await stack_log.append_many([posted(chat, n, text=f"during the pause {n}") for n in (2, 3, 4)])
    await admin_page.get_by_role("button", name="Resume").click()
    await expect(admin_page.locator("#feed > li")).to_have_count(4)
    ids_shown = await admin_page.locator("#feed > li").evaluate_all("els => els.map(e => e.id)")
    assert ids_shown == [f"m-{chat}-{n}" for n in (4, 3, 2, 1)]


async def test_crawl_now_shows_the_crawlers_answer(
    admin_page: Page, console_stack: ConsoleStack
) -> None:
    groups: list[tuple[int]] = []

    def discovered() -> bool:  # the demo's groups reach Postgres a moment after `up` starts
        groups.extend(
            console_stack.sql(
                "SELECT chat_id FROM telegram_groups WHERE account = 'demo' ORDER BY chat_id LIMIT 1"
            )
        )
        return bool(groups)

    await wait_until(discovered, timeout=60)
    chat_id = groups[0][0]
    await admin_page.goto(f"{console_stack.url}/ui/groups")
    admin_page.once("dialog", accept)
    await admin_page.locator(f"#g-{chat_id}").get_by_role("button", name="Crawl now").click()
    # The demo source answers the real TriggerCrawl that ingest's command server received.
    await expect(admin_page.locator(f"#crawl-{chat_id}")).to_have_text(
        f"Done: demo: chat {chat_id} needs no gapfill"
    )


async def test_restart_shows_the_crawlers_answer(
    admin_page: Page, console_stack: ConsoleStack
) -> None:
    await admin_page.goto(f"{console_stack.url}/ui/groups")
    admin_page.once("dialog", accept)
    await admin_page.get_by_role("button", name="Restart crawler").click()
    await expect(admin_page.locator("#restart-result")).to_have_text(
        "Done: demo: nothing to restart"
    )


@pytest.fixture
async def dead_letter(console_stack: ConsoleStack, stack_log: EventLog) -> int:
    """A poisoned event's dead letter (a CHECK constraint refuses it, then is dropped again)."""
    word = f"poison{uuid.uuid4().hex[:8]}"
    console_stack.sql(f"ALTER TABLE messages ADD CONSTRAINT {word} CHECK (text <> '{word}')")
    try:
        result = await stack_log.append(posted(LIVE_CHAT - 2, 1, text=word))
        found: list[int] = []

        def recorded() -> bool:
            rows = console_stack.sql(
                "SELECT id FROM failed_messages WHERE projection = 'postgres' AND seq = %s",
                (result.seq,),
            )
            found.extend(r[0] for r in rows)
            return bool(rows)

        await wait_until(recorded, timeout=30)
    finally:
        console_stack.sql(f"ALTER TABLE messages DROP CONSTRAINT IF EXISTS {word}")
    return found[0]


async def test_a_dead_letter_is_retried_from_the_page_and_shows_resolved(
    admin_page: Page, console_stack: ConsoleStack, dead_letter: int
) -> None:
    await admin_page.goto(f"{console_stack.url}/ui/dead-letters?resolved=no")
    row = admin_page.locator(f"#dl-{dead_letter}")
    await expect(row).to_contain_text("unresolved")
    await check_page(admin_page, "dead-letters")
    await row.get_by_role("button", name="Retry").click()
    await expect(admin_page.locator(f"#retry-{dead_letter}")).to_contain_text("Done")
    await admin_page.goto(f"{console_stack.url}/ui/dead-letters?resolved=yes")
    await expect(admin_page.locator(f"#dl-{dead_letter} .state")).to_contain_text("resolved")


async def test_an_admin_changes_a_role_and_cannot_change_their_own(
    page: Page, console_stack: ConsoleStack
) -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    console_stack.sql(
        "INSERT INTO users (id, email, role) VALUES (%s, 'me@example.org', 'admin'),"
        " (%s, 'other@example.org', 'user')",
        (me, other),
    )
    await sign_in(page, console_stack.url, make_token(me))
    await page.goto(f"{console_stack.url}/ui/users")
    await check_page(page, "users")
    await page.get_by_label("Role of other@example.org", exact=True).select_option("admin")
    await page.get_by_role("button", name="Save role of other@example.org").click()
    await expect(page.get_by_role("status")).to_have_text("other@example.org is now admin.")
    await page.get_by_label("Role of me@example.org", exact=True).select_option("user")
    await page.get_by_role("button", name="Save role of me@example.org").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "Not changed: you cannot change your own role"
    )
    assert console_stack.sql("SELECT role FROM users WHERE id = %s", (me,)) == [("admin",)]


async def test_a_user_sees_no_admin_pages(page: Page, console_stack: ConsoleStack) -> None:
    user = uuid.uuid4()
    console_stack.sql("INSERT INTO users (id, role) VALUES (%s, 'user')", (user,))
    await sign_in(page, console_stack.url, make_token(user))
    await expect(page.get_by_role("heading", name="Groups")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link")).to_have_text(
        ["Groups", "Live feed", "Messages", "Analytics"]
    )
    await page.goto(f"{console_stack.url}/ui/dead-letters")
    await expect(page.get_by_role("alert")).to_contain_text("This page is for admins")


def make_token(user_id: uuid.UUID) -> str:
    """A Supabase-like access token for ``user_id``."""
    from tests.api.conftest import make_jwt

    return make_jwt(user_id, secret=JWT_SECRET)


async def test_message_page_shows_an_edit_as_a_diff_and_a_delete_as_a_tombstone(
    admin_page: Page, console_stack: ConsoleStack, stack_log: EventLog
) -> None:
    chat = LIVE_CHAT - 3
    await stack_log.append(posted(chat, 1, text="meet at noon today"))
    await stack_log.append(edited(chat, 1, "meet at five today"))
    await stack_log.append(deleted(chat, 1))

    def applied() -> bool:
        rows = console_stack.sql(
            "SELECT edit_count, is_deleted FROM messages WHERE chat_id = %s AND message_id = 1",
            (chat,),
        )
        return rows == [(1, True)]

    await wait_until(applied, timeout=30)
    await admin_page.goto(f"{console_stack.url}/ui/groups/{chat}/messages/1")
    edit = admin_page.locator("ol.versions li").nth(1)
    await expect(edit.locator("del")).to_have_text("noon")
    await expect(edit.locator("ins")).to_have_text("five")
    await expect(admin_page.get_by_role("note")).to_contain_text("Deleted")
    await check_page(admin_page, "message-edited-deleted")
