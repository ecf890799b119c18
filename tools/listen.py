"""`ivuscal listen`: subscribe to the engine's results and show the calcium arcs live.

One line per frame: frame index, position, a 360-degree bar of the provisional arcs (each
character is 360/width degrees, '#' calcified), the total arc, and the lesion status.
`--record FILE` appends every received event body (msgpack maps, concatenated) to FILE.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import click

from engine.streaming.auth import client_keys
from engine.streaming.cli import client_key_options
from engine.streaming.subscriber import subscribe

DEFAULT_ADDRESS = "tcp://127.0.0.1:5556"


def arc_bar(arcs: list[list[float]], width: int = 36) -> str:
    """The circle as `width` cells from 0 degrees clockwise; a cell is '#' when its centre is in an arc."""
    cells = []
    for i in range(width):
        centre = (i + 0.5) * 360.0 / width
        inside = any(_in_arc(centre, start, end) for start, end, _ in arcs)
        cells.append("#" if inside else ".")
    return "".join(cells)


def _in_arc(angle: float, start: float, end: float) -> bool:
    if start < end:
        return start <= angle < end
    return angle >= start or angle < end  # across 0 degrees, or the full circle (start == 0, end == 360)


def format_event(event: dict[str, Any], width: int = 36) -> str | None:
    """A terminal line for an event, or None for events not shown (final rows, heartbeats)."""
    kind = event.get("kind")
    stream = event.get("stream")
    if kind == "result":
        prov = event["provisional"]
        lesion = event.get("lesion", {})
        status = "IN CALCIUM" if lesion.get("in_calcium") else "-"
        return (
            f"{stream} {event['frame']:5d} {event['position_mm']:7.2f} mm |{arc_bar(prov['arcs'], width)}| "
            f"{prov['total_arc_deg']:5.1f} deg  lesions {lesion.get('lesions_closed', 0)} {status}"
        )
    if kind == "summary":
        summary = event.get("summary") or {}
        score = (summary.get("score") or {}).get("total_assessed")
        return (f"{stream} pullback {event['pullback']} ended: {event['n_frames']} frames, "
                f"{len(summary.get('lesions', []))} lesions, max arc {summary.get('max_arc_deg', 0):.1f} deg, "
                f"calcium score {score}")
    if kind == "started":
        return f"{stream} pullback {event['pullback']} started ({event['layout']} {event['shape']})"
    if kind in ("error", "drop"):
        return f"{stream} {kind.upper()}: {event.get('reason')} (frame {event.get('frame', '-')})"
    if kind == "gap":
        return f"{stream} GAP: {event.get('reason', 'sequence')} {event.get('frames', event.get('seq'))}"
    return None


@click.command(name="listen")
@click.option("--from", "address", default=DEFAULT_ADDRESS, show_default=True,
              help="The engine's results address (SUB connects).")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append every event (msgpack) to this file.")
@click.option("--stream", default=None, help="Show only this stream id.")
@click.option("--final", "show_final", is_flag=True, help="Also print a line per final frame.")
@click.option("--heartbeats", is_flag=True, help="Also print heartbeats.")
@click.option("--summaries", type=click.IntRange(1), default=None, help="Exit after this many pullback summaries.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1), default=None,
              help="Exit after this many seconds without events.")
@client_key_options
def command(address: str, record: Path | None, stream: str | None, show_final: bool, heartbeats: bool,
            summaries: int | None, timeout_s: float | None, server_key: Path | None, client_key: Path | None) -> None:
    """Subscribe to the engine and print one line per frame with its calcium arcs."""

    def show(event: dict[str, Any]) -> None:
        if stream is not None and event.get("stream") not in (stream, None):
            return
        if event.get("kind") == "heartbeat" and heartbeats:
            click.echo(
                f"heartbeat {event.get('backend')} {event.get('model')} queue {event.get('queue_depth')} "
                f"{event.get('frames_per_s', 0):.1f} frames/s dropped {event.get('frames_dropped')}"
            )
        line = format_event(event)
        if line:
            click.echo(line)
        if show_final:
            for final in event.get("final", []) if event.get("kind") in ("result", "final", "gap") else []:
                click.echo(f"{event.get('stream')} {final['frame']:5d} {final['position_mm']:7.2f} mm "
                           f"|{arc_bar(final['arcs'])}| {final['total_arc_deg']:5.1f} deg  FINAL")

    keys = client_keys(server_key, client_key)
    stop = threading.Event()
    handle = open(record, "ab") if record else None
    try:
        subscribe(address, show, stop, handle, summaries, timeout_s, keys=keys)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if handle:
            handle.close()
