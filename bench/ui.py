"""Console benchmark: the groups page with 10,000 groups, and the live feed at 500 events/s.

Starts an embedded nats-server and Postgres, seeds 10,000 groups with crawler status, runs
``aaltohub api`` as a subprocess and drives Debian's Chromium with Playwright. Prints:

- groups page: the page's own SQL straight through psycopg (raw baseline), the server's HTML
  response time (first page and a page near the end of the keyset), and Chromium's navigation to
  the page (response end, DOMContentLoaded, load);
- live feed: events appended at the target rate for ``--seconds`` while ``/ui/live`` is open;
  long-task time and count (PerformanceObserver ``longtask``), animation frames per second, and
  how long after the last append the page shows it, next to the same page idle for as long.

    python bench/ui.py                 # 10,000 groups; 500 events/s for 10 s
    python bench/ui.py --groups 1000 --rate 100 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from playwright.async_api import Browser, Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.embedded.process import free_port
from aaltohub.migrate import apply_migrations
from eventlog import EventLog
from schemas import ids
from schemas.events import (
    Event,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MessageSnapshot,
    Sender,
)

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-ui-admin-token-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIVE_CHAT = -1009000000001
GROUPS_SQL = """SELECT g.*, c.* FROM telegram_groups g LEFT JOIN crawler_status c ON c.chat_id = g.chat_id
WHERE (coalesce(g.title, ''), g.chat_id) > (%s, %s) ORDER BY coalesce(g.title, ''), g.chat_id LIMIT 101"""
# Long tasks and animation frames, recorded from the first script on.
OBSERVE = """
window.__longTasks = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
  .observe({type: 'longtask', buffered: true});
window.__frames = 0;
const tick = () => { window.__frames += 1; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
"""


def seed_groups(url: str, n: int) -> None:
    """``n`` groups, each with a crawler status mid-backfill."""
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY telegram_groups (chat_id, kind, title, username, account, message_count, "
            "last_activity_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                copy.write_row(
                    (
                        -1001000000000 - i,
                        "supergroup",
                        f"Group {i:05d}",
                        f"group{i}",
                        "main",
                        i * 7,
                        now - timedelta(minutes=i),
                    )
                )
        with cur.copy(
            "COPY crawler_status (chat_id, account, status, backfill_fetched, backfill_total) FROM STDIN"
        ) as copy:
            for i in range(n):
                copy.write_row((-1001000000000 - i, "main", "active", i % 1000, 1000))
        cur.execute("ANALYZE")


def median_ms(samples: list[float]) -> str:
    """Median and max of seconds, in ms."""
    return f"median {statistics.median(samples) * 1000:7.1f} ms, max {max(samples) * 1000:7.1f} ms"


def raw_query(url: str, after: tuple[str, int], repeat: int) -> list[float]:
    """The groups page's SQL straight through psycopg."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(repeat):
            started = time.perf_counter()
            conn.execute(GROUPS_SQL, after).fetchall()
            out.append(time.perf_counter() - started)
    return out


async def server_page(client: httpx.AsyncClient, path: str, repeat: int) -> list[float]:
    """The server's HTML response time of ``path``."""
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path)
        response.raise_for_status()
        out.append(time.perf_counter() - started)
    return out


async def browser_navigation(page: Page, url: str, repeat: int) -> dict[str, list[float]]:
    """Chromium's navigation timings of ``url`` (seconds)."""
    out: dict[str, list[float]] = {"response end": [], "DOMContentLoaded": [], "load": []}
    for _ in range(repeat):
        await page.goto(url, wait_until="load")
        nav = await page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd]; }"
        )
        for key, value in zip(out, nav, strict=True):
            out[key].append(value / 1000)
    return out


def traffic(n: int) -> list[Event]:
    """``n`` live events: 80 % posts, 10 % edits and 10 % deletes of earlier posts."""
    now = datetime.now(UTC)
    events: list[Event] = []
    posted = 0
    for i in range(n):
        kind = i % 10
        if kind == 8 and posted > 5:
            snap = MessageSnapshot(
                message_id=posted - 3,
                date=now,
                edit_date=now + timedelta(seconds=i),
                text=f"edited text {i}",
            )
            events.append(
                MessageEdited(
                    event_id=ids.edited_id(LIVE_CHAT, snap, account="main"),
                    account="main",
                    observed_at=now,
                    source="live",
                    chat_id=LIVE_CHAT,
                    message=snap,
                )
            )
        elif kind == 9 and posted > 5:
            events.append(
                MessageDeleted(
                    event_id=ids.deleted_id(
                        account="main", chat_id=LIVE_CHAT, message_id=posted - 5
                    ),
                    account="main",
                    observed_at=now,
                    source="live",
                    chat_id=LIVE_CHAT,
                    message_id=posted - 5,
                )
            )
        else:
            posted += 1
            events.append(
                MessagePosted(
                    event_id=ids.posted_id(LIVE_CHAT, posted, account="main"),
                    account="main",
                    observed_at=now,
                    source="live",
                    chat_id=LIVE_CHAT,
                    message=MessageSnapshot(
                        message_id=posted,
                        date=now,
                        text=f"message {posted} of the live benchmark",
                        sender=Sender(id=1000 + posted % 50, kind="user", display_name="Bench"),
                    ),
                )
            )
    return events


