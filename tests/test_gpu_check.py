"""bench/gpu_check.py on a machine like the bare GPU one: no TensorRT, pyzmq or pydicom importable.

The check's CPU-runnable parts (environment, filter and pipeline parity, speed, the JSON) run in
a subprocess where those packages cannot be found (ModuleNotFoundError), as they would be there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.model.weights import LoadedEnsemble

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("zmq", "pydicom", "tensorrt")

SCRIPT = """
import json, sys
from importlib.machinery import PathFinder
BLOCKED = {blocked!r}
_find_spec = PathFinder.find_spec.__func__

def find_spec(cls, name, path=None, target=None):
    # as if not installed: no spec, so `import` raises ModuleNotFoundError and find_spec gives None
    return None if name.split(".")[0] in BLOCKED else _find_spec(cls, name, path, target)

PathFinder.find_spec = classmethod(find_spec)
assert all(m.split(".")[0] not in BLOCKED for m in sys.modules)
import numpy as np
from click.testing import CliRunner
from bench import gpu_check
from engine.runtimes import create_runtime

cpu = create_runtime("onnxruntime", {model!r}, device="cpu", threads=1)
torch_cpu = create_runtime("torch", {model!r}, device="cpu", threads=1)
polar = gpu_check.frames(4)
result = {{
    "environment": gpu_check.environment(),
    "filter": gpu_check.filter_parity(np),
    "pipeline": gpu_check.pipeline_parity(cpu, torch_cpu, n_frames=16),
    "compare": gpu_check.compare(torch_cpu.infer(polar), cpu.infer(polar)),
    "speed": gpu_check.speed(cpu, (1,), seconds=0.1),
}}
cli = CliRunner().invoke(gpu_check.main, ["--out", {out!r}, "--no-tests", "--model", {model!r}])
result["cli_exit"] = cli.exit_code
result["cli_output"] = cli.output
result["blocked_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
try:
    import zmq  # noqa: F401 - installed here: the blocker must hide it
    result["blocker_works"] = False
except ModuleNotFoundError:
    result["blocker_works"] = True
print(json.dumps(result))
"""


@pytest.mark.slow
def test_gpu_check_runs_without_tensorrt_pyzmq_or_pydicom(ensemble: LoadedEnsemble, tmp_path: Path) -> None:
    out = tmp_path / "gpu-check.json"
    code = SCRIPT.format(blocked=BLOCKED, model=str(ensemble.path), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["blocker_works"] and result["blocked_loaded"] == []
    assert result["environment"]["tensorrt"] is None and result["environment"]["auto_backend"] == "onnxruntime"
    assert result["filter"]["final_identical"] and result["filter"]["provisional_identical"]
    assert result["pipeline"]["final_cells_identical"] == 1.0
    assert result["compare"]["votes_differing_outside_band"] == 0 and result["compare"]["max_abs_prob"] < 1e-4
    assert result["speed"]["1"]["frames_per_s"] > 0
    # Without a GPU the command says so and still leaves its JSON with the environment.
    assert result["cli_exit"] != 0 and "no CUDA GPU" in result["cli_output"]
    assert json.loads(out.read_text())["environment"]["python"]
