"""Decoding photos for sensor forensics: pixels exactly as stored, never rotated, always 8-bit RGB.

EXIF orientation is deliberately *not* applied: rotating the pixels would rotate the sensor's noise pattern and
colour-filter grid, so the same camera would show four different fingerprints depending on how the phone was
held. Patches are cut in the sensor's own (stored) geometry. HEIC / HEIF files (iPhones) are read through
pillow-heif, like any other format.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image
from pillow_heif import register_heif_opener

# HEIC / HEIF (iPhones save HEIC by default): Pillow opens them like any other format once registered.
register_heif_opener()


class SkippedImage(Exception):
    """The file cannot be used; ``str(exc)`` is the one-line reason that goes to the log and skip list."""


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale (PNG/TIFF): scale the full 0..65535 range to 8 bits rather than clipping.
        arr = np.asarray(img, dtype=np.int64)
        arr = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        raise SkippedImage("floating-point image (mode F) has no defined 8-bit scale")
    # L, LA, P, PA, RGBA, CMYK, YCbCr, 1 ...: Pillow's conversion (alpha is dropped, palette expanded).
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_rgb(path: str | Path, min_size: int = 1) -> np.ndarray:
    """Decode ``path`` to an ``(H, W, 3)`` uint8 array without EXIF rotation.

    Raises :class:`SkippedImage` with a reason for unreadable, truncated, oversized or too-small images.
    """
    return load_rgb_region(path, min_size)[0]


Box = tuple[int, int, int, int]


def load_rgb_region(
    path: str | Path, min_size: int = 1, box: Callable[[int, int], Box | None] | None = None
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Like :func:`load_rgb`, converting only ``box(height, width)`` = (top, left, bottom, right) of the image.

    Returns ``(array, (full height, full width), (top, left))``. Decoding is whole-image either way; only the
    region is converted to an array, which for a 12 MP photo and the paper's 512x512 grid saves most of the work
    after the decoder.
    """
    with opened(path) as img:
        img.load()
        full = (img.height, img.width)
        region = box(*full) if box is not None and min(full) >= min_size else None
        origin = (region[0], region[1]) if region else (0, 0)
        arr = _to_rgb_array(img.crop((region[1], region[0], region[3], region[2])) if region else img)
    h, w = full
    if h < min_size or w < min_size:
        raise SkippedImage(f"too small: {w}x{h} px, a patch needs {min_size}x{min_size}")
    return arr, full, origin


@contextmanager
def opened(path: str | Path) -> Iterator[Image.Image]:
    """The image at ``path``, opened by Pillow under the guards every reader shares: an empty file, a file that is
    no image, more pixels than Pillow's safety limit (a decompression bomb) and a damaged file each become a
    :class:`SkippedImage` with the reason (also for what the caller does with the image inside the block)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise SkippedImage("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                yield img
    except SkippedImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise SkippedImage(f"too many pixels for Pillow's safety limit ({err})") from None
    except FileNotFoundError:
        raise SkippedImage("file not found (moved, deleted or a broken link)") from None
    except PermissionError:
        raise SkippedImage("permission denied") from None
    except Image.UnidentifiedImageError:
        raise SkippedImage("not an image Pillow can identify") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise SkippedImage(f"cannot decode ({err})") from None


def inspect_image(path: str | Path) -> tuple[str, int, int]:
    """``(format, height, width)`` from the file's header, under :func:`opened`'s guards: how an upload is checked
    before it is kept. Raises :class:`SkippedImage` with the reason. A file whose data is damaged past its header is
    caught when decoded."""
    with opened(path) as img:
        return str(img.format or "").upper(), img.height, img.width
