"""Train and test the source-camera classifier on one fold: ``python train.py [overrides]`` (see README)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from sci_lightning.cli import guarded
    from sci_lightning.train import run

    metrics = guarded(run, cfg)
    return float(metrics.get("test/acc_image", float("nan")))  # the value a Hydra sweeper optimises


if __name__ == "__main__":
    main()
