"""Atomic writes and the one JSON writer: no half-written file, no temporary left, published rounding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import atomic
from engine.json_output import json_ready, round_float, write_json


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as partial:
        partial.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_the_partial_keeps_the_suffix_so_format_sniffing_writers_work(tmp_path: Path) -> None:
    target = tmp_path / "calcium_map.npz"
    with atomic.atomic_path(target) as partial:
        assert partial.suffix == ".npz" and partial.parent == tmp_path and atomic.PARTIAL_MARK in partial.name
        np.savez_compressed(partial, x=np.arange(3))
    with np.load(target) as data:
        np.testing.assert_array_equal(data["x"], [0, 1, 2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calcium_map.npz"]


def test_published_floats_lose_binary_noise_but_keep_their_digits() -> None:
    assert round_float(4.9999999995) == 5.0
    assert round_float(0.1 + 0.2) == 0.3
    assert round_float(0.98161616161616) == 0.981616162
    assert round_float(3.2e-7) == 3.2e-7
    assert round_float(float("nan")) is None and round_float(float("inf")) is None


def test_json_ready_gives_plain_types() -> None:
    data = {"a": np.float32(0.5), "b": (1, np.int64(2)), "c": np.array([1.5, np.nan]), 3: float("-inf")}
    assert json_ready(data) == {"a": 0.5, "b": [1, 2], "c": [1.5, None], "3": None}


def test_write_json_writes_what_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "out" / "r.json"
    written = write_json(path, {"pullback_length_mm": 299 * (5.0 / 299), "n": 3})
    assert json.loads(path.read_text()) == written == {"pullback_length_mm": 5.0, "n": 3}


def test_state_written_with_digits_none_round_trips_exactly(tmp_path: Path) -> None:
    state = {"lr": 0.0030000000000000005, "betas": (0.9, 0.999), "bad": float("nan")}
    write_json(tmp_path / "state.json", state, digits=None)
    assert json.loads((tmp_path / "state.json").read_text()) == {"lr": 0.0030000000000000005, "betas": [0.9, 0.999],
                                                                 "bad": None}
