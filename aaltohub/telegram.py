"""Composition of the Telegram account workers from ``Settings`` (used by ``aaltohub ingest``)."""

from __future__ import annotations

import logging
from concurrent.futures import Executor

from aaltohub.settings import Settings, comma_list
from eventlog import EventLog
from ingest.errors import IngestError, SessionDecryptError, SessionNotFound
from ingest.telegram.assignment import ChatAssignment, parse_assignments
from ingest.telegram.client import TelethonGateway, build_client
from ingest.telegram.entity_cache import PostgresEntityStore
from ingest.telegram.login import TelethonAuthClient
from ingest.telegram.login_desk import LoggedIn, LoginDesk
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


def media_store(settings: Settings, *, executor: Executor | None = None) -> MediaStore | None:
    """Supabase Storage when a bucket and credentials are set, else a local directory (written on
    ``executor``); None if off."""
    if not settings.media_download:
        return None
    if settings.media_in_bucket:
        assert settings.media_bucket and settings.supabase_url and settings.supabase_service_key
        return SupabaseMediaStore(
            url=settings.supabase_url,
            bucket=settings.media_bucket,
            service_key=Secret(settings.supabase_service_key.get_secret_value()),
        )
    return LocalMediaStore(root=settings.media_root, executor=executor)


class TelegramWorkers:
    """Builds the account workers of one ingest process, sharing its chat assignment, crawling
    knobs and media store; each worker on its decrypted ``StringSession`` (not connected yet).
    Their stores' blocking calls run on ``executor``, ingest's own pool (``ingest_threads``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        log: EventLog,
        database_url: str,
        executor: Executor | None = None,
    ) -> None:
        if settings.telegram_api_id is None or settings.telegram_api_hash is None:
            raise IngestError("TELEGRAM_API_ID and TELEGRAM_API_HASH must be set")
        if settings.master_key is None:
            raise IngestError("MASTER_KEY must be set to decrypt the Telegram sessions")
        self._settings = settings
        self._api_id = settings.telegram_api_id
        self._api_hash = Secret(settings.telegram_api_hash.get_secret_value())
        self._log = log
        self._database_url = database_url
        self._executor = executor
        self.sessions = SessionStore(
            database_url=database_url,
            cipher=SessionCipher.from_master_key(settings.master_key.get_secret_value()),
            executor=executor,
        )
        self._assignment = ChatAssignment(
            explicit=parse_assignments(settings.telegram_assignments),
            accounts=settings.account_names,
        )
        self._config = worker_config(settings)
        self._media = media_store(settings, executor=executor)

    async def accounts(self) -> list[str]:
        """The accounts to crawl: those in ``TELEGRAM_ACCOUNTS``, then every other account with a
        stored session (logged in from the console or with ``aaltohub login``)."""
        configured = self._settings.account_names
        stored = await self.sessions.accounts()
        return configured + [a for a in sorted(stored) if a not in configured]

    async def build_all(self) -> list[TelegramAccountWorker]:
        """A worker for every account that has a usable session; the others are skipped with a
        warning, so ingest still runs, and serves the console's logins, until they are logged in."""
        workers = []
        for account in await self.accounts():
            try:
                workers.append(await self.build(account))
            except SessionDecryptError as e:
                logger.error(
                    "ingest: account %s is skipped: %s (is MASTER_KEY the key its session was "
                    "saved with? else log it in again)",
                    account,
                    e,
                )
            except SessionNotFound:
                logger.warning(
                    "ingest: account %s has no session yet: log it in from the console "
                    "(Accounts) or with `aaltohub login --account %s`",
                    account,
                    account,
                )
        return workers

    async def build(self, account: str) -> TelegramAccountWorker:
        """The worker of ``account`` on its stored session (``SessionNotFound`` without one)."""
        session = await self.sessions.load(account)
        client = build_client(
            session=session,
            api_id=self._api_id,
            api_hash=self._api_hash,
            use_ipv6=self._settings.telegram_use_ipv6,
            flood_sleep_threshold=self._settings.telegram_flood_sleep_threshold,
        )
        return TelegramAccountWorker(
            account=account,
            gateway=TelethonGateway(client),
            log_reader=self._log,
            config=self._config,
            assignment=self._assignment,
            entity_store=PostgresEntityStore(
                database_url=self._database_url, executor=self._executor
            ),
            update_states=UpdateStateStore(
                database_url=self._database_url, executor=self._executor
            ),
            media_store=self._media,
        )


async def build_telegram_workers(
    settings: Settings, *, log: EventLog, database_url: str
) -> list[TelegramAccountWorker]:
    """A worker for every account to crawl that has a usable session (see ``TelegramWorkers``)."""
    return await TelegramWorkers(settings, log=log, database_url=database_url).build_all()


def build_login_desk(
    settings: Settings,
    *,
    database_url: str,
    on_logged_in: LoggedIn | None = None,
    executor: Executor | None = None,
) -> LoginDesk | None:
    """The desk serving the console's Telegram logins; None without API credentials or MASTER_KEY.
    ``on_logged_in`` starts crawling with a new session (None: from the next start of ingest)."""
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
            executor=executor,
        ),
        on_logged_in=on_logged_in,
    )
