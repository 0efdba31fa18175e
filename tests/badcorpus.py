"""A corpus of hostile and odd inputs, generated on the fly: what a forensic tool gets fed in practice.

``make_bad_corpus(folder)`` writes the files into ``folder`` and returns, per file name, the expected outcome:
``("used", how)`` or ``("skipped", reason fragment)``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from fakedata import camera_image

W, H = 128, 96


def _jpeg_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def make_bad_corpus(folder: Path, device: str = "A", camera: str = "A1") -> dict[str, tuple[str, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    rgb = camera_image(device, camera, 900, (H, W))
    out: dict[str, tuple[str, str]] = {}

    def put(
        name: str, outcome: str, note: str, data: bytes | None = None, img: Image.Image | None = None, **save
    ) -> None:
        path = folder / name
        if data is not None:
            path.write_bytes(data)
        elif img is not None:
            img.save(path, **save)
        out[name] = (outcome, note)

    put("zero_bytes.jpg", "skipped", "empty file", data=b"")
    put("truncated.jpg", "skipped", "cannot decode", data=_jpeg_bytes(rgb)[:400])
    put("text_named_jpg.jpg", "skipped", "not an image", data=b"<html>this is a web page, not a photo</html>\n")
    put("rgba.png", "used", "alpha dropped", img=Image.fromarray(np.dstack([rgb, np.full((H, W), 128, np.uint8)])))
    grey16 = rgb[..., 0].astype(np.uint16) * 257
    put("grey16.png", "used", "16-bit scaled to 8", img=Image.fromarray(grey16))
    put("grey16.tif", "used", "16-bit scaled to 8", img=Image.fromarray(grey16))
    put("grey.jpg", "used", "grey repeated to RGB", img=Image.fromarray(rgb[..., 1]), quality=95)
    put("cmyk.jpg", "used", "CMYK converted to RGB", img=Image.fromarray(rgb).convert("CMYK"), quality=95)
    put("palette.png", "used", "palette expanded", img=Image.fromarray(rgb).convert("P"))
    put("tiny.jpg", "skipped", "too small", img=Image.fromarray(rgb[:20, :20]), quality=95)
    # Over Pillow's pixel limit (default ~179 MP, warning above ~89 MP): a 1-bit PNG of 12000 x 12000 is tiny
    # on disk but decompresses to 144 MP.
    put("bomb.png", "skipped", "too many pixels", img=Image.new("1", (12000, 12000)), optimize=True)
    locked = folder / "unreadable.jpg"
    locked.write_bytes(_jpeg_bytes(rgb))
    os.chmod(locked, 0)
    # root reads anything: then the file is simply used
    out["unreadable.jpg"] = ("skipped", "permission denied") if os.geteuid() != 0 else ("used", "readable by root")
    os.symlink(folder / "does_not_exist.jpg", folder / "broken_link.jpg")
    out["broken_link.jpg"] = ("skipped", "not found")
    put(
        "unicode é 写真 (copy).jpg",
        "used",
        "plain JPEG, odd path",
        data=_jpeg_bytes(camera_image(device, camera, 901, (H, W))),
    )
    return out
