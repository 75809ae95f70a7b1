"""Problem documents, request ids, OpenAPI completeness, metrics, JSON logs, and a schemathesis run."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from aaltohub.embedded.nats_server import NatsServer
from api.logs import JsonFormatter, RequestIdFilter, request_id_var
from eventlog import CommandHandler
from schemas.commands import INGEST_COMMANDS, PROJECTOR_SERVE_SUBJECT, Command, CommandReply
from tests.api.conftest import ADMIN_TOKEN, RunningApi, write_snapshot
from tests.api.rows import insert_group, insert_messages, set_checkpoint


async def test_unknown_route_is_a_problem_document(api: RunningApi) -> None:
    async with api.client() as client:
        response = await client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_request_id_is_echoed_or_made(api: RunningApi) -> None:
    async with api.client() as client:
        given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/health")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32


async def test_openapi_documents_every_route_with_problems(api: RunningApi) -> None:
    async with api.client() as client:
        doc = (await client.get("/openapi.json")).json()
    assert "Problem" in doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert "200" in op["responses"], (method, path)
            if path not in ("/health", "/metrics"):
                assert "401" in op["responses"], (method, path)
            if op.get("parameters") or op.get("requestBody"):
                problem = op["responses"]["422"]["content"]["application/problem+json"]
                assert problem["schema"]["$ref"] == "#/components/schemas/Problem", (method, path)


async def test_metrics_expose_latency_subscribers_and_lag(api: RunningApi) -> None:
    set_checkpoint(api.database_url, "postgres", 0)
    async with api.client() as client:
        await client.get("/groups")
        text = (await client.get("/metrics")).text
    assert (
        'aaltohub_api_request_seconds_count{method="GET",route="/groups",status="200"} 1.0' in text
    )
    assert "aaltohub_api_live_subscribers 0.0" in text
    assert 'aaltohub_projection_lag_events{projection="postgres"} 0.0' in text


async def test_access_log_records_carry_the_request_id(
    api: RunningApi, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="api.access"):
        async with api.client() as client:
            response = await client.get("/groups")
    records = [
        r
        for r in caplog.records
        if r.name == "api.access" and getattr(r, "route", None) == "/groups"
    ]
    assert [(r.request_id, r.status) for r in records] == [(response.headers["x-request-id"], 200)]  # type: ignore[attr-defined]
    assert ADMIN_TOKEN not in caplog.text


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "api.access", logging.INFO, __file__, 1, "GET %s", ("/groups",), None
    )
    record.status = 200
    token = request_id_var.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert (line["msg"], line["request_id"], line["status"]) == ("GET /groups", "rid-1", 200)


async def test_schemathesis_finds_no_server_error_or_schema_violation(
    api: RunningApi, tmp_path: Path
) -> None:
    insert_group(api.database_url, -1001, title="G")
    insert_messages(api.database_url, -1001, range(1, 30))
    set_checkpoint(api.database_url, "postgres", 2**62)  # every ?min_seq= is already applied
    write_snapshot(api.config.duckdb_snapshot_dir, "s.duckdb", [])
    # FastAPI builds the schema on its first request; on a loaded machine that alone outlasted
    # schemathesis' 10 s to load it. Build it here, with a deadline of its own.
    async with api.client() as client:
        spec = await client.get("/openapi.json", timeout=60)
        assert spec.status_code == 200
    ok = CommandReply(ok=True, message="ok")
    servers = [
        await api.event_log.serve(subject, _answer(ok))
        for subject in (f"{INGEST_COMMANDS}.>", PROJECTOR_SERVE_SUBJECT)
    ]
    st = Path(sys.executable).parent / "st"
    proc = await asyncio.create_subprocess_exec(
        str(st),
        "run",
        f"{api.url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--phases",
        "examples,fuzzing",
        "--max-examples",
        "8",
        "--max-time",
        "10",
        "--workers",
        "2",
        "--seed",
        "7",
        "--exclude-path",
        "/live/sse",
        "--request-timeout",
        "10",
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--report-dir",
        str(tmp_path / "st"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=100)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for server in servers:
            await server.stop()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]


def _answer(reply: CommandReply) -> CommandHandler:
    async def handler(command: Command) -> CommandReply:
        return reply

    return handler


async def test_health_reports_every_dependency(api: RunningApi) -> None:
    async with api.client(token=None) as client:
        body = (await client.get("/health")).json()
    assert body == {"status": "ok", "database": True, "log": True, "live": True}


async def test_health_is_degraded_without_the_log(api: RunningApi, nats_server: NatsServer) -> None:
    await asyncio.to_thread(nats_server.stop)
    async with api.client(token=None) as client:
        body = (await client.get("/health")).json()
    assert (body["status"], body["log"], body["database"]) == ("degraded", False, True)
