"""The camera fingerprint library: ``python library.py action=enrol|search|... library.path=LIB``."""

import hydra
from omegaconf import DictConfig

import sci_lightning.run.schema  # noqa: F401 (the settings' schemas, in Hydra's ConfigStore before it composes)


@hydra.main(version_base="1.3", config_path="conf", config_name="library")
def main(cfg: DictConfig) -> None:
    from sci_lightning.run.cli import guarded
    from sci_lightning.run.library import run

    guarded(run, cfg)


if __name__ == "__main__":
    main()
