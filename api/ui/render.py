"""Rendering console pages: one Jinja2 environment, the navigation by role, security headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.ui.session import ConsoleSession

# Only our own origin: no CDN, no inline script. Chart.js sizes canvases through element styles.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, kw_only=True)
class NavItem:
    """One entry of the navigation."""

    path: str
    label: str
    admin_only: bool


NAV: Final = (
    NavItem(path="/ui/", label="Dashboard", admin_only=True),
    NavItem(path="/ui/groups", label="Groups", admin_only=False),
    NavItem(path="/ui/live", label="Live feed", admin_only=False),
    NavItem(path="/ui/search", label="Messages", admin_only=False),
    NavItem(path="/ui/dead-letters", label="Dead letters", admin_only=True),
    NavItem(path="/ui/accounts", label="Accounts", admin_only=True),
    NavItem(path="/ui/users", label="Users", admin_only=True),
    NavItem(path="/ui/analytics", label="Analytics", admin_only=False),
)


def nav_for(session: ConsoleSession | None) -> list[NavItem]:
    """The navigation a user of this role sees (nothing before sign-in)."""
    if session is None:
        return []
    return [item for item in NAV if session.is_admin or not item.admin_only]


def when(value: datetime | None) -> str:
    """A timestamp in UTC for people (``—`` when unknown)."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | int | None) -> str:
    """A duration in words (``3 h 4 min``)."""
    if seconds is None:
        return "—"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    shown = [f"{n} {unit}" for n, unit in parts if n]
    return " ".join(shown[:2]) if shown else f"{secs} s"


class Pages:
    """Renders templates with the layout's context."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("api.ui", "templates"),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["when"] = when
        self._env.filters["duration"] = duration

    def render(
        self,
        request: Request,
        template: str,
        session: ConsoleSession | None,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
    ) -> HTMLResponse:
        """The page ``template`` for ``session`` with ``context``."""
        values: dict[str, Any] = {
            "request": request,
            "session": session,
            "nav": nav_for(session),
            "path": request.url.path,
            "csrf": session.csrf if session else "",
        }
        values.update(context or {})
        html = self._env.get_template(template).render(values)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
