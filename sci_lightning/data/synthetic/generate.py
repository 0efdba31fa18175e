"""Render and photograph a synthetic data set, write it as JPEG files plus a manifest (a plain ``folder``
layout with ``manifest.csv``), in parallel, deterministically from a seed."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sci_lightning.data.build import atomic_folder, parallel_map
from sci_lightning.data.synthetic.camera import photograph
from sci_lightning.data.synthetic.profiles import PROFILES, UNIT_PROFILES, cameras_of
from sci_lightning.data.synthetic.scene import draw_scene
from sci_lightning.errors import SCIConfigError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SyntheticSettings:
    """Everything that decides the generated files (and so the cache key)."""

    profile: str = "miche_like"
    images_per_camera: int = 40
    image_size: int = 256  # rear-camera side in px; front cameras are 3/4 of it
    prnu_strength: float = 0.01  # std of the multiplicative PRNU pattern K (0.01 = 1%)
    jpeg_quality: list[int] | None = None  # [lo, hi]: every camera's quality drawn from it; None: per model
    seed: int = 0
    units: int | None = None  # units per model (units_of_one_model, many_units); None: the profile's default
    shared_scenes: bool = True  # scene k is photographed by every camera, pixel-aligned; false: each its own

    @classmethod
    def from_mapping(cls, values: Mapping) -> SyntheticSettings:
        """From the ``data`` keys of ``data=synthetic`` (the others ignored), validated."""
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values and values[k] is not None}
        if "jpeg_quality" in known:
            q = known["jpeg_quality"]
            known["jpeg_quality"] = [int(q), int(q)] if isinstance(q, (int, float)) else [int(v) for v in q]
        s = cls(**known)
        s.validate()
        return s

    def validate(self) -> None:
        if self.profile not in PROFILES:
            raise SCIConfigError("data.profile", f"unknown profile {self.profile!r}", f"use one of {sorted(PROFILES)}")
        if self.images_per_camera < 2:
            raise SCIConfigError("data.images_per_camera", "needs at least 2", "use e.g. 40")
        if self.image_size < 64:
            raise SCIConfigError(
                "data.image_size", f"{self.image_size} px is too small", "use 64 or more (256 default)"
            )
        if self.prnu_strength < 0:
            raise SCIConfigError("data.prnu_strength", "cannot be negative", "use e.g. 0.01 (1%)")
        if self.units is not None and (self.profile not in UNIT_PROFILES or self.units < 2):
            raise SCIConfigError(
                "data.units",
                f"{self.units} units for profile {self.profile}",
                f"set it (2 or more) only with a unit profile ({', '.join(UNIT_PROFILES)}), else units=null",
            )
        if self.jpeg_quality is not None and not (1 <= min(self.jpeg_quality) <= max(self.jpeg_quality) <= 100):
            raise SCIConfigError("data.jpeg_quality", f"{self.jpeg_quality} is not in 1..100", "use e.g. [85, 95]")

    def key(self) -> str:
        # keys of older sets: the fields added since are left out at their defaults
        fields = {
            k: v
            for k, v in asdict(self).items()
            if not (k == "units" and v is None) and not (k == "shared_scenes" and v)
        }
        blob = json.dumps({"v": FORMAT_VERSION, **fields}, sort_keys=True).encode()
        return f"{self.profile}-{hashlib.sha256(blob).hexdigest()[:12]}"


def _job(args: tuple[SyntheticSettings, int, int, str]) -> tuple[str, str, str, str, int]:
    s, cam_idx, shot, out = args
    cams = cameras_of(s.profile, s.image_size, s.seed, s.units)
    cam = cams[cam_idx]
    # scene `shot` is shared by every camera (a model sees no scene cue); in the wild each camera has its own views
    scene = draw_scene(np.random.default_rng([s.seed, 1, shot] if s.shared_scenes else [s.seed, 3, cam_idx, shot]))
    rng = np.random.default_rng([s.seed, 2, cam_idx, shot])  # this exposure's noise
    q = None if s.jpeg_quality is None else int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1))
    data, quality = photograph(scene, cam, rng, s.prnu_strength, q)
    rel = f"{cam.device}/{cam.camera}/scene{shot:04d}.jpg"
    path = Path(out) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return rel, cam.device, cam.camera, f"scene{shot:04d}", quality


def generate(out: str | os.PathLike, settings: SyntheticSettings, workers: int | None = None) -> Path:
    """Write the data set to ``out`` (created): ``<device>/<camera>/sceneNNNN.jpg`` and ``manifest.csv``."""
    settings.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_cams = len(cameras_of(settings.profile, settings.image_size, settings.seed, settings.units))
    jobs = [(settings, c, k, str(out)) for c in range(n_cams) for k in range(settings.images_per_camera)]
    rows = list(parallel_map(_job, jobs, workers or os.cpu_count() or 1, "Photographing synthetic scenes"))
    with (out / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "device", "camera", "scene", "jpeg_quality"])
        w.writerows(rows)
    (out / "settings.json").write_text(json.dumps(asdict(settings), indent=1))
    return out


def ensure_generated(root: str | os.PathLike, settings: SyntheticSettings, workers: int | None = None) -> Path:
    """The folder holding ``settings``' data set under ``root``, generated once (atomically) and then reused."""
    root = Path(os.path.expanduser(str(root)))
    final = root / settings.key()
    if (final / "manifest.csv").is_file():
        return final
    if final.exists():  # a folder without its manifest is not a finished set (e.g. files deleted by hand)
        shutil.rmtree(final, ignore_errors=True)
    log.info(
        "generating the synthetic data set %s (%s, %d images per camera) -> %s",
        settings.profile,
        settings.key(),
        settings.images_per_camera,
        final,
    )
    with atomic_folder(final) as tmp:
        generate(tmp, settings, workers)
    return final
