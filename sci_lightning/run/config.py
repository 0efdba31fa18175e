"""One validation of the composed config, before any work: types by a structured schema, then the rules.

Defaults live in the YAML files under ``conf/`` only. The schema below states every shared key's type and has
no defaults of its own (``MISSING``), so a key missing from the YAML is an error here, not a silent default in
code. Groups whose keys differ per choice (``data``, ``model``, ``trainer``, ``logger``) are checked where they
are used, with errors that name the setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sci_lightning.data.transforms import check_name
from sci_lightning.errors import SCIConfigError, require
from sci_lightning.fingerprint.geometry import MODES, ROTATIONS
from sci_lightning.run.registry import get_method

PRNU_DECISIONS = ("pce", "ncc")
MIN_CROP = 16  # px: below this a correlation peak has too few pixels to mean anything


@dataclass
class VerdictSchema:
    target_false_attribution: float = MISSING
    max_heatmaps: int = MISSING


@dataclass
class PrnuSchema:
    sigma: float = MISSING
    levels: int = MISSING
    wavelet: str = MISSING
    grey_first: bool = MISSING
    decision: str = MISSING
    pce_threshold: float = MISSING
    false_alarm: float = MISSING
    residual_cache: bool = MISSING


@dataclass
class GeometrySchema:
    name: str = MISSING
    rotations: list[int] = MISSING
    mirror: bool = MISSING
    crop: bool = MISSING
    resize: bool = MISSING
    shift: int = MISSING
    min_side: int = MISSING
    scale_search: bool = MISSING
    scale_rotations: list[int] = MISSING
    scale_min: float = MISSING
    scale_max: float = MISSING
    scale_block: int = MISSING
    aspect_tolerance: float = MISSING
    setting_steps: int = MISSING
    setting_shift: int = MISSING
    decoys: bool = MISSING


@dataclass
class MatcherNetSchema:
    width: int = MISSING


@dataclass
class MatcherSchema:
    pretrained: Any = None  # "shipped", a path, or null (train from scratch)
    finetune: bool = MISSING
    net: MatcherNetSchema = field(default_factory=MatcherNetSchema)
    crop: int = MISSING
    pairs_per_epoch: int = MISSING
    val_pairs: int = MISSING
    epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    hard_negatives: float = MISSING
    max_minutes: Any = None  # float or null
    max_side: Any = None  # int or null
    tile: int = MISSING
    tiles_per_image: int = MISSING
    accelerator: str = MISSING


@dataclass
class EvalSchema:
    crop: Any = None  # int px or null (whole photo)
    crops_per_image: Any = None  # int or null (one centred crop)
    transform: str = MISSING


@dataclass
class PathsSchema:
    root_dir: str = MISSING
    output_dir: str = MISSING
    cache_dir: str = MISSING


@dataclass
class RunSchema:
    """Keys both entry points share."""

    method: str = MISSING
    seed: int = MISSING
    fold: int = MISSING
    n_folds: int = MISSING
    ckpt_path: Any = None  # a path, "last" (train.py) or null
    paths: PathsSchema = field(default_factory=PathsSchema)
    verdict: VerdictSchema = field(default_factory=VerdictSchema)
    prnu: PrnuSchema = field(default_factory=PrnuSchema)
    geometry: GeometrySchema = field(default_factory=GeometrySchema)
    eval: EvalSchema = field(default_factory=EvalSchema)
    matcher: MatcherSchema = field(default_factory=MatcherSchema)


@dataclass
class TrainSchema(RunSchema):
    optimized_metric: str = MISSING
    resume: bool = MISSING
    skip_complete: bool = MISSING
    torch_threads: Any = None  # int or null


@dataclass
class EvaluateSchema(RunSchema):
    images: Any = None  # a folder, a file, or null
    image_extensions: list[str] = MISSING


@dataclass
class LibraryGroupSchema:
    path: Any = None  # required (checked with the action)
    index_side: int = MISSING
    camera: Any = None
    device: Any = None
    shortlist: int = MISSING
    min_z: Any = None  # float or null
    top_k: int = MISSING
    exhaustive: bool = MISSING
    scheduler: str = MISSING
    workers: int = MISSING
    replace: bool = MISSING
    calibrate: bool = MISSING
    to: Any = None


@dataclass
class LibrarySchema:
    """``library.py``'s keys."""

    action: str = MISSING
    images: Any = None
    image_extensions: list[str] = MISSING
    seed: int = MISSING
    fold: int = MISSING
    n_folds: int = MISSING
    paths: PathsSchema = field(default_factory=PathsSchema)
    verdict: VerdictSchema = field(default_factory=VerdictSchema)
    prnu: PrnuSchema = field(default_factory=PrnuSchema)
    geometry: GeometrySchema = field(default_factory=GeometrySchema)
    library: LibraryGroupSchema = field(default_factory=LibraryGroupSchema)


