"""The README and .env.example document every setting; the README's two commands exist in the Makefile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aaltohub.settings import Settings
from schemas.duckdb.queries import ANALYTICS_QUERIES

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


SOURCES = (
    "schemas",
    "eventlog",
    "ingest",
    "projector",
    "api",
    "aaltohub",
    "bench",
    "docker",
    "docs",
)


def test_repository_cites_no_material_outside_it() -> None:
    citing = [
        str(path.relative_to(ROOT))
        for package in SOURCES
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".md", ".conf", ".sql", ".toml"}
        and re.search(r"(?<![\w/])research/|\.\./shared/", path.read_text())
    ]
    assert citing == []


def test_every_cited_decision_note_exists() -> None:
    cited = {
        match
        for package in SOURCES
        for path in (ROOT / package).rglob("*.py")
        for match in re.findall(r"docs/decisions/(\d{3})", path.read_text())
    }
    notes = {path.name[:3] for path in (ROOT / "docs" / "decisions").glob("[0-9][0-9][0-9]-*.md")}
    assert cited and cited <= notes


@pytest.mark.parametrize("name", sorted(ANALYTICS_QUERIES))
def test_readme_lists_every_analytics_query(name: str) -> None:
    assert f"`{name}`" in (ROOT / "README.md").read_text()


def test_decision_index_lists_every_note() -> None:
    index = (ROOT / "docs" / "decisions" / "README.md").read_text()
    notes = sorted(p.name for p in (ROOT / "docs" / "decisions").glob("[0-9][0-9][0-9]-*.md"))
    assert [name for name in notes if f"({name})" not in index] == []


def test_every_decision_note_has_its_own_number() -> None:
    # Engineers write notes at the same time; a citation "docs/decisions/025" must name one note.
    numbers = [p.name[:3] for p in (ROOT / "docs" / "decisions").glob("[0-9][0-9][0-9]-*.md")]
    assert sorted({n for n in numbers if numbers.count(n) > 1}) == []
