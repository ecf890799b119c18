"""The per-pullback journal: rows come back exactly, in frame order, even from a truncated file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError
from engine.streaming.journal import JournalWriter, journal_path, read_journal

META = {"stream": "s", "pullback": "p", "n_alines": 8, "calib": {"frame_time_s": 0.04}}


def write_two_chunks(path: Path, rng: np.random.Generator, end: bool) -> tuple[np.ndarray, np.ndarray]:
    prob = rng.random((5, 8), dtype=np.float32)
    spread = rng.random((5, 8), dtype=np.float32) / 2
    writer = JournalWriter(path, META)
    writer.rows([3, 4], [0.06, 0.08], prob[3:], spread[3:])  # chunks may arrive out of order
    writer.rows([0, 1, 2], [0.0, 0.02, 0.04], prob[:3], spread[:3])
    writer.rows([5], [0.1], prob[4:], spread[4:], filled="sequence gap")
    if end:
        writer.end({"calcium_score": 2})
    else:
        writer.close()
    return prob, spread


def test_rows_round_trip_exactly_in_frame_order(tmp_path: Path) -> None:
    path = journal_path(tmp_path, "s", "p")
    prob, spread = write_two_chunks(path, np.random.default_rng(1), end=True)
    journal = read_journal(path)
    assert journal.complete and journal.summary == {"calcium_score": 2}
    np.testing.assert_array_equal(journal.frame_index, np.arange(6))
    np.testing.assert_array_equal(journal.probability, np.concatenate([prob, prob[4:]]))
    np.testing.assert_array_equal(journal.spread, np.concatenate([spread, spread[4:]]))
    np.testing.assert_allclose(journal.position_mm, [0.0, 0.02, 0.04, 0.06, 0.08, 0.1])
    assert journal.filled == [5] and journal.meta["stream"] == "s"


def test_a_new_journal_never_overwrites_an_old_one(tmp_path: Path) -> None:
    first = journal_path(tmp_path, "s", "p/../x")
    JournalWriter(first, META).close()
    second = journal_path(tmp_path, "s", "p/../x")
    assert second != first and second.parent == tmp_path and "/" not in second.name.replace(str(tmp_path), "")


def test_truncated_journal_keeps_its_complete_records(tmp_path: Path) -> None:
    path = journal_path(tmp_path, "s", "p")
    prob, _ = write_two_chunks(path, np.random.default_rng(2), end=False)
    data = path.read_bytes()
    path.write_bytes(data + b"\x85\xa1k\xa4rows")  # a record cut off mid-write
    journal = read_journal(path)
    assert not journal.complete
    np.testing.assert_array_equal(journal.probability[:5], prob)


def test_not_a_journal_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.journal.msgpack"
    bad.write_bytes(b"\x93\x01\x02\x03")
    with pytest.raises(InputError, match="bad.journal.msgpack"):
        read_journal(bad)
    with pytest.raises(InputError, match="not found"):
        read_journal(tmp_path / "missing")


def test_retention_removes_only_journals_older_than_the_limit(tmp_path: Path) -> None:
    import os

    from engine.streaming.journal import prune_journals

    old, new = journal_path(tmp_path, "s", "old"), journal_path(tmp_path, "s", "new")
    for path in (old, new):
        JournalWriter(path, META).close()
    os.utime(old, (1_000_000, 1_000_000))
    (tmp_path / "notes.txt").write_text("not a journal")
    assert prune_journals(tmp_path, max_age_s=86_400) == 1
    assert not old.exists() and new.exists() and (tmp_path / "notes.txt").exists()


def test_records_reach_the_file_at_flush_and_fsync_follows_the_interval(tmp_path: Path) -> None:
    path = journal_path(tmp_path, "s", "p")
    writer = JournalWriter(path, META, fsync_interval_s=None)
    size = path.stat().st_size
    writer.rows([0], [0.0], np.zeros((1, 8), np.float32), np.zeros((1, 8), np.float32))
    writer.flush()
    assert path.stat().st_size > size  # visible to a reader (and to a rebuild after kill -9)
    writer.close()
    assert read_journal(path).frame_index.tolist() == [0]
