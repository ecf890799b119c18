"""A softcopy presentation state that draws each frame's calcium arcs on the original pullback.

Grayscale (GSPS) for a monochrome source, colour (with an sRGB ICC profile) for a colour source,
built with highdicom's `pr`. One graphic annotation per calcified frame (`ReferencedFrameNumber`,
1-based) holds one POLYLINE per arc, in PIXEL units on a ring at the polar grid's reach around
the catheter centre, on one layer "CALCIUM" drawn in orange.
"""

from __future__ import annotations

from typing import TypedDict

import highdicom as hd
import numpy as np
from PIL import ImageCms
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from engine.dicom_out.polyline import arc_polyline
from engine.dicom_out.source import Equipment, is_colour
from engine.geometry import ring_radius_px
from engine.quantify import frame_arcs
from engine.report.build import FrameGeometry
from engine.report.result import AnalysisResult

SERIES_NUMBER = 9702
LAYER = "CALCIUM"
ORANGE_RGB = (255, 140, 0)  # engine/report/plots.py CALCIUM_COLOUR


class _CommonAttributes(TypedDict):
    """The constructor arguments the grayscale and the colour presentation state share."""

    referenced_images: list[Dataset]
    series_instance_uid: str
    series_number: int
    sop_instance_uid: str
    instance_number: int
    manufacturer: str
    manufacturer_model_name: str
    software_versions: str
    device_serial_number: str
    content_label: str
    content_description: str
    graphic_annotations: list[hd.pr.GraphicAnnotation]
    graphic_layers: list[hd.pr.GraphicLayer]
    series_description: str


def icc_profile_for(source: Dataset) -> bytes:
    """The ICC profile of a colour presentation state (PS3.3 C.11.15): the source's own, else sRGB.

    The standard asks for an input ('scnr') or colour-space ('spac') profile; Pillow's built-in sRGB
    is a display ('mntr') profile, so its header's device class (bytes 12-15) is set to 'spac' and its
    optional profile ID (bytes 84-99, MD5 over the header) cleared to zero, which means "not computed".
    """
    if "ICCProfile" in source:
        return bytes(source.ICCProfile)
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[12:16] = b"spac"
    profile[84:100] = bytes(16)
    return bytes(profile)


def _annotations(result: AnalysisResult, geometry: FrameGeometry, source: Dataset,
                 layer: hd.pr.GraphicLayer) -> list[hd.pr.GraphicAnnotation]:
    radius = ring_radius_px(geometry.center_rc, geometry.radius_px, (int(source.Rows), int(source.Columns)))
    annotations = []
    for index in np.flatnonzero(result.calcium.any(axis=1)).tolist():
        objects = [
            hd.pr.GraphicObject(
                graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
                graphic_data=arc_polyline(arc, geometry.center_rc, radius),
                units=hd.pr.AnnotationUnitsValues.PIXEL,
            )
            for arc in frame_arcs(result.calcium[index])
        ]
        annotations.append(hd.pr.GraphicAnnotation(
            referenced_images=[source], graphic_layer=layer, referenced_frame_number=index + 1, graphic_objects=objects,
        ))
    return annotations


def build_presentation_state(
    source: Dataset, result: AnalysisResult, geometry: FrameGeometry, equipment: Equipment | None = None
) -> hd.pr.GrayscaleSoftcopyPresentationState | hd.pr.ColorSoftcopyPresentationState:
    """The presentation state of one analysed pullback; `source` is its header (no pixel data needed)."""
    equipment = equipment or Equipment()
    layer = hd.pr.GraphicLayer(
        layer_name=LAYER, order=1, description="calcium arcs (ivuscal)",
        display_color=hd.color.CIELabColor.from_rgb(*ORANGE_RGB),
    )
    common: _CommonAttributes = {
        "referenced_images": [source],
        "series_instance_uid": generate_uid(),
        "series_number": SERIES_NUMBER,
        "sop_instance_uid": generate_uid(),
        "instance_number": 1,
        "manufacturer": equipment.manufacturer,
        "manufacturer_model_name": equipment.model_name,
        "software_versions": equipment.software_version,
        "device_serial_number": equipment.device_serial_number,
        "content_label": "CALCIUM_ARCS",
        "content_description": "Calcium arcs detected by ivuscal",
        "graphic_annotations": _annotations(result, geometry, source, layer),
        "graphic_layers": [layer],
        "series_description": "ivuscal calcium arcs",
    }
    state: hd.pr.GrayscaleSoftcopyPresentationState | hd.pr.ColorSoftcopyPresentationState
    if is_colour(source):
        state = hd.pr.ColorSoftcopyPresentationState(icc_profile=icc_profile_for(source), **common)
    else:
        state = _grayscale(source, common)
    # General Series Laterality (Type 2C, PS3.3 C.7.3.1) is needed unless the body part is known to be
    # unpaired: name it (the source's, else HEART) so that Laterality stays absent.
    state.BodyPartExamined = source.get("BodyPartExamined") or "HEART"
    return state


def _grayscale(source: Dataset, common: _CommonAttributes) -> hd.pr.GrayscaleSoftcopyPresentationState:
    # highdicom reads the LUTs of a multi-frame source from enhanced functional groups, which the
    # (legacy) Ultrasound Multi-frame Image does not have: give them explicitly, identity and full range.
    return hd.pr.GrayscaleSoftcopyPresentationState(
        modality_lut_transformation=hd.ModalityLUTTransformation(
            rescale_intercept=0.0, rescale_slope=1.0, rescale_type="US"
        ),
        voi_lut_transformations=[_full_range_window(source)],
        **common,
    )


def _full_range_window(source: Dataset) -> hd.pr.SoftcopyVOILUTTransformation:
    """A window over the source's whole stored range (no contrast change)."""
    levels = 2 ** int(source.get("BitsStored", 8))
    return hd.pr.SoftcopyVOILUTTransformation(window_center=levels / 2, window_width=float(levels))
