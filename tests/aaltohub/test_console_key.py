"""The console key in the data dir: private, created once, the same for workers starting at once."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aaltohub.console_key import console_key_file, ensure_console_key


def test_the_key_is_private_and_kept(tmp_path: Path) -> None:
    first = ensure_console_key(tmp_path)
    path = console_key_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_console_key(tmp_path).get_secret_value() == first.get_secret_value()
    assert len(first.get_secret_value()) >= 43  # 256 bits, url-safe base64


def test_workers_starting_at_once_get_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: ensure_console_key(tmp_path).get_secret_value(), range(16)))
    assert len(keys) == 1
    assert [p.name for p in console_key_file(tmp_path).parent.iterdir()] == ["console-key"]
