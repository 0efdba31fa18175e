"""A camera's own smaller size settings, made the way cameras make them (used by ``eval.transform=camera_*`` and by
the virtual cameras): Pillow only."""

from __future__ import annotations

from PIL import Image


def band_box(width: int, height: int, band: float) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the central band of aspect ``band`` (width / height) in a frame."""
    bw, bh = (width, int(round(width / band))) if width / band <= height else (int(round(height * band)), height)
    return (height - bh) // 2, (width - bw) // 2, bh, bw


def camera_setting(
    pil: Image.Image, scale: float, block: int, band: float | None = None
) -> tuple[Image.Image, int, int, float]:
    """A size setting as a camera makes it: the central band of aspect ``band`` (width / height, e.g. 16 / 9) when
    given, then the frame resized by ``scale`` with each side rounded to the camera's ``block`` px (so the two axes
    scale a little differently), Lanczos. Returns the image, the band's top and left in the frame, and the width's
    scale."""
    w, h = pil.size
    oy = ox = 0
    if band is not None:
        oy, ox, bh, bw = band_box(w, h, band)
        pil, (w, h) = pil.crop((ox, oy, ox + bw, oy + bh)), (bw, bh)
    size = (max(block, int(round(w * scale / block)) * block), max(block, int(round(h * scale / block)) * block))
    return pil.resize(size, Image.Resampling.LANCZOS), oy, ox, size[0] / w
