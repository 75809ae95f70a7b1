"""Response and request bodies of the API (pydantic, so the OpenAPI document is complete)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.status_models import CrawlerRuntime
from schemas.commands import CommandReply
from schemas.search import SearchIndexState


class CrawlerState(BaseModel):
    """Crawler status of one group, as the projector recorded it."""

    status: str
    account: str | None = None
    backfill_fetched: int = 0
    backfill_total: int | None = None
    backfill_progress: float | None = Field(
        None, description="fetched / total, 0..1, when the total is known"
    )
    backfill_completed_at: datetime | None = None
    last_message_at: datetime | None = None
    last_gapfill_at: datetime | None = None
    gapfill_new: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_flood_wait_s: int | None = None
    last_flood_wait_at: datetime | None = None
    updated_at: datetime | None = None


class Group(BaseModel):
    """A watched chat with its crawler status."""

    chat_id: int
    kind: str
    title: str | None = None
    username: str | None = None
    member_count: int | None = None
    forum: bool = False
    migrated_to_chat_id: int | None = None  # a basic group's supergroup: its history goes on there
    photo_id: int | None = None  # the chat's current photo (Telegram's photo id), where known
    account: str | None = None
    is_active: bool = True
    discovered_at: datetime | None = None
    left_at: datetime | None = None
    last_activity_at: datetime | None = None
    message_count: int = 0
    last_seq: int = 0
    crawler: CrawlerState | None = None


class GroupList(BaseModel):
    """All groups."""

    items: list[Group]


class Topic(BaseModel):
    """A forum topic: the id of the message that created it, its current name."""

    topic_id: int
    title: str | None = None
    created_at: datetime
    created_by: int | None = None
    message_count: int = 0
    last_message_at: datetime | None = None


class TopicList(BaseModel):
    """A group's forum topics."""

    items: list[Topic]


class Message(BaseModel):
    """One message as projected."""

    chat_id: int
    message_id: int
    account: str
    sender_id: int | None = None
    sender_kind: str | None = None
    sender_name: str | None = None
    sender_username: str | None = None
    date: datetime
    edit_date: datetime | None = None
    text: str
    entities: list[Any] = []
    reply_to_message_id: int | None = None
    reply_top_id: int | None = None
    forum_topic: bool = False
    forward: dict[str, Any] | None = None
    via_bot_id: int | None = None
    via_bot_name: str | None = None
    post_author: str | None = None
    buttons: list[list[dict[str, Any]]] | None = None  # reply markup rows: {text, url}
    views: int | None = None
    forwards: int | None = None
    replies: int | None = None
    grouped_id: int | None = None
    media_type: str | None = None
    media: dict[str, Any] | None = None
    reactions: list[Any] = []
    action_type: str | None = None
    action: dict[str, Any] | None = None
    is_service: bool = False
    pinned: bool = False
    is_deleted: bool = False
    deleted_at: datetime | None = None
    edit_count: int = 0
    source: str
    first_seq: int
    last_seq: int
    observed_at: datetime


class MessagePage(BaseModel):
    """A page of messages, newest first, with keyset cursors."""

    items: list[Message]
    has_more: bool = Field(description="more messages exist in the requested direction")
    next_before: int | None = Field(None, description="pass as `before` for older messages")
    next_after: int | None = Field(None, description="pass as `after` for newer messages")


class MessageVersion(BaseModel):
    """One distinct version of a message (the original has no edit date)."""

    content_hash: str
    text: str
    media: dict[str, Any] | None = None
    edit_date: datetime | None = None
    seq: int
    observed_at: datetime


class MessageWithHistory(Message):
    """A message and its versions, oldest first."""

    versions: list[MessageVersion]


class SearchHit(Message):
    """A search result with its rank."""

    rank: float


class SearchResults(BaseModel):
    """Full-text search results, best first."""

    items: list[SearchHit]


class AnalyticsQueryInfo(BaseModel):
    """A named analytics query."""

    name: str
    description: str
    path: str


