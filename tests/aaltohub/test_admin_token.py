"""The admin token a fresh data dir gets: private, stable, never empty."""

from __future__ import annotations

import stat
from pathlib import Path

from aaltohub.admin_token import ensure_admin_token, token_file


def test_a_fresh_data_dir_gets_a_token_only_its_owner_can_read(tmp_path: Path) -> None:
    token = ensure_admin_token(tmp_path / "var")
    path = token_file(tmp_path / "var")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token.get_secret_value()) >= 40


def test_the_token_stays_the_same_across_runs(tmp_path: Path) -> None:
    assert ensure_admin_token(tmp_path) == ensure_admin_token(tmp_path)


def test_an_empty_token_file_is_replaced_by_a_new_token(tmp_path: Path) -> None:
    token_file(tmp_path).write_text("")
    assert ensure_admin_token(tmp_path).get_secret_value()
