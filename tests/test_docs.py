"""The README and .env.example document every setting; the README's two commands exist in the Makefile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aaltohub.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ALIASES = sorted(str(field.alias) for field in Settings.model_fields.values())


@pytest.mark.parametrize("alias", ALIASES)
def test_env_example_documents_every_setting(alias: str) -> None:
    assert re.search(rf"^{alias}=", (ROOT / ".env.example").read_text(), re.MULTILINE)


@pytest.mark.parametrize("alias", ALIASES)
def test_readme_documents_every_setting(alias: str) -> None:
    assert f"`{alias}`" in (ROOT / "README.md").read_text()


def test_readme_first_screen_gives_make_up_and_make_test() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:12])
    assert "make up" in first_screen and "make test" in first_screen
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^up:", makefile, re.MULTILINE) and re.search(
        r"^test:", makefile, re.MULTILINE
    )
    assert "make test" in (ROOT / ".ci" / "run").read_text()
