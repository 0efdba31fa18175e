"""The identification methods ``method=`` can name: a table of packages under :mod:`sci_lightning.methods`.

Every method package has the same face, ``train(cfg)`` and ``evaluate(cfg)`` (each returning what the run's
``metrics.json`` holds), and is imported only when chosen: ``method=prnu`` never loads torch or Lightning. Adding a
method is one row here plus its package (README "Adding a method").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from sci_lightning.errors import SCIConfigError
from sci_lightning.run.logs import readable_logs

RunFn = Callable[[DictConfig], dict[str, Any]]


@dataclass(frozen=True)
class Method:
    """A method: its package, and what the entry points may ask of it."""

    name: str
    description: str
    needs_checkpoint: bool  # evaluate.py needs ckpt_path=
    evaluates_crops: tuple[str, ...]  # the entry points (train, evaluate) that honour eval.crop

    @property
    def package(self) -> str:
        return f"sci_lightning.methods.{self.name}"

    def train(self) -> RunFn:
        """The package's ``train(cfg)`` (imported now)."""
        return self._module().train

    def evaluate(self) -> RunFn:
        """The package's ``evaluate(cfg)`` (imported now)."""
        return self._module().evaluate

    def _module(self) -> Any:
        module = importlib.import_module(self.package)
        readable_logs()  # Lightning, if the method just imported it, has given itself a second console handler
        return module


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        # evaluate.py ckpt_path=... eval.crop=P
        Method("cnn", "patch CNN (model=sci_cnn and peers), Lightning", True, ("evaluate",)),
        Method("prnu", "classical PRNU fingerprint correlation (PCE / NCC), NumPy only", False, ("train", "evaluate")),
        # evaluate.py without ckpt_path uses the shipped pre-trained weights
        Method(
            "matcher",
            "learned fingerprint matcher (Mandelli et al. 2020 pair network), Lightning",
            False,
            ("train", "evaluate"),
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
