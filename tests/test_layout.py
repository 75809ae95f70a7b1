"""The package layout of docs/architecture.md, checked on the source (see ``tests.tools.layout``)."""

from __future__ import annotations

from tests.tools import layout


def test_packages_import_only_what_the_layout_allows() -> None:
    assert layout.violations() == []


def test_checker_sees_forbidden_imports_in_any_form() -> None:
    source = "import projector.runner\nfrom ingest import x\ndef f():\n    from aaltohub.settings import S\n"
    found = layout.imports_of(source, module="api.app")
    assert {layout.violation("api.app", name) for name in found} == {
        "api may not import projector",
        "api may not import ingest",
        "api may not import aaltohub",
    }


def test_checker_refuses_a_sibling_job() -> None:
    assert layout.violation("ingest.durable.spool", "ingest.telegram.worker") == (
        "ingest.durable may not import its sibling ingest.telegram"
    )


def test_checker_allows_the_shared_modules_of_a_package() -> None:
    assert layout.violation("projector.duckdb.projection", "projector.records") is None
    assert layout.violation("projector.duckdb.projection", "projector.rebuild") is not None
