"""What the API needs to run, as one frozen value built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from schemas.stream import StreamSpec


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    """Connection targets and limits of the API; secrets are ``SecretStr`` and never printed."""

    database_url: SecretStr
    nats_url: str = field(repr=False)  # may carry credentials (nats://user:pass@host)
    duckdb_snapshot_dir: Path
    stream: StreamSpec = field(default_factory=StreamSpec)
    jwt_secret: SecretStr | None = None
    jwks_url: str | None = None
    jwt_audience: str | None = "authenticated"
    jwt_issuer: str | None = (
        None  # checked when set (Supabase: https://<project>.supabase.co/auth/v1)
    )
    new_user_role: Literal["none", "user"] = "none"  # role of a Supabase Auth user seen first
    max_body_bytes: int = 1024 * 1024  # larger request bodies get 413 before anything reads them
    body_timeout_s: float = 30.0  # a request body that stalls this long gets 408
    public_metrics: bool = False  # /metrics without a token (else: admins only)
    public_docs: bool = False  # /docs and /openapi.json without a token (else: any reader)
    admin_token: SecretStr | None = None
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_timeout_s: float = 5.0
    role_cache_s: float = 5.0
    min_seq_wait_s: float = 5.0  # upper bound of a ?min_seq= wait
    command_timeout_s: float = 5.0
    sql_row_cap: int = 1000
    sql_timeout_s: float = 5.0  # covers fetching, converting and encoding the result
    sql_max_response_bytes: int = 8 * 1024 * 1024  # larger analytics results get 422
    analytics_memory_limit: str = "512MB"  # DuckDB's memory limit for analytics reads
    analytics_threads: int = 2  # DuckDB threads, and analytics queries at once
    live_buffer_events: int = 2000  # per-client bound; overflow disconnects that client
    live_history_events: int = 10_000  # recent records kept in memory for resuming clients
    live_batch_wait_s: float = 0.02
    cors_origins: tuple[str, ...] = ()  # origins of outside frontends allowed to call the API
    supabase_url: str | None = None  # with the anon key: the console offers email + password
    supabase_anon_key: SecretStr | None = None
    media_dir: Path | None = None  # where ingest stores media files (local store); None: not served
    # Or the Supabase Storage bucket ingest uploads them to, read with the service role key.
    media_bucket: str | None = None
    supabase_service_key: SecretStr | None = None
    # The console's CSRF key, the same for every worker (None: derived from the admin token or JWT
    # secret, else random per process).
    console_key: SecretStr | None = None
