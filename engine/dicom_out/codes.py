"""Coded concepts of the SR and presentation state, each checked against the standard's code tables.

Sources (docs/dicom.md, "Codes"):
- DCM codes: PS3.16 Annex D, as generated into DCMTK's `dcmsr/codes/dcm.h` from PS3.16-2026b, and
  pydicom's code dictionary (`pydicom.sr.codedict.codes`); the two agree on every code used here.
- SCT and UCUM codes: pydicom's code dictionary, generated from the PS3.16 context groups named below.
- pydicom's keywords `EntirePullback` and `StentedRegion` (CID 3487) carry each other's meaning:
  PS3.16 defines DCM 122383 as "Entire Pullback" and 122384 as "Stented Region". ivuscal does not
  use them; `tests/test_dicom_codes.py` pins the swap so a fix in pydicom is noticed.
The IVUS calcium score (Zhang et al. 2021, engine/quantify/score.py) and the reliability flag
(engine/reliability.py) have no standard code, so they use the private coding scheme `99IVUSCAL`
(PS3.16 8.2: "99" prefixes a private scheme).
"""

from __future__ import annotations

from pydicom.sr.coding import Code

# DCM (PS3.16 Annex D)
CALCIUM_LENGTH = Code("122341", "DCM", "Calcium Length")  # CID 3483 IVUS Distance Measurements
ARC_OF_CALCIUM = Code("122355", "DCM", "Arc of Calcium")
MEASUREMENT_NOT_ATTEMPTED = Code("114007", "DCM", "Measurement not attempted")  # CID 42 Numeric Value Qualifier
IMAGING_MEASUREMENT_REPORT = Code("126000", "DCM", "Imaging Measurement Report")  # CID 7021
DEVICE_OBSERVER = Code("121007", "DCM", "Device")  # CID 270 Observer Type

# SCT (SNOMED CT)
VASCULAR_CALCIFICATION = Code("237897009", "SCT", "Vascular Calcification")  # CIDs 3491, 3495-3497, 7111
CORONARY_ARTERY = Code("41801008", "SCT", "Coronary artery")  # CIDs 4, 3010, 3604
INTRAVASCULAR_ULTRASOUND = Code("241466007", "SCT", "Intravascular ultrasound")  # CIDs 3405, 3428
MAXIMUM = Code("56851009", "SCT", "Maximum")  # CID 7464 General ROI Measurement Modifiers
YES = Code("373066001", "SCT", "Yes")  # CID 230 Yes-No
NO = Code("373067005", "SCT", "No")  # CID 230 Yes-No

# UCUM
MILLIMETRE = Code("mm", "UCUM", "mm")
DEGREE = Code("deg", "UCUM", "Degree")
POINTS = Code("{points}", "UCUM", "points")  # an annotation unit: a dimensionless count
PERCENT = Code("%", "UCUM", "Percent")

# Private: the IVUS calcium score (Zhang et al., Circ Cardiovasc Interv 2021;14:e010296)
PRIVATE_SCHEME = "99IVUSCAL"
PRIVATE_SCHEME_NAME = "ivuscal IVUS calcium score concepts"
SCORE_TOTAL = Code("CS-TOTAL", PRIVATE_SCHEME, "IVUS calcium score (assessed points)")
SCORE_ARC_OVER_LENGTH = Code("CS-ARC-LEN", PRIVATE_SCHEME, "Calcium arc > 270 deg over >= 5 mm (point)")
SCORE_FULL_CIRCLE = Code("CS-ARC-360", PRIVATE_SCHEME, "360 deg calcium arc (point)")
SCORE_CALCIFIED_NODULE = Code("CS-NODULE", PRIVATE_SCHEME, "Calcified nodule (point)")
SCORE_SMALL_VESSEL = Code("CS-VESSEL", PRIVATE_SCHEME, "Vessel diameter < 3.5 mm (point)")
# Private: the reliability flag (engine/reliability.py, docs/model.md): no standard code either
UNRELIABLE_SHARE = Code("REL-SHARE", PRIVATE_SCHEME, "Frames flagged low confidence (ensemble disagreement)")
UNRELIABLE_PULLBACK = Code("REL-PULLBACK", PRIVATE_SCHEME, "Pullback flagged low confidence (most frames)")
PRIVATE_SCHEME_ORGANIZATION = "ivuscal project"
