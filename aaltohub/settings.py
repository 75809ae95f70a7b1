"""Typed settings, read once from the environment (and ``.env``) at startup.

Every component receives only the values it needs, as keyword arguments; nothing here is global.
Secrets are ``SecretStr`` so they never render in reprs, logs or errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.errors import MasterKeyError
from ingest.telegram.master_key import parse_master_key

# A static bearer token guessed online must be out of reach: 32 characters of a random token are
# 128+ bits (token_urlsafe / hex).
MIN_ADMIN_TOKEN_CHARS: Final = 32


class Settings(BaseSettings):
    """All settings of the crawler; env names are given by ``alias`` (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
        env_ignore_empty=True,  # `VAR=` (as .env.example lists them) means unset, not "" or the path "."
    )

    # --- stack / composition root -------------------------------------------------------------
    data_dir: Path = Field(default=Path("./var"), alias="AALTOHUB_DATA_DIR")
    nats_url: str | None = Field(default=None, alias="NATS_URL")
    # The NATS user of this process (compose: one per service); unset with the embedded server,
    # whose generated users are read from <data>/secrets/nats-users.json.
    nats_user: str | None = Field(default=None, alias="NATS_USER")
    nats_password: SecretStr | None = Field(default=None, alias="NATS_PASSWORD")
    nats_sync_interval: str = Field(default="always", alias="AALTOHUB_NATS_SYNC_INTERVAL")
    # The embedded nats-server's client port (the NATS default, docs.nats.io "Client connections");
    # a taken port is replaced by a free one.
    nats_port: int = Field(default=4222, alias="AALTOHUB_NATS_PORT", ge=1, le=65535)
    database_url: SecretStr | None = Field(default=None, alias="DATABASE_URL")
    # `aaltohub migrate --service-roles` (compose): the service roles' passwords on DATABASE_URL's server.
    postgres_owner_password: SecretStr | None = Field(default=None, alias="POSTGRES_OWNER_PASSWORD")
    postgres_projector_password: SecretStr | None = Field(
        default=None, alias="POSTGRES_PROJECTOR_PASSWORD"
    )
    postgres_ingest_password: SecretStr | None = Field(
        default=None, alias="POSTGRES_INGEST_PASSWORD"
    )
    postgres_api_password: SecretStr | None = Field(default=None, alias="POSTGRES_API_PASSWORD")
    duckdb_path: Path | None = Field(default=None, alias="AALTOHUB_DUCKDB_PATH")
    # Embedded Postgres listens on a Unix socket in the data dir only; a port here adds loopback TCP.
    postgres_tcp_port: int | None = Field(
        default=None, alias="AALTOHUB_POSTGRES_TCP_PORT", ge=0, le=65535
    )
    log_level: str = Field(default="INFO", alias="AALTOHUB_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field(default="text", alias="AALTOHUB_LOG_FORMAT")
    # How long `up` may take to stop everything after SIGTERM/Ctrl-C (as docker-compose.yml's
    # stop_grace_period: 30s).
    stop_grace_s: float = Field(default=30.0, alias="AALTOHUB_STOP_GRACE_S", ge=10)

    # --- event log ------------------------------------------------------------------------------
    stream_name: str = Field(default="TELEGRAM", alias="AALTOHUB_STREAM")
    stream_duplicate_window_s: float = Field(default=120.0, alias="AALTOHUB_DUPLICATE_WINDOW_S")
    stream_replicas: int = Field(default=1, alias="AALTOHUB_STREAM_REPLICAS")

    # --- ingest ---------------------------------------------------------------------------------
    telegram_api_id: int | None = Field(default=None, alias="TELEGRAM_API_ID")
    telegram_api_hash: SecretStr | None = Field(default=None, alias="TELEGRAM_API_HASH")
    telegram_accounts: str = Field(default="main", alias="TELEGRAM_ACCOUNTS")
    master_key: SecretStr | None = Field(default=None, alias="MASTER_KEY")
    demo_rate_per_s: float = Field(default=5.0, alias="AALTOHUB_DEMO_RATE")
    demo_groups: int = Field(default=5, alias="AALTOHUB_DEMO_GROUPS")
    # Telegram client and crawling (ingest/gateway, client, backfill, gapfill, discovery, media)
    telegram_use_ipv6: bool = Field(default=False, alias="TELEGRAM_USE_IPV6")
    # 0: Telethon never sleeps on a flood wait by itself; every FloodWaitError reaches our rate
    # limiter, which records a FloodWaited event and then waits (visible, never silent).
    telegram_flood_sleep_threshold: int = Field(default=0, alias="TELEGRAM_FLOOD_SLEEP_THRESHOLD")
    telegram_max_flood_wait_s: int = Field(default=3600, alias="TELEGRAM_MAX_FLOOD_WAIT_S")
    telegram_retry_attempts: int = Field(default=5, alias="TELEGRAM_RETRY_ATTEMPTS")
    telegram_request_timeout_s: float = Field(default=180.0, alias="TELEGRAM_REQUEST_TIMEOUT_S")
    telegram_assignments: str = Field(
        default="", alias="TELEGRAM_ASSIGNMENTS"
    )  # "chat_id:account,..."
    telegram_chat_kinds: str = Field(
        default="group,supergroup,channel", alias="TELEGRAM_CHAT_KINDS"
    )
    entity_cache_ttl_s: float = Field(default=86400.0, alias="AALTOHUB_ENTITY_CACHE_TTL_S")
    backfill_days: float = Field(default=14.0, alias="AALTOHUB_BACKFILL_DAYS")
    backfill_batch: int = Field(default=200, alias="AALTOHUB_BACKFILL_BATCH")
    backfill_pause_s: float = Field(default=1.5, alias="AALTOHUB_BACKFILL_PAUSE_S")
    discovery_interval_s: float = Field(default=300.0, alias="AALTOHUB_DISCOVERY_INTERVAL_S")
    gapfill_interval_s: float = Field(default=1800.0, alias="AALTOHUB_GAPFILL_INTERVAL_S")
    gapfill_window_s: float = Field(default=3600.0, alias="AALTOHUB_GAPFILL_WINDOW_S")
    gapfill_max_messages: int = Field(default=500, alias="AALTOHUB_GAPFILL_MAX_MESSAGES")
    delete_map_days: float = Field(default=14.0, alias="AALTOHUB_DELETE_MAP_DAYS")
    media_download: bool = Field(default=False, alias="AALTOHUB_MEDIA_DOWNLOAD")
    media_max_bytes: int = Field(default=20 * 1024 * 1024, alias="AALTOHUB_MEDIA_MAX_BYTES")
    media_types: str = Field(
        default="photo,video,document,audio,voice,video_note,sticker,animation",
        alias="AALTOHUB_MEDIA_TYPES",
    )
    media_dir: Path | None = Field(default=None, alias="AALTOHUB_MEDIA_DIR")
    media_bucket: str | None = Field(
        default=None, alias="AALTOHUB_MEDIA_BUCKET"
    )  # Supabase Storage bucket

    demo_seed: int = Field(default=1, alias="AALTOHUB_DEMO_SEED")
    demo_ledger_path: Path | None = Field(default=None, alias="AALTOHUB_DEMO_LEDGER")
    ingest_buffer_size: int = Field(default=10_000, alias="AALTOHUB_INGEST_BUFFER_SIZE", ge=1)
    ingest_batch_size: int = Field(default=1000, alias="AALTOHUB_INGEST_BATCH_SIZE", ge=1)
    ingest_linger_ms: float = Field(default=2.0, alias="AALTOHUB_INGEST_LINGER_MS", ge=0)
    # The longest an event may exist only in memory before it is spooled (the durability point).
    ingest_max_memory_ms: float = Field(default=250.0, alias="AALTOHUB_INGEST_MAX_MEMORY_MS", gt=0)
    ingest_ack_timeout_s: float = Field(default=2.0, alias="AALTOHUB_INGEST_ACK_TIMEOUT_S", gt=0)
    ingest_append_deadline_s: float = Field(
        default=5.0, alias="AALTOHUB_INGEST_APPEND_DEADLINE_S", gt=0
    )
    ingest_breaker_failures: int = Field(default=5, alias="AALTOHUB_INGEST_BREAKER_FAILURES", ge=1)
    ingest_breaker_window_s: float = Field(
        default=60.0, alias="AALTOHUB_INGEST_BREAKER_WINDOW_S", gt=0
    )
    ingest_breaker_open_s: float = Field(default=30.0, alias="AALTOHUB_INGEST_BREAKER_OPEN_S", gt=0)
    ingest_spool_segment_bytes: int = Field(
        default=16 * 1024 * 1024, alias="AALTOHUB_INGEST_SPOOL_SEGMENT_BYTES", ge=4096
    )
    ingest_spool_fsync_every: int = Field(
        default=64, alias="AALTOHUB_INGEST_SPOOL_FSYNC_EVERY", ge=1
    )
    ingest_drain_timeout_s: float = Field(
        default=10.0, alias="AALTOHUB_INGEST_DRAIN_TIMEOUT_S", gt=0
    )

    # --- projections ----------------------------------------------------------------------------
    projections: str = Field(default="postgres,duckdb,broadcast", alias="AALTOHUB_PROJECTIONS")

    projector_batch_size: int = Field(default=5000, alias="AALTOHUB_PROJECTOR_BATCH_SIZE")
    projector_max_batch_wait_s: float = Field(
        default=0.2, alias="AALTOHUB_PROJECTOR_MAX_BATCH_WAIT_S"
    )
    duckdb_snapshot_interval_s: float = Field(
        default=2.0, alias="AALTOHUB_DUCKDB_SNAPSHOT_INTERVAL_S"
    )
    duckdb_fold_interval_s: float = Field(default=30.0, alias="AALTOHUB_DUCKDB_FOLD_INTERVAL_S")

    # --- metrics (Prometheus /metrics of each service; 0 turns one off) ----------------------------
    metrics_host: str = Field(default="127.0.0.1", alias="AALTOHUB_METRICS_HOST")
    ingest_metrics_port: int = Field(default=9101, ge=0, alias="AALTOHUB_INGEST_METRICS_PORT")
    projector_metrics_port: int = Field(default=9102, ge=0, alias="AALTOHUB_PROJECTOR_METRICS_PORT")

    # --- api --------------------------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", alias="AALTOHUB_API_HOST")
    api_port: int = Field(default=8000, alias="AALTOHUB_API_PORT")
    admin_token: SecretStr | None = Field(default=None, alias="AALTOHUB_ADMIN_TOKEN")
    # Signs the console's CSRF tokens; the same on every API worker (default: <data>/secrets/console-key).
    console_key: SecretStr | None = Field(default=None, alias="AALTOHUB_CONSOLE_KEY")
    api_jwks_url: str | None = Field(default=None, alias="SUPABASE_JWKS_URL")
    api_jwt_audience: str | None = Field(default="authenticated", alias="AALTOHUB_API_JWT_AUDIENCE")
    api_jwt_issuer: str | None = Field(default=None, alias="AALTOHUB_API_JWT_ISSUER")
    api_new_user_role: Literal["none", "user"] = Field(
        default="none", alias="AALTOHUB_API_NEW_USER_ROLE"
    )
    api_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, alias="AALTOHUB_API_MAX_BODY_BYTES"
    )
    api_max_connections: int = Field(default=1000, ge=1, alias="AALTOHUB_API_MAX_CONNECTIONS")
    api_header_timeout_s: float = Field(default=10.0, gt=0, alias="AALTOHUB_API_HEADER_TIMEOUT_S")
    api_body_timeout_s: float = Field(default=30.0, gt=0, alias="AALTOHUB_API_BODY_TIMEOUT_S")
    api_write_stall_s: float = Field(default=30.0, gt=0, alias="AALTOHUB_API_WRITE_STALL_S")
    api_public_metrics: bool = Field(default=False, alias="AALTOHUB_API_PUBLIC_METRICS")
    api_public_docs: bool = Field(default=False, alias="AALTOHUB_API_PUBLIC_DOCS")
    api_db_pool_max: int = Field(default=10, ge=1, alias="AALTOHUB_API_DB_POOL_MAX")
    api_min_seq_wait_s: float = Field(default=5.0, gt=0, alias="AALTOHUB_API_MIN_SEQ_WAIT_S")
    api_command_timeout_s: float = Field(default=5.0, gt=0, alias="AALTOHUB_API_COMMAND_TIMEOUT_S")
    api_sql_row_cap: int = Field(default=1000, ge=1, alias="AALTOHUB_API_SQL_ROW_CAP")
    api_sql_timeout_s: float = Field(default=5.0, gt=0, alias="AALTOHUB_API_SQL_TIMEOUT_S")
    api_sql_max_response_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, alias="AALTOHUB_API_SQL_MAX_RESPONSE_BYTES"
    )
    api_analytics_memory_limit: str = Field(
        default="512MB", alias="AALTOHUB_API_ANALYTICS_MEMORY_LIMIT"
    )
    api_analytics_threads: int = Field(default=2, ge=1, alias="AALTOHUB_API_ANALYTICS_THREADS")
    api_live_buffer_events: int = Field(default=2000, ge=8, alias="AALTOHUB_API_LIVE_BUFFER_EVENTS")
    api_live_history_events: int = Field(
        default=10_000, ge=1, alias="AALTOHUB_API_LIVE_HISTORY_EVENTS"
    )

    cors_origins: str = Field(
        default="", alias="AALTOHUB_CORS_ORIGINS"
    )  # "https://app.example.org,..."; empty: same-origin only

    # --- supabase ---------------------------------------------------------------------------------
    supabase_url: str | None = Field(default=None, alias="SUPABASE_URL")
    supabase_service_key: SecretStr | None = Field(default=None, alias="SUPABASE_SERVICE_ROLE_KEY")
    supabase_anon_key: SecretStr | None = Field(default=None, alias="SUPABASE_ANON_KEY")
    supabase_jwt_secret: SecretStr | None = Field(default=None, alias="SUPABASE_JWT_SECRET")

    @field_validator("admin_token")
    @classmethod
    def _admin_token_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"AALTOHUB_ADMIN_TOKEN must have at least {MIN_ADMIN_TOKEN_CHARS} characters"
                " (e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("master_key")
    @classmethod
    def _master_key_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # unset (compose passes an empty variable)
        try:
            parse_master_key(value.get_secret_value())
        except MasterKeyError as e:  # its message never holds key material
            raise ValueError(str(e)) from None
        return value

    @field_validator("telegram_accounts")
    @classmethod
    def _accounts_are_tokens(cls, value: str) -> str:
        for name in value.split(","):
            if name.strip() and not name.strip().replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"TELEGRAM_ACCOUNTS: {name!r} must be letters, digits, '_' or '-'")
        return value

    @property
    def data_path(self) -> Path:
        """The data directory as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def duckdb_file(self) -> Path:
        """The DuckDB analytics file (default: under the data dir)."""
        return (
            (self.duckdb_path or self.data_path / "analytics" / "analytics.duckdb")
            .expanduser()
            .resolve()
        )

    @property
    def media_root(self) -> Path:
        """The local media directory (default: under the data dir)."""
        return (self.media_dir or self.data_path / "media").expanduser().resolve()

    @property
    def media_in_bucket(self) -> bool:
        """True when media go to the Supabase Storage bucket instead of the local directory."""
        return bool(
            self.media_bucket and self.supabase_url and self.supabase_service_key is not None
        )

    @property
    def account_names(self) -> list[str]:
        """Configured Telegram account names."""
        return comma_list(self.telegram_accounts)

    @property
    def has_telegram_credentials(self) -> bool:
        """True when a Telegram API id and hash are configured."""
        return self.telegram_api_id is not None and self.telegram_api_hash is not None

    @property
    def projection_names(self) -> list[str]:
        """Enabled projections."""
        return comma_list(self.projections)


def comma_list(value: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated setting."""
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and ``.env``; ``overrides`` win (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
