"""The camera fingerprint library: ``python library.py action=enrol|search|... library.path=LIB``."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="library")
def main(cfg: DictConfig) -> None:
    from sci_lightning.run.cli import guarded
    from sci_lightning.run.library import run

    guarded(run, cfg)


if __name__ == "__main__":
    main()
