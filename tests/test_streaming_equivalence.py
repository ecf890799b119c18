"""Live equals offline: a pullback streamed through the real engine over ZeroMQ gives the offline
pipeline's calcium map exactly, and its provisional outputs are the filter on what had arrived."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_streaming_fixtures import CALIB, SETTINGS, SHAPE, SPEC, loopback, make_ensemble, make_frames, start

from engine.commands.analyze import analyze_journal
from engine.filter import filter_map
from engine.pipeline import CalciumPipeline, PipelineSettings
from engine.quantify import frame_arcs
from engine.runtimes import create_runtime
from engine.streaming import protocol as p
from engine.streaming.journal import read_journal
from tools.replay import send_pullback

N_FRAMES = 90
SETTINGS_ALINES = SPEC.n_alines


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, list[dict]]:
    """Stream the pullback as fast as it can go (so the engine micro-batches) and keep every event."""
    tmp = tmp_path_factory.mktemp("equivalence")
    frames = make_frames(N_FRAMES, seed=11)
    model = make_ensemble(tmp / "ensemble.safetensors", frames)
    with loopback(model, tmp, max_batch=8) as engine:
        send_pullback(engine.sender(), [(0, frames[:40]), (40, frames[40:])], start(n_frames=N_FRAMES), fps=None)
        events = engine.wait_for_summaries(1, timeout_s=120)
    return model, frames, events


def offline(model: Path, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """The same pipeline driven from the frames in chunks, as `ivuscal analyze` does: (prob, calcium, summary)."""
    pipeline = CalciumPipeline(create_runtime("torch", model=model, threads=1), SETTINGS)
    pipeline.begin(CALIB, SHAPE)
    prob = np.zeros((len(frames), SETTINGS_ALINES), dtype=np.float32)
    calcium = np.zeros((len(frames), SETTINGS_ALINES), dtype=bool)
    finals = []
    for first in range(0, len(frames), 32):
        for out in pipeline.process(frames[first : first + 32], first):
            prob[out.index] = out.probability
            finals.extend(out.final)
    end = pipeline.end()
    for final in finals + end.final:
        calcium[final.index] = final.calcium
    return prob, calcium, end.summary.to_dict()



def arcs_to_row(arcs: list[list[float]], n_alines: int) -> np.ndarray:
    """Rebuild a bool row from published arcs `[start_deg, end_deg, extent_deg]`."""
    row = np.zeros(n_alines, dtype=bool)
    for start_deg, _, extent_deg in arcs:
        first, count = round(start_deg * n_alines / 360), round(extent_deg * n_alines / 360)
        row[(first + np.arange(count)) % n_alines] = True
    return row


def streamed_maps(events: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(final, provisional) bool maps from the published results."""
    final = np.zeros((N_FRAMES, SETTINGS_ALINES), dtype=bool)
    provisional = np.zeros_like(final)
    seen = []
    for event in events:
        if event["kind"] == "result":
            provisional[event["frame"]] = arcs_to_row(event["provisional"]["arcs"], SETTINGS_ALINES)
        for item in event.get("final", []) if event["kind"] in ("result", "final") else []:
            final[item["frame"]] = arcs_to_row(item["arcs"], SETTINGS_ALINES)
            assert item["calcified"] == bool(item["arcs"])
            seen.append(item["frame"])
    assert seen == list(range(N_FRAMES))  # each frame final once, in order
    return final, provisional


def test_stream_was_micro_batched_without_loss(streamed: tuple[Path, np.ndarray, list[dict]]) -> None:
    _, _, events = streamed
    results = [e for e in events if e["kind"] == "result"]
    assert [r["frame"] for r in results] == list(range(N_FRAMES))
    assert len({r["t"]["inferred_ns"] for r in results}) < N_FRAMES  # some frames shared one inference call
    assert not [e for e in events if e["kind"] in ("error", "drop", "gap")]


def test_final_outputs_equal_the_offline_calcium_map(streamed: tuple[Path, np.ndarray, list[dict]]) -> None:
    model, frames, events = streamed
    prob, calcium, summary = offline(model, frames)
    final, _ = streamed_maps(events)
    assert 0.05 < calcium.mean() < 0.95  # a map with structure, not all or nothing
    np.testing.assert_array_equal(final, calcium)
    streamed_summary = next(e for e in events if e["kind"] == "summary")["summary"]
    assert streamed_summary["lesions"] == summary["lesions"] and streamed_summary["score"] == summary["score"]
    journal = read_journal(Path(next(e for e in events if e["kind"] == "started")["journal"]))
    np.testing.assert_allclose(journal.probability, prob, atol=1e-5)  # same network; batching changes rounding only
    rebuilt = analyze_journal(journal.path, SETTINGS)  # what `ivuscal analyze --journal` computes
    np.testing.assert_array_equal(rebuilt.calcium, final)


def test_journal_rebuild_takes_the_live_windows_unless_told_otherwise(
    streamed: tuple[Path, np.ndarray, list[dict]],
) -> None:
    _, _, events = streamed
    final, _ = streamed_maps(events)
    path = Path(next(e for e in events if e["kind"] == "started")["journal"])
    other = PipelineSettings(window_frames=3, window_alines=5)
    assert analyze_journal(path, other, windows_from_journal=True).settings.window_frames == SETTINGS.window_frames
    np.testing.assert_array_equal(analyze_journal(path, other, windows_from_journal=True).calcium, final)
    assert not np.array_equal(analyze_journal(path, other).calcium, final)


def test_provisional_is_the_filter_on_frames_so_far(streamed: tuple[Path, np.ndarray, list[dict]]) -> None:
    _, _, events = streamed
    final, provisional = streamed_maps(events)
    prob = read_journal(Path(next(e for e in events if e["kind"] == "started")["journal"])).probability
    for t in range(N_FRAMES):
        oracle = filter_map(prob[: t + 1], SETTINGS.window_frames, SETTINGS.window_alines)[-1]
        np.testing.assert_array_equal(provisional[t], oracle, err_msg=f"frame {t}")
    # Provisional and final can differ only through the h = window_frames // 2 frames after t.
    h = SETTINGS.window_frames // 2
    votes = prob > 0.5
    for t in range(N_FRAMES):
        later = votes[t + 1 : t + 1 + h]
        if len(later) == 0 or (later == votes[t]).all():
            np.testing.assert_array_equal(provisional[t], final[t], err_msg=f"frame {t}")
    assert (provisional == final).mean() > 0.8
    np.testing.assert_array_equal(provisional[-1], final[-1])  # the last frame has nothing after it


def test_arcs_round_trip_through_rows() -> None:
    row = np.zeros(SETTINGS_ALINES, dtype=bool)
    row[[62, 63, 0, 1, 10, 11, 12]] = True
    assert np.array_equal(arcs_to_row(p.arcs_payload(frame_arcs(row)), SETTINGS_ALINES), row)
