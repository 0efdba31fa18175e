"""A camera's own smaller size settings, made the way cameras make them (used by ``eval.transform=camera_*`` and by
the virtual cameras): Pillow only."""

from __future__ import annotations

from PIL import Image


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
        bw, bh = (w, int(round(w / band))) if w / band <= h else (int(round(h * band)), h)
        oy, ox = (h - bh) // 2, (w - bw) // 2
        pil, (w, h) = pil.crop((ox, oy, ox + bw, oy + bh)), (bw, bh)
    size = (max(block, int(round(w * scale / block)) * block), max(block, int(round(h * scale / block)) * block))
    return pil.resize(size, Image.Resampling.LANCZOS), oy, ox, size[0] / w
