"""Asymmetric Supabase tokens verified against a JWKS document served over HTTP."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.config import ApiConfig
from eventlog import EventLog
from tests.api.conftest import RunningApi, start_api, stop_api
from tests.api.rows import insert_user


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_url(rsa_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A local HTTP server publishing the public key as a JWKS."""
    jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/auth/v1/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
async def jwks_api(
    api_config: ApiConfig, event_log: EventLog, jwks_url: str
) -> AsyncIterator[RunningApi]:
    config = replace(api_config, jwks_url=jwks_url, jwt_secret=None)
    server, task, url = await start_api(config)
    try:
        yield RunningApi(
            url=url,
            config=config,
            database_url=config.database_url.get_secret_value(),
            event_log=event_log,
        )
    finally:
        await stop_api(server, task)


def rs256_token(key: rsa.RSAPrivateKey, sub: uuid.UUID) -> str:
    now = datetime.now(UTC)
    return jwt.encode(
        {"sub": str(sub), "aud": "authenticated", "exp": now + timedelta(minutes=5)},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )


async def test_token_signed_by_a_jwks_key_is_accepted(
    jwks_api: RunningApi, rsa_key: rsa.RSAPrivateKey
) -> None:
    admin_id = insert_user(jwks_api.database_url, role="admin")
    async with jwks_api.client(token=rs256_token(rsa_key, admin_id)) as client:
        response = await client.get("/me")
    assert response.json() == {"user_id": str(admin_id), "role": "admin"}


async def test_token_signed_by_another_key_is_rejected(jwks_api: RunningApi) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with jwks_api.client(token=rs256_token(other, uuid.uuid4())) as client:
        response = await client.get("/me")
    assert response.status_code == 401
