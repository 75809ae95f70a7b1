"""Full-text search over ``public.messages``: the searched document, its index, and the index's state.

The document is an expression (``SEARCH_DOCUMENT``) indexed by GIN, not a stored column: a rebuild and
every live write skip computing it, and the index build after a rebuild's swap computes it once
(docs/decisions/043-search-by-expression-index.md). Queries must spell the expression exactly as the
index does, or Postgres cannot use the index.
"""

from __future__ import annotations

from typing import Final, Literal

SEARCH_INDEX: Final = "messages_search_idx"
# Same text as the migration 20261129230000_search_expression_index.sql.
SEARCH_DOCUMENT: Final = "to_tsvector('simple'::regconfig, text)"
# "building": the index exists but is not valid yet (or a build died); "missing": not there at all.
SearchIndexState = Literal["ready", "building", "missing"]
SEARCH_INDEX_STATE_SQL: Final = (
    "SELECT CASE WHEN i.indexrelid IS NULL THEN 'missing' "
    "WHEN i.indisvalid AND i.indisready THEN 'ready' ELSE 'building' END AS state "
    f"FROM (SELECT to_regclass('public.{SEARCH_INDEX}') AS oid) r "
    "LEFT JOIN pg_index i ON i.indexrelid = r.oid"
)


def search_index_state_of(value: object) -> SearchIndexState:
    """The state named by a row of ``SEARCH_INDEX_STATE_SQL`` (``None``: no row)."""
    return "ready" if value == "ready" else "building" if value == "building" else "missing"
