"""Every config composes, validates and instantiates (the habit of lightning-hydra-template's tests/test_configs.py).

For each entry point (``train``, ``evaluate``, ``library``) and every choice of every config group it can take
(``conf/<group>/<choice>.yaml``, the experiment and hparams_search presets and ``debug=fast`` included), the config
``python <entry>.py <group>=<choice>`` would run with is composed by Hydra, validated by the project's schema
(:func:`sci_lightning.run.config.validate`), resolved, and every ``_target_`` in it is checked: its class or
function is imported and its keys are arguments it takes; the objects a run builds from the config (networks with
their optimiser and scheduler, callbacks, loggers, the trainer, Hydra's callbacks and the sweeper's sampler) are
really built. A ``_target_`` link the YAML gets wrong is seen neither by the other tests nor by import-linter.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from sci_lightning.library.actions import ACTIONS
from sci_lightning.run.config import LIBRARY_ACTIONS, validate
from sci_lightning.run.library import OWN_JOB_ACTIONS

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

ENTRIES = ("train", "evaluate", "library", "serve")


def _groups(entry: str) -> list[str]:
    """The config groups ``conf/<entry>.yaml``'s defaults list names (hydra's own group aside)."""
    defaults = OmegaConf.load(CONF / f"{entry}.yaml").defaults
    names = [str(next(iter(d))) for d in defaults if isinstance(d, DictConfig)]
    return [g for g in names if g != "hydra"]


# groups in no defaults list, taken with "+group=choice"
APPENDED = {"train": ["sweep"], "evaluate": [], "library": [], "serve": []}
# What an entry point needs set to validate, whatever the group choice (a checkpoint for evaluate's CNN, a library).
REQUIRED = {
    "train": [],
    "evaluate": ["ckpt_path=some.ckpt"],
    "library": ["library.path=some.lib", "action=list"],
    "serve": ["library.path=some.lib"],
}
# Choices whose own required settings are not the group's to supply (a data layout needs data.root).
NEEDS_ROOT = {"dresden", "miche", "folder", "regex", "manifest", "vision"}
NEEDS = {("data", "regex"): ["data.pattern='(?P<device>[a-z]+)_(?P<camera>[a-z0-9]+)_'"]}
NOT_CHOICES = {("data", "base")}  # what every data layout starts from (defaults: [base]), not a layout itself


def _choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for entry in ENTRIES:
        for group in _groups(entry) + APPENDED[entry]:
            cases += [(entry, group, c) for c in _choices(group) if (group, c) not in NOT_CHOICES]
    return cases


def _compose(entry: str, overrides: list[str], tmp_path: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name=entry,
            return_hydra_config=True,
            overrides=[*overrides, f"paths.output_dir={tmp_path}", f"paths.root_dir={REPO}"],
        )
    HydraConfig.instance().set_config(cfg)
    return cfg


def _targets(node: object, path: str = "") -> list[tuple[str, DictConfig]]:
    """Every ``_target_`` node under ``node``, with its dotted path."""
    found = []
    if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
        if "_target_" in node:
            found.append((path, node))
        for key in node:
            found += _targets(node._get_node(key), f"{path}.{key}" if path else str(key))
    elif OmegaConf.is_list(node) and not node._is_none() and not node._is_missing():
        for i, item in enumerate(node):
            found += _targets(item, f"{path}[{i}]")
    return found


def _check_arguments(path: str, node: DictConfig) -> None:
    """The target imports, and every key of the node is an argument it accepts."""
    target = get_object(node._target_)
    kwargs = {k: None for k in node if not str(k).startswith("_")}
    fn = target.__init__ if inspect.isclass(target) else target
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    names = {p.name for p in params}
    unknown = sorted(set(kwargs) - names)
    assert not unknown, f"{path}: {node._target_} takes no argument(s) {unknown}"


def _build(cfg: DictConfig) -> None:
    """Build what a run builds from the config."""
    if "model" in cfg and "net" in cfg.model:
        from sci_lightning.methods.cnn.setup import build_module

        size = int(cfg.model.get("patch_size") or cfg.data.patches.size)  # as build_datamodule cuts them
        module = build_module(cfg, ["a", "b", "c"], size)
        optimizer = module.optimizer_factory(module.parameters())
        if module.scheduler_factory is not None:
            module.scheduler_factory(optimizer)
        out = module(torch.zeros(2, 3, size, size))
        assert out.shape == (2, 3)
    for group in ("callbacks", "logger"):
        for name, node in (cfg.get(group) or {}).items():
            if node and "_target_" in node:
                assert instantiate(node) is not None, f"{group}.{name}"
    if "trainer" in cfg:
        cpu = {} if torch.cuda.is_available() else {"accelerator": "cpu", "devices": 1}
        if "strategy" in cfg.trainer and not torch.cuda.is_available():
            cpu["strategy"] = "auto"  # ddp builds its processes only at fit time; its keys are checked above
        instantiate(cfg.trainer, **cpu, logger=False, enable_checkpointing=False)
    hydra_cfg = cfg.hydra
    for name, node in (hydra_cfg.get("callbacks") or {}).items():
        assert instantiate(node) is not None, f"hydra.callbacks.{name}"
    sampler = OmegaConf.select(hydra_cfg, "sweeper.sampler")
    if sampler is not None and "_target_" in sampler:
        assert instantiate(sampler) is not None


@pytest.mark.parametrize(("entry", "group", "choice"), _cases(), ids=lambda x: str(x))
def test_every_config_composes_validates_and_instantiates(entry, group, choice, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    prefix = "+" if group in APPENDED[entry] else ""
    overrides = [*REQUIRED[entry], f"{prefix}{group}={choice}"]
    if group == "data" and choice in NEEDS_ROOT:
        overrides.append(f"data.root={tmp_path}")
    overrides += NEEDS.get((group, choice), [])
    cfg = _compose(entry, overrides, tmp_path)
    for path, node in _targets(cfg):
        _check_arguments(path, node)
    with open_dict(cfg):
        run_cfg = cfg.copy()
        del run_cfg["hydra"]
    validate(run_cfg, entry)
    OmegaConf.to_container(run_cfg, resolve=True, throw_on_missing=True)  # every interpolation resolves
    _build(cfg)


def test_debug_fast_holds_the_test_suites_tiny_settings(tmp_path):
    cfg = _compose("train", ["debug=fast"], tmp_path)
    assert cfg.n_folds == 3 and cfg.trainer.max_epochs == 2 and cfg.data.loader.batch_size == 64
    assert cfg.trainer.enable_progress_bar is False and cfg.trainer.enable_model_summary is False


def test_library_actions_and_their_rules_name_the_same_actions():
    assert set(ACTIONS) | set(OWN_JOB_ACTIONS) == set(LIBRARY_ACTIONS)
