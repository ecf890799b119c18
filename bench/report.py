"""Write a benchmark run to disk: results.json, results.md and PNG plots in one folder."""

from __future__ import annotations

from pathlib import Path

from bench.machine import load_average
from bench.plots import plot_latency_cdf, plot_memory
from bench.result import ScenarioResult
from engine import atomic
from engine.json_output import write_json


def write_report(out_dir: Path, machine: dict, results: list[ScenarioResult]) -> dict[str, Path]:
    """Write JSON, Markdown and plots for `results`; returns the paths written by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    machine = {**machine, "load_average_end": load_average()}
    plots: dict[str, list[str]] = {}
    for result in results:
        names = []
        if result.latencies_s:
            path = plot_latency_cdf(result.latencies_s, out_dir / f"{result.name}_latency_cdf.png", result.title)
            names.append(path.name)
        if result.memory:
            path = plot_memory(result.memory, out_dir / f"{result.name}_memory.png", result.title, result.memory_axis)
            names.append(path.name)
        plots[result.name] = names
    document = {
        "format": "ivuscal-bench/1",
        "machine": machine,
        "scenarios": [{**r.to_dict(), "plots": plots[r.name]} for r in results],
    }
    json_path = out_dir / "results.json"
    write_json(json_path, document)
    md_path = out_dir / "results.md"
    atomic.write_text(md_path, markdown_report(document))
    written = {"json": json_path, "markdown": md_path}
    for names in plots.values():
        for name in names:
            written[name] = out_dir / name
    return written


def markdown_report(document: dict) -> str:
    """The whole run as Markdown: machine and versions, then one section per scenario."""
    m = document["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"# ivuscal benchmark, {m['date_utc']}",
        "",
        f"- Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['ram_gib']} GiB RAM"
        + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"),
        f"- Software: {versions}; torch threads {m['torch_threads']}; commit {m.get('git_commit') or 'unknown'}",
        (
            f"- Load average (1/5/15 min) at start {_triple(m['load_average_start'])}, "
            f"at end {_triple(m['load_average_end'])}; per scenario in its settings "
            "(other work on the machine makes timings noisy)"
        ),
        "",
    ]
    for scenario in document["scenarios"]:
        lines += scenario_markdown(scenario)
    return "\n".join(lines) + "\n"


def scenario_markdown(scenario: dict) -> list[str]:
    """One scenario's section: settings, table, notes and plot links."""
    lines = [f"## {scenario['title']}", ""]
    if scenario["skipped"]:
        return lines + [f"Skipped: {scenario['skipped']}", ""]
    if scenario["settings"]:
        lines += ["Settings: " + ", ".join(f"{k}={_fmt(v)}" for k, v in scenario["settings"].items()), ""]
    lines += markdown_table(scenario["rows"])
    lines += [f"- {note}" for note in scenario["notes"]]
    lines += [f"![{name}]({name})" for name in scenario.get("plots", [])]
    return lines + [""]


def markdown_table(rows: list[dict]) -> list[str]:
    """A GitHub Markdown table of dict rows (columns in first-seen order)."""
    if not rows:
        return []
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return lines + [""]


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "/".join(_fmt(v) for v in value)
    return str(value)


def _triple(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)
