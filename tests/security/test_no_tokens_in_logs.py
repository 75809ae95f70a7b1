"""No secret or token reaches a log line, from any entry point (issue 15, item 3).

An authenticated session against ``aaltohub up`` (every service in one process, text logs at DEBUG)
and against ``aaltohub api`` (the compose entry point, JSON logs): bearer headers, query tokens on
SSE and WebSocket, the WebSocket subprotocol, refused tokens. Then every line either process wrote
is searched for every secret: the admin token, the JWT secret, each token sent, the NATS passwords.
"""

from __future__ import annotations

import contextlib
import secrets
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
import websockets

from aaltohub.embedded.pg_roles import ROLE_NAMES, load_passwords
from aaltohub.embedded.process import free_port
from aaltohub.nats_auth import load_users
from tests.aaltohub.upproc import UpProcess, cli_env
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(180)

ADMIN_TOKEN = secrets.token_urlsafe(32)
JWT_SECRET = secrets.token_urlsafe(40)
READER = uuid.uuid4()


def token_for(sub: uuid.UUID, *, secret: str = JWT_SECRET, ttl_s: float = 3600) -> str:
    """A Supabase-style access token."""
    now = int(time.time())
    claims = {"sub": str(sub), "aud": "authenticated", "role": "authenticated", "iat": now}
    return jwt.encode({**claims, "exp": now + int(ttl_s)}, secret, algorithm="HS256")


SETTINGS = {
    "AALTOHUB_ADMIN_TOKEN": ADMIN_TOKEN,
    "SUPABASE_JWT_SECRET": JWT_SECRET,
    "AALTOHUB_LOG_LEVEL": "DEBUG",
}


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[UpProcess, int]]:
    """``aaltohub up`` with an admin token and a JWT secret, its API on a free port."""
    port = free_port()
    process = UpProcess(
        tmp_path_factory.mktemp("logs") / "var", AALTOHUB_API_PORT=str(port), **SETTINGS
    )
    process.start()
    try:
        info = await process.wait_ready()
        with psycopg.connect(info.database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO users (id, role) VALUES (%s, 'user')", (READER,))
        yield process, port
    finally:
        process.stop()


async def session(base: str) -> list[str]:
    """An authenticated session through every way a token can arrive; returns the tokens used."""
    good = token_for(READER)
    forged = token_for(READER, secret="not-the-secret-" + secrets.token_hex(16))
    expired = token_for(READER, ttl_s=-600)
    bad = "bad-token-" + secrets.token_hex(8)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for token, expected in ((ADMIN_TOKEN, 200), (good, 200), (forged, 401), (expired, 401)):
            response = await http.get("/groups", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == expected, response.text
        async with http.stream("GET", "/live/sse", params={"access_token": good}) as response:
            assert response.status_code == 200
            await anext(response.aiter_raw())
        response = await http.get("/live/sse", params={"access_token": bad})
        assert response.status_code == 401
    ws = base.replace("http://", "ws://") + "/live/ws"
    async with websockets.connect(f"{ws}?access_token={good}&after_seq=0") as conn:
        await conn.recv()
    async with websockets.connect(ws, subprotocols=["aaltohub.live", f"bearer.{good}"]) as conn:  # type: ignore[list-item]
        assert conn.subprotocol == "aaltohub.live"
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"{ws}?access_token={bad}"):
            pass
    return [good, forged, expired, bad]


def assert_no_secret_in(text: str, data_dir: Path, tokens: list[str]) -> None:
    users = load_users(data_dir)
    assert users is not None
    nats_passwords = [users.password(r) for r in ("operator", "ingest", "projector", "api")]
    pg = load_passwords(data_dir)
    assert pg is not None
    pg_passwords = [pg.superuser, *(pg.password(r) for r in ROLE_NAMES)]
    for secret in (ADMIN_TOKEN, JWT_SECRET, *tokens, *nats_passwords, *pg_passwords):
        assert secret not in text
    # The token's signature alone must not be there either (a JWT cut by a log line).
    for token in tokens[:3]:
        assert token.rsplit(".", 1)[1] not in text


def start_api(env: dict[str, str], *, cwd: Path, output: Path) -> subprocess.Popen[bytes]:
    """``aaltohub api`` as a child process writing to ``output``."""
    with open(output, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aaltohub", "api"],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_the_up_logs_hold_no_secret_or_token(stack: tuple[UpProcess, int]) -> None:
    process, port = stack
    tokens = await session(f"http://127.0.0.1:{port}")
    assert "WebSocket /live/ws" in process.text()  # uvicorn logged the handshakes: they were seen
    assert_no_secret_in(process.text(), process.data_dir, tokens)


async def test_the_api_entry_point_logs_hold_no_secret_or_token(
    stack: tuple[UpProcess, int], tmp_path: Path
) -> None:
    process, _ = stack
    port = free_port()
    output = tmp_path / "api.out"
    env = cli_env(
        process.data_dir, AALTOHUB_API_PORT=str(port), AALTOHUB_LOG_FORMAT="json", **SETTINGS
    )
    api = start_api(env, cwd=process.data_dir.parent, output=output)
    try:

        async def listening() -> bool:
            assert api.poll() is None, output.read_text()
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"http://127.0.0.1:{port}/health")).status_code < 500
            return False

        await wait_until(listening, timeout=60, interval=0.2)
        tokens = await session(f"http://127.0.0.1:{port}")
    finally:
        api.terminate()
        api.wait(timeout=30)
    text = output.read_text()
    assert '"logger": "uvicorn.error"' in text or '"logger":"uvicorn.error"' in text
    assert_no_secret_in(text, process.data_dir, tokens)


def test_everything_up_created_is_owner_only(stack: tuple[UpProcess, int]) -> None:
    process, _ = stack
    loose = []
    for path in process.data_dir.rglob("*"):
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue  # a running Postgres removes its temporary files while we walk
        if stat.S_ISSOCK(mode) or stat.S_ISLNK(mode):
            continue  # the Postgres socket sits in a 0700 directory
        # Directories may keep o+x: the embedded Postgres's own user must traverse to its files.
        bad = mode & (0o066 if stat.S_ISDIR(mode) else 0o077)
        if bad:
            loose.append(f"{path.relative_to(process.data_dir)} {oct(stat.S_IMODE(mode))}")
    assert loose == []
