"""The runtime contract on the CPU: backend selection and its errors, shapes and dtypes, batch
invariance, bad input, and agreement of the torch and onnxruntime backends with the reference."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from engine.errors import BackendUnavailableError, InputError
from engine.model.weights import LoadedEnsemble, ensemble_probabilities
from engine.runtimes import EnsembleRuntime, auto_backend, create_runtime
from engine.runtimes.cli_options import runtime_options
from engine.runtimes.ort_backend import SESSION_BATCH
from engine.xp import cupy_or_none

NO_GPU = cupy_or_none() is None or not torch.cuda.is_available()


@pytest.fixture(scope="module")
def ort_runtime(ensemble: LoadedEnsemble) -> EnsembleRuntime:
    return create_runtime("onnxruntime", ensemble)


@pytest.fixture(scope="module")
def polar() -> np.ndarray:
    rng = np.random.default_rng(7)
    frames = rng.random((4, 128, 360), dtype=np.float32)
    frames[:, 30:45, 200:270] = 0.95
    return frames


def _reference(ensemble: LoadedEnsemble, polar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probability, spread = ensemble_probabilities(ensemble.models, torch.from_numpy(polar))
    return probability.numpy(), spread.numpy()


# --- selection and its errors ------------------------------------------------------------------

def test_unknown_backend_is_an_input_error(ensemble: LoadedEnsemble) -> None:
    with pytest.raises(InputError, match="unknown backend 'openvino'"):
        create_runtime("openvino", ensemble)


@pytest.mark.skipif(not NO_GPU, reason="a CUDA GPU is present: the missing-GPU errors cannot occur")
def test_tensorrt_without_its_packages_says_how_to_install_them(ensemble: LoadedEnsemble) -> None:
    with pytest.raises(BackendUnavailableError, match=r"pip install 'ivuscal\[gpu\]'"):
        create_runtime("tensorrt", ensemble)


@pytest.mark.skipif(not NO_GPU, reason="a CUDA GPU is present: the missing-GPU errors cannot occur")
def test_torch_on_cuda_without_a_gpu_is_unavailable(ensemble: LoadedEnsemble) -> None:
    with pytest.raises(BackendUnavailableError, match="CUDA"):
        create_runtime("torch", ensemble, device="cuda")


@pytest.mark.skipif(not NO_GPU, reason="a CUDA GPU is present: auto picks TensorRT there when installed")
def test_auto_is_onnxruntime_without_a_gpu(ensemble: LoadedEnsemble) -> None:
    assert auto_backend() == "onnxruntime"
    runtime = create_runtime("auto", ensemble)
    assert runtime.name == "onnxruntime"
    assert "no CUDA GPU" in runtime.describe()["auto"]  # says what it chose and why
    assert "auto" not in create_runtime("onnxruntime", ensemble).describe()  # only a choice is explained


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        ("onnxruntime", {"device": "cuda"}, "runs on the CPU"),
        ("onnxruntime", {"threads": 0}, "at least 1"),
        ("onnxruntime", {"precision": "fp16"}, "fp32"),
        ("torch", {"device": "tpu"}, "unknown device"),
        ("torch", {"precision": "fp16"}, "only on CUDA"),
        ("torch", {"precision": "int4"}, "unknown precision"),
    ],
)
def test_impossible_options_are_input_errors(ensemble: LoadedEnsemble, backend: str, options: dict,
                                             message: str) -> None:
    with pytest.raises(InputError, match=message):
        create_runtime(backend, ensemble, **options)


def test_missing_weights_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="none.safetensors"):
        create_runtime("onnxruntime", tmp_path / "none.safetensors")


# --- the contract --------------------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 4])
def test_outputs_are_float32_rows_of_probabilities(ort_runtime: EnsembleRuntime, polar: np.ndarray, batch: int) -> None:
    probability, spread = ort_runtime.infer(polar[:batch])
    for out in (probability, spread):
        assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (batch, 360)
    assert np.all((probability >= 0) & (probability <= 1))
    assert np.all((spread >= 0) & (spread <= 0.5))  # population std of values in [0, 1]
    assert ort_runtime.xp is np and ort_runtime.spec.n_alines == 360


def test_onnxruntime_matches_the_reference(ensemble: LoadedEnsemble, ort_runtime: EnsembleRuntime,
                                           polar: np.ndarray) -> None:
    probability, spread = ort_runtime.infer(polar)
    ref_prob, ref_spread = _reference(ensemble, polar)
    assert np.abs(probability - ref_prob).max() <= 1e-4 and np.abs(spread - ref_spread).max() <= 1e-4


def test_torch_cpu_matches_the_reference_and_onnxruntime(ensemble: LoadedEnsemble, ort_runtime: EnsembleRuntime,
                                                         polar: np.ndarray) -> None:
    runtime = create_runtime("torch", ensemble, device="cpu")
    polar = polar[:2]
    probability, spread = runtime.infer(polar)
    ref_prob, ref_spread = _reference(ensemble, polar)
    assert np.abs(probability - ref_prob).max() <= 1e-5 and np.abs(spread - ref_spread).max() <= 1e-5
    ort_prob, _ = ort_runtime.infer(polar)
    assert np.abs(probability - ort_prob).max() <= 1e-4
    assert runtime.describe()["device"] == "cpu" and runtime.describe()["precision"] == "fp32"


def test_one_thread_results_do_not_depend_on_the_batch(ensemble: LoadedEnsemble, polar: np.ndarray) -> None:
    runtime = create_runtime("onnxruntime", ensemble, threads=1)
    probability, spread = runtime.infer(polar)
    for i in range(len(polar)):
        alone = runtime.infer(polar[i : i + 1])
        assert np.array_equal(alone[0][0], probability[i]) and np.array_equal(alone[1][0], spread[i])


def test_batches_beyond_one_session_run_equal_frame_by_frame(ensemble: LoadedEnsemble, polar: np.ndarray) -> None:
    """A chunk larger than SESSION_BATCH is run in slices; every frame still gets its own exact result."""
    runtime = create_runtime("onnxruntime", ensemble, threads=1)
    n = 2 * SESSION_BATCH + 3
    frames = np.concatenate([np.roll(polar, k * 37, axis=-1) for k in range(-(-n // len(polar)))])[:n]
    probability, spread = runtime.infer(frames)
    assert probability.shape == spread.shape == (n, 360)
    for i in (0, SESSION_BATCH - 1, SESSION_BATCH, n - 1):
        alone = runtime.infer(frames[i : i + 1])
        assert np.array_equal(alone[0][0], probability[i]) and np.array_equal(alone[1][0], spread[i])


def test_threaded_results_depend_on_the_batch_by_rounding_only(ensemble: LoadedEnsemble, polar: np.ndarray) -> None:
    """With several threads ONNX Runtime splits a lone frame differently: float32 rounding (< 1e-6 seen)."""
    runtime = create_runtime("onnxruntime", ensemble, threads=2)
    probability, _ = runtime.infer(polar)
    singles = np.concatenate([runtime.infer(polar[i : i + 1])[0] for i in range(len(polar))])
    assert np.abs(singles - probability).max() <= 1e-5
    clear = np.abs(probability - 0.5) > 1e-5
    assert np.array_equal((singles > 0.5)[clear], (probability > 0.5)[clear])


def test_float64_input_gives_the_float32_result(ort_runtime: EnsembleRuntime, polar: np.ndarray) -> None:
    assert np.array_equal(ort_runtime.infer(polar[:2].astype(np.float64))[0], ort_runtime.infer(polar[:2])[0])


def test_cpu_tensors_are_read_as_arrays(ort_runtime: EnsembleRuntime, polar: np.ndarray) -> None:
    assert np.array_equal(ort_runtime.infer(torch.from_numpy(polar[:1]))[0], ort_runtime.infer(polar[:1])[0])


def test_an_empty_batch_gives_empty_rows(ort_runtime: EnsembleRuntime) -> None:
    probability, spread = ort_runtime.infer(np.zeros((0, 128, 360), np.float32))
    assert probability.shape == spread.shape == (0, 360)


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.full((1, 128, 360), np.nan, np.float32), "NaN"),
        (np.full((2, 128, 360), np.inf, np.float32), "NaN or infinite"),
        (np.zeros((1, 128, 359), np.float32), r"shape \(batch, 128, 360\)"),
        (np.zeros((128, 360), np.float32), "shape"),
        (np.zeros((1, 128, 360), np.uint8), "divide by 255"),
    ],
)
def test_bad_frames_are_input_errors(ort_runtime: EnsembleRuntime, frames: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ort_runtime.infer(frames)


def test_describe_names_backend_device_threads_precision(ort_runtime: EnsembleRuntime,
                                                         ensemble: LoadedEnsemble) -> None:
    info = ort_runtime.describe()
    assert {"backend", "device", "threads", "precision", "model_id"} <= set(info)
    assert info["backend"] == "onnxruntime" and info["model_id"] == ensemble.model_id and info["threads"] >= 1


# --- the shared command-line options ---------------------------------------------------------------

def test_runtime_options_parse_into_create_runtime_arguments(tmp_path: Path) -> None:
    seen = {}

    @click.command()
    @runtime_options
    def command(backend: str, model: Path | None, device: str | None, precision: str | None,
                threads: int | None) -> None:
        seen.update(backend=backend, model=model, device=device, precision=precision, threads=threads)

    runner = CliRunner()
    result = runner.invoke(command,
                           ["--backend", "torch", "--model", str(tmp_path / "m.safetensors"), "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert seen == {"backend": "torch", "model": tmp_path / "m.safetensors", "device": None, "precision": None,
                    "threads": 2}
    assert runner.invoke(command, ["--device", "cuda:1", "--precision", "fp16"]).exit_code == 0
    assert seen["device"] == "cuda:1" and seen["precision"] == "fp16"
    assert runner.invoke(command, ["--precision", "int8"]).exit_code == 2
    assert runner.invoke(command, []).exit_code == 0 and seen["backend"] == "auto" and seen["model"] is None
    assert runner.invoke(command, ["--backend", "openvino"]).exit_code == 2
    assert runner.invoke(command, ["--threads", "0"]).exit_code == 2