@dataclass
class ServeGroupSchema:
    host: str = MISSING
    port: int = MISSING
    case_dir: Any = None  # a folder or null (<run dir>/case)
    roots: list[str] = MISSING
    max_upload_mb: float = MISSING
    max_files: int = MISSING


@dataclass
class ServeSchema(LibrarySchema):
    """``serve.py``'s keys: the library's, and the desk's own."""

    serve: ServeGroupSchema = field(default_factory=ServeGroupSchema)


SCHEMAS = {"train": TrainSchema, "evaluate": EvaluateSchema, "library": LibrarySchema, "serve": ServeSchema}

# library.py action=A: the settings A needs besides library.path (enrol needs library.camera with images=DIR)
LIBRARY_ACTIONS = {
    "enrol": (),
    "list": (),
    "show": ("library.camera",),
    "remove": ("library.camera",),
    "export": ("library.camera",),
    "verify": (),
    "repair": ("library.camera",),
    "ingest": ("images",),
    "search": ("images",),
    "reverse": ("images", "library.camera"),
}
LIBRARY_FIX = {
    "images": "pass images=DIR (a folder of photos) or one photo",
    "library.camera": "name the camera: library.camera=NAME",
}


def _typed(cfg: DictConfig, schema: type) -> DictConfig:
    """The schema's keys of ``cfg``, type-checked (and converted: ``fold=3`` from the command line is an int)."""
    keys = list(schema.__dataclass_fields__)
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.masked_copy(cfg, keys))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        problem = str(err).split("\n")[0]
        raise SCIConfigError(
            str(key), problem, f"set {key} to a value of the right type (see conf/ and the README)"
        ) from None


def validate(cfg: DictConfig, entry: str) -> None:
    """Check the composed config of ``train``, ``evaluate`` or ``library``; raises :class:`SCIConfigError` naming
    the setting."""
    typed = _typed(cfg, SCHEMAS[entry])
    _check_shared(typed)
    if entry == "serve":  # the desk: the library's rules (its forms name cameras and photos), and its own
        _check_library_group(typed.library)
        _check_serve(typed.serve)
        return
    if entry == "library":
        _check_library(typed)
        return
    method = get_method(typed.method)
    check_name(typed.eval.transform)
    if isinstance(typed.eval.crop, str) and typed.eval.crop.lower() in ("full", "none", "null"):
        typed.eval.crop = cfg.eval.crop = None  # eval.crop=full: the whole photo, the same as null
    for key, low in (("crop", MIN_CROP), ("crops_per_image", 1)):
        value = typed.eval[key]
        require(
            value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= low),
            f"eval.{key}",
            f"must be null or a whole number >= {low} (got {value!r})",
            f"use eval.{key}=null or e.g. eval.{key}={max(low, 128 if key == 'crop' else 4)}",
        )
    require(
        entry in method.evaluates_crops or typed.eval.crop is None,
        "eval.crop",
        f"{entry}.py method={method.name} does not evaluate at a crop size (only the whole photo)",
        "use eval.crop=null"
        + (
            ", or evaluate the checkpoint: python evaluate.py ckpt_path=... eval.crop=P"
            if method.evaluates_crops
            else ""
        ),
    )
    require(
        entry in method.evaluates_crops or typed.eval.transform == "none",
        "eval.transform",
        f"{entry}.py method={method.name} does not score transformed photos",
        "evaluate the checkpoint: python evaluate.py ckpt_path=... eval.transform=NAME",
    )
    require(
        method.name != "cnn" or typed.eval.transform == "none" or typed.eval.crop is None,
        "eval.transform",
        "the CNN scores a transformed photo whole (its patch grid), not at eval.crop",
        "drop eval.crop, or use eval.transform=none",
    )
    _check_matcher(typed.matcher)
    if entry == "train":
        metric = typed.optimized_metric
        require(
            metric.startswith("val/"),
            "optimized_metric",
            f"is {metric!r}: a sweep would tune on test folds",
            "optimise a validation metric, e.g. optimized_metric=val/acc_image or val/loss",
        )
        require(
            typed.torch_threads is None or int(typed.torch_threads) >= 1,
            "torch_threads",
            "must be null or a positive number of threads",
            "use torch_threads=null",
        )
    else:
        require(
            not method.needs_checkpoint or bool(typed.ckpt_path),
            "ckpt_path",
            "is not set",
            "pass ckpt_path=outputs/.../checkpoints/<name>.ckpt",
        )
    cfg.prnu.decision = typed.prnu.decision.lower()  # the checked value replaces the raw one (PCE becomes pce)


