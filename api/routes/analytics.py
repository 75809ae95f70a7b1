"""Analytics over the DuckDB read snapshot: one endpoint per named query, and admin ad-hoc SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.analytics import check_read_only_sql
from api.deps import Admin, ApiState, State, User
from api.errors import problem_responses
from api.models import AnalyticsQueryInfo, AnalyticsResult, SqlRequest
from schemas.duckdb.queries import AnalyticsQuery


def build_router(queries: Mapping[str, AnalyticsQuery]) -> APIRouter:
    """A router with a listing, one GET per query in ``queries`` and the ad-hoc SQL endpoint."""
    router = APIRouter(
        prefix="/analytics", tags=["analytics"], responses=problem_responses(401, 422, 503)
    )

    @router.get("", response_model=list[AnalyticsQueryInfo], summary="List analytics queries")
    async def list_queries(_user: User) -> list[AnalyticsQueryInfo]:
        """The named queries and their paths."""
        return [
            AnalyticsQueryInfo(name=q.name, description=q.description, path=f"/analytics/{q.name}")
            for q in queries.values()
        ]

    for query in queries.values():
        router.add_api_route(
            f"/{query.name}",
            _endpoint(query),
            methods=["GET"],
            response_model=AnalyticsResult,
            summary=query.description,
            operation_id=f"analytics_{query.name}",
            responses=problem_responses(400),
        )

    @router.post(
        "/sql",
        response_model=AnalyticsResult,
        summary="Ad-hoc read-only SQL (admin)",
        responses=problem_responses(400, 403),
    )
    async def run_sql(body: SqlRequest, state: State, _admin: Admin) -> Response:
        """Run one SELECT on the snapshot with the row cap, time limit and response size limit of
        the settings (the time limit covers encoding the result)."""
        sql = check_read_only_sql(body.sql)
        return await _answer(state, "sql", sql, None)

    return router


async def _answer(
    state: ApiState, name: str, sql: str, params: Mapping[str, object] | None
) -> Response:
    # Encoded on the analytics threads within the time limit (the response model documents it).
    body = await state.analytics.query_json(
        name,
        sql,
        params,
        row_cap=state.config.sql_row_cap,
        timeout_s=state.config.sql_timeout_s,
        max_bytes=state.config.sql_max_response_bytes,
    )
    return Response(body, media_type="application/json")


def _endpoint(query: AnalyticsQuery) -> Callable[..., Awaitable[Response]]:
    async def endpoint(
        state: State,
        _user: User,
        chat_id: Annotated[
            int | None, Query(ge=-(2**63), le=2**63 - 1, description="one chat (default all)")
        ] = None,
        since: Annotated[datetime | None, Query(description="from this time (inclusive)")] = None,
        until: Annotated[datetime | None, Query(description="until this time (exclusive)")] = None,
    ) -> Response:
        params = {"chat_id": chat_id, "since": since, "until": until}
        return await _answer(state, query.name, query.sql, params)

    endpoint.__doc__ = query.description
    endpoint.__name__ = f"analytics_{query.name}"
    return endpoint
