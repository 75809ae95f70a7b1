"""Composition of the Telegram account workers from ``Settings`` (used by ``aaltohub ingest``)."""

from __future__ import annotations

import logging

from aaltohub.settings import Settings, comma_list
from eventlog import EventLog
from ingest.errors import IngestError, SessionDecryptError, SessionNotFound
from ingest.telegram.assignment import ChatAssignment, parse_assignments
from ingest.telegram.client import TelethonGateway, build_client
from ingest.telegram.entity_cache import PostgresEntityStore
from ingest.telegram.login import TelethonAuthClient
from ingest.telegram.login_desk import LoginDesk
from ingest.telegram.media import LocalMediaStore, MediaStore, SupabaseMediaStore
from ingest.telegram.sessions import Secret, SessionCipher, SessionStore
from ingest.telegram.updatestate import UpdateStateStore
from ingest.telegram.worker import TelegramAccountWorker, WorkerConfig

logger = logging.getLogger(__name__)


def worker_config(settings: Settings) -> WorkerConfig:
    """The crawling knobs of the ingest section."""
    media_types = tuple(comma_list(settings.media_types))
    return WorkerConfig(
        backfill_days=settings.backfill_days,
        backfill_batch=settings.backfill_batch,
        backfill_pause_s=settings.backfill_pause_s,
        discovery_interval_s=settings.discovery_interval_s,
        gapfill_interval_s=settings.gapfill_interval_s,
        gapfill_window_s=settings.gapfill_window_s,
        gapfill_max_messages=settings.gapfill_max_messages,
        chat_kinds=tuple(comma_list(settings.telegram_chat_kinds)),
        delete_map_days=settings.delete_map_days,
        entity_ttl_s=settings.entity_cache_ttl_s,
        max_flood_wait_s=settings.telegram_max_flood_wait_s,
        retry_attempts=settings.telegram_retry_attempts,
        request_timeout_s=settings.telegram_request_timeout_s,
        media_types=media_types if settings.media_download else (),
        media_max_bytes=settings.media_max_bytes,
    )


def media_store(settings: Settings) -> MediaStore | None:
    """Supabase Storage when a bucket and credentials are set, else a local directory; None if off."""
    if not settings.media_download:
        return None
    if settings.media_in_bucket:
        assert settings.media_bucket and settings.supabase_url and settings.supabase_service_key
        return SupabaseMediaStore(
            url=settings.supabase_url,
            bucket=settings.media_bucket,
            service_key=Secret(settings.supabase_service_key.get_secret_value()),
        )
    return LocalMediaStore(root=settings.media_root)


async def build_telegram_workers(
    settings: Settings, *, log: EventLog, database_url: str
) -> list[TelegramAccountWorker]:
    """One worker per configured account that has a session, each on its decrypted ``StringSession``
    (not connected yet). An account without a session is skipped with a warning, so ingest still
    runs, and serves the console's logins, until it is logged in."""
    if settings.telegram_api_id is None or settings.telegram_api_hash is None:
        raise IngestError("TELEGRAM_API_ID and TELEGRAM_API_HASH must be set")
    if settings.master_key is None:
        raise IngestError("MASTER_KEY must be set to decrypt the Telegram sessions")
    sessions = SessionStore(
        database_url=database_url,
        cipher=SessionCipher.from_master_key(settings.master_key.get_secret_value()),
    )
    assignment = ChatAssignment(
        explicit=parse_assignments(settings.telegram_assignments), accounts=settings.account_names
    )
    config = worker_config(settings)
    store = media_store(settings)
    api_hash = Secret(settings.telegram_api_hash.get_secret_value())
    workers = []
    for account in settings.account_names:
        try:
            session = await sessions.load(account)
        except SessionDecryptError as e:
            logger.error(
                "ingest: account %s is skipped: %s (is MASTER_KEY the key its session was saved "
                "with? else log it in again)",
                account,
                e,
            )
            continue
        except SessionNotFound:
            logger.warning(
                "ingest: account %s has no session yet: log it in from the console (Accounts) "
                "or with `aaltohub login --account %s`, then restart ingest",
                account,
                account,
            )
            continue
        client = build_client(
            session=session,
            api_id=settings.telegram_api_id,
            api_hash=api_hash,
            use_ipv6=settings.telegram_use_ipv6,
            flood_sleep_threshold=settings.telegram_flood_sleep_threshold,
        )
        workers.append(
            TelegramAccountWorker(
                account=account,
                gateway=TelethonGateway(client),
                log_reader=log,
                config=config,
                assignment=assignment,
                entity_store=PostgresEntityStore(database_url=database_url),
                update_states=UpdateStateStore(database_url=database_url),
                media_store=store,
            )
        )
    return workers


def build_login_desk(settings: Settings, *, database_url: str) -> LoginDesk | None:
    """The desk serving the console's Telegram logins; None without API credentials or MASTER_KEY."""
    if settings.telegram_api_id is None or settings.telegram_api_hash is None:
        return None
    if settings.master_key is None:
        return None
    api_id = settings.telegram_api_id
    api_hash = Secret(settings.telegram_api_hash.get_secret_value())
    use_ipv6 = settings.telegram_use_ipv6
    return LoginDesk(
        client_factory=lambda: TelethonAuthClient(
            api_id=api_id, api_hash=api_hash, use_ipv6=use_ipv6
        ),
        store=SessionStore(
            database_url=database_url,
            cipher=SessionCipher.from_master_key(settings.master_key.get_secret_value()),
        ),
    )
