"""Lesions: runs of calcified frames along the pullback, tracked as final rows arrive.

A frame is calcified when its largest arc exceeds `min_arc_deg` (default: any calcium). Runs of
calcified frames separated by a gap shorter than `merge_gap_mm` (default 1.0 mm) are one lesion;
the gap frames belong to the lesion but hold no calcium. Each frame stands for one frame spacing
of vessel, so a lesion of `n` frames is `n * spacing` mm long; its start/end positions are those
of its first/last frame (`index * spacing`, docs/conventions.md).

The streaming `LesionTracker` and the offline `summarize_pullback` are the same code: the offline
summary feeds every final row to a tracker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from engine.errors import InputError
from engine.quantify.arcs import Arc, frame_arcs, largest_arc_deg
from engine.quantify.score import CalciumScore, ClinicalFindings, ScoreSettings, arc_grade, calcium_score

FULL_CIRCLE_DEG = 360.0


@dataclass(frozen=True)
class QuantifySettings:
    """Parameters of lesion detection and scoring."""

    merge_gap_mm: float = 1.0
    min_arc_deg: float = 0.0
    length_arc_deg: tuple[float, ...] = (180.0, 270.0)  # report the longest run above each
    score: ScoreSettings = field(default_factory=ScoreSettings)

    def to_dict(self) -> dict:
        return {**asdict(self), "length_arc_deg": list(self.length_arc_deg)}


@dataclass(frozen=True)
class Lesion:
    """One calcified segment of the pullback."""

    start_frame: int
    end_frame: int
    start_mm: float
    end_mm: float
    length_mm: float
    calcified_frames: int
    max_arc_deg: float
    max_arc_frame: int
    mean_arc_deg: float  # over the lesion's calcified frames
    longest_run_mm: dict[float, float]  # arc threshold (deg) -> longest run of frames above it (mm)
    has_360: bool
    grade: int
    score: CalciumScore

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("score", "longest_run_mm")}
        for threshold, length in self.longest_run_mm.items():
            data[f"longest_arc_gt_{threshold:g}_mm"] = length
        data["score"] = self.score.to_dict()
        return data


class _Builder:
    """Running statistics of the lesion being built."""

    def __init__(self, start: int, thresholds: tuple[float, ...]) -> None:
        self.start = self.end = start
        self.calcified = 0
        self.arc_sum = 0.0
        self.max_arc = -1.0
        self.max_frame = start
        self.has_360 = False
        self.run = {t: 0 for t in thresholds}
        self.longest = {t: 0 for t in thresholds}

    def add_gap(self, n: int) -> None:
        """Absorb `n` uncalcified frames between two calcified ones."""
        self.end += n
        self.run = dict.fromkeys(self.run, 0)

    def add(self, index: int, arc: float) -> None:
        self.end = index
        self.calcified += 1
        self.arc_sum += arc
        if arc > self.max_arc:
            self.max_arc, self.max_frame = arc, index
        self.has_360 = self.has_360 or arc >= FULL_CIRCLE_DEG
        for t in self.run:
            self.run[t] = self.run[t] + 1 if arc > t else 0
            self.longest[t] = max(self.longest[t], self.run[t])


class LesionTracker:
    """Running lesion summary from final calcium rows, given in frame order from frame 0."""

    def __init__(
        self,
        frame_spacing_mm: float,
        settings: QuantifySettings | None = None,
        findings: ClinicalFindings | None = None,
    ) -> None:
        if not np.isfinite(frame_spacing_mm) or frame_spacing_mm <= 0:
            raise InputError(f"frame spacing must be a positive number of mm, got {frame_spacing_mm!r}")
        self.spacing = float(frame_spacing_mm)
        self.settings = settings or QuantifySettings()
        self.findings = findings or ClinicalFindings()
        self._thresholds = tuple(sorted({*self.settings.length_arc_deg, self.settings.score.arc_deg}))
        self.lesions: list[Lesion] = []
        self.n_frames = 0
        self.calcified_frames = 0
        self.max_arc_deg = 0.0
        self.max_arc_frame: int | None = None
        self._open: _Builder | None = None
        self._gap = 0  # uncalcified frames since the open lesion's last calcified frame

    def update(self, index: int, row: np.ndarray, arcs: list[Arc] | None = None) -> list[Lesion]:
        """Add final frame `index`; return the lesions this frame closed (at most one).

        `arcs` are the row's arcs when the caller already has them (the pipeline does).
        """
        if index != self.n_frames:
            raise InputError(f"lesion tracker expected frame {self.n_frames}, got frame {index}")
        self.n_frames += 1
        arc = largest_arc_deg(frame_arcs(row) if arcs is None else arcs)
        if arc > self.max_arc_deg:
            self.max_arc_deg, self.max_arc_frame = arc, index
        closed: list[Lesion] = []
        if arc > self.settings.min_arc_deg:
            self.calcified_frames += 1
            if self._open is None:
                self._open = _Builder(index, self._thresholds)
            elif self._gap:
                self._open.add_gap(self._gap)
            self._gap = 0
            self._open.add(index, arc)
        elif self._open is not None:
            self._gap += 1
            if self._gap * self.spacing >= self.settings.merge_gap_mm - 1e-9:
                closed.append(self._close())
        return closed

    def finish(self) -> list[Lesion]:
        """End of pullback: close the open lesion, if any, and return it."""
        return [self._close()] if self._open is not None else []

    @property
    def open_lesion(self) -> Lesion | None:
        """The lesion still being built (its figures may grow), or None."""
        return self._lesion(self._open) if self._open is not None else None

    def summary(self) -> PullbackSummary:
        """The pullback so far: closed lesions plus the open one."""
        lesions = self.lesions + ([self._lesion(self._open)] if self._open is not None else [])
        best = max(lesions, key=lambda les: (les.score.total, les.max_arc_deg), default=None)
        return PullbackSummary(
            n_frames=self.n_frames,
            frame_spacing_mm=self.spacing,
            calcium_length_mm=self.calcified_frames * self.spacing,
            calcified_frames=self.calcified_frames,
            max_arc_deg=self.max_arc_deg,
            max_arc_frame=self.max_arc_frame,
            lesions=lesions,
            score=best.score if best else calcium_score(0.0, False, self.settings.score, self.findings),
            score_lesion=lesions.index(best) if best else None,
            grade=arc_grade(self.max_arc_deg),
            settings=self.settings,
        )

    def _close(self) -> Lesion:
        if self._open is None:
            raise RuntimeError("no open lesion to close")
        lesion = self._lesion(self._open)
        self.lesions.append(lesion)
        self._open, self._gap = None, 0
        return lesion

    def _lesion(self, b: _Builder) -> Lesion:
        s = self.spacing
        longest = {t: b.longest[t] * s for t in self._thresholds}
        return Lesion(
            start_frame=b.start,
            end_frame=b.end,
            start_mm=b.start * s,
            end_mm=b.end * s,
            length_mm=(b.end - b.start + 1) * s,
            calcified_frames=b.calcified,
            max_arc_deg=b.max_arc,
            max_arc_frame=b.max_frame,
            mean_arc_deg=b.arc_sum / b.calcified,
            longest_run_mm={t: longest[t] for t in self.settings.length_arc_deg},
            has_360=b.has_360,
            grade=arc_grade(b.max_arc),
            score=calcium_score(longest[self.settings.score.arc_deg], b.has_360, self.settings.score, self.findings),
        )


@dataclass(frozen=True)
class PullbackSummary:
    """Per-pullback results: lesions, maximum arc, calcium length and the calcium score."""

    n_frames: int
    frame_spacing_mm: float
    calcium_length_mm: float
    calcified_frames: int
    max_arc_deg: float
    max_arc_frame: int | None
    lesions: list[Lesion]
    score: CalciumScore  # of the highest-scoring lesion (ties: the larger arc)
    score_lesion: int | None
    grade: int
    settings: QuantifySettings

    @property
    def pullback_length_mm(self) -> float:
        return self.n_frames * self.frame_spacing_mm

    def to_dict(self) -> dict:
        return {
            "n_frames": self.n_frames,
            "frame_spacing_mm": self.frame_spacing_mm,
            "pullback_length_mm": self.pullback_length_mm,
            "calcium_length_mm": self.calcium_length_mm,
            "calcified_frames": self.calcified_frames,
            "max_arc_deg": self.max_arc_deg,
            "max_arc_frame": self.max_arc_frame,
            "grade": self.grade,
            "score": self.score.to_dict(),
            "score_lesion": self.score_lesion,
            "lesions": [lesion.to_dict() for lesion in self.lesions],
            "quantify_settings": self.settings.to_dict(),
        }


def summarize_pullback(
    calcium: np.ndarray,
    frame_spacing_mm: float,
    settings: QuantifySettings | None = None,
    findings: ClinicalFindings | None = None,
) -> PullbackSummary:
    """Offline summary of a whole filtered map (frames, A): the streaming tracker fed every row."""
    calcium = np.asarray(calcium)
    if calcium.ndim != 2:
        raise InputError(f"calcium map must be 2-D (frames, A-lines), got shape {calcium.shape}")
    tracker = LesionTracker(frame_spacing_mm, settings, findings)
    for index, row in enumerate(calcium):
        tracker.update(index, row)
    tracker.finish()
    return tracker.summary()
