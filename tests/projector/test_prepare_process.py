"""The helper process that decodes replay batches and builds their Arrow tables."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

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


def _handover_parent() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def test_helper_leaves_no_handover_files_behind() -> None:
    codec = Codec()
    batch = [RawRecord(seq, "tg.test", codec.encode(posted(CHAN, seq))) for seq in range(1, 11)]
    helper = PrepareProcess(codec)
    try:
        table, _ = helper.submit(batch).result(timeout=60)
        [handover] = _handover_parent().glob(f"aaltohub-prepare-{os.getpid()}-*")
        assert table is not None and table.num_rows == 10
        assert list(handover.iterdir()) == []  # each file is removed once read
    finally:
        helper.close()
    assert list(_handover_parent().glob(f"aaltohub-prepare-{os.getpid()}-*")) == []


def test_helper_removes_what_a_dead_process_left() -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True
    )
    left = _handover_parent() / f"aaltohub-prepare-{int(ended.stdout)}-x"
    left.mkdir()
    (left / "0.batch").write_bytes(b"a batch of a process that died")
    PrepareProcess(Codec()).close()
    assert not left.exists()