def _check_shared(typed: DictConfig) -> None:
    """The rules of the keys every entry point has: folds, verdicts, PRNU, geometry."""
    require(
        typed.n_folds >= 2,
        "n_folds",
        f"must be at least 2 (got {typed.n_folds})",
        "set n_folds=10 (the paper) or more than 1",
    )
    require(
        0 <= typed.fold < typed.n_folds,
        "fold",
        f"{typed.fold} is out of range for n_folds={typed.n_folds}",
        f"use fold=0..{typed.n_folds - 1}",
    )
    t = typed.verdict.target_false_attribution
    require(0 < t < 1, "verdict.target_false_attribution", f"must be in (0, 1) (got {t})", "use e.g. 0.05")
    require(typed.verdict.max_heatmaps >= 0, "verdict.max_heatmaps", "must be 0 or more", "use e.g. 200")
    require(
        typed.prnu.decision.lower() in PRNU_DECISIONS,
        "prnu.decision",
        f"is {typed.prnu.decision!r}",
        f"use one of {', '.join(PRNU_DECISIONS)}",
    )
    require(
        typed.prnu.sigma > 0 and typed.prnu.levels >= 1,
        "prnu.sigma / prnu.levels",
        "the wavelet denoiser needs sigma > 0 and at least one level",
        "use sigma=5.0 levels=4",
    )
    require(math.isfinite(typed.prnu.pce_threshold), "prnu.pce_threshold", "must be a number", "use e.g. 60")
    fa = typed.prnu.false_alarm
    require(0 < fa < 1, "prnu.false_alarm", f"must be in (0, 1) (got {fa})", "use e.g. 1e-4")
    check_geometry(typed.geometry)


def _check_library(typed: DictConfig) -> None:
    """``library.py``: the action, what it needs, and the library group's rules."""
    action, lib = typed.action, typed.library
    require(action in LIBRARY_ACTIONS, "action", f"is {action!r}", f"use one of {', '.join(LIBRARY_ACTIONS)}")
    needs = LIBRARY_ACTIONS[action] + (("library.camera",) if action == "enrol" and typed.images else ())
    _check_library_group(lib)
    for key in needs:
        value = typed.images if key == "images" else lib.camera
        require(bool(value), key, "is not set", LIBRARY_FIX[key])


def _check_library_group(lib: DictConfig) -> None:
    """The ``library`` group's rules (``library.py`` and ``serve.py``)."""
    require(bool(lib.path), "library.path", "is not set", "pass library.path=DIR (the library folder)")
    side = lib.index_side
    require(side >= 64 and side % 8 == 0, "library.index_side", f"is {side}", "use a multiple of 8, e.g. 512")
    require(lib.shortlist >= 1, "library.shortlist", f"is {lib.shortlist}", "use 1 or more, e.g. 20")
    require(lib.top_k >= 1, "library.top_k", f"is {lib.top_k}", "use 1 or more, e.g. 5")
    require(
        lib.scheduler in ("local", "single") or "://" in lib.scheduler,
        "library.scheduler",
        f"is {lib.scheduler!r}",
        "use local (a Dask local cluster), single (this process) or a scheduler address tcp://HOST:8786",
    )
    require(lib.workers >= 1, "library.workers", f"is {lib.workers}", "use 1 or more")


