"""The result of one benchmark scenario: settings, a table of rows, headline figures, raw series."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.json_output import json_ready


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
        """JSON-ready form (engine.json_output: non-finite numbers become null, floats rounded)."""
        return {
            "name": self.name,
            "title": self.title,
            "skipped": self.skipped,
            "settings": json_ready(self.settings),
            "summary": json_ready(self.summary),
            "rows": json_ready(self.rows),
            "notes": list(self.notes),
        }


def skipped(name: str, title: str, reason: str, settings: dict | None = None) -> ScenarioResult:
    """A scenario that could not run here (no GPU, component missing), with the reason."""
    return ScenarioResult(name=name, title=title, settings=settings or {}, skipped=reason)

