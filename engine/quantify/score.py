"""Arc-based points of the IVUS calcium score and the calcium-arc grade.

IVUS calcium score as commonly cited from Zhang et al., "Intravascular ultrasound-derived
calcium score to predict stent expansion in severely calcified lesions", Circ Cardiovasc Interv
2021;14:e010296. One point each for:
1. superficial calcium arc > 270 degrees over >= 5 mm of length;
2. a 360-degree superficial calcium arc;
3. a calcified nodule;
4. a vessel diameter < 3.5 mm.
The detector has no depth, so every detected arc is taken as superficial (an assumption: deep
calcium would be over-counted). Points 3 and 4 are "not assessed" unless the user supplies them.

Calcium-arc grade by quadrant: 0 none, 1 <= 90, 2 <= 180, 3 <= 270, 4 > 270 degrees (the
quadrant grading of IVUS calcium arc, Mintz et al., Circulation 1995;91:1959-65).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

NOT_ASSESSED = "not assessed"


@dataclass(frozen=True)
class ScoreSettings:
    """Thresholds of the score; defaults are Zhang et al. 2021."""

    arc_deg: float = 270.0  # arc strictly greater than this ...
    arc_length_mm: float = 5.0  # ... over at least this length scores a point
    vessel_diameter_mm: float = 3.5  # a vessel narrower than this scores a point

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ClinicalFindings:
    """What the detector cannot see; supplied by the user, None when not assessed."""

    calcified_nodule: bool | None = None
    vessel_diameter_mm: float | None = None


@dataclass(frozen=True)
class CalciumScore:
    """The score's points; None means not assessed."""

    arc_over_length: int
    full_circle: int
    calcified_nodule: int | None
    small_vessel: int | None

    @property
    def total(self) -> int:
        """Sum of the assessed points."""
        return sum(p for p in (self.arc_over_length, self.full_circle, self.calcified_nodule, self.small_vessel) if p)

    @property
    def complete(self) -> bool:
        """True when all four points were assessed."""
        return self.calcified_nodule is not None and self.small_vessel is not None

    def to_dict(self) -> dict:
        def show(p: int | None) -> int | str:
            return NOT_ASSESSED if p is None else p

        return {
            "arc_gt_threshold_over_length": self.arc_over_length,
            "arc_360": self.full_circle,
            "calcified_nodule": show(self.calcified_nodule),
            "vessel_diameter_small": show(self.small_vessel),
            "total_assessed": self.total,
            "complete": self.complete,
        }


def calcium_score(
    longest_arc_run_mm: float, has_full_circle: bool, settings: ScoreSettings, findings: ClinicalFindings
) -> CalciumScore:
    """Points from the longest run of frames whose arc exceeds `settings.arc_deg` and the 360 flag."""
    small = findings.vessel_diameter_mm
    return CalciumScore(
        arc_over_length=int(longest_arc_run_mm >= settings.arc_length_mm - 1e-9),
        full_circle=int(has_full_circle),
        calcified_nodule=None if findings.calcified_nodule is None else int(findings.calcified_nodule),
        small_vessel=None if small is None else int(small < settings.vessel_diameter_mm),
    )


def arc_grade(arc_deg: float) -> int:
    """Quadrant grade of a calcium arc: 0 none, 1 <= 90, 2 <= 180, 3 <= 270, 4 > 270 degrees."""
    if arc_deg <= 0:
        return 0
    for grade, limit in enumerate((90.0, 180.0, 270.0), start=1):
        if arc_deg <= limit:
            return grade
    return 4
