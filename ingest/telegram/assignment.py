"""Which account crawls which chat: each chat by exactly one account.

``TELEGRAM_ASSIGNMENTS=chat_id:account,…`` pins chats. Any other chat goes to the first account that
claims it, sticky for as long as that account sees it; the log's current ``ChatDiscovered`` owner is
preloaded at start, so ownership survives restarts. When several accounts have reported seeing a
chat before anyone claimed it, the one ranked first by a stable hash of (chat, account) wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def parse_assignments(text: str) -> dict[int, str]:
    """Parse ``chat_id:account,…`` (whitespace ignored); ValueError names the bad entry."""
    out: dict[int, str] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        chat, sep, account = item.rpartition(":")
        try:
            if not sep or not account.strip():
                raise ValueError
            out[int(chat)] = account.strip()
        except ValueError:
            raise ValueError(
                f"TELEGRAM_ASSIGNMENTS entry {item!r} is not chat_id:account"
            ) from None
    return out


def rank(chat_id: int, account: str) -> int:
    """A stable pseudo-random rank of ``account`` for ``chat_id`` (rendezvous hashing)."""
    digest = hashlib.blake2b(f"{chat_id}\x1f{account}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class ChatAssignment:
    """Shared by the account workers of one process; all methods are synchronous (one event loop)."""

    def __init__(
        self, *, explicit: Mapping[int, str] | None = None, accounts: Sequence[str] = ()
    ) -> None:
        self._explicit = dict(explicit or {})
        self._accounts = list(accounts)
        self._owner: dict[int, str] = {}
        self._seen: dict[int, set[str]] = {}

    def preload(self, owners: Mapping[int, str]) -> None:
        """Adopt the owners recorded in the log (explicit pins still win)."""
        for chat_id, account in owners.items():
            self._owner.setdefault(chat_id, account)

    def see(self, chat_id: int, account: str) -> None:
        """Record that ``account`` has ``chat_id`` among its dialogs."""
        self._seen.setdefault(chat_id, set()).add(account)

    def owner(self, chat_id: int) -> str | None:
        """The account crawling ``chat_id``, if decided."""
        return self._explicit.get(chat_id) or self._owner.get(chat_id)

    def claim(self, chat_id: int, account: str) -> bool:
        """True when ``account`` is (now) the one crawling ``chat_id``."""
        pinned = self._explicit.get(chat_id)
        if pinned is not None:
            return pinned == account
        current = self._owner.get(chat_id)
        if current is not None:
            return current == account
        candidates = self._seen.get(chat_id, set()) | {account}
        winner = max(candidates, key=lambda a: rank(chat_id, a))
        if winner != account:
            return False
        self._owner[chat_id] = account
        return True

    def release(self, chat_id: int, account: str) -> None:
        """``account`` no longer sees ``chat_id``: another account may claim it."""
        self._seen.get(chat_id, set()).discard(account)
        if self._owner.get(chat_id) == account:
            del self._owner[chat_id]
