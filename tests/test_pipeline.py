"""The composed pipeline: same result however frames are batched, and equal to the stages run by hand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

import engine.pipeline
from engine.errors import InputError
from engine.filter import filter_map
from engine.geometry import PolarSampler
from engine.model.network import CalciumNet, NetConfig
from engine.model.spec import InputSpec
from engine.model.weights import ensemble_probabilities
from engine.pipeline import CalciumPipeline, PipelineSettings
from engine.quantify import QuantifySettings, frame_arcs, summarize_pullback
from engine.xp import cupy_or_none

SPEC = InputSpec(n_alines=64, n_depth=32, depth_spacing_mm=0.1)


class TorchTestRuntime:
    """Test double of engine/runtimes: the reference ensemble on randomly initialised CalciumNets.

    Infers one frame at a time so that its own output cannot depend on the batch size; the test
    then checks that the pipeline's result does not either.
    """

    def __init__(self, n_members: int = 2, seed: int = 0) -> None:
        torch.manual_seed(seed)
        config = NetConfig(channels=(4, 4, 8, 8), decoder_channels=8)
        self.models = [CalciumNet(config).eval() for _ in range(n_members)]
        self.spec = SPEC
        self.model_id = "test-random@0"

    @torch.no_grad()
    def center_logits(self, polar: np.ndarray) -> None:
        """Shift and stretch each member's logits on `polar` so that votes fall on both sides of 0.5."""
        x = torch.from_numpy(polar[:, None])
        for model in self.models:
            logits = model(x)
            model.head.weight.div_(logits.std())
            model.head.bias.sub_(model(x).median())

    def infer(self, polar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = [ensemble_probabilities(self.models, torch.from_numpy(np.ascontiguousarray(f[None]))) for f in polar]
        return (np.concatenate([m.numpy() for m, _ in rows]), np.concatenate([s.numpy() for _, s in rows]))


@dataclass(frozen=True)
class Cal:
    pixel_spacing_mm: tuple[float, float] = (0.05, 0.05)
    center_rc: tuple[float, float] = (40.0, 41.0)
    frame_time_s: float = 1 / 30
    pullback_rate_mm_s: float = 6.0  # 0.2 mm per frame


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    rng = np.random.default_rng(5)
    img = rng.integers(0, 90, size=(23, 80, 82), dtype=np.uint8)
    img[5:15, 45:70, 40:80] = 250  # a bright region to the lower right
    return img


@pytest.fixture(scope="module")
def runtime(frames: np.ndarray) -> TorchTestRuntime:
    rt = TorchTestRuntime()
    rt.center_logits(PolarSampler(frames.shape[1:], Cal().center_rc, Cal().pixel_spacing_mm, SPEC)(frames))
    return rt


def run(pipeline: CalciumPipeline, frames: np.ndarray, batches: list[int]) -> tuple[list, object, list]:
    pipeline.begin(Cal(), image_shape=frames.shape[1:])
    outputs, start = [], 0
    for size in batches:
        outputs.extend(pipeline.process(frames[start : start + size], start))
        start += size
    assert start == len(frames)
    final, summary = pipeline.end()
    return outputs, summary, final


def test_result_does_not_depend_on_batching(runtime: TorchTestRuntime, frames: np.ndarray) -> None:
    settings = PipelineSettings(window_frames=5, window_alines=9)
    results = [run(CalciumPipeline(runtime, settings), frames, b) for b in ([1] * 23, [7, 3, 13], [23])]
    ref_out, ref_summary, ref_final = results[0]
    assert [o.index for o in ref_out] == list(range(23))
    for out, summary, final in results[1:]:
        assert summary.to_dict() == ref_summary.to_dict()
        assert [f.index for f in final] == [f.index for f in ref_final]
        for a, b in zip(out, ref_out, strict=True):
            assert a.index == b.index and a.position_mm == b.position_mm
            np.testing.assert_array_equal(a.probability, b.probability)
            np.testing.assert_array_equal(a.provisional, b.provisional)
            assert ([(f.index, f.calcium.tobytes()) for f in a.final]
                    == [(f.index, f.calcium.tobytes()) for f in b.final])


def test_pipeline_equals_the_stages_composed_by_hand(runtime: TorchTestRuntime, frames: np.ndarray) -> None:
    settings = PipelineSettings(window_frames=5, window_alines=9, quantify=QuantifySettings(merge_gap_mm=0.5))
    outputs, summary, last = run(CalciumPipeline(runtime, settings), frames, [4, 19])
    polar = PolarSampler(frames.shape[1:], Cal().center_rc, Cal().pixel_spacing_mm, SPEC)(frames)
    mean, spread = runtime.infer(polar)
    np.testing.assert_allclose(np.stack([o.probability for o in outputs]), mean, atol=1e-6)
    np.testing.assert_allclose(np.stack([o.spread for o in outputs]), spread, atol=1e-6)
    calcium = np.zeros_like(mean, dtype=bool)
    for f in [f for o in outputs for f in o.final] + last:
        calcium[f.index] = f.calcium
    expected = filter_map(mean, 5, 9)
    assert 0 < expected.sum() < expected.size  # a map with both classes
    np.testing.assert_array_equal(calcium, expected)
    assert summary.to_dict() == summarize_pullback(expected, 0.2, settings.quantify).to_dict()
    assert outputs[-1].position_mm == pytest.approx(22 * 0.2)


def test_every_frame_becomes_final_exactly_once_with_lag_h(runtime: TorchTestRuntime, frames: np.ndarray) -> None:
    outputs, _, last = run(CalciumPipeline(runtime, PipelineSettings(window_frames=7, window_alines=5)), frames,
                           [10, 13])
    for o in outputs:
        assert [f.index for f in o.final] == ([o.index - 3] if o.index >= 3 else [])
    assert [f.index for f in last] == [20, 21, 22]


def test_polar_input_skips_the_sampler(runtime: TorchTestRuntime) -> None:
    rng = np.random.default_rng(2)
    polar = rng.random((6, SPEC.n_depth, SPEC.n_alines), dtype=np.float32)
    pipeline = CalciumPipeline(runtime, PipelineSettings(window_frames=3, window_alines=3))
    pipeline.begin(Cal())
    outputs = pipeline.process(polar, 0)
    np.testing.assert_allclose(np.stack([o.probability for o in outputs]), runtime.infer(polar)[0], atol=1e-6)


def test_probabilities_only_pipeline_for_report_rebuilds() -> None:
    rng = np.random.default_rng(4)
    prob = rng.random((12, 16)).astype(np.float32)
    pipeline = CalciumPipeline(None, PipelineSettings(window_frames=3, window_alines=5))
    pipeline.begin_rows(0.2, 16)
    outputs = pipeline.process_probabilities(prob[:5], np.zeros((5, 16)), 0)
    outputs += pipeline.process_probabilities(prob[5:], np.zeros((7, 16)), 5)
    final, _ = pipeline.end()
    calcium = np.zeros_like(prob, dtype=bool)
    for f in [f for o in outputs for f in o.final] + final:
        calcium[f.index] = f.calcium
    np.testing.assert_array_equal(calcium, filter_map(prob, 3, 5))


def rows_pipeline(prob: np.ndarray, batches: list[int], xp: object = np,
                  return_rows: bool = True) -> tuple[list, object]:
    """`prob` through the post-inference stages in `batches`: (outputs, PullbackOutput)."""
    pipeline = CalciumPipeline(None, PipelineSettings(window_frames=5, window_alines=31), xp=xp,
                               return_rows=return_rows)
    pipeline.begin_rows(0.1, prob.shape[1])
    outputs, start = [], 0
    for size in batches:
        chunk = xp.asarray(prob[start : start + size])
        outputs.extend(pipeline.process_probabilities(chunk, chunk / 2, start))
        start += size
    return outputs, pipeline.end()


def filtered(outputs: list, end: object) -> list:
    """Everything a driver reads of the filter and quantify stages, comparable with ==."""
    rows = [(o.index, o.provisional.tobytes(), o.provisional_arcs,
             [(f.index, f.calcium.tobytes(), f.arcs) for f in o.final],
             [lesion.to_dict() for lesion in o.closed_lesions]) for o in outputs]  # fmt: skip
    return [rows, [(f.index, f.calcium.tobytes(), f.arcs) for f in end.final], end.summary.to_dict()]


def smooth_probabilities(n: int, a: int, seed: int) -> np.ndarray:
    """Probabilities with whole-circle, empty and wrap-around frames after the filter."""
    rng = np.random.default_rng(seed)
    prob = rng.random((n, a)) * 0.6 + rng.random((n, 1)) * 0.5
    prob[n // 3 : n // 2] = 0.9
    return prob.astype(np.float32)


def test_arcs_are_the_arcs_of_the_returned_rows() -> None:
    prob = smooth_probabilities(60, 90, seed=7)
    outputs, end = rows_pipeline(prob, [60])
    finals = [f for o in outputs for f in o.final] + end.final
    assert [f.index for f in finals] == list(range(60))
    for o in outputs:
        assert o.provisional_arcs == frame_arcs(o.provisional)
    assert all(f.arcs == frame_arcs(f.calcium) for f in finals)
    assert any(len(f.arcs) == 1 and f.arcs[0].n_alines == 90 for f in finals)
    assert any(not f.arcs for f in finals)
    assert any(arc.end_deg < arc.start_deg for f in finals for arc in f.arcs)


def test_rows_stay_behind_when_not_asked_for() -> None:
    prob = smooth_probabilities(40, 64, seed=8)
    with_rows, without_rows = rows_pipeline(prob, [9, 31]), rows_pipeline(prob, [9, 31], return_rows=False)
    assert filtered(*with_rows) == filtered(*without_rows)
    assert all(o.probability is None and o.spread is None for o in without_rows[0])
    np.testing.assert_array_equal(np.stack([o.probability for o in with_rows[0]]), prob)
    np.testing.assert_array_equal(np.stack([o.spread for o in with_rows[0]]), prob / 2)


@pytest.mark.parametrize("return_rows", [True, False])
def test_host_transfers_per_batch_do_not_grow_with_the_batch(monkeypatch: pytest.MonkeyPatch,
                                                             return_rows: bool) -> None:
    calls = []
    to_numpy = engine.pipeline.to_numpy
    monkeypatch.setattr(engine.pipeline, "to_numpy", lambda array: calls.append(array.shape) or to_numpy(array))
    prob = smooth_probabilities(41, 64, seed=9)
    pipeline = CalciumPipeline(None, PipelineSettings(window_frames=5, window_alines=31), return_rows=return_rows)
    pipeline.begin_rows(0.1, 64)
    counts = []
    for start, stop in ((0, 1), (1, 41)):
        calls.clear()
        pipeline.process_probabilities(prob[start:stop], prob[start:stop], start)
        counts.append(len(calls))
    assert counts[0] == counts[1] == 2 + 1 + return_rows  # two inputs, the run boundaries, the rows


def test_bad_inputs_are_named(runtime: TorchTestRuntime, frames: np.ndarray) -> None:
    pipeline = CalciumPipeline(runtime)
    with pytest.raises(InputError, match="begin"):
        pipeline.process(frames[:2], 0)
    pipeline.begin(Cal(), image_shape=frames.shape[1:])
    with pytest.raises(InputError, match=r"uint8 frames \(B, 80, 82\)"):
        pipeline.process(frames[:2, :40], 0)
    pipeline.process(frames[:2], 0)
    with pytest.raises(InputError, match="expected frame 2, got frame 5"):
        pipeline.process(frames[2:4], 5)
    with pytest.raises(InputError, match="frame spacing"):
        pipeline.begin(Cal(frame_time_s=0.0))


@pytest.mark.gpu
@pytest.mark.skipif(cupy_or_none() is None, reason="needs CuPy with a CUDA GPU")
@pytest.mark.parametrize("return_rows", [True, False])
def test_cupy_post_inference_equals_numpy(return_rows: bool) -> None:
    cp = cupy_or_none()
    prob = smooth_probabilities(120, 360, seed=6)
    host = rows_pipeline(prob, [1, 50, 69], return_rows=return_rows)
    device = rows_pipeline(prob, [1, 50, 69], xp=cp, return_rows=return_rows)
    assert filtered(*device) == filtered(*host)
    if return_rows:
        assert all(isinstance(o.probability, np.ndarray) and isinstance(o.provisional, np.ndarray) for o in device[0])
        for d, h in zip(device[0], host[0], strict=True):
            np.testing.assert_array_equal(d.probability, h.probability)
            np.testing.assert_array_equal(d.spread, h.spread)


def _chunks(frames: np.ndarray, size: int):
    for start in range(0, len(frames), size):
        yield start, frames[start : start + size]


def _flat(outputs: list) -> list:
    return [(o.index, o.probability.tobytes(), o.provisional.tobytes(),
             [(f.index, f.calcium.tobytes()) for f in o.final]) for o in outputs]


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_offline_driver_overlapping_sampling_gives_the_chunk_by_chunk_result(
    runtime: TorchTestRuntime, frames: np.ndarray, prefetch: int
) -> None:
    settings = PipelineSettings(window_frames=5, window_alines=9)
    reference, ref_summary, ref_final = run(CalciumPipeline(runtime, settings), frames, [6, 6, 6, 5])
    pipeline = CalciumPipeline(runtime, settings)
    pipeline.begin(Cal(), image_shape=frames.shape[1:])
    seen, outputs = [], []
    for start, chunk, out in engine.pipeline.process_chunks(pipeline, _chunks(frames, 6), prefetch=prefetch):
        seen.append(start)
        np.testing.assert_array_equal(chunk, frames[start : start + 6])
        outputs.extend(out)
    final, summary = pipeline.end()
    assert seen == [0, 6, 12, 18]
    assert _flat(outputs) == _flat(reference)
    assert summary.to_dict() == ref_summary.to_dict() and [f.index for f in final] == [f.index for f in ref_final]


def test_offline_driver_raises_a_decode_error_at_its_chunk(runtime: TorchTestRuntime, frames: np.ndarray) -> None:
    def failing():
        yield 0, frames[:6]
        raise InputError("frame 6 is corrupt", source="x.dcm")

    pipeline = CalciumPipeline(runtime, PipelineSettings(window_frames=5, window_alines=9))
    pipeline.begin(Cal(), image_shape=frames.shape[1:])
    done = []
    with pytest.raises(InputError, match="frame 6 is corrupt"):
        for start, _, _ in engine.pipeline.process_chunks(pipeline, failing(), prefetch=2):
            done.append(start)
    assert done == [0]


def test_offline_driver_stops_its_worker_when_closed_early(runtime: TorchTestRuntime, frames: np.ndarray) -> None:
    import threading

    pipeline = CalciumPipeline(runtime, PipelineSettings(window_frames=5, window_alines=9))
    pipeline.begin(Cal(), image_shape=frames.shape[1:])
    driver = engine.pipeline.process_chunks(pipeline, _chunks(frames, 2), prefetch=1)
    next(driver)
    driver.close()
    assert not any(t.name == "ivuscal-decode" for t in threading.enumerate())


def test_stage_timer_hook_sees_every_stage(runtime: TorchTestRuntime, frames: np.ndarray) -> None:
    from contextlib import contextmanager

    entered: list[str] = []

    @contextmanager
    def timer(stage: str):
        entered.append(stage)
        yield

    run(CalciumPipeline(runtime, PipelineSettings(window_frames=5, window_alines=9), timer=timer), frames, [10, 13])
    assert entered[:4] == ["polar", "inference", "filter", "quantify"]
    assert entered[-2:] == ["filter", "quantify"]  # end(): flush and the last final frames
    assert entered.count("inference") == 2
