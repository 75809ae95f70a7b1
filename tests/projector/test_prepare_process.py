"""The helper process that decodes replay batches and builds their Arrow tables."""

from __future__ import annotations

from eventlog import RawRecord
from projector.duckdb.prepare_process import PrepareProcess, dead_letters
from projector.duckdb.rows import event_table
from projector.records import decode_batch
from schemas.codec import Codec
from tests.factories import CHAN
from tests.helpers import posted, wait_until


def test_helper_builds_the_same_table_and_reports_bad_records_with_their_bytes() -> None:
    codec = Codec()
    batch = [
        RawRecord(seq, f"tg.test.{seq}", codec.encode(posted(CHAN, seq, text=f"m{seq} ✓")))
        for seq in range(1, 301)
    ]
    batch[41] = RawRecord(42, "tg.test.42", b'{"kind": "message.posted", "oops"')
    batch[99] = RawRecord(100, "tg.test.100", b'{"kind": "no.such.kind"}')
    helper = PrepareProcess(codec)
    try:
        table, failures = helper.submit(batch).result(timeout=60)
    finally:
        helper.close()
    good, _ = decode_batch(codec, batch)
    assert table is not None and table.equals(
        event_table([r.seq for r in good], [r.event for r in good])
    )
    letters = dead_letters(batch, failures)
    assert [(d.seq, d.subject, d.data) for d in letters] == [
        (42, "tg.test.42", batch[41].data),
        (100, "tg.test.100", batch[99].data),
    ]
    assert letters[0].error.startswith("MalformedEventError") and letters[1].error.startswith(
        "UnknownKindError"
    )


async def test_helper_says_when_it_has_started() -> None:
    helper = PrepareProcess(Codec())
    try:
        await wait_until(lambda: helper.ready, timeout=60)
    finally:
        helper.close()
