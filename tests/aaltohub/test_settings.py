"""Settings: an empty value (as `.env.example` lists them) means unset, in the environment and in `.env`."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaltohub.settings import Settings


def test_empty_values_mean_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AALTOHUB_DEMO_LEDGER=\nAALTOHUB_API_JWT_AUDIENCE=\n")
    monkeypatch.setenv("AALTOHUB_MEDIA_DIR", "")
    monkeypatch.setenv("AALTOHUB_DUCKDB_PATH", "")
    settings = Settings()
    assert settings.demo_ledger_path is None
    assert settings.media_dir is None
    assert settings.duckdb_path is None
    assert settings.api_jwt_audience == Settings.model_fields["api_jwt_audience"].default
