"""The one way the project writes JSON: plain types, published rounding, valid JSON, atomic.

`json_ready` turns NumPy scalars and arrays into Python numbers and lists, tuples into lists,
non-finite floats into `null` (JSON has no NaN), and rounds every float to
`SIGNIFICANT_DIGITS` significant digits (docs/conventions.md, "Published numbers"): binary
floating-point noise such as `4.9999999995` for 5 mm disappears, while every figure keeps more
digits than the data it was computed from (float32 probabilities carry about 7).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from engine import atomic

SIGNIFICANT_DIGITS = 9


def round_float(value: float, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """`value` rounded to `digits` significant digits; None for NaN and infinities."""
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def json_ready(value: Any, digits: int | None = SIGNIFICANT_DIGITS) -> Any:
    """`value` with only JSON types: dicts (string keys), lists, str, int, bool, None, floats rounded
    to `digits` significant digits (`digits=None`: exact, for state that must round-trip)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist(), digits)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round_float(value, digits) if digits is not None else (value if math.isfinite(value) else None)
    return value


def dumps(data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """`data` as JSON text (through `json_ready`), ending with a newline."""
    return _encode(json_ready(data), indent, sort_keys)


def write_json(
    path: Path | str, data: Any, *, indent: int | None = 2, sort_keys: bool = False,
    digits: int | None = SIGNIFICANT_DIGITS,
) -> Any:
    """Write `data` to `path` atomically as JSON; returns what was written (the `json_ready` form).

    Published files keep the default rounding; internal state read back by the program (training
    checkpoints, cache indexes) passes `digits=None` so that it round-trips exactly.
    """
    ready = json_ready(data, digits)
    atomic.write_text(path, _encode(ready, indent, sort_keys))
    return ready


def _encode(ready: Any, indent: int | None, sort_keys: bool) -> str:
    return json.dumps(ready, indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"
