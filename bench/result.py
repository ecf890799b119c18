"""The result of one benchmark scenario: settings, a table of rows, headline figures, raw series."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ScenarioResult:
    """What a scenario measured.

    `rows` become the scenario's Markdown table (one dict per row, same keys). `summary` holds
    the headline figures. `latencies_s` (label -> per-item seconds) and `memory` (label ->
    (x, rss_mib), x described by `memory_axis`) are plotted but not written to JSON. `skipped` says why nothing ran.
    """

    name: str
    title: str
    settings: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    latencies_s: dict[str, np.ndarray] = field(default_factory=dict)
    memory: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    memory_axis: str = "time (s)"
    skipped: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready form (non-finite numbers become null, so the file stays valid JSON)."""
        return {
            "name": self.name,
            "title": self.title,
            "skipped": self.skipped,
            "settings": _clean(self.settings),
            "summary": _clean(self.summary),
            "rows": _clean(self.rows),
            "notes": list(self.notes),
        }


def skipped(name: str, title: str, reason: str, settings: dict | None = None) -> ScenarioResult:
    """A scenario that could not run here (no GPU, component missing), with the reason."""
    return ScenarioResult(name=name, title=title, settings=settings or {}, skipped=reason)


def _clean(value):
    """Recursively turn NumPy scalars into Python numbers and NaN/inf into None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
