"""The admin token of a fresh install: generated once into the data dir when none is configured."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from pydantic import SecretStr

FILE_NAME: Final = "admin-token"


def token_file(data_dir: Path) -> Path:
    """Where ``up`` keeps a generated admin token."""
    return data_dir / FILE_NAME


def ensure_admin_token(data_dir: Path) -> SecretStr:
    """The token in ``data_dir/admin-token``, created (mode 0600, 256 random bits) if missing."""
    path = token_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if token:
            return SecretStr(token)
        path.unlink()  # an empty file from an interrupted first write: make a new token
        return ensure_admin_token(data_dir)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return SecretStr(path.read_text().strip())