async def page_figures(page: Page) -> dict[str, Any]:
    """Long tasks and frames recorded so far, then reset."""
    figures: dict[str, Any] = await page.evaluate(
        "() => { const t = window.__longTasks; const f = window.__frames;"
        " window.__longTasks = []; window.__frames = 0;"
        " return {count: t.length, total_ms: t.reduce((a, b) => a + b, 0),"
        " max_ms: t.length ? Math.max(...t) : 0, frames: f}; }"
    )
    return figures


async def live_feed(
    browser: Browser, base: str, log: EventLog, *, rate: int, seconds: float
) -> None:
    """Open the live feed, measure it idle, then under ``rate`` events/s."""
    context = await browser.new_context(bypass_csp=True)
    await context.add_cookies([{"name": "aaltohub_session", "value": TOKEN, "url": base}])
    await context.add_init_script(OBSERVE)
    page = await context.new_page()
    await page.goto(f"{base}/ui/live?chat_id={LIVE_CHAT}")
    await page.wait_for_function("document.getElementById('live-state').textContent === 'Live.'")
    await page_figures(page)
    started = time.perf_counter()
    await asyncio.sleep(seconds)  # the idle baseline window
    idle = await page_figures(page)
    idle_s = time.perf_counter() - started

    events = traffic(int(rate * seconds))
    tick_s = 0.05
    per_tick = max(1, int(rate * tick_s))
    started = time.perf_counter()
    last_seq = 0
    for i in range(0, len(events), per_tick):
        due = started + (i / rate)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the generated traffic
        results = await log.append_many(events[i : i + per_tick])
        last_seq = max(last_seq, *(r.seq for r in results))
    sent_s = time.perf_counter() - started
    appended_at = time.perf_counter()
    await page.wait_for_function(
        f"document.getElementById('live-seq').textContent === 'Last seq {last_seq}.'",
        timeout=60_000,
    )
    caught_up_s = time.perf_counter() - appended_at
    busy = await page_figures(page)
    busy_s = time.perf_counter() - started
    rows = await page.locator("#feed > li").count()
    await context.close()
    print(
        f"live feed: {len(events)} events in {sent_s:.1f} s ({len(events) / sent_s:.0f} events/s)"
    )
    for name, fig, window in (("idle", idle, idle_s), ("under load", busy, busy_s)):
        print(
            f"  {name:<10}: long tasks {fig['count']:3d}, total {fig['total_ms']:7.0f} ms"
            f" ({fig['total_ms'] / 10 / window:4.1f} % of the time), longest {fig['max_ms']:5.0f} ms,"
            f" {fig['frames'] / window:5.1f} frames/s"
        )
    print(f"  last event shown {caught_up_s * 1000:.0f} ms after its append; {rows} rows kept")


def spawn_api(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    """``aaltohub api`` as a separate process (the browser and the load stay out of its CPU)."""
    return subprocess.Popen(
        [sys.executable, "-m", "aaltohub", "api", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def main(args: argparse.Namespace) -> None:
    """Run both measurements and print the figures."""
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        root = Path(tmp)
        nats = NatsServer(store_dir=root / "nats", sync_interval="2m")
        postgres = PostgresServer(data_dir=root / "pg")
        nats.start()
        postgres.start()
        api: subprocess.Popen[bytes] | None = None
        try:
            database_url = postgres.url
            apply_migrations(database_url)
            log = await EventLog.connect(nats.url, name="bench-ui")
            seed_groups(database_url, args.groups)
            port = free_port()
            env = {
                **os.environ,
                "PYTHONPATH": str(REPO),
                "NATS_URL": nats.url,
                "DATABASE_URL": database_url,
                "AALTOHUB_ADMIN_TOKEN": TOKEN,
                "AALTOHUB_DUCKDB_PATH": str(root / "analytics" / "a.duckdb"),
                "AALTOHUB_LOG_LEVEL": "WARNING",
            }
            api = spawn_api(env, port, root)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(
                base_url=base, cookies={"aaltohub_session": TOKEN}, timeout=30
            ) as client:
                for _ in range(300):
                    try:
                        if (await client.get("/health")).status_code in (200, 503):
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)  # waiting for the API subprocess to listen
                last_title = f"Group {args.groups - 150:05d}"
                last_id = -1001000000000 - (args.groups - 150)
                deep = f"/ui/groups?after_title={last_title.replace(' ', '+')}&after_id={last_id}"
                print(f"groups page, {args.groups} groups, 100 a page:")
                print(
                    f"  raw SQL (psycopg)   : {median_ms(raw_query(database_url, ('', -(2**63)), 20))}"
                )
                print(
                    f"  server, first page  : {median_ms(await server_page(client, '/ui/groups', 20))}"
                )
                print(f"  server, deep page   : {median_ms(await server_page(client, deep, 20))}")
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=CHROMIUM, args=CHROMIUM_ARGS
                    )
                    context = await browser.new_context(bypass_csp=True)
                    await context.add_cookies(
                        [{"name": "aaltohub_session", "value": TOKEN, "url": base}]
                    )
                    page = await context.new_page()
                    baseline = await browser_navigation(page, f"{base}/ui/login", 7)
                    timings = await browser_navigation(page, f"{base}/ui/groups", 7)
                    for key, values in timings.items():
                        print(
                            f"  Chromium {key:<18}: {median_ms(values)}"
                            f" (sign-in page: {median_ms(baseline[key])})"
                        )
                    await context.close()
                    await live_feed(browser, base, log, rate=args.rate, seconds=args.seconds)
                    await browser.close()
            await log.close()
        finally:
            if api is not None:
                api.terminate()
                api.wait(timeout=20)
            postgres.stop()
            nats.stop()
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=500, help="live events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))