def check_geometry(g: DictConfig) -> None:
    """The ``geometry`` group's rules (shared by every entry point that scores questioned photos)."""
    require(g.name in MODES, "geometry", f"is {g.name!r}", f"use geometry={' | '.join(MODES)}")
    bad = sorted(set(g.rotations) - set(ROTATIONS))
    require(
        bool(g.rotations) and not bad,
        "geometry.rotations",
        f"must be a non-empty list of {list(ROTATIONS)} (got {list(g.rotations)})",
        "use geometry.rotations=[0,90,180,270]",
    )
    require(0 <= g.shift <= 8, "geometry.shift", f"must be 0..8 px (got {g.shift})", "use 1")
    require(0 <= g.setting_shift <= 16, "geometry.setting_shift", f"must be 0..16 px (got {g.setting_shift})", "use 4")
    require(g.min_side >= MIN_CROP, "geometry.min_side", f"must be at least {MIN_CROP} px", "use 64")
    require(
        0 < g.scale_min <= g.scale_max <= 1,
        "geometry.scale_min / geometry.scale_max",
        f"must satisfy 0 < scale_min <= scale_max <= 1 (got {g.scale_min}, {g.scale_max})",
        "use geometry.scale_min=0.3 geometry.scale_max=1.0",
    )
    odd = sorted(set(g.scale_rotations) - set(g.rotations))
    require(
        not odd,
        "geometry.scale_rotations",
        f"must be among geometry.rotations {list(g.rotations)} (got {list(g.scale_rotations)})",
        "use geometry.scale_rotations=[0,180]",
    )
    require(g.scale_block >= 64, "geometry.scale_block", f"must be at least 64 px (got {g.scale_block})", "use 512")
    require(
        0 <= g.aspect_tolerance <= 0.1,
        "geometry.aspect_tolerance",
        f"must be 0..0.1 (got {g.aspect_tolerance})",
        "use 0.02 (cameras keep the aspect ratio of their size settings to a few px)",
    )
    require(0 <= g.setting_steps <= 8, "geometry.setting_steps", f"must be 0..8 (got {g.setting_steps})", "use 2")


def _check_matcher(m: DictConfig) -> None:
    for key in ("crop", "tile"):
        require(m[key] >= MIN_CROP, f"matcher.{key}", f"must be at least {MIN_CROP} px (got {m[key]})", "use 64")
    for key in ("pairs_per_epoch", "val_pairs", "epochs", "batch_size", "tiles_per_image"):
        require(m[key] >= 1, f"matcher.{key}", f"must be at least 1 (got {m[key]})", "see conf/matcher/default.yaml")
    require(
        0 <= m.hard_negatives <= 1, "matcher.hard_negatives", f"must be in [0, 1] (got {m.hard_negatives})", "use 0.5"
    )
    require(m.lr > 0, "matcher.lr", f"must be positive (got {m.lr})", "use e.g. 5e-4")
    require(
        m.max_side is None or int(m.max_side) >= m.crop,
        "matcher.max_side",
        f"{m.max_side} px is smaller than matcher.crop={m.crop}",
        "use null or e.g. 1024",
    )
    require(
        m.accelerator in ("auto", "cpu", "gpu", "cuda"),
        "matcher.accelerator",
        f"is {m.accelerator!r}",
        "use auto, cpu or gpu",
    )


def _check_serve(s: DictConfig) -> None:
    """``serve.py``: the desk's port, limits and readable folders."""
    require(1 <= s.port <= 65535, "serve.port", f"is {s.port}", "use a free port, e.g. 8000")
    require(s.max_upload_mb > 0, "serve.max_upload_mb", f"is {s.max_upload_mb}", "use e.g. 200")
    require(s.max_files >= 1, "serve.max_files", f"is {s.max_files}", "use e.g. 200")
    for root in s.roots:
        require(
            Path(str(root)).expanduser().is_dir(),
            "serve.roots",
            f"{root} is not a folder",
            "list existing folders, e.g. serve.roots=[/cases/photos]",
        )
