"""Parsing ``MASTER_KEY``: ``<id>:<base64 of 32 bytes>[,<id>:<base64 of 32 bytes>…]``, a bare
``<base64>`` being the key ``default``; the first key encrypts.

Apart from the cipher (``ingest.telegram.sessions``), so that checking the settings of any command
loads neither the cipher library nor the session store's database driver."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from ingest.errors import MasterKeyError

KEY_BYTES: Final = 32  # AES-256
_KEY_ID: Final = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def parse_master_key(master_key: str) -> list[tuple[str, bytes]]:
    """The ``(key id, key)`` pairs in order; errors never contain key material."""
    keys: list[tuple[str, bytes]] = []
    for n, item in enumerate(p.strip() for p in master_key.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep:
            key_id, encoded = "default", item
        if not _KEY_ID.match(key_id):
            raise MasterKeyError(f"MASTER_KEY entry {n + 1}: key id must match {_KEY_ID.pattern}")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyError(f"MASTER_KEY entry {n + 1} ({key_id}): not valid base64") from None
        if len(raw) != KEY_BYTES:
            raise MasterKeyError(
                f"MASTER_KEY entry {n + 1} ({key_id}): must decode to {KEY_BYTES} bytes"
            )
        if any(existing == key_id for existing, _ in keys):
            raise MasterKeyError(f"MASTER_KEY: key id {key_id!r} appears twice")
        keys.append((key_id, raw))
    if not keys:
        raise MasterKeyError("MASTER_KEY holds no key")
    return keys
