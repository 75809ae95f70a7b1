"""``aaltohub health <service>``: one line and exit 0 (healthy) or 1, for docker-compose healthchecks.

- ``ingest``: its metrics answer, it runs, the log takes its appends (connected, breaker not open)
  and intake is not paused (a full disk).
- ``projector``: its metrics answer and the Postgres projection is within ``--max-lag`` events of
  the head of the log.
- ``api``: ``GET /health`` answers ``{"status": "ok"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import urllib.error
import urllib.request
from typing import Final

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from aaltohub.runtime import StackNotRunning, connect_host, read_stack, resolve_database_url
from aaltohub.settings import Settings, load_settings
from aaltohub.stream import open_event_log
from eventlog import EventLogError

TIMEOUT_S: Final = 3.0  # below compose's healthcheck timeout


class Unhealthy(Exception):
    """The service is not healthy; the message says why in one line."""


def run(args: argparse.Namespace) -> int:
    """Print one line and return 0 when the service is healthy, 1 otherwise."""
    settings = load_settings()
    check = {"ingest": check_ingest, "projector": check_projector, "api": check_api}[args.service]
    try:
        line = check(settings, args)
    except Unhealthy as e:
        print(f"{args.service} unhealthy: {e}")
        return 1
    print(f"{args.service} ok: {line}")
    return 0


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as e:
        raise Unhealthy(f"{url} answered {e.code}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Unhealthy(f"no answer from {url} ({reason})") from e


def _metrics(settings: Settings, service: str, port: int) -> dict[str, float]:
    """The unlabelled samples of ``service``'s metrics: where the running `up` recorded them,
    else the configured host and ``port``."""
    stack = read_stack(settings.data_path)
    url = stack.metrics_urls.get(service) if stack is not None else None
    if url is None:
        if not port:
            raise Unhealthy("its metrics port is off (set AALTOHUB_*_METRICS_PORT)")
        url = f"http://{connect_host(settings.metrics_host)}:{port}/metrics"
    text = _get(url).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def check_ingest(settings: Settings, args: argparse.Namespace) -> str:
    """Ingest runs, the log takes its appends and intake is not paused."""
    m = _metrics(settings, "ingest", settings.ingest_metrics_port)
    spooled = int(m.get("aaltohub_ingest_spool_records", 0))
    if m.get("aaltohub_ingest_running") != 1:
        raise Unhealthy("not running")
    if m.get("aaltohub_ingest_intake_paused") == 1:
        failures = int(m.get("aaltohub_ingest_spool_write_failures", 0))
        raise Unhealthy(f"intake paused: the spool cannot be written ({failures} failed writes)")
    if m.get("aaltohub_ingest_log_connected") != 1 or m.get("aaltohub_ingest_breaker_open") == 1:
        raise Unhealthy(f"the log takes no appends; {spooled} events spooled")
    appended = int(m.get("aaltohub_ingest_appended", 0))
    return f"log connected, {appended} appended, {spooled} spooled"


def check_projector(settings: Settings, args: argparse.Namespace) -> str:
    """The projector answers and its Postgres projection is near the head of the log."""
    _metrics(settings, "projector", settings.projector_metrics_port)
    if "postgres" not in settings.projection_names:
        return "running (no Postgres projection to measure the lag of)"
    try:
        head = asyncio.run(_head(settings))
        database_url = resolve_database_url(settings, role="projector")
    except (StackNotRunning, EventLogError) as e:
        raise Unhealthy(str(e)) from e
    try:
        with psycopg.connect(database_url, connect_timeout=int(TIMEOUT_S)) as conn:
            row = conn.execute(
                "SELECT seq FROM projection_checkpoints WHERE name = 'postgres'"
            ).fetchone()
    except psycopg.Error as e:
        raise Unhealthy(f"database: {type(e).__name__}") from e
    seq = int(row[0]) if row else 0
    lag = max(0, head - seq)
    if lag > args.max_lag:
        raise Unhealthy(
            f"{lag} events behind the log (at {seq}, head {head}; bound {args.max_lag})"
        )
    return f"{lag} events behind the log (at {seq})"


async def _head(settings: Settings) -> int:
    async with await open_event_log(
        settings, name="aaltohub-health", role="projector", connect_timeout_s=TIMEOUT_S
    ) as event_log:
        return (await event_log.info()).last_seq


def check_api(settings: Settings, args: argparse.Namespace) -> str:
    """``GET /health`` says ok (the API of the running `up`, else the configured host and port)."""
    stack = read_stack(settings.data_path)
    base = (
        stack.api_url
        if stack is not None and stack.api_url
        else f"http://{connect_host(settings.api_host)}:{settings.api_port}"
    )
    try:
        status = json.loads(_get(f"{base}/health")).get("status")
    except json.JSONDecodeError as e:
        raise Unhealthy(f"{base}/health did not answer JSON") from e
    if status != "ok":
        raise Unhealthy(f"{base}/health says {status!r}")
    return f"{base}/health says ok"
