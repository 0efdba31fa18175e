"""Train and test on one fold: ``python train.py [overrides]`` (see README)."""

import hydra
from omegaconf import DictConfig

import sci_lightning.run.schema  # noqa: F401 (the settings' schemas, in Hydra's ConfigStore before it composes)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from sci_lightning.run.cli import guarded
    from sci_lightning.run.train import optimized_value, run

    return optimized_value(cfg, guarded(run, cfg))  # a validation metric: what a Hydra sweeper optimises


if __name__ == "__main__":
    main()
