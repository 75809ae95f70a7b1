"""Each service's blocking calls have threads of their own (issue 15, item 6).

Under `aaltohub up` ingest, the projector and the API share one event loop, and everything they
ran through ``asyncio.to_thread`` shared its default pool of six threads: admin SQL and named
analytics stalled the DuckDB projector, and a slow JWKS endpoint could hold every thread ingest
needed for its sessions and update state. Analytics have their own pool
(tests/security/test_analytics_limits.py); here the DuckDB projector, the API's JWKS fetch and
ingest's stores keep working while the default pool, or the JWKS threads, are held entirely.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from aaltohub.settings import load_settings
from aaltohub.telegram import TelegramWorkers
from eventlog import EventLog
from ingest.telegram.sessions import Secret, SessionCipher
from ingest.telegram.threads import ingest_threads
from tests.api.rows import insert_user
from tests.factories import CHAN
from tests.helpers import posted, wait_until
from tests.projector.conftest import run_to_end
from tests.security.conftest import StartApi

pytestmark = pytest.mark.timeout(120)

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MASTER_KEY = SessionCipher.generate_key("k1")


class Jwks:
    """A JWKS endpoint publishing ``KEY``; while ``hang`` is set it answers nobody."""

    def __init__(self) -> None:
        self.hang = False
        self.hanging = 0  # requests held right now
        self.release = threading.Event()
        jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
        self.body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]}).encode()
        self.url = ""


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    """A local JWKS endpoint."""
    state = Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if state.hang:
                state.hanging += 1
                state.release.wait(30)
                state.hanging -= 1
            with contextlib.suppress(OSError):  # a fetch that gave up has gone
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/auth/v1/.well-known/jwks.json"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def rs256_token(sub: uuid.UUID, kid: str = "k1") -> str:
    """A token signed by ``KEY``; another ``kid`` makes the API fetch the JWKS again."""
    exp = datetime.now(UTC) + timedelta(minutes=5)
    return jwt.encode(
        {"sub": str(sub), "aud": "authenticated", "exp": exp},
        KEY,
        algorithm="RS256",
        headers={"kid": kid},
    )


@asynccontextmanager
async def default_pool_held() -> AsyncIterator[None]:
    """Far more blocking calls on the loop's default pool than it has threads: none is left."""
    release = threading.Event()
    loop = asyncio.get_running_loop()
    holders = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        yield
    finally:
        release.set()
        await asyncio.gather(*holders)


async def test_the_duckdb_projector_applies_while_the_shared_pool_is_held(
    event_log: EventLog, tmp_path: Path
) -> None:
    await event_log.append_many([posted(CHAN, i) for i in range(1, 51)])
    async with default_pool_held():
        projection = await asyncio.wait_for(run_to_end(event_log, tmp_path / "a.duckdb"), 30)
    assert projection.seq == 50


async def test_a_jwks_token_is_verified_while_the_shared_pool_is_held(
    start_bounded_api: StartApi, migrated_db: str, jwks: Jwks
) -> None:
    api = await start_bounded_api({"jwks_url": jwks.url})
    user = insert_user(migrated_db, role="user")
    async with default_pool_held():
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            response = await client.get(
                "/me", headers={"Authorization": f"Bearer {rs256_token(user)}"}
            )
    assert response.status_code == 200


async def test_ingest_stores_work_while_the_shared_pool_is_held(
    migrated_db: str, event_log: EventLog
) -> None:
    with ingest_threads() as threads:
        workers = TelegramWorkers(
            load_settings(telegram_api_id=1, telegram_api_hash="0" * 32, master_key=MASTER_KEY),
            log=event_log,
            database_url=migrated_db,
            executor=threads,
        )
        async with default_pool_held():
            await asyncio.wait_for(workers.sessions.save("main", Secret("session")), 30)
            loaded = await asyncio.wait_for(workers.sessions.load("main"), 30)
    assert loaded.reveal() == "session"


async def test_a_hanging_jwks_endpoint_does_not_stall_ingest(
    start_bounded_api: StartApi, migrated_db: str, event_log: EventLog, jwks: Jwks
) -> None:
    api = await start_bounded_api({"jwks_url": jwks.url})
    user = insert_user(migrated_db, role="user")
    jwks.hang = True
    with ingest_threads() as threads:
        workers = TelegramWorkers(
            load_settings(telegram_api_id=1, telegram_api_hash="0" * 32, master_key=MASTER_KEY),
            log=event_log,
            database_url=migrated_db,
            executor=threads,
        )
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            # Every request misses the key cache (a new kid) and waits for the endpoint.
            waiting = [
                asyncio.create_task(
                    client.get(
                        "/me", headers={"Authorization": f"Bearer {rs256_token(user, f'k{i}')}"}
                    )
                )
                for i in range(8)
            ]
            try:
                await wait_until(
                    lambda: jwks.hanging >= 1, timeout=10
                )  # PyJWKClient fetches one at a time
                await asyncio.wait_for(workers.sessions.save("main", Secret("session")), 30)
                # Saved while every JWKS fetch still hung (they give up after 5 s): not behind them.
                finished_first = [t.done() for t in waiting]
            finally:
                jwks.release.set()
                responses = await asyncio.gather(*waiting)
    assert not any(finished_first)
    assert {r.status_code for r in responses} <= {200, 401}  # k1 once the endpoint answered
