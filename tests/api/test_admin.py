"""Admin: status and lag, per-group status, errors, dead letters, crawl and restart commands, users."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from eventlog.commands import CommandServer
from schemas.commands import (
    Command,
    CommandReply,
    ReportStatus,
    RestartCrawler,
    RetryDeadLetters,
    TriggerCrawl,
)
from schemas.subjects import command_subject, projector_command_subject
from tests.api.conftest import RunningApi, make_jwt
from tests.api.rows import insert_dead_letter, insert_group, insert_user, set_checkpoint
from tests.helpers import posted

CHAT = -1001234567890


class Recorder:
    """Commands a test service received."""

    def __init__(self, reply: CommandReply) -> None:
        self.received: list[Command] = []
        self.reply = reply

    async def __call__(self, command: Command) -> CommandReply:
        self.received.append(command)
        return self.reply


@pytest.fixture
async def ingest(api: RunningApi) -> AsyncIterator[Recorder]:
    """A stand-in ingest answering every ingest command subject over NATS."""
    recorder = Recorder(
        CommandReply(
            ok=True,
            message="done",
            data={
                "running": True,
                "connected": True,
                "accounts": "main",
                "messages_received": 12,
                "uptime_s": 3.5,
                "spool_depth": 0,
                "last_flood_wait": None,
            },
        )
    )
    server = CommandServer(api.event_log.nats_client, "aaltohub.cmd.ingest.>", recorder)
    await server.start()
    try:
        yield recorder
    finally:
        await server.stop()


@pytest.fixture
async def projector(api: RunningApi) -> AsyncIterator[Recorder]:
    """A stand-in projector answering retry commands."""
    recorder = Recorder(CommandReply(ok=True, message="retried", data={"retried": 1}))
    server = CommandServer(api.event_log.nats_client, projector_command_subject("retry"), recorder)
    await server.start()
    try:
        yield recorder
    finally:
        await server.stop()


async def test_status_reports_lag_per_projection(api: RunningApi) -> None:
    await api.event_log.append_many([posted(CHAT, i) for i in range(1, 11)])
    set_checkpoint(api.database_url, "postgres", 10)
    set_checkpoint(api.database_url, "duckdb", 4)
    set_checkpoint(api.database_url, "broadcast", 9)
    async with api.client() as client:
        body = (await client.get("/admin/status")).json()
    assert body["stream_last_seq"] == 10
    assert {p["name"]: p["lag"] for p in body["projections"]} == {
        "postgres": 0,
        "duckdb": 6,
        "broadcast": 1,
    }


async def test_status_says_crawler_not_running_when_ingest_is_absent(api: RunningApi) -> None:
    async with api.client() as client:
        body = (await client.get("/admin/status")).json()
    assert body["crawler"]["running"] is False
    assert body["crawler"]["message"] == "ingest is not running"


async def test_status_carries_what_ingest_reports(api: RunningApi, ingest: Recorder) -> None:
    insert_group(api.database_url, CHAT, messages=12)
    async with api.client() as client:
        body = (await client.get("/admin/status")).json()
    assert body["crawler"]["running"] is True
    assert body["crawler"]["messages_received"] == 12
    assert (body["groups"], body["messages"]) == (1, 12)
    assert isinstance(ingest.received[0], ReportStatus)


async def test_group_status_shows_backfill_progress(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT, backfill_fetched=30, backfill_total=120)
    async with api.client() as client:
        body = (await client.get("/admin/groups")).json()
    assert body["items"][0]["crawler"]["backfill_progress"] == 0.25


async def test_recent_errors_merge_crawler_and_projection_errors(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT, last_error="FloodWait on GetHistory")
    insert_dead_letter(api.database_url, projection="postgres", seq=5, error="bad row")
    async with api.client() as client:
        body = (await client.get("/admin/errors")).json()
    assert [(e["source"], e["error"]) for e in body["items"]] == [
        ("projection", "postgres: bad row"),
        ("crawler", "FloodWait on GetHistory"),
    ]


async def test_dead_letters_filter_by_resolved(api: RunningApi) -> None:
    open_id = insert_dead_letter(api.database_url, projection="postgres", seq=1)
    insert_dead_letter(api.database_url, projection="postgres", seq=2, resolved=True)
    async with api.client() as client:
        body = (await client.get("/admin/dead-letters", params={"resolved": False})).json()
    assert [d["id"] for d in body["items"]] == [open_id]


async def test_dead_letters_page_by_id(api: RunningApi) -> None:
    made = [insert_dead_letter(api.database_url, projection="duckdb", seq=s) for s in range(1, 6)]
    async with api.client() as client:
        first = (await client.get("/admin/dead-letters", params={"limit": 3})).json()
        second = (
            await client.get(
                "/admin/dead-letters", params={"limit": 3, "before_id": first["next_before_id"]}
            )
        ).json()
    assert [d["id"] for d in first["items"] + second["items"]] == made[::-1]
    assert second["next_before_id"] is None


async def test_retry_one_dead_letter_sends_its_id_to_the_projector(
    api: RunningApi, projector: Recorder
) -> None:
    dead_id = insert_dead_letter(api.database_url, projection="postgres", seq=3)
    async with api.client() as client:
        response = await client.post(f"/admin/dead-letters/{dead_id}/retry")
    assert response.json()["ok"] is True
    assert projector.received == [
        RetryDeadLetters(dead_letter_ids=(dead_id,), requested_by="static-admin")
    ]


async def test_retry_all_dead_letters(api: RunningApi, projector: Recorder) -> None:
    async with api.client() as client:
        response = await client.post("/admin/dead-letters/retry")
    assert response.status_code == 200
    assert projector.received == [
        RetryDeadLetters(all_unresolved=True, requested_by="static-admin")
    ]


async def test_retry_of_unknown_dead_letter_is_404(api: RunningApi, projector: Recorder) -> None:
    async with api.client() as client:
        response = await client.post("/admin/dead-letters/999/retry")
    assert response.status_code == 404


async def test_retry_without_a_projector_is_503(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.post("/admin/dead-letters/retry")
    assert response.status_code == 503
    assert response.json()["detail"] == "projector is not running"


async def test_crawl_trigger_goes_to_the_groups_account(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT, account="second")
    recorder = Recorder(CommandReply(ok=True, message="queued"))
    server = CommandServer(api.event_log.nats_client, command_subject("second", "crawl"), recorder)
    await server.start()
    try:
        async with api.client() as client:
            response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "backfill"})
    finally:
        await server.stop()
    assert response.json() == {"ok": True, "message": "queued", "data": {}}
    assert recorder.received == [
        TriggerCrawl(chat_id=CHAT, mode="backfill", requested_by="static-admin")
    ]


async def test_crawl_trigger_of_unknown_group_is_404(api: RunningApi, ingest: Recorder) -> None:
    async with api.client() as client:
        response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "gapfill"})
    assert response.status_code == 404


async def test_crawl_trigger_with_bad_mode_is_422(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "everything"})
    assert response.status_code == 422


async def test_crawl_trigger_without_ingest_is_503(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT)
    async with api.client() as client:
        response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "gapfill"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_crawl_trigger_times_out_as_503_when_ingest_hangs(api: RunningApi) -> None:
    insert_group(api.database_url, CHAT)
    release = asyncio.Event()

    async def hang(command: Command) -> CommandReply:
        await release.wait()
        return CommandReply(ok=True)

    server = CommandServer(api.event_log.nats_client, "aaltohub.cmd.ingest.>", hang)
    await server.start()
    try:
        async with api.client() as client:
            response = await client.post(f"/admin/groups/{CHAT}/crawl", json={"mode": "gapfill"})
    finally:
        release.set()
        await server.stop()
    assert response.status_code == 503
    assert response.json()["detail"] == "ingest did not acknowledge in time"


async def test_restart_sends_restart_crawler(api: RunningApi, ingest: Recorder) -> None:
    async with api.client() as client:
        response = await client.post("/admin/crawler/restart")
    assert response.status_code == 200
    assert ingest.received == [RestartCrawler(requested_by="static-admin")]


async def test_users_are_listed_with_roles(api: RunningApi) -> None:
    a = insert_user(api.database_url, role="admin")
    u = insert_user(api.database_url, role="user")
    async with api.client() as client:
        body = (await client.get("/admin/users")).json()
    assert {(x["id"], x["role"]) for x in body["items"]} == {(str(a), "admin"), (str(u), "user")}


async def test_admin_changes_another_users_role(api: RunningApi) -> None:
    admin_id = insert_user(api.database_url, role="admin")
    user_id = insert_user(api.database_url, role="user")
    async with api.client(token=make_jwt(admin_id)) as client:
        response = await client.patch(f"/admin/users/{user_id}", json={"role": "admin"})
        check = await client.get("/me")
    assert response.json()["role"] == "admin"
    assert check.json()["role"] == "admin"


async def test_promoted_user_gains_admin_access(api: RunningApi) -> None:
    user_id = insert_user(api.database_url, role="user")
    async with api.client() as client:
        await client.patch(f"/admin/users/{user_id}", json={"role": "admin"})
    async with api.client(token=make_jwt(user_id)) as client:
        response = await client.get("/admin/users")
    assert response.status_code == 200


async def test_admin_cannot_change_own_role(api: RunningApi) -> None:
    admin_id = insert_user(api.database_url, role="admin")
    async with api.client(token=make_jwt(admin_id)) as client:
        response = await client.patch(f"/admin/users/{admin_id}", json={"role": "user"})
        still = await client.get("/admin/users")
    assert response.status_code == 403
    assert still.status_code == 200


async def test_role_change_of_unknown_user_is_404(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.patch(f"/admin/users/{uuid.uuid4()}", json={"role": "admin"})
    assert response.status_code == 404


async def test_the_last_admin_cannot_be_demoted(api: RunningApi) -> None:
    last_admin = insert_user(api.database_url, role="admin")
    async with api.client() as client:
        response = await client.patch(f"/admin/users/{last_admin}", json={"role": "user"})
        listed = (await client.get("/admin/users")).json()["items"]
    assert response.status_code == 409
    assert [u["role"] for u in listed] == ["admin"]


async def test_one_of_two_admins_can_be_demoted(api: RunningApi) -> None:
    first = insert_user(api.database_url, role="admin")
    insert_user(api.database_url, role="admin")
    async with api.client() as client:
        response = await client.patch(f"/admin/users/{first}", json={"role": "user"})
    assert response.json()["role"] == "user"
