"""Arcs on the circle of angles (degrees, docs/conventions.md): union, difference, membership.

An arc is `(start_deg, extent_deg)`: it runs clockwise (increasing angle) from `start_deg`
in [0, 360) over `extent_deg` in (0, 360]; `(0.0, 360.0)` is the full circle.
"""

from __future__ import annotations

from engine.truth import angles_in_arcs

Arc = tuple[float, float]
FULL: Arc = (0.0, 360.0)


def _segments(arcs: list[Arc]) -> list[tuple[float, float]]:
    """Non-wrapping [a, b) pieces of [0, 360) covered by the arcs."""
    out: list[tuple[float, float]] = []
    for start, extent in arcs:
        if extent <= 0:
            continue
        if extent >= 360.0:
            return [(0.0, 360.0)]
        a = float(start) % 360.0
        b = a + float(extent)
        if b <= 360.0:
            out.append((a, b))
        else:
            out.extend([(a, 360.0), (0.0, b - 360.0)])
    return out


def _merge(segments: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for a, b in sorted(segments):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _to_arcs(segments: list[tuple[float, float]]) -> list[Arc]:
    """Merged pieces back to arcs, joining a piece that ends at 360 with one starting at 0."""
    segs = _merge(segments)
    if not segs:
        return []
    if len(segs) == 1 and segs[0] == (0.0, 360.0):
        return [FULL]
    if len(segs) > 1 and segs[0][0] <= 0.0 and segs[-1][1] >= 360.0:
        first, last = segs[0], segs[-1]
        segs = segs[1:-1] + [(last[0], 360.0 + first[1])]
    return [(a % 360.0, b - a) for a, b in sorted(segs)]


def union(arcs: list[Arc]) -> list[Arc]:
    """Disjoint arcs covering the same angles, sorted by start."""
    return _to_arcs(_segments(arcs))


def difference(arcs: list[Arc], remove: list[Arc]) -> list[Arc]:
    """Angles in `arcs` but not in `remove`."""
    keep = _merge(_segments(arcs))
    for ra, rb in _merge(_segments(remove)):
        nxt: list[tuple[float, float]] = []
        for a, b in keep:
            if rb <= a or ra >= b:
                nxt.append((a, b))
                continue
            if a < ra:
                nxt.append((a, ra))
            if rb < b:
                nxt.append((rb, b))
        keep = nxt
    return _to_arcs(keep)


contains = angles_in_arcs  # membership belongs to the truth format, which the engine reads too


def total_extent(arcs: list[Arc]) -> float:
    """Degrees covered by the union of the arcs."""
    return float(sum(extent for _, extent in union(arcs)))
