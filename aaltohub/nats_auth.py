"""NATS users of the stack: generated passwords (0600 in the data dir) and the server's authorization block.

The embedded nats-server gets one user per role (``eventlog.permissions``); ``aaltohub up`` hands
each service the URL of its own user, and the per-service subcommands read the same file when they
attach to a running stack. Under compose the passwords come from the environment instead
(``docker/nats.conf``) and each service gets ``NATS_USER``/``NATS_PASSWORD``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import msgspec

from eventlog.permissions import ROLES, Permissions, Role, permissions_for

_URL_SAFE: Final = re.compile(r"[A-Za-z0-9._~-]+")


class NatsUsers(msgspec.Struct, frozen=True, kw_only=True):
    """The password of each role's NATS user (the user name is the role)."""

    operator: str
    ingest: str
    projector: str
    api: str

    def password(self, role: Role) -> str:
        """The password of ``role``."""
        value: str = getattr(self, role)
        return value

    def __repr__(self) -> str:
        return "NatsUsers(<redacted>)"


def secrets_dir(data_dir: Path) -> Path:
    """Where generated credentials live (mode 0700)."""
    return data_dir / "secrets"


def users_file(data_dir: Path) -> Path:
    """The generated NATS users of ``data_dir`` (mode 0600)."""
    return secrets_dir(data_dir) / "nats-users.json"


def load_users(data_dir: Path) -> NatsUsers | None:
    """The generated users of ``data_dir``, or None if there are none (or they are unreadable)."""
    try:
        return msgspec.json.decode(users_file(data_dir).read_bytes(), type=NatsUsers)
    except (OSError, msgspec.DecodeError):
        return None


def load_or_create_users(data_dir: Path) -> NatsUsers:
    """The users of ``data_dir``, generated (256-bit random passwords) on first use."""
    existing = load_users(data_dir)
    if existing is not None:
        return existing
    users = NatsUsers(**{role: secrets.token_urlsafe(32) for role in ROLES})
    write_private(users_file(data_dir), msgspec.json.encode(users))
    return users


def write_private(path: Path, data: bytes) -> None:
    """Atomically write ``data`` readable by the owner only, in an owner-only directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def authorization_block(passwords: dict[Role, str], *, stream: str) -> str:
    """The nats-server ``authorization`` block: one user per role with its permissions.

    ``passwords`` values are written as given: a quoted literal, or ``$NAME`` for a variable the
    server resolves from its environment (compose).
    """
    lines = ["authorization {", "  users = ["]
    for role in ROLES:
        password = passwords[role]
        value = password if password.startswith("$") else json.dumps(password)
        entry = f"    {{user: {json.dumps(role)}, password: {value}"
        permissions = permissions_for(role, stream=stream)
        if permissions is not None:
            entry += f", permissions: {_render(permissions)}"
        lines.append(entry + "}")
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def _render(permissions: Permissions) -> str:
    publish = ", ".join(json.dumps(s) for s in permissions.publish)
    subscribe = ", ".join(json.dumps(s) for s in permissions.subscribe)
    text = f"{{publish: {{allow: [{publish}]}}, subscribe: {{allow: [{subscribe}]}}"
    if permissions.allow_responses:
        text += ", allow_responses: true"
    return text + "}"


def url_with_user(url: str, user: str, password: str) -> str:
    """``url`` (or each of a comma-separated list, a cluster) with ``user:password`` as its
    userinfo (replacing any already there).

    nats-py reads the userinfo without percent-decoding it, so both must be URL-safe as they are.
    """
    for value in (user, password):
        if not _URL_SAFE.fullmatch(value):
            raise ValueError("NATS user names and passwords may only hold A-Z a-z 0-9 . _ ~ -")
    out = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        host = parts.netloc.rpartition("@")[2]
        out.append(urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}")))
    return ",".join(out)


def route_password_file(data_dir: Path) -> Path:
    """The password cluster nodes use between themselves (mode 0600)."""
    return secrets_dir(data_dir) / "nats-route-password"


def load_or_create_route_password(data_dir: Path) -> str:
    """The cluster route password of ``data_dir``, generated on first use."""
    path = route_password_file(data_dir)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        password = secrets.token_urlsafe(32)
        write_private(path, password.encode())
        return password


def role_url(url: str, users: NatsUsers, role: Role) -> str:
    """``url`` authenticated as ``role``."""
    return url_with_user(url, role, users.password(role))
