"""Vendor-like burnt-in annotations: device text, frame counter and position, a 1 mm scale bar
and depth marks. Coloured in RGB exports, light grey in grayscale ones.

The static part is drawn once into a mask; per-frame text is stamped from cached glyph masks,
so annotating costs little per frame.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tools.simulator.config import PullbackConfig

PALETTES = [  # (text, scale, marks) RGB
    ((255, 230, 40), (80, 230, 255), (60, 255, 90)),
    ((120, 255, 120), (255, 255, 255), (255, 190, 40)),
    ((240, 240, 240), (255, 120, 60), (90, 200, 255)),
]


class GlyphCache:
    """Boolean masks of single characters in one font."""

    def __init__(self, size: int) -> None:
        self.font = ImageFont.load_default(size=size)
        self.height = size + 4
        self._masks: dict[str, np.ndarray] = {}

    def mask(self, ch: str) -> np.ndarray:
        if ch not in self._masks:
            width = max(int(np.ceil(self.font.getlength(ch))), 1)
            img = Image.new("L", (width, self.height), 0)
            ImageDraw.Draw(img).text((0, 0), ch, fill=255, font=self.font)
            self._masks[ch] = np.asarray(img) > 110
        return self._masks[ch]

    def text_mask(self, text: str) -> np.ndarray:
        return np.concatenate([self.mask(ch) for ch in text], axis=1)


class Annotator:
    """Burns the overlay of one pullback into its frames."""

    def __init__(self, config: PullbackConfig, calibration, seed: int) -> None:
        rng = np.random.default_rng([seed, 7])
        self.config = config
        size = config.image_size
        self.size = size
        self.rgb = config.color == "rgb"
        palette = PALETTES[int(rng.integers(len(PALETTES)))]
        self.text_colour = palette[0] if self.rgb else (235, 235, 235)
        self.glyphs = GlyphCache(max(10, size // 36))
        self.margin = max(4, size // 64)
        self.position_step = config.frame_step_mm
        self.static_mask, self.static_colour = self._static(config, calibration, palette, rng)

    def _static(self, config, calibration, palette, rng):
        size, m = self.size, self.margin
        img = Image.new("RGB", (size, size), (0, 0, 0))
        draw = ImageDraw.Draw(img)
        font = self.glyphs.font
        style = config.style
        text = palette[0] if self.rgb else (235, 235, 235)
        scale = palette[1] if self.rgb else (210, 210, 210)
        marks = palette[2] if self.rgb else (190, 190, 190)
        draw.text((m, m), f"{style.model_name.split()[0]}  {style.frequency_mhz:.0f} MHz", fill=text, font=font)
        draw.text((size - m - font.getlength("00 fps 0.0 mm/s"), m),
                  f"{config.fps:.0f} fps {config.pullback_rate_mm_s:.1f} mm/s", fill=text, font=font)
        px = calibration.pixel_spacing_mm[1]
        bar = int(round(1.0 / px))
        y = size - m - 6
        x1 = size - m
        draw.line([(x1 - bar, y), (x1, y)], fill=scale, width=2)
        for x in (x1 - bar, x1 - bar // 2, x1):
            draw.line([(x, y - 5), (x, y)], fill=scale, width=2)
        draw.text((x1 - bar, y - 10 - self.glyphs.height), "1 mm", fill=scale, font=font)
        if rng.random() < 0.6:  # depth marks every mm along two axes, as several consoles show
            r0, c0 = calibration.centre_rc
            for k in range(1, int(size * px / 2)):
                d = int(round(k / px))
                for (r, c) in ((r0, c0 + d), (r0 - d, c0)):
                    draw.ellipse([c - 1, r - 1, c + 1, r + 1], fill=marks)
        rgb = np.asarray(img)
        return rgb.any(axis=-1), rgb

    def apply(self, frames: np.ndarray, idx: np.ndarray) -> None:
        """Draw the overlay into `frames` (n, H, W) or (n, H, W, 3) in place."""
        mask = self.static_mask
        if self.rgb:
            frames[:, mask] = self.static_colour[mask]
        else:
            frames[:, mask] = self.static_colour[mask][:, 0]
        row = self.size - self.margin - self.glyphs.height
        for i, frame_index in enumerate(idx):
            label = f"Frame {int(frame_index) + 1:04d}   {frame_index * self.position_step:6.2f} mm"
            self._stamp(frames[i], label, row, self.margin)

    def _stamp(self, frame: np.ndarray, text: str, row: int, col: int) -> None:
        mask = self.glyphs.text_mask(text)
        h, w = mask.shape
        w = min(w, self.size - col)
        target = frame[row:row + h, col:col + w]
        target[:] = 0 if target.ndim == 2 else (0, 0, 0)
        if target.ndim == 2:
            target[mask[:, :w]] = self.text_colour[0]
        else:
            target[mask[:, :w]] = self.text_colour
