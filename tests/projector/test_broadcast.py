"""Broadcast projection against a local HTTP endpoint that checks method, path, headers and body."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eventlog import EventLog
from projector.broadcast import BroadcastProjection
from projector.runner import ProjectionRunner
from tests.factories import CHAN, deleted, edited
from tests.helpers import posted, wait_until

KEY = "service-role-test-key"


class FakeRealtime:
    """Records accepted broadcasts; answers 503 to the first ``fail_first`` requests."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests = 0
        self.messages: list[dict[str, object]] = []
        self.problems: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if self.path != "/realtime/v1/api/broadcast":
                    outer.problems.append(f"path {self.path}")
                if (
                    self.headers["apikey"] != KEY
                    or self.headers["Authorization"] != f"Bearer {KEY}"
                ):
                    outer.problems.append("auth headers")
                if self.headers["Content-Type"] != "application/json":
                    outer.problems.append("content type")
                if outer.requests <= outer.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.messages.extend(json.loads(body)["messages"])
                self.send_response(202)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def realtime() -> Iterator[FakeRealtime]:
    fake = FakeRealtime(fail_first=2)
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        thread.join(timeout=5)


async def test_message_events_are_broadcast_after_endpoint_failures(
    event_log: EventLog, migrated_url: str, realtime: FakeRealtime
) -> None:
    await event_log.append_many(
        [posted(CHAN, 1, text="hi"), edited(CHAN, 1, "hi!"), deleted(CHAN, 1)]
    )
    projection = BroadcastProjection(
        supabase_url=realtime.url + "/",
        api_key=KEY,
        database_url=migrated_url,
        codec=event_log.codec,
    )
    runner = ProjectionRunner(projection, log=event_log, batch_size=100, max_batch_wait_s=0.05)
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: len(realtime.messages) == 3, timeout=20)
        await runner.wait_for_seq(3, timeout_s=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await projection.close()
    assert realtime.problems == []
    assert all(m["private"] is True for m in realtime.messages)
    assert [(m["topic"], m["event"]) for m in realtime.messages] == [
        ("messages", "INSERT"),
        ("messages", "UPDATE"),
        ("messages", "DELETE"),
    ]
    payload = realtime.messages[1]["payload"]
    assert isinstance(payload, dict) and payload["text"] == "hi!" and payload["chat_id"] == CHAN
    assert KEY not in repr(projection)
