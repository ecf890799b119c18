"""Checks that a results.json is well formed: the keys a reader relies on, finite positive
figures, ordered percentiles. Used by the tests and handy before publishing a run."""

from __future__ import annotations

import itertools
import math

from engine.percentiles import PERCENTILES

MACHINE_KEYS = ("date_utc", "cpu", "logical_cores", "ram_gib", "versions", "load_average_start", "load_average_end")
SCENARIO_KEYS = ("name", "title", "skipped", "settings", "summary", "rows", "notes", "plots")
ORDER = tuple(name for name, _ in PERCENTILES) + ("max",)


def problems(document: dict) -> list[str]:
    """Everything wrong with a results document (an empty list when it is well formed)."""
    found = [f"machine: missing {k}" for k in MACHINE_KEYS if k not in document.get("machine", {})]
    scenarios = document.get("scenarios")
    if not isinstance(scenarios, list) or not scenarios:
        return found + ["no scenarios"]
    for scenario in scenarios:
        name = scenario.get("name", "?")
        found += [f"{name}: missing {k}" for k in SCENARIO_KEYS if k not in scenario]
        if scenario.get("skipped"):
            continue
        if not scenario.get("rows"):
            found.append(f"{name}: no table rows")
        found += _check_numbers(scenario.get("rows", []), f"{name}.rows")
        found += _check_numbers(scenario.get("summary", {}), f"{name}.summary")
    return found


def latency_summaries(node, path: str = "") -> list[tuple[str, dict]]:
    """Every dict below `node` that looks like a latency summary (has p50 and max)."""
    out = []
    if isinstance(node, dict):
        if "p50" in node and "max" in node:
            out.append((path, node))
        for key, value in node.items():
            out += latency_summaries(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += latency_summaries(value, f"{path}[{i}]")
    return out


def _check_numbers(node, path: str) -> list[str]:
    found = []
    for where, summary in latency_summaries(node, path):
        values = [summary.get(k) for k in ORDER if k in summary]
        if any(not _finite_positive(v) for v in values):
            found.append(f"{where}: latency figures must be finite and positive, got {values}")
        elif any(a > b for a, b in itertools.pairwise(values)):
            found.append(f"{where}: percentiles out of order {values}")
    for where, value in _numbers(node, path):
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            found.append(f"{where}: not a finite number ({value})")
        elif value < 0 and "slope" not in where and "growth" not in where:  # memory may shrink
            found.append(f"{where}: negative ({value})")
    return found


def _numbers(node, path: str):
    """(path, value) of every number (and null) below `node`; booleans are not numbers."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numbers(value, f"{path}[{i}]")
    elif node is None or (isinstance(node, (int, float)) and not isinstance(node, bool)):
        yield path, node


def _finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0