class AnalyticsResult(BaseModel):
    """Rows of an analytics query on the current snapshot."""

    name: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    snapshot: str


class SqlRequest(BaseModel):
    """An ad-hoc read-only SQL statement."""

    sql: str = Field(min_length=1, max_length=20_000)


class ProjectionLag(BaseModel):
    """A projection's checkpoint and how far it trails the log."""

    name: str
    seq: int
    lag: int
    events_applied: int
    updated_at: datetime | None = None
    events_per_s: float | None = Field(None, description="recent rate (when the projector answers)")
    last_error: str | None = None


class SystemStatus(BaseModel):
    """Everything the admin dashboard shows at a glance."""

    crawler: CrawlerRuntime
    projector_running: bool = Field(
        description="the projector answered; then `projections` lists only the enabled ones"
    )
    groups: int
    active_groups: int
    messages: int
    stream_last_seq: int
    projections: list[ProjectionLag]
    last_flood_wait_s: int | None = None
    last_flood_wait_at: datetime | None = None
    live_subscribers: int
    search_index: SearchIndexState = Field(
        "ready",
        description="full-text search index: 'building' after a rebuild until it is ready "
        "(search answers 503 meanwhile)",
    )


class GroupStatus(BaseModel):
    """Per-group crawl status for the admin view."""

    chat_id: int
    title: str | None = None
    account: str | None = None
    is_active: bool
    message_count: int
    crawler: CrawlerState | None = None


class GroupStatusList(BaseModel):
    """Per-group crawl status."""

    items: list[GroupStatus]


class ErrorEntry(BaseModel):
    """A recent error with its time and where it happened."""

    at: datetime
    source: Literal["crawler", "projection"]
    kind: str | None = Field(
        default=None,
        description="What failed: for the crawler backfill, gap-fill, catch-up, discovery, media,"
        " live or session; for a projection its name.",
    )
    chat_id: int | None = None
    error: str


class ErrorList(BaseModel):
    """Recent errors, newest first."""

    items: list[ErrorEntry]


class DeadLetter(BaseModel):
    """An event a projection could not apply."""

    id: int
    projection: str
    seq: int
    event_id: str | None = None
    chat_id: int | None = None
    subject: str | None = None
    error: str
    retry_count: int
    resolved: bool
    created_at: datetime
    resolved_at: datetime | None = None


class DeadLetterList(BaseModel):
    """A page of dead letters, newest first."""

    items: list[DeadLetter]
    next_before_id: int | None = None


class CommandAck(BaseModel):
    """The acknowledgement of a command sent to a service."""

    ok: bool
    message: str
    resolved: int | None = Field(None, description="dead letters resolved (retry commands)")
    failed: int | None = Field(None, description="dead letters still failing (retry commands)")

    @classmethod
    def of(cls, reply: CommandReply) -> CommandAck:
        """The acknowledgement of a service's reply."""
        retry = reply.retry
        return cls(
            ok=reply.ok,
            message=reply.message,
            resolved=retry.resolved if retry else None,
            failed=retry.failed if retry else None,
        )


class CrawlRequest(BaseModel):
    """Which crawl to run."""

    mode: Literal["backfill", "gapfill"] = "gapfill"


class User(BaseModel):
    """An app user and their role."""

    id: uuid.UUID
    email: str | None = None
    role: Literal["admin", "user", "none"]
    created_at: datetime
    updated_at: datetime


class UserList(BaseModel):
    """All users."""

    items: list[User]


class RoleChange(BaseModel):
    """The new role of a user (``none``: no access)."""

    role: Literal["admin", "user", "none"]


class Me(BaseModel):
    """The caller."""

    user_id: uuid.UUID | None
    role: Literal["admin", "user"]


class Health(BaseModel):
    """Liveness and dependency reachability."""

    status: Literal["ok", "degraded"]
    database: bool
    log: bool
    live: bool
