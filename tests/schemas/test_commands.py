"""Command subjects come from the command's type, under one prefix per service."""

from __future__ import annotations

import msgspec
import pytest

from schemas.commands import (
    INGEST_COMMANDS,
    PROJECTOR_SERVE_SUBJECT,
    Command,
    CommandReply,
    ReportStatus,
    RestartCrawler,
    RetryDeadLetters,
    TriggerCrawl,
    ingest_serve_subject,
    ingest_subject,
    projector_subject,
)
from schemas.status import AccountStatus, CrawlerStatus, SinkStatus


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching for the ``>`` tail wildcard."""
    head = pattern.removesuffix(">")
    return subject.startswith(head) and len(subject) > len(head)


def test_an_ingest_command_reaches_its_accounts_subscription_only() -> None:
    subject = ingest_subject(TriggerCrawl(chat_id=-100, mode="gapfill"), "main")
    assert subject == f"{INGEST_COMMANDS}.main.trigger_crawl"
    assert _matches(ingest_serve_subject("main"), subject)
    assert not _matches(ingest_serve_subject("second"), subject)
    assert not _matches(ingest_serve_subject(None), subject)


def test_a_command_for_all_accounts_reaches_the_all_subscription() -> None:
    subject = ingest_subject(RestartCrawler(), None)
    assert _matches(ingest_serve_subject(None), subject)
    assert not _matches(ingest_serve_subject("main"), subject)


def test_projector_commands_share_one_served_prefix() -> None:
    for command in (RetryDeadLetters(all_unresolved=True), ReportStatus()):
        assert _matches(PROJECTOR_SERVE_SUBJECT, projector_subject(command))


@pytest.mark.parametrize("account", ["all", "a.b", "", "main>"])
def test_an_account_that_is_not_a_subject_token_is_refused(account: str) -> None:
    with pytest.raises(ValueError):
        ingest_subject(ReportStatus(), account)


def test_a_status_reply_round_trips_as_json() -> None:
    reply = CommandReply(
        ok=True,
        crawler=CrawlerStatus(
            running=True,
            demo=False,
            accounts=(AccountStatus(account="main", state="connected", connected=True),),
            sink=SinkStatus(
                buffer_depth=0,
                buffer_capacity=10,
                spool_records=0,
                spool_bytes=0,
                breaker="closed",
                log_connected=True,
                appended=1,
                spooled=0,
                dead_lettered=0,
                last_error=None,
            ),
        ),
    )
    decoded = msgspec.json.decode(msgspec.json.encode(reply), type=CommandReply)
    assert decoded == reply and decoded.crawler is not None
    assert decoded.crawler.connected_accounts == 1


def test_commands_decode_by_their_tag() -> None:
    raw = msgspec.json.encode(TriggerCrawl(chat_id=-5, mode="backfill"))
    assert msgspec.json.decode(raw, type=Command) == TriggerCrawl(chat_id=-5, mode="backfill")
