"""``aaltohub health <service>``: one line and exit 0 (healthy) or 1, for docker-compose healthchecks.

- ``ingest``: its metrics answer, it runs, the log takes its appends (connected, breaker not open)
  and intake is not paused (a full disk).
- ``projector``: its metrics answer and the Postgres projection is within ``--max-lag`` events of
  the head of the log (``health_projector``).
- ``api``: ``GET /health`` answers ``{"status": "ok"}``.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

from aaltohub.settings import Settings, load_settings
from aaltohub.stack_file import connect_host, read_stack

TIMEOUT_S: Final = 3.0  # below compose's healthcheck timeout


class Unhealthy(Exception):
    """The service is not healthy; the message says why in one line."""


def run(args: argparse.Namespace) -> int:
    """Print one line and return 0 when the service is healthy, 1 otherwise."""
    settings = load_settings()
    if args.service == "projector":
        # The one check that needs the log's and the database's clients: loaded only for it, so the
        # frequent `health api` and `health ingest` stay light (docs/decisions/048).
        from aaltohub.subcommands.health_projector import check_projector

        check = check_projector
    else:
        check = {"ingest": check_ingest, "api": check_api}[args.service]
    try:
        line = check(settings, args)
    except Unhealthy as e:
        print(f"{args.service} unhealthy: {e}")
        return 1
    print(f"{args.service} ok: {line}")
    return 0


def get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as e:
        raise Unhealthy(f"{url} answered {e.code}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Unhealthy(f"no answer from {url} ({reason})") from e


def metrics(settings: Settings, service: str, port: int) -> dict[str, float]:
    """The unlabelled samples of ``service``'s metrics: where the running `up` recorded them,
    else the configured host and ``port``."""
    stack = read_stack(settings.data_path)
    url = stack.metrics_urls.get(service) if stack is not None else None
    if url is None:
        if not port:
            raise Unhealthy("its metrics port is off (set AALTOHUB_*_METRICS_PORT)")
        url = f"http://{connect_host(settings.metrics_host)}:{port}/metrics"
    text = get(url).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def check_ingest(settings: Settings, args: argparse.Namespace) -> str:
    """Ingest runs, the log takes its appends and intake is not paused."""
    m = metrics(settings, "ingest", settings.ingest_metrics_port)
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


def check_api(settings: Settings, args: argparse.Namespace) -> str:
    """``GET /health`` says ok (the API of the running `up`, else the configured host and port)."""
    stack = read_stack(settings.data_path)
    base = (
        stack.api_url
        if stack is not None and stack.api_url
        else f"http://{connect_host(settings.api_host)}:{settings.api_port}"
    )
    try:
        status = json.loads(get(f"{base}/health")).get("status")
    except json.JSONDecodeError as e:
        raise Unhealthy(f"{base}/health did not answer JSON") from e
    if status != "ok":
        raise Unhealthy(f"{base}/health says {status!r}")
    return f"{base}/health says ok"
