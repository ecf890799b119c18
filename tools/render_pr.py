"""Draw a presentation state's graphic annotations on the frames of the pullback it references (a PNG).

Reads only the presentation state's own content (referenced frames, POLYLINE graphic data in
PIXEL units, the layers' display colours), never ivuscal's analysis, so the picture shows what a
viewer applying the presentation state shows. Used for the screenshot in docs/dicom.md:

    python -m tools.render_pr PULLBACK.dcm DIR/calcium_arcs_pr.dcm --frame 30 --frame 60 --out arcs.png

(DCMTK's dcmp2pgm applies a presentation state's grayscale pipeline but draws no graphic
annotations, so it cannot show them.)
"""

from __future__ import annotations

from pathlib import Path

import click
import matplotlib

matplotlib.use("Agg")
import highdicom as hd
import matplotlib.pyplot as plt
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from engine.dicom import open_pullback
from engine.errors import InputError


def frame_polylines(state: Dataset) -> dict[int, list[tuple[np.ndarray, tuple[float, float, float]]]]:
    """1-based frame number -> [((N, 2) column-row points, RGB colour in 0..1)] of every POLYLINE in PIXEL units."""
    colours = {
        layer.GraphicLayer: tuple(c / 255 for c in hd.color.CIELabColor.from_dicom_value(
            layer.GraphicLayerRecommendedDisplayCIELabValue).to_rgb(clip=True))
        for layer in state.get("GraphicLayerSequence", []) if "GraphicLayerRecommendedDisplayCIELabValue" in layer
    }
    drawn: dict[int, list] = {}
    for annotation in state.get("GraphicAnnotationSequence", []):
        colour = colours.get(annotation.GraphicLayer, (1.0, 1.0, 0.0))
        for image in annotation.ReferencedImageSequence:
            for frame in np.atleast_1d(image.get("ReferencedFrameNumber", 1)):
                for graphic in annotation.get("GraphicObjectSequence", []):
                    if graphic.GraphicType == "POLYLINE" and graphic.GraphicAnnotationUnits == "PIXEL":
                        points = np.reshape(np.asarray(graphic.GraphicData, dtype=float), (-1, 2))
                        drawn.setdefault(int(frame), []).append((points, colour))
    return drawn


@click.command()
@click.argument("pullback", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("presentation_state", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--frame", "frames", type=click.IntRange(min=1), multiple=True, required=True,
              help="1-based frame number to draw (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
def main(pullback: Path, presentation_state: Path, frames: tuple[int, ...], out: Path) -> None:
    """Render FRAMEs of PULLBACK with the arcs of PRESENTATION_STATE drawn on them."""
    state = pydicom.dcmread(presentation_state)
    drawn = frame_polylines(state)
    fig, axes = plt.subplots(1, len(frames), figsize=(3.4 * len(frames), 3.6), dpi=100, squeeze=False)
    with open_pullback(pullback, overrides=None) as source:
        for ax, number in zip(axes[0], frames, strict=True):
            if number > source.info.n_frames:
                raise InputError(f"frame {number} is beyond the pullback's {source.info.n_frames} frames")
            image = source.read_frames(number - 1, number)[0]
            rows, cols = image.shape
            # PIXEL coordinates put 0\0 at the top-left pixel's corner: the extent makes pixel centres x + 0.5
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, extent=(0, cols, rows, 0))
            for points, colour in drawn.get(number, []):
                ax.plot(points[:, 0], points[:, 1], color=colour, lw=2.2)
            ax.set_title(f"frame {number}: {len(drawn.get(number, []))} arc(s) in the PR", fontsize=9)
            ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


if __name__ == "__main__":
    main()
