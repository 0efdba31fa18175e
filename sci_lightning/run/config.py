"""One validation of the composed config, before any work: types by a structured schema, then the rules.

The groups whose settings a package owns (``geometry``, ``prnu``, ``verdict``, ``library``, ``serve``) state each
setting once, in that package's frozen dataclass (name, type, default, doc and rules: :mod:`sci_lightning.settings`);
Hydra composes the YAML presets onto their schemas (:mod:`.schema`), and the rules run when the group is turned
into its dataclass here. The other shared keys keep their defaults in the YAML under ``conf/``, with a schema of
types only (``MISSING``: a key missing from the YAML is an error, not a silent default). Groups whose keys differ
per choice (``data``, ``model``, ``trainer``, ``logger``) are checked where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sci_lightning.clustering.settings import ClusterSettings
from sci_lightning.data.transforms import check_name
from sci_lightning.desk.settings import ServeSettings
from sci_lightning.errors import SCIConfigError, require
from sci_lightning.fingerprint.geometry import GeometrySettings
from sci_lightning.fingerprint.settings import PrnuSettings
from sci_lightning.forensic.settings import VerdictSettings
from sci_lightning.library.settings import LibrarySettings
from sci_lightning.run.registry import get_method
from sci_lightning.settings import schema_of, settings_from

MIN_CROP = 16  # px: below this a correlation peak has too few pixels to mean anything


# the groups whose settings a package owns: their schemas are made from the dataclasses (one place for each
# setting's name, type, default and doc)
VerdictSchema = schema_of(VerdictSettings)
PrnuSchema = schema_of(PrnuSettings)
GeometrySchema = schema_of(GeometrySettings)
LibraryGroupSchema = schema_of(LibrarySettings)
ClusterGroupSchema = schema_of(ClusterSettings)
ServeGroupSchema = schema_of(ServeSettings)


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
    cluster: ClusterGroupSchema = field(default_factory=ClusterGroupSchema)


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
    "cluster": ("images",),  # no library: library.path is not needed
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
        settings_from(ServeSettings, typed.serve)  # its own rules
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
    for group, cls in (("verdict", VerdictSettings), ("prnu", PrnuSettings), ("geometry", GeometrySettings)):
        settings_from(cls, typed[group])  # each group's own rules, stated with its fields


def _check_library(typed: DictConfig) -> None:
    """``library.py``: the action, what it needs, and the library group's rules."""
    action, lib = typed.action, typed.library
    require(action in LIBRARY_ACTIONS, "action", f"is {action!r}", f"use one of {', '.join(LIBRARY_ACTIONS)}")
    needs = LIBRARY_ACTIONS[action] + (("library.camera",) if action == "enrol" and typed.images else ())
    clusters = settings_from(ClusterSettings, typed.cluster)
    if action == "cluster":
        settings_from(LibrarySettings, lib)  # its scheduler and workers make the residuals
    else:
        _check_library_group(lib)
    if action == "enrol" and clusters.csv:  # a cluster of action=cluster becomes a camera
        require(clusters.id is not None, "cluster.id", "is not set", "name the cluster to enrol: cluster.id=N")
        require(not typed.images, "images", "is set with cluster.csv", "enrol either a cluster or images=DIR")
        needs = ("library.camera",)
    for key in needs:
        value = typed.images if key == "images" else lib.camera
        require(bool(value), key, "is not set", LIBRARY_FIX[key])


def _check_library_group(lib: DictConfig) -> None:
    """The ``library`` group's rules (``library.py`` and ``serve.py``): the path is required, the rest are
    :class:`LibrarySettings`'s own."""
    require(bool(lib.path), "library.path", "is not set", "pass library.path=DIR (the library folder)")
    settings_from(LibrarySettings, lib)


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
