"""The durable spool: order, torn-record recovery, restarts, prepend, segment deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.durable.errors import SpoolError
from ingest.durable.spool import Spool
from schemas.codec import Codec
from tests.helpers import posted


def _open(directory: Path, **kwargs: int) -> Spool:
    spool = Spool(directory, codec=Codec(), **kwargs)
    spool.open()
    return spool


def _drain(spool: Spool) -> list[str]:
    out: list[str] = []
    while (batch := spool.peek(7)) is not None:
        out.extend(e.event_id for e in batch.events)
        spool.commit(batch)
    return out


def test_order_is_preserved_across_restarts(tmp_path: Path) -> None:
    events = [posted(-1001, i) for i in range(1, 51)]
    spool = _open(tmp_path, segment_max_bytes=2000)
    spool.append(events[:20])
    spool.close()
    spool = _open(tmp_path, segment_max_bytes=2000)
    spool.append(events[20:])
    first = spool.peek(5)
    assert first is not None
    spool.commit(first)
    spool.close()
    spool = _open(tmp_path, segment_max_bytes=2000)
    assert spool.depth_records == 45
    assert _drain(spool) == [e.event_id for e in events[5:]]
    assert spool.depth_records == 0 and spool.depth_bytes == 0


def test_torn_last_record_is_detected_and_ignored(tmp_path: Path) -> None:
    events = [posted(-1001, i) for i in range(1, 11)]
    spool = _open(tmp_path)
    spool.append(events)
    spool.close()
    (segment,) = spool.segment_paths()
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])  # a crash in the middle of writing the last record
    spool = _open(tmp_path)
    assert spool.torn_records == 1
    assert spool.depth_records == 9
    spool.append([posted(-1001, 99)])
    assert _drain(spool) == [e.event_id for e in events[:9]] + [posted(-1001, 99).event_id]


def test_corrupt_checksum_of_last_record_is_cut_off(tmp_path: Path) -> None:
    spool = _open(tmp_path)
    spool.append([posted(-1001, 1), posted(-1001, 2)])
    spool.close()
    (segment,) = spool.segment_paths()
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF
    segment.write_bytes(bytes(data))
    spool = _open(tmp_path)
    assert spool.depth_records == 1
    assert _drain(spool) == [posted(-1001, 1).event_id]


def test_prepended_events_are_read_first(tmp_path: Path) -> None:
    spool = _open(tmp_path)
    spool.append([posted(-1001, 3), posted(-1001, 4)])
    spool.prepend([posted(-1001, 1), posted(-1001, 2)])
    spool.close()
    spool = _open(tmp_path)
    assert _drain(spool) == [posted(-1001, i).event_id for i in (1, 2, 3, 4)]


def test_drained_segments_are_deleted(tmp_path: Path) -> None:
    spool = _open(tmp_path, segment_max_bytes=1500)
    for i in range(1, 30):
        spool.append([posted(-1001, i)])
    assert len(spool.segment_paths()) > 1
    _drain(spool)
    assert list(tmp_path.glob("*.seg")) == []


def test_record_bigger_than_the_read_chunk_is_read_whole(tmp_path: Path) -> None:
    big = posted(-1001, 1, text="x" * (3 * 1024 * 1024))
    spool = _open(tmp_path, segment_max_bytes=64 * 1024 * 1024)
    spool.append([posted(-1001, 0), big, posted(-1001, 2)])
    batch = spool.peek(10)
    assert batch is not None
    assert [e.event_id for e in batch.events] == [posted(-1001, 0).event_id]
    spool.commit(batch)
    assert _drain(spool) == [big.event_id, posted(-1001, 2).event_id]


def test_a_second_spool_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    first = _open(tmp_path)
    second = Spool(tmp_path, codec=Codec())
    with pytest.raises(SpoolError, match="in use"):
        second.open()
    first.close()
    second.open()
    second.close()


def test_a_damaged_record_in_the_middle_is_set_aside_and_the_rest_drained(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = [posted(-1001, i) for i in range(1, 21)]
    spool = _open(tmp_path)
    spool.append(events)
    spool.close()
    (segment,) = spool.segment_paths()
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF  # one flipped byte inside some record's payload
    segment.write_bytes(bytes(data))
    spool = _open(tmp_path)
    assert (spool.corrupt_records, spool.torn_records) == (1, 0)
    assert len([r for r in caplog.records if "fails its checksum" in r.getMessage()]) == 1
    bad: list[str] = []
    drained: list[str] = []
    while (batch := spool.peek(7)) is not None:
        drained.extend(e.event_id for e in batch.events)
        bad.extend(reason for _payload, reason in batch.bad)
        spool.commit(batch)
    assert len(drained) == 19 and drained == [e.event_id for e in events if e.event_id in drained]
    assert drained[0] == events[0].event_id and drained[-1] == events[-1].event_id
    assert len(bad) == 1 and "at byte" in bad[0]
