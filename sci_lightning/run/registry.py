"""The identification methods ``method=`` can name, and where their ``train`` / ``evaluate`` functions live.

Methods are imported only when chosen: ``method=prnu`` never loads torch or Lightning. Adding a method is one
entry here plus a package under :mod:`sci_lightning.methods` with ``train(cfg)`` and ``evaluate(cfg)``
(README "Adding a method").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from sci_lightning.errors import SCIConfigError

RunFn = Callable[[DictConfig], dict[str, Any]]


def _cnn_train() -> RunFn:
    from sci_lightning.methods.cnn.train import train

    return train


def _cnn_evaluate() -> RunFn:
    from sci_lightning.methods.cnn.evaluate import evaluate

    return evaluate


def _prnu_train() -> RunFn:
    from sci_lightning.methods.prnu.run import train

    return train


def _prnu_evaluate() -> RunFn:
    from sci_lightning.methods.prnu.run import evaluate

    return evaluate


def _matcher_train() -> RunFn:
    from sci_lightning.methods.matcher.run import train

    return train


def _matcher_evaluate() -> RunFn:
    from sci_lightning.methods.matcher.run import evaluate

    return evaluate


@dataclass(frozen=True)
class Method:
    """A method's entry points, imported on first use."""

    name: str
    description: str
    train: Callable[[], RunFn]
    evaluate: Callable[[], RunFn]
    needs_checkpoint: bool  # evaluate.py needs ckpt_path=
    evaluates_crops: tuple[str, ...]  # the entry points (train, evaluate) that honour eval.crop


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "cnn",
            "patch CNN (model=sci_cnn and peers), Lightning",
            train=_cnn_train,
            evaluate=_cnn_evaluate,
            needs_checkpoint=True,
            evaluates_crops=("evaluate",),  # evaluate.py ckpt_path=... eval.crop=P
        ),
        Method(
            "prnu",
            "classical PRNU fingerprint correlation (PCE / NCC), NumPy only",
            train=_prnu_train,
            evaluate=_prnu_evaluate,
            needs_checkpoint=False,
            evaluates_crops=("train", "evaluate"),
        ),
        Method(
            "matcher",
            "learned fingerprint matcher (Mandelli et al. 2020 pair network), Lightning",
            train=_matcher_train,
            evaluate=_matcher_evaluate,
            needs_checkpoint=False,  # evaluate.py without ckpt_path uses the shipped pre-trained weights
            evaluates_crops=("train", "evaluate"),
        ),
    )
}


def get_method(name: str) -> Method:
    """The registered method called ``name``; a clear error names the ones there are."""
    try:
        return METHODS[str(name)]
    except KeyError:
        raise SCIConfigError(
            "method",
            f"unknown method {name!r}",
            "use one of: " + ", ".join(f"{m.name} ({m.description})" for m in METHODS.values()),
        ) from None
