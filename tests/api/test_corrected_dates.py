"""The API shows the dates a re-import with the right ``--tz`` corrected, and no edit for it
(docs/decisions/041-corrected-export-dates.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.export import ExportImporter
from tests.api.conftest import RunningApi
from tests.ingest.export.exports import single_chat, write
from tests.ingest.export.log_sink import LogSink
from tests.projector.conftest import project_to_end

CHAT = -1001730156619


async def test_a_message_shows_its_corrected_date_and_one_version(
    api: RunningApi, tmp_path: Path
) -> None:
    raw = {
        "id": 3,
        "type": "message",
        "date": "2018-02-02T10:00:00",
        "edited": "2018-02-02T12:00:00",
        "from": "Bob",
        "text": "hi",
    }
    path = write(tmp_path / "result.json", single_chat([raw]))
    log = api.event_log
    for tz in (None, ZoneInfo("Europe/Helsinki")):  # guessed UTC, then the right zone
        await ExportImporter(log=log, sink=LogSink(log), account="main", tz=tz).run(path)
        await project_to_end(log, api.database_url, batch_size=1)
    async with api.client() as client:
        response = await client.get(f"/groups/{CHAT}/messages/3")
    assert response.status_code == 200
    body = response.json()
    assert datetime.fromisoformat(body["date"]) == datetime(2018, 2, 2, 8, 0, tzinfo=UTC)
    assert datetime.fromisoformat(body["edit_date"]) == datetime(2018, 2, 2, 10, 0, tzinfo=UTC)
    assert len(body["versions"]) == 1
