"""The console's key (CSRF tokens): one per data dir, so every API worker accepts every form."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from aaltohub.nats_auth import secrets_dir

FILE_NAME: Final = "console-key"


def console_key_file(data_dir: Path) -> Path:
    """Where the generated console key lives (mode 0600, in the 0700 secrets directory)."""
    return secrets_dir(data_dir) / FILE_NAME


def ensure_console_key(data_dir: Path) -> SecretStr:
    """The key in the data dir, created (256 random bits) on first use. Workers starting at once
    agree: the key is written to a private temporary file and linked into place, which fails for
    every worker but the first, and those read the first one's complete file."""
    path = console_key_file(data_dir)
    if path.exists():
        existing = path.read_text().strip()
        if existing:
            return SecretStr(existing)
        path.unlink()  # an empty file from an interrupted older write
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another worker won the race: use its key
    finally:
        tmp.unlink()
    return SecretStr(path.read_text().strip())
